"""Tensors and tf.Examples in TensorFlow Serving's REST JSON formats.

Requests (see TF Serving's REST API reference):
- predict, row format: {"signature_name": ..., "instances": [...]}: one element per batch
  item, either the value of the single input or an object {input alias: value};
- predict, columnar format: {"inputs": value | {alias: value}} with the batch inside;
- classify/regress: {"signature_name": ..., "context": {feature: value},
  "examples": [{feature: value}, ...]}.
- A DT_STRING value is a JSON string (its UTF-8 bytes) or {"b64": "<base64>"}.

Responses: {"predictions": [...]} for the row format and {"outputs": ...} for the
columnar one, unwrapping a single output; outputs whose alias ends in "_bytes" are
written as {"b64": ...}; floats are written in their shortest form that reads back to
the same float32/float64 (2.5, 3.0, 1e-05), NaN and +/-Infinity as bare tokens.
Classify: {"results": [[[label, score], ...], ...]}; regress: {"results": [value, ...]}.
"""

import base64
import binascii
import json
import math
from typing import Any, Dict, List, Mapping, Tuple

import numpy as np
import tensorflow as tf

from tensorflow.core.example import example_pb2
from tensorflow.core.example import feature_pb2
from tensorflow.core.framework import types_pb2
from tensorflow.core.protobuf import meta_graph_pb2
from tensorflow_serving.apis import classification_pb2
from tensorflow_serving.apis import input_pb2
from tensorflow_serving.apis import regression_pb2
from tensorflow_serving.model_servers import serving_errors

ROW = "row"
COLUMNAR = "columnar"
_B64 = "b64"
_BYTES_SUFFIX = "_bytes"
_MAX_RANK = 64  # numpy's limit (TensorFlow's is higher).

# dtype -> (numpy type, largest integer it holds exactly, largest finite value).
_FLOAT_TYPES = {
    types_pb2.DT_HALF: (np.float16, 2**11, float(np.finfo(np.float16).max)),
    types_pb2.DT_BFLOAT16: (tf.bfloat16.as_numpy_dtype, 2**8, float(tf.bfloat16.max)),
    types_pb2.DT_FLOAT: (np.float32, 2**24, float(np.finfo(np.float32).max)),
    types_pb2.DT_DOUBLE: (np.float64, 2**53, float(np.finfo(np.float64).max)),
}
_INT_TYPES = {
    types_pb2.DT_INT8: np.int8,
    types_pb2.DT_INT16: np.int16,
    types_pb2.DT_INT32: np.int32,
    types_pb2.DT_INT64: np.int64,
    types_pb2.DT_UINT8: np.uint8,
    types_pb2.DT_UINT16: np.uint16,
    types_pb2.DT_UINT32: np.uint32,
    types_pb2.DT_UINT64: np.uint64,
}


def _error(message: str) -> serving_errors.ServingError:
  return serving_errors.invalid_argument(message)


def _short(value: Any) -> str:
  text = json.dumps(value)
  return text if len(text) <= 100 else text[:97] + "..."


def _json_type(value: Any) -> str:
  if value is None:
    return "Null"
  if isinstance(value, bool):
    return "Bool"
  if isinstance(value, (int, float)):
    return "Number"
  if isinstance(value, str):
    return "String"
  if isinstance(value, list):
    return "Array"
  return "Object"


def is_b64_object(value: Any) -> bool:
  return isinstance(value, dict) and len(value) == 1 and isinstance(value.get(_B64), str)


def _decode_b64(value: Dict[str, str]) -> bytes:
  try:
    return base64.b64decode(value[_B64], validate=True)
  except (binascii.Error, ValueError) as e:
    raise _error(f"JSON Value: {_short(value)} is not valid base64: {e}") from e


def parse_request(body: bytes) -> Dict[str, Any]:
  """Parses a request body that must be a JSON object."""
  if not body:
    raise _error("JSON Parse error: The document is empty")
  try:
    document = json.loads(body)
  except (UnicodeDecodeError, json.JSONDecodeError) as e:
    raise _error(f"JSON Parse error: {e}") from e
  except RecursionError as e:
    raise _error("JSON Parse error: the document is nested too deeply") from e
  if not isinstance(document, dict):
    raise _error(f"JSON Value: {_short(document)} Is not object")
  return document


def signature_name(document: Mapping[str, Any]) -> str:
  name = document.get("signature_name", "")
  if not isinstance(name, str):
    raise _error(f"'signature_name' must be a string, got {_short(name)}")
  return name


# --------------------------------------------------------------- JSON -> numpy


def _scalar(value: Any, dtype: int, dtype_name: str) -> Any:
  """One JSON leaf as a Python value of `dtype`; raises on a mismatch."""
  mismatch = _error(f"JSON Value: {_short(value)} Type: {_json_type(value)} is not of expected "
                    f"type: {dtype_name}")
  if dtype == types_pb2.DT_STRING:
    if isinstance(value, str):
      return value.encode("utf-8")
    if is_b64_object(value):
      return _decode_b64(value)
    raise mismatch
  if dtype == types_pb2.DT_BOOL:
    if isinstance(value, bool):
      return value
    raise mismatch
  if isinstance(value, bool) or not isinstance(value, (int, float)):
    raise mismatch
  if dtype in _FLOAT_TYPES:
    _, exact_int_limit, largest = _FLOAT_TYPES[dtype]
    if (abs(value) > exact_int_limit if isinstance(value, int)
        else math.isfinite(value) and abs(value) > largest):
      raise _error(f"Cannot convert JSON value: {value} to {dtype_name} without loss of precision.")
    return value
  if dtype in _INT_TYPES:
    if not isinstance(value, int):
      raise mismatch
    info = np.iinfo(_INT_TYPES[dtype])
    if not info.min <= value <= info.max:
      raise _error(f"JSON Value: {value} is out of range for type: {dtype_name}")
    return value
  raise serving_errors.unimplemented(
      f"Conversion of JSON Value: {_short(value)} to type: {dtype_name} is not supported")


def _shape_of(value: Any) -> List[int]:
  shape = []
  while isinstance(value, list):
    shape.append(len(value))
    if not value:
      break
    value = value[0]
  return shape


def _flatten(value: Any, level: int, shape: List[int], out: List[Any], dtype: int,
             dtype_name: str) -> None:
  if not isinstance(value, list):
    if level != len(shape):
      raise _error(f"JSON Value: {_short(value)} found at incorrect level: {level + 1} in the "
                   f"JSON DOM. Expected at level: {len(shape)}")
    out.append(_scalar(value, dtype, dtype_name))
    return
  if level >= len(shape):
    raise _error(f"Encountered list at unexpected level: {level} expected < {len(shape)}")
  if len(value) != shape[level]:
    raise _error(f"Encountered list at unexpected size: {len(value)} at level: {level} "
                 f"expected size: {shape[level]}")
  for item in value:
    _flatten(item, level + 1, shape, out, dtype, dtype_name)


def tensor_from_json(value: Any, dtype: int) -> np.ndarray:
  """A dense tensor of `dtype` from nested JSON lists; every row must be equally long."""
  dtype_name = types_pb2.DataType.Name(dtype)[3:].lower() if dtype in types_pb2.DataType.values() else str(dtype)
  shape = _shape_of(value)
  if len(shape) > _MAX_RANK:
    raise _error(f"a tensor of rank {len(shape)} is nested too deeply; at most {_MAX_RANK} "
                 "dimensions are supported")
  flat: List[Any] = []
  _flatten(value, 0, shape, flat, dtype, dtype_name)
  if dtype == types_pb2.DT_STRING:
    array = np.empty(len(flat), dtype=object)
    array[:] = flat
  elif dtype == types_pb2.DT_BOOL:
    array = np.array(flat, dtype=np.bool_)
  elif dtype in _FLOAT_TYPES:
    array = np.array(flat, dtype=_FLOAT_TYPES[dtype][0])
  else:
    array = np.array(flat, dtype=_INT_TYPES[dtype])
  return array.reshape(shape)


def _is_named_object(value: Any) -> bool:
  return isinstance(value, dict) and not is_b64_object(value)


def _instances(instances: List[Any], inputs: Mapping[str, meta_graph_pb2.TensorInfo]) -> Dict[str, np.ndarray]:
  named = _is_named_object(instances[0])
  if not named and len(inputs) > 1:
    raise _error("instances is a plain list, but expecting list of objects as multiple input "
                 f"tensors required as per tensorinfo_map: {', '.join(sorted(inputs))}")
  items: Dict[str, List[np.ndarray]] = {name: [] for name in inputs}
  for index, element in enumerate(instances):
    if named != _is_named_object(element):
      expected = "object" if named else "value/list"
      raise _error(f"Expecting {expected} but got {_json_type(element).lower()} at item {index} "
                   "of input list")
    entries = element.items() if named else [(next(iter(inputs)), element)]
    if named and set(element) != set(inputs):
      raise _error(f"Failed to process element: {index} of 'instances' list. JSON object: "
                   f"{_short(element)} keys must be equal to: {','.join(sorted(inputs))}")
    for name, value in entries:
      try:
        tensor = tensor_from_json(value, inputs[name].dtype)
      except serving_errors.ServingError as e:
        key = f" key: {name}" if named else ""
        raise serving_errors.ServingError(
            e.code, f"Failed to process element: {index}{key} of 'instances' list. Error: "
            f"{e.message}") from e
      if items[name] and items[name][0].shape != tensor.shape:
        raise _error(f"Expecting shape {list(items[name][0].shape)} but got: {list(tensor.shape)} "
                     f"for input '{name}' at item {index} of 'instances' list")
      items[name].append(tensor)
  return {name: np.stack(tensors) for name, tensors in items.items()}


def _columns(value: Any, inputs: Mapping[str, meta_graph_pb2.TensorInfo]) -> Dict[str, np.ndarray]:
  if not _is_named_object(value):
    if len(inputs) > 1:
      raise _error("inputs is a plain value/list, but expecting an object as multiple input "
                   f"tensors required as per tensorinfo_map: {', '.join(sorted(inputs))}")
    name = next(iter(inputs))
    return {name: tensor_from_json(value, inputs[name].dtype)}
  for name in inputs:
    if name not in value:
      raise _error(f"Missing named input: {name} in 'inputs' object.")
  extra = sorted(set(value) - set(inputs))
  if extra:
    raise _error(f"'inputs' object has unknown input(s) {extra}; the signature's inputs are "
                 f"{sorted(inputs)}")
  return {name: tensor_from_json(value[name], info.dtype) for name, info in inputs.items()}


def predict_inputs(document: Mapping[str, Any],
                   signature: meta_graph_pb2.SignatureDef) -> Tuple[Dict[str, np.ndarray], str]:
  """The request's input arrays and its format (ROW or COLUMNAR)."""
  try:
    return _predict_inputs(document, signature)
  except RecursionError as e:
    raise _error("the request's lists are nested too deeply to be a tensor") from e


def _predict_inputs(document: Mapping[str, Any],
                    signature: meta_graph_pb2.SignatureDef) -> Tuple[Dict[str, np.ndarray], str]:
  if not signature.inputs:
    raise _error("the signature has no inputs")
  has_instances, has_inputs = "instances" in document, "inputs" in document
  if has_instances and has_inputs:
    raise _error("Not formatted correctly expecting only one of 'inputs' or 'instances' keys "
                 "to exist")
  if has_instances:
    instances = document["instances"]
    if not isinstance(instances, list):
      raise _error("Excepting 'instances' to be an list/array")
    if not instances:
      raise _error("No values in 'instances' array")
    return _instances(instances, signature.inputs), ROW
  if has_inputs:
    return _columns(document["inputs"], signature.inputs), COLUMNAR
  raise _error("Missing 'inputs' or 'instances' key")


def _feature(name: str, content: Any) -> feature_pb2.Feature:
  feature = feature_pb2.Feature()
  kind = None

  def require(wanted: str) -> None:
    nonlocal kind
    if kind not in (None, wanted):
      raise _error(f"Unexpected element type in feature: {name} expecting type: {kind}")
    kind = wanted

  for value in content if isinstance(content, list) else [content]:
    if isinstance(value, bool):
      require("int64")
      feature.int64_list.value.append(int(value))
    elif isinstance(value, int):
      require("int64")
      if not -2**63 <= value < 2**63:
        raise _error(f"Feature: {name} has element {value} outside int64; only int64 is supported.")
      feature.int64_list.value.append(value)
    elif isinstance(value, float):
      require("float")
      if math.isfinite(value) and abs(value) > np.finfo(np.float32).max:
        raise _error(f"Cannot convert JSON value: {value} to float without loss of precision.")
      feature.float_list.value.append(value)
    elif isinstance(value, str):
      require("bytes")
      feature.bytes_list.value.append(value.encode("utf-8"))
    elif is_b64_object(value):
      require("bytes")
      feature.bytes_list.value.append(_decode_b64(value))
    else:
      raise _error(f"Feature: {name} has element with unexpected JSON type: {_json_type(value)}")
  return feature


def _example(value: Any, what: str) -> example_pb2.Example:
  if not isinstance(value, dict):
    raise _error(f"{what} must be JSON object but got JSON {_json_type(value)}")
  example = example_pb2.Example()
  for name, content in value.items():
    example.features.feature[name].CopyFrom(_feature(name, content))
  return example


def examples_input(document: Mapping[str, Any]) -> input_pb2.Input:
  """The classify/regress request's examples (and context) as an Input proto."""
  model_input = input_pb2.Input()
  if "examples" not in document:
    raise _error("key 'examples' is expected and was not found")
  examples = document["examples"]
  if not isinstance(examples, list):
    raise _error("Expecting 'examples' value to be an list/array")
  if not examples:
    raise _error("'examples' value is an empty array")
  if "context" in document:
    target = model_input.example_list_with_context
    target.context.CopyFrom(_example(document["context"], "context"))
  else:
    target = model_input.example_list
  for index, value in enumerate(examples):
    target.examples.add().CopyFrom(_example(value, f"Example {index}"))
  return model_input


# --------------------------------------------------------------- numpy -> JSON


def format_float(value: float, single_precision: bool) -> str:
  """Shortest %g form that reads back to the same value; whole numbers get '.0'."""
  if math.isnan(value):
    return "NaN"
  if math.isinf(value):
    return "Infinity" if value > 0 else "-Infinity"
  text = "%g" % value
  same = ((np.float32(float(text)) == np.float32(value)) if single_precision
          else float(text) == value)
  if not same:
    text = "%.9g" % value if single_precision else "%.17g" % value
  if "." not in text and "e" not in text:
    text += ".0"
  return text


def _string(value: bytes, as_bytes: bool) -> str:
  if not as_bytes:
    try:
      return json.dumps(value.decode("utf-8"), ensure_ascii=False)
    except UnicodeDecodeError:
      pass  # Not text: base64 keeps the bytes intact.
  return '{"b64": "%s"}' % base64.b64encode(value).decode("ascii")


def _leaf_writer(array: np.ndarray, alias: str):
  kind = array.dtype.kind
  if kind == "f":
    single = array.dtype.itemsize <= 4
    return lambda v: format_float(float(v), single)
  if kind in "iu":
    return lambda v: str(int(v))
  if kind == "b":
    return lambda v: "true" if v else "false"
  if kind in "OSU":
    as_bytes = alias.endswith(_BYTES_SUFFIX)
    return lambda v: _string(v if isinstance(v, bytes) else str(v).encode("utf-8"), as_bytes)
  raise serving_errors.unimplemented(
      f"output '{alias}' has dtype {array.dtype}, which has no JSON form")


def _writer(array: np.ndarray, alias: str):
  """A function writing `array` or any slice of it as nested JSON lists."""
  leaf = _leaf_writer(array, alias)

  def nested(part: Any) -> str:
    if not isinstance(part, np.ndarray):
      return leaf(part)  # An element of an object array.
    if part.ndim == 0:
      return leaf(part[()])
    if part.ndim == 1:
      return "[" + ", ".join(leaf(v) for v in part) + "]"
    return "[" + ", ".join(nested(sub) for sub in part) + "]"

  return nested


def _write(array: np.ndarray, alias: str) -> str:
  return _writer(array, alias)(array)


def _write_items(array: np.ndarray, alias: str) -> List[str]:
  """The JSON of each batch item (slice along dimension 0)."""
  write = _writer(array, alias)
  return [write(array[i]) for i in range(array.shape[0])]


def predict_response(outputs: Mapping[str, np.ndarray], request_format: str) -> str:
  if not outputs:
    raise _error("Cannot convert empty tensor map to JSON")
  names = sorted(outputs)
  if request_format == COLUMNAR:
    if len(names) == 1:
      return '{"outputs": ' + _write(outputs[names[0]], names[0]) + "}"
    body = ", ".join(f"{json.dumps(n)}: {_write(outputs[n], n)}" for n in names)
    return '{"outputs": {' + body + "}}"
  batch = None
  for name in names:
    if outputs[name].ndim == 0:
      raise _error(f"Tensor name: {name} has no shape information; a scalar output needs the "
                   "columnar ('inputs') request format")
    if batch is not None and outputs[name].shape[0] != batch:
      raise _error(f"Tensor name: {name} has inconsistent batch size: {outputs[name].shape[0]} "
                   f"expecting: {batch}; use the columnar ('inputs') request format")
    batch = outputs[name].shape[0]
  if len(names) == 1:
    items = _write_items(outputs[names[0]], names[0])
  else:
    columns = {n: _write_items(outputs[n], n) for n in names}
    items = ["{" + ", ".join(f"{json.dumps(n)}: {columns[n][i]}" for n in names) + "}"
             for i in range(batch)]
  return '{"predictions": [' + ", ".join(items) + "]}"


def classification_response(result: classification_pb2.ClassificationResult) -> str:
  rows = []
  for classifications in result.classifications:
    pairs = [f"[{json.dumps(c.label, ensure_ascii=False)}, {format_float(c.score, True)}]"
             for c in classifications.classes]
    rows.append("[" + ", ".join(pairs) + "]")
  return '{"results": [' + ", ".join(rows) + "]}"


def regression_response(result: regression_pb2.RegressionResult) -> str:
  values = [format_float(r.value, True) for r in result.regressions]
  return '{"results": [' + ", ".join(values) + "]}"


def error_response(message: str) -> str:
  return json.dumps({"error": message}, ensure_ascii=False)
