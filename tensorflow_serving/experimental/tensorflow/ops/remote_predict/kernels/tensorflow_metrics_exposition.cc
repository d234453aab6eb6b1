// Renders TensorFlow's monitoring registry as Prometheus text (see header).

#include "tensorflow_serving/experimental/tensorflow/ops/remote_predict/kernels/tensorflow_metrics_exposition.h"

#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "tensorflow/core/lib/monitoring/collected_metrics.h"
#include "tensorflow/core/lib/monitoring/collection_registry.h"

namespace tensorflow {
namespace serving {
namespace {

using monitoring::MetricKind;
using monitoring::ValueType;

// Prometheus metric names allow [a-zA-Z0-9_:]; TF's paths use '/'.
std::string MetricName(const std::string& tf_name) {
  std::string name = tf_name;
  for (char& c : name) {
    if (!absl::ascii_isalnum(c) && c != '_') c = ':';
  }
  if (!name.empty() && absl::ascii_isdigit(name[0])) name.insert(0, "_");
  return name;
}

// Label names allow [a-zA-Z0-9_] and may not start with a digit.
std::string LabelName(const std::string& tf_name) {
  std::string name = tf_name;
  for (char& c : name) {
    if (!absl::ascii_isalnum(c)) c = '_';
  }
  if (!name.empty() && absl::ascii_isdigit(name[0])) name.insert(0, "_");
  return name;
}

std::string LabelValue(const std::string& value) {
  std::string escaped;
  for (const char c : value) {
    if (c == '\\' || c == '"') escaped.push_back('\\');
    if (c == '\n') {
      escaped += "\\n";
      continue;
    }
    escaped.push_back(c);
  }
  return escaped;
}

// `name{a="1",b="2"` plus `extra`, closed with '}'; no braces without labels.
std::string Sample(const std::string& name,
                   const std::vector<std::string>& labels,
                   const std::string& extra = "") {
  std::vector<std::string> all = labels;
  if (!extra.empty()) all.push_back(extra);
  if (all.empty()) return name;
  return absl::StrCat(name, "{", absl::StrJoin(all, ","), "}");
}

void AppendHistogram(const std::string& name, const std::vector<std::string>& labels,
                     const HistogramProto& histogram, std::string* text) {
  double cumulative = 0;
  for (int i = 0; i < histogram.bucket_size(); ++i) {
    cumulative += histogram.bucket(i);
    const bool last = i == histogram.bucket_size() - 1;
    const std::string le =
        absl::StrCat("le=\"",
                     last ? std::string("+Inf")
                          : absl::StrCat(histogram.bucket_limit(i)),
                     "\"");
    absl::StrAppend(text, Sample(name + "_bucket", labels, le), " ",
                    cumulative, "\n");
  }
  absl::StrAppend(text, Sample(name + "_sum", labels), " ", histogram.sum(),
                  "\n", Sample(name + "_count", labels), " ", cumulative,
                  "\n");
}

}  // namespace

std::string TensorFlowMetricsAsPrometheusText() {
  monitoring::CollectionRegistry::CollectMetricsOptions options;
  options.collect_metric_descriptors = true;
  const std::unique_ptr<monitoring::CollectedMetrics> collected =
      monitoring::CollectionRegistry::Default()->CollectMetrics(options);
  std::string text;
  for (const auto& [tf_name, descriptor] : collected->metric_descriptor_map) {
    const auto points = collected->point_set_map.find(tf_name);
    if (points == collected->point_set_map.end()) continue;
    const ValueType type = descriptor->value_type;
    if (type == ValueType::kString || type == ValueType::kPercentiles) {
      continue;
    }
    const std::string name = MetricName(tf_name);
    const char* prometheus_type =
        type == ValueType::kHistogram ? "histogram"
        : descriptor->metric_kind == MetricKind::kCumulative ? "counter"
                                                              : "gauge";
    absl::StrAppend(&text, "# TYPE ", name, " ", prometheus_type, "\n");
    for (const auto& point : points->second->points) {
      std::vector<std::string> labels;
      for (const auto& label : point->labels) {
        labels.push_back(absl::StrCat(LabelName(label.name), "=\"",
                                      LabelValue(label.value), "\""));
      }
      switch (type) {
        case ValueType::kHistogram:
          AppendHistogram(name, labels, point->histogram_value, &text);
          break;
        case ValueType::kInt64:
          absl::StrAppend(&text, Sample(name, labels), " ", point->int64_value,
                          "\n");
          break;
        case ValueType::kDouble:
          absl::StrAppend(&text, Sample(name, labels), " ",
                          point->double_value, "\n");
          break;
        case ValueType::kBool:
          absl::StrAppend(&text, Sample(name, labels), " ",
                          point->bool_value ? 1 : 0, "\n");
          break;
        default:
          break;
      }
    }
  }
  return text;
}

}  // namespace serving
}  // namespace tensorflow

char* TfServingTensorFlowMetricsText() {
  const std::string text =
      tensorflow::serving::TensorFlowMetricsAsPrometheusText();
  char* copy = static_cast<char*>(std::malloc(text.size() + 1));
  if (copy != nullptr) std::memcpy(copy, text.c_str(), text.size() + 1);
  return copy;
}

void TfServingFreeMetricsText(char* text) { std::free(text); }
