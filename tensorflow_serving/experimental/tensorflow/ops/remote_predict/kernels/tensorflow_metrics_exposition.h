// TensorFlow's monitoring registry (every metric of the process: the op's, the
// runtime's, ...) in Prometheus text exposition format 0.0.4, named the way a
// TF Serving model server names them on its Prometheus page. For servers that
// have no exporter of their own, such as this workspace's Python model server,
// which reaches it through ctypes (python/ops/tensorflow_metrics.py).

#ifndef TENSORFLOW_SERVING_EXPERIMENTAL_TENSORFLOW_OPS_REMOTE_PREDICT_KERNELS_TENSORFLOW_METRICS_EXPOSITION_H_
#define TENSORFLOW_SERVING_EXPERIMENTAL_TENSORFLOW_OPS_REMOTE_PREDICT_KERNELS_TENSORFLOW_METRICS_EXPOSITION_H_

#include <string>

namespace tensorflow {
namespace serving {

// Metric names become Prometheus names with every character other than
// [a-zA-Z0-9_] turned into ':' (/tensorflow/serving/x -> :tensorflow:serving:x);
// counters and gauges of integers, doubles and booleans become one sample per
// label set; histograms become cumulative _bucket lines, _sum and _count.
// String and percentile values have no Prometheus form and are left out.
std::string TensorFlowMetricsAsPrometheusText();

}  // namespace serving
}  // namespace tensorflow

extern "C" {
// The text above as a NUL-terminated string from malloc; free it with
// TfServingFreeMetricsText.
char* TfServingTensorFlowMetricsText();
void TfServingFreeMetricsText(char* text);
}

#endif  // TENSORFLOW_SERVING_EXPERIMENTAL_TENSORFLOW_OPS_REMOTE_PREDICT_KERNELS_TENSORFLOW_METRICS_EXPOSITION_H_
