"""Request and load metrics, exported as Prometheus text (exposition format 0.0.4).

Metric names follow TensorFlow Serving's Prometheus export (TF metric paths with '/'
turned into ':'):

  :tensorflow:serving:request_count{model_name,API,entrypoint,status}   counter
  :tensorflow:serving:request_latency{model_name,API,entrypoint}        histogram, usecs
  :tensorflow:cc:saved_model:load_attempt_count{model_path,status}      counter

`API` is predict/classify/regress/multi_inference/get_model_metadata/get_model_status,
`entrypoint` GRPC or REST, `status` the canonical code name (OK, NOT_FOUND, ...).

After them comes TensorFlow's own monitoring registry, as a TF Serving server exports
it: among others the Remote Predict Op's per-call metrics
(:tensorflow:serving:remote_predict:call_count{target,model_name,status}, ...).
"""

import threading
from typing import Dict, List, Tuple

from tensorflow_serving.experimental.tensorflow.ops.remote_predict.python.ops import tensorflow_metrics

REQUEST_COUNT = ":tensorflow:serving:request_count"
REQUEST_LATENCY = ":tensorflow:serving:request_latency"
LOAD_ATTEMPT_COUNT = ":tensorflow:cc:saved_model:load_attempt_count"

# Microseconds; the same exponential scale TF Serving uses (10us * 1.8^k).
LATENCY_BUCKETS_US: Tuple[float, ...] = tuple(10 * 1.8**k for k in range(33))


def _escape(value: str) -> str:
  return value.replace("\\", "\\\\").replace("\"", "\\\"").replace("\n", "\\n")


def _labels(names: Tuple[str, ...], values: Tuple[str, ...], extra: str = "") -> str:
  parts = [f'{n}="{_escape(v)}"' for n, v in zip(names, values)]
  if extra:
    parts.append(extra)
  return "{" + ",".join(parts) + "}"


def _number(value: float) -> str:
  return repr(int(value)) if float(value).is_integer() else repr(float(value))


class _Histogram:

  def __init__(self):
    self.bucket_counts = [0] * len(LATENCY_BUCKETS_US)
    self.count = 0
    self.sum = 0.0

  def observe(self, value: float) -> None:
    self.count += 1
    self.sum += value
    for i, bound in enumerate(LATENCY_BUCKETS_US):
      if value <= bound:
        self.bucket_counts[i] += 1
        break


class Metrics:
  """Thread-safe registry of the server's metrics."""

  _REQUEST_LABELS = ("model_name", "API", "entrypoint", "status")
  _LATENCY_LABELS = ("model_name", "API", "entrypoint")
  _LOAD_LABELS = ("model_path", "status")

  def __init__(self):
    self._lock = threading.Lock()
    self._requests: Dict[Tuple[str, ...], int] = {}
    self._latency: Dict[Tuple[str, ...], _Histogram] = {}
    self._loads: Dict[Tuple[str, ...], int] = {}

  def record_request(self, model_name: str, api: str, entrypoint: str, status: str,
                     seconds: float) -> None:
    with self._lock:
      key = (model_name, api, entrypoint, status)
      self._requests[key] = self._requests.get(key, 0) + 1
      histogram = self._latency.setdefault((model_name, api, entrypoint), _Histogram())
      histogram.observe(seconds * 1e6)

  def record_load(self, model_path: str, ok: bool) -> None:
    with self._lock:
      key = (model_path, "success" if ok else "fail")
      self._loads[key] = self._loads.get(key, 0) + 1

  def prometheus_text(self) -> str:
    lines: List[str] = []
    with self._lock:
      lines.append(f"# TYPE {REQUEST_COUNT} counter")
      for key, count in sorted(self._requests.items()):
        lines.append(f"{REQUEST_COUNT}{_labels(self._REQUEST_LABELS, key)} {count}")
      lines.append(f"# TYPE {REQUEST_LATENCY} histogram")
      for key, histogram in sorted(self._latency.items()):
        cumulative = 0
        for bound, count in zip(LATENCY_BUCKETS_US, histogram.bucket_counts):
          cumulative += count
          le = f'le="{_number(round(bound, 3))}"'
          lines.append(f"{REQUEST_LATENCY}_bucket{_labels(self._LATENCY_LABELS, key, le)} {cumulative}")
        inf = 'le="+Inf"'
        lines.append(f"{REQUEST_LATENCY}_bucket{_labels(self._LATENCY_LABELS, key, inf)} {histogram.count}")
        lines.append(f"{REQUEST_LATENCY}_sum{_labels(self._LATENCY_LABELS, key)} {_number(histogram.sum)}")
        lines.append(f"{REQUEST_LATENCY}_count{_labels(self._LATENCY_LABELS, key)} {histogram.count}")
      lines.append(f"# TYPE {LOAD_ATTEMPT_COUNT} counter")
      for key, count in sorted(self._loads.items()):
        lines.append(f"{LOAD_ATTEMPT_COUNT}{_labels(self._LOAD_LABELS, key)} {count}")
    own = (REQUEST_COUNT, REQUEST_LATENCY, LOAD_ATTEMPT_COUNT)
    return "\n".join(lines) + "\n" + tensorflow_metrics.prometheus_text(exclude=own)
