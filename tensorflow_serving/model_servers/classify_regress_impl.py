"""Classify, Regress and MultiInference on serialized tf.Examples, as TensorFlow Serving does.

A classification signature (method tensorflow/serving/classify) takes one string input
"inputs" (the serialized Examples) and has outputs "classes" (string) and/or "scores"
(float), each [batch_size, num_classes]. A regression signature (tensorflow/serving/regress)
takes "inputs" and has one float output "outputs", [batch_size] or [batch_size, 1].
MultiInference runs several such signatures of one model version in one session run.

As in TensorFlow Serving, the signature's declared method name is checked only with
--enable_signature_method_name_check: TF2 exports (tf.saved_model.save, Keras) declare
every signature tensorflow/serving/predict, so by default any signature of the right
shape serves Classify and Regress. The setting is process-wide, like TF Serving's.
"""

from typing import List, Sequence, Tuple, Union

import numpy as np
import tensorflow as tf

from tensorflow.core.framework import types_pb2
from tensorflow.core.protobuf import meta_graph_pb2
from tensorflow_serving.apis import classification_pb2
from tensorflow_serving.apis import regression_pb2
from tensorflow_serving.model_servers import predict_impl
from tensorflow_serving.model_servers import request_deadline
from tensorflow_serving.model_servers import servable as servable_lib
from tensorflow_serving.model_servers import serving_errors

CLASSIFY = tf.saved_model.CLASSIFY_METHOD_NAME
REGRESS = tf.saved_model.REGRESS_METHOD_NAME
_INPUTS = tf.saved_model.CLASSIFY_INPUTS
_CLASSES = tf.saved_model.CLASSIFY_OUTPUT_CLASSES
_SCORES = tf.saved_model.CLASSIFY_OUTPUT_SCORES
_OUTPUTS = tf.saved_model.REGRESS_OUTPUTS

Result = Union[classification_pb2.ClassificationResult, regression_pb2.RegressionResult]

_check_method_name = False


def set_method_name_check(enabled: bool) -> None:
  """--enable_signature_method_name_check; set once at start-up."""
  global _check_method_name
  _check_method_name = enabled


def _check_signature(key: str, signature: meta_graph_pb2.SignatureDef, method: str) -> str:
  """Returns the input tensor's name after checking the signature's shape."""
  kind = "classification" if method == CLASSIFY else "regression"
  if _check_method_name and signature.method_name != method:
    raise serving_errors.invalid_argument(
        f"Expected {kind} signature method_name to be {method}. Was: "
        f"{signature.method_name or '(empty)'} (signature \"{key}\"; the check is on "
        "because of --enable_signature_method_name_check)")
  if list(signature.inputs) != [_INPUTS]:
    raise serving_errors.invalid_argument(
        f"{kind} signature \"{key}\" must have exactly one input named '{_INPUTS}'; it has "
        f"{sorted(signature.inputs)}")
  if method == CLASSIFY:
    if _CLASSES not in signature.outputs and _SCORES not in signature.outputs:
      raise serving_errors.invalid_argument(
          f"classification signature \"{key}\" has neither a '{_CLASSES}' nor a '{_SCORES}' output")
  elif _OUTPUTS not in signature.outputs:
    raise serving_errors.invalid_argument(
        f"regression signature \"{key}\" has no '{_OUTPUTS}' output")
  return predict_impl.dense_tensor_name(_INPUTS, signature.inputs[_INPUTS], "input")


def _fetches(signature: meta_graph_pb2.SignatureDef, method: str) -> List[Tuple[str, str]]:
  aliases = [_CLASSES, _SCORES] if method == CLASSIFY else [_OUTPUTS]
  return [(a, predict_impl.dense_tensor_name(a, signature.outputs[a], "output"))
          for a in aliases if a in signature.outputs]


def _classification_result(key: str, batch: int, outputs: dict) -> classification_pb2.ClassificationResult:
  classes, scores = outputs.get(_CLASSES), outputs.get(_SCORES)
  for alias, value in ((_CLASSES, classes), (_SCORES, scores)):
    if value is not None and (value.ndim != 2 or value.shape[0] != batch):
      raise serving_errors.invalid_argument(
          f"Expected {alias} tensor of shape [batch_size num_classes] with batch_size {batch} "
          f"from signature \"{key}\", got shape {list(value.shape)}")
  if classes is not None and scores is not None and classes.shape != scores.shape:
    raise serving_errors.invalid_argument(
        f"signature \"{key}\": classes shape {list(classes.shape)} differs from scores shape "
        f"{list(scores.shape)}")
  num_classes = (scores if scores is not None else classes).shape[1]
  result = classification_pb2.ClassificationResult()
  for row in range(batch):
    classifications = result.classifications.add()
    for column in range(num_classes):
      entry = classifications.classes.add()
      if classes is not None:
        label = classes[row, column]
        entry.label = label.decode("utf-8", "replace") if isinstance(label, bytes) else str(label)
      if scores is not None:
        entry.score = float(scores[row, column])
  return result


def _regression_result(key: str, batch: int, outputs: dict) -> regression_pb2.RegressionResult:
  values = outputs[_OUTPUTS]
  if not (values.ndim == 1 or (values.ndim == 2 and values.shape[1] == 1)) or values.shape[0] != batch:
    raise serving_errors.invalid_argument(
        f"Expected output tensor of shape [batch_size] or [batch_size, 1] with batch_size "
        f"{batch} from signature \"{key}\", got shape {list(values.shape)}")
  result = regression_pb2.RegressionResult()
  for value in values.reshape(-1):
    result.regressions.add(value=float(value))
  return result


def run_tasks(servable: servable_lib.Servable, tasks: Sequence[Tuple[str, str]],
              examples: Sequence[bytes], deadline: request_deadline.Deadline) -> List[Result]:
  """Runs (signature name, method) tasks on one batch of examples in one session run."""
  keys = [name or servable_lib.DEFAULT_SIGNATURE for name, _ in tasks]
  if len(set(keys)) != len(keys):
    duplicate = next(k for k in keys if keys.count(k) > 1)
    raise serving_errors.invalid_argument(f"Duplicate evaluation of signature: {duplicate}")
  input_name = None
  plans = []
  for key, (_, method) in zip(keys, tasks):
    if method not in (CLASSIFY, REGRESS):
      raise serving_errors.unimplemented(
          f"Unsupported signature method_name: {method or '(empty)'}; use {CLASSIFY} or {REGRESS}")
    signature = servable.signature(key)
    name = _check_signature(key, signature, method)
    if signature.inputs[_INPUTS].dtype != types_pb2.DT_STRING:
      raise serving_errors.invalid_argument(
          f"signature \"{key}\" takes {predict_impl.dtype_name(signature.inputs[_INPUTS].dtype)} "
          "input, not serialized tf.Examples (DT_STRING)")
    if input_name is not None and name != input_name:
      raise serving_errors.invalid_argument("Input tensor must be the same for all Signatures.")
    input_name = name
    plans.append((key, method, _fetches(signature, method)))

  fetch_names = list(dict.fromkeys(n for _, _, fetches in plans for _, n in fetches))
  feed = np.array(list(examples), dtype=object)
  values = dict(zip(fetch_names, servable.run({input_name: feed}, fetch_names, deadline)))
  results: List[Result] = []
  for key, method, fetches in plans:
    outputs = {alias: np.asarray(values[name]) for alias, name in fetches}
    if method == CLASSIFY:
      results.append(_classification_result(key, len(examples), outputs))
    else:
      results.append(_regression_result(key, len(examples), outputs))
  return results


def classify(servable, signature_name, examples, deadline):
  return run_tasks(servable, [(signature_name, CLASSIFY)], examples, deadline)[0]


def regress(servable, signature_name, examples, deadline):
  return run_tasks(servable, [(signature_name, REGRESS)], examples, deadline)[0]
