// Per-call metrics of TfServingRemotePredict, in TensorFlow's monitoring
// registry: a TF Serving model server exports them on its Prometheus page
// (/monitoring/prometheus/metrics) with its own metrics, and so does this
// workspace's embedded model server.
//
//   /tensorflow/serving/remote_predict/call_count{target,model_name,status}
//   /tensorflow/serving/remote_predict/latency{target,model_name}  (usecs)
//   /tensorflow/serving/remote_predict/request_bytes{target,model_name}
//   /tensorflow/serving/remote_predict/response_bytes{target,model_name}
//
// `status` is the canonical code name (OK, UNAVAILABLE, ...). Header-only, so
// that a kernel built with a custom stub records them too.

#ifndef TENSORFLOW_SERVING_EXPERIMENTAL_TENSORFLOW_OPS_REMOTE_PREDICT_KERNELS_REMOTE_PREDICT_METRICS_H_
#define TENSORFLOW_SERVING_EXPERIMENTAL_TENSORFLOW_OPS_REMOTE_PREDICT_KERNELS_REMOTE_PREDICT_METRICS_H_

#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "tensorflow/core/lib/monitoring/counter.h"
#include "tensorflow/core/lib/monitoring/sampler.h"

namespace tensorflow {
namespace serving {
namespace remote_predict_metrics {

inline monitoring::Counter<3>* CallCount() {
  static auto* const metric = monitoring::Counter<3>::New(
      "/tensorflow/serving/remote_predict/call_count",
      "Remote Predict calls by target, model and status.", "target",
      "model_name", "status");
  return metric;
}

inline monitoring::Sampler<2>* Latency() {
  // 10 us to about 4 h: TF Serving's request latency scale.
  static auto* const metric = monitoring::Sampler<2>::New(
      {"/tensorflow/serving/remote_predict/latency",
       "Remote Predict call latency in microseconds, from send to reply.",
       "target", "model_name"},
      monitoring::Buckets::Exponential(10, 1.8, 33));
  return metric;
}

inline monitoring::Counter<2>* RequestBytes() {
  static auto* const metric = monitoring::Counter<2>::New(
      "/tensorflow/serving/remote_predict/request_bytes",
      "Bytes of serialized PredictRequests sent.", "target", "model_name");
  return metric;
}

inline monitoring::Counter<2>* ResponseBytes() {
  static auto* const metric = monitoring::Counter<2>::New(
      "/tensorflow/serving/remote_predict/response_bytes",
      "Bytes of serialized PredictResponses received.", "target",
      "model_name");
  return metric;
}

// Records one finished call. `response_bytes` is 0 for a failed call.
inline void RecordCall(const std::string& target, const std::string& model,
                       const absl::Status& status, absl::Duration latency,
                       int64_t request_bytes, int64_t response_bytes) {
  CallCount()
      ->GetCell(target, model, absl::StatusCodeToString(status.code()))
      ->IncrementBy(1);
  Latency()->GetCell(target, model)->Add(absl::ToDoubleMicroseconds(latency));
  RequestBytes()->GetCell(target, model)->IncrementBy(request_bytes);
  if (response_bytes > 0) {
    ResponseBytes()->GetCell(target, model)->IncrementBy(response_bytes);
  }
}

}  // namespace remote_predict_metrics
}  // namespace serving
}  // namespace tensorflow

#endif  // TENSORFLOW_SERVING_EXPERIMENTAL_TENSORFLOW_OPS_REMOTE_PREDICT_KERNELS_REMOTE_PREDICT_METRICS_H_
