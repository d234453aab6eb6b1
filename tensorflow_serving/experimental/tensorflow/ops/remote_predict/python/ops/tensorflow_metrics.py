"""TensorFlow's monitoring registry as Prometheus text, for Python servers.

A TF Serving model server exports TensorFlow's monitoring registry (where the
op records its per-call metrics, see kernels/remote_predict_metrics.h) on its
Prometheus page. Python has no binding for that registry, so the op library
carries a small C++ exporter (kernels/tensorflow_metrics_exposition.cc), which
this module calls through ctypes. The op library is the one TensorFlow already
loaded, so the registry read is the process's own.
"""

import ctypes
import re
from typing import Iterable

from tensorflow_serving.experimental.tensorflow.ops.remote_predict.python.ops import remote_predict_ops

_TYPE_LINE = re.compile(r"^# TYPE (\S+) ", re.M)


def _exporter() -> ctypes.CDLL:
  library = ctypes.CDLL(remote_predict_ops.OP_LIBRARY_PATH)
  library.TfServingTensorFlowMetricsText.restype = ctypes.c_void_p
  library.TfServingTensorFlowMetricsText.argtypes = []
  library.TfServingFreeMetricsText.restype = None
  library.TfServingFreeMetricsText.argtypes = [ctypes.c_void_p]
  return library


_library = _exporter()


def prometheus_text(exclude: Iterable[str] = ()) -> str:
  """Every metric in TensorFlow's registry, in Prometheus text format 0.0.4.

  Names are TF Serving's (`/tensorflow/serving/x` -> `:tensorflow:serving:x`).
  Metrics named in `exclude` (Prometheus names) are left out, so a server that
  exports some of the same names itself does not list them twice.
  """
  pointer = _library.TfServingTensorFlowMetricsText()
  if not pointer:
    raise MemoryError("could not allocate TensorFlow's metrics text")
  try:
    text = ctypes.string_at(pointer).decode("utf-8", "replace")
  finally:
    _library.TfServingFreeMetricsText(pointer)
  excluded = set(exclude)
  if not excluded:
    return text
  starts = [m.start() for m in _TYPE_LINE.finditer(text)] + [len(text)]
  blocks = (text[a:b] for a, b in zip(starts, starts[1:]))
  return "".join(b for b in blocks if _TYPE_LINE.match(b).group(1) not in excluded)
