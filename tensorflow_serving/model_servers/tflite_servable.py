"""--prefer_tflite_model: serve a version's model.tflite with the TF Lite interpreter.

As in TensorFlow Serving, a version directory holding model.tflite is served from it
instead of saved_model.pb when --prefer_tflite_model is set (versions without one
fall back to the SavedModel). The TF Lite model's signature defs become the version's
SignatureDefs (method tensorflow/serving/predict, tensors named as in the TF Lite
model), so Predict, GetModelMetadata, status, warm-up and batching work unchanged. A
model without signature defs gets one "serving_default" signature over all its inputs
and outputs. The interpreters are not thread-safe: each run borrows one from a pool of
--num_tflite_pools (0: the CPU count) interpreters.
"""

import os
import queue
from typing import Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np
import tensorflow as tf

from tensorflow.core.protobuf import meta_graph_pb2
from tensorflow_serving.model_servers import request_deadline
from tensorflow_serving.model_servers import servable as servable_lib
from tensorflow_serving.model_servers import serving_errors

MODEL_FILE = "model.tflite"
PREDICT = tf.saved_model.PREDICT_METHOD_NAME


def has_tflite_model(export_dir: str) -> bool:
  return os.path.isfile(os.path.join(export_dir, MODEL_FILE))


def _tensor_info(detail: dict) -> meta_graph_pb2.TensorInfo:
  info = meta_graph_pb2.TensorInfo(name=detail["name"],
                                   dtype=tf.as_dtype(detail["dtype"]).as_datatype_enum)
  for size in detail.get("shape_signature", detail["shape"]):
    info.tensor_shape.dim.add().size = int(size)
  return info


class _InterpreterPool:
  """Interpreters of one model, lent out one run at a time."""

  def __init__(self, model: bytes, size: int):
    self._free: "queue.Queue[tf.lite.Interpreter]" = queue.Queue()
    for _ in range(size):
      self._free.put(tf.lite.Interpreter(model_content=model))

  def borrow(self) -> tf.lite.Interpreter:
    return self._free.get()

  def give_back(self, interpreter: tf.lite.Interpreter) -> None:
    self._free.put(interpreter)

  def close(self) -> None:
    while not self._free.empty():
      self._free.get_nowait()


class TfLiteServable(servable_lib.Servable):
  """A version served by TF Lite interpreters; the session is an interpreter pool."""

  def __init__(self, name: str, version: int, path: str, pool: _InterpreterPool,
               meta_graph: meta_graph_pb2.MetaGraphDef,
               runs: Dict[Tuple[str, ...], Tuple[Optional[str], Dict[str, str], Dict[str, str]]]):
    super().__init__(name, version, path, graph=None, session=pool, meta_graph=meta_graph)
    self._pool = pool
    # sorted input tensor names -> (signature key or None, {tensor: alias} in, out).
    self._runs = runs

  def run_alone(self, feeds: Mapping[str, np.ndarray], fetches: Sequence[str],
                deadline: Optional[request_deadline.Deadline]) -> List[np.ndarray]:
    self._refuse_if_cancelled()
    if deadline is not None:
      deadline.check(f"model {self.name} version {self.version}")
    plan = self._runs.get(tuple(sorted(feeds)))
    if plan is None or not set(fetches) <= set(plan[2]):
      raise serving_errors.invalid_argument(
          f"model {self.name} version {self.version} (TF Lite) has no signature with inputs "
          f"{sorted(feeds)} and outputs {list(fetches)}")
    key, inputs, outputs = plan
    interpreter = self._pool.borrow()
    try:
      if key is not None:
        runner = interpreter.get_signature_runner(key)
        results = runner(**{inputs[t]: np.asarray(v) for t, v in feeds.items()})
        return [np.asarray(results[outputs[t]]) for t in fetches]
      by_name = {d["name"]: d for d in interpreter.get_input_details()}
      for tensor, value in feeds.items():
        value = np.asarray(value)
        index = by_name[tensor]["index"]
        if list(value.shape) != list(by_name[tensor]["shape"]):
          interpreter.resize_tensor_input(index, value.shape)
      interpreter.allocate_tensors()
      for tensor, value in feeds.items():
        interpreter.set_tensor(by_name[tensor]["index"], np.asarray(value))
      interpreter.invoke()
      out_by_name = {d["name"]: d["index"] for d in interpreter.get_output_details()}
      return [np.array(interpreter.get_tensor(out_by_name[t])) for t in fetches]
    except (ValueError, RuntimeError) as e:
      raise serving_errors.invalid_argument(
          f"model {self.name} version {self.version} (TF Lite): {e}") from e
    finally:
      self._pool.give_back(interpreter)


def load(name: str, version: int, export_dir: str, num_interpreters: int) -> TfLiteServable:
  """Loads EXPORT_DIR/model.tflite; raises ServingError if TF Lite cannot use it."""
  path = os.path.join(export_dir, MODEL_FILE)
  try:
    with open(path, "rb") as f:
      model = f.read()
    pool = _InterpreterPool(model, max(1, num_interpreters or os.cpu_count() or 1))
    probe = pool.borrow()
    pool.give_back(probe)
    meta_graph = meta_graph_pb2.MetaGraphDef()
    runs = {}
    signature_list = probe.get_signature_list()
    for key in signature_list:
      runner = probe.get_signature_runner(key)
      signature = meta_graph.signature_def[key]
      signature.method_name = PREDICT
      inputs, outputs = {}, {}
      for alias, detail in runner.get_input_details().items():
        signature.inputs[alias].CopyFrom(_tensor_info(detail))
        inputs[detail["name"]] = alias
      for alias, detail in runner.get_output_details().items():
        signature.outputs[alias].CopyFrom(_tensor_info(detail))
        outputs[detail["name"]] = alias
      runs[tuple(sorted(inputs))] = (key, inputs, outputs)
    if not signature_list:
      probe.allocate_tensors()
      signature = meta_graph.signature_def[servable_lib.DEFAULT_SIGNATURE]
      signature.method_name = PREDICT
      for kind, details in (("inputs", probe.get_input_details()),
                            ("outputs", probe.get_output_details())):
        for detail in details:
          getattr(signature, kind)[detail["name"]].CopyFrom(_tensor_info(detail))
      inputs = {d["name"]: d["name"] for d in probe.get_input_details()}
      outputs = {d["name"]: d["name"] for d in probe.get_output_details()}
      runs[tuple(sorted(inputs))] = (None, inputs, outputs)
  except OSError as e:
    raise serving_errors.not_found(f"loading TF Lite model {path} failed: {e}") from e
  except (ValueError, RuntimeError) as e:
    raise serving_errors.invalid_argument(f"loading TF Lite model {path} failed: {e}") from e
  return TfLiteServable(name, version, export_dir, pool, meta_graph, runs)
