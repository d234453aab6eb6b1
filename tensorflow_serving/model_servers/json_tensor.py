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
import re
from typing import Any, Dict, List, Mapping, Optional, Tuple

import grpc

import numpy as np
import orjson
import tensorflow as tf

from tensorflow.core.example import example_pb2
from tensorflow.core.example import feature_pb2
from tensorflow.core.framework import types_pb2
from tensorflow.core.protobuf import meta_graph_pb2
from tensorflow_serving.apis import classification_pb2
from tensorflow_serving.apis import input_pb2
from tensorflow_serving.apis import regression_pb2
from tensorflow_serving.model_servers import serving_errors
from tensorflow_serving.model_servers import tensor_limits

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
  if isinstance(value, list) and len(value) > 8:
    value = value[:8]  # Enough to show; never serialise a huge value for a message.
  try:
    text = orjson.dumps(value).decode("utf-8")
  except TypeError:  # e.g. an integer beyond 64 bits
    text = json.dumps(value, default=str)
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


def _finite_float(text: str) -> float:
  value = float(text)
  if math.isinf(value):
    raise ValueError(f"Number {text[:40]} is too big to be stored in a double")
  return value


def _number_from_int_literal(text: str):
  # orjson's rule, kept on the fallback path: integers beyond 64 bits read as doubles.
  if len(text) > 20:
    return _finite_float(text)
  value = int(text)
  return value if -2**63 <= value < 2**64 else float(value)


def _loads_with_nan_and_infinity(body: bytes) -> Any:
  """The stdlib parser (still C), for bodies holding NaN/Infinity, which orjson refuses."""
  try:
    return json.loads(body.decode("utf-8"), parse_float=_finite_float,
                      parse_int=_number_from_int_literal)
  except UnicodeDecodeError as e:
    raise _error(f"JSON Parse error: Invalid encoding in string (not UTF-8) at offset: "
                 f"{e.start}") from e
  except json.JSONDecodeError as e:
    raise _error(f"JSON Parse error: {e.msg} at offset: {e.pos}") from e
  except (ValueError, RecursionError) as e:
    raise _error(f"JSON Parse error: {e}") from e


def parse_request(body: bytes) -> Dict[str, Any]:
  """Parses a request body that must be a JSON object (C speed: orjson)."""
  if not body:
    raise _error("JSON Parse error: The document is empty")
  try:
    document = orjson.loads(body)
  except orjson.JSONDecodeError as e:
    # TF Serving's parser takes NaN, Infinity and -Infinity; orjson does not.
    if b"NaN" in body or b"Infinity" in body:
      document = _loads_with_nan_and_infinity(body)
    else:
      raise _error(f"JSON Parse error: {e.msg} at offset: {e.pos}") from e
  if not isinstance(document, dict):
    raise _error(f"JSON Value: {_short(document)} Is not object")
  return document


def signature_name(document: Mapping[str, Any]) -> str:
  name = document.get("signature_name", "")
  if not isinstance(name, str):
    raise _error(f"'signature_name' must be a string, got {_short(name)}")
  return name


# --------------------------------------------------------------- JSON -> numpy


def _mismatch(value: Any, dtype_name: str) -> serving_errors.ServingError:
  return _error(f"JSON Value: {_short(value)} Type: {_json_type(value)} is not of expected "
                f"type: {dtype_name}")


def _scalar(value: Any, dtype: int, dtype_name: str) -> Any:
  """One JSON leaf as a Python value of `dtype`; raises on a mismatch."""
  if dtype == types_pb2.DT_STRING:
    if isinstance(value, str):
      return value.encode("utf-8")
    if is_b64_object(value):
      return _decode_b64(value)
    raise _mismatch(value, dtype_name)
  if dtype == types_pb2.DT_BOOL:
    if isinstance(value, bool):
      return value
    raise _mismatch(value, dtype_name)
  if isinstance(value, bool) or not isinstance(value, (int, float)):
    raise _mismatch(value, dtype_name)
  if dtype in _FLOAT_TYPES:
    _, exact_int_limit, largest = _FLOAT_TYPES[dtype]
    if (abs(value) > exact_int_limit if isinstance(value, int)
        else math.isfinite(value) and abs(value) > largest):
      raise _error(f"Cannot convert JSON value: {value} to {dtype_name} without loss of precision.")
    return value
  if dtype in _INT_TYPES:
    if not isinstance(value, int):
      raise _mismatch(value, dtype_name)
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


def _dtype_name(dtype: int) -> str:
  return (types_pb2.DataType.Name(dtype)[3:].lower() if dtype in types_pb2.DataType.values()
          else str(dtype))


def _numpy_type(dtype: int):
  if dtype == types_pb2.DT_BOOL:
    return np.bool_
  if dtype in _FLOAT_TYPES:
    return _FLOAT_TYPES[dtype][0]
  return _INT_TYPES.get(dtype)


def _holds_bools(value: Any) -> bool:
  # numpy reads true/false among numbers as 1/0; TensorFlow Serving refuses them.
  types = np.frompyfunc(type, 1, 1)(np.array(value, dtype=object))
  return bool in set(np.asarray(types).reshape(-1).tolist())


def _numbers_at_c_speed(value: Any, dtype: int, may_hold_bools: bool) -> Optional[np.ndarray]:
  """`value` as a numeric/bool array of `dtype` with numpy's C loops, or None.

  None means the value is not plainly valid (ragged, wrong types, out of range); the
  element-by-element path then finds the exact problem for the error message.
  """
  target = _numpy_type(dtype)
  if target is None:
    return None
  try:
    raw = np.array(value)
  except (ValueError, TypeError, OverflowError):
    return None
  kind = raw.dtype.kind
  if dtype == types_pb2.DT_BOOL:
    return raw if kind == "b" else None
  if kind not in "iuf" or (kind == "f" and dtype in _INT_TYPES):
    return None
  if may_hold_bools and raw.size and _holds_bools(value):
    return None
  if raw.size:
    if dtype in _INT_TYPES:
      info = np.iinfo(target)
      if raw.min() < info.min or raw.max() > info.max:
        return None
    elif kind in "iu":
      exact = _FLOAT_TYPES[dtype][1]
      if raw.min() < -exact or raw.max() > exact:
        return None
    elif not max(-raw.min(), raw.max()) <= _FLOAT_TYPES[dtype][2]:
      # Something is too large, infinite or NaN (all rare): only the first refuses.
      with np.errstate(invalid="ignore"):
        magnitude = np.abs(raw)
        if ((magnitude > _FLOAT_TYPES[dtype][2]) & np.isfinite(magnitude)).any():
          return None
  return raw


# Beyond this many elements, a value that numpy cannot read as a dense tensor is
# refused without an element-by-element search for the first bad element.
_MAX_ELEMENTS_SEARCHED = 1 << 20


def tensor_from_json(value: Any, dtype: int, alias: str = "",
                     budget: Optional[tensor_limits.Budget] = None,
                     may_hold_bools: bool = True) -> np.ndarray:
  """A dense tensor of `dtype` from nested JSON lists; every row must be equally long.

  Numbers and bools convert with numpy's C loops; strings, and values with a problem
  to report, go element by element. `budget` is charged before the tensor is built.
  """
  dtype_name = _dtype_name(dtype)
  raw = _numbers_at_c_speed(value, dtype, may_hold_bools)
  if raw is not None:
    if budget is not None:
      budget.charge(alias, raw.shape, dtype, raw.size * np.dtype(_numpy_type(dtype)).itemsize)
    return raw.astype(_numpy_type(dtype), copy=False)
  shape = _shape_of(value)
  if len(shape) > _MAX_RANK:
    raise _error(f"a tensor of rank {len(shape)} is nested too deeply; at most {_MAX_RANK} "
                 "dimensions are supported")
  declared = tensor_limits.element_count(alias, shape)
  if dtype != types_pb2.DT_STRING and declared > _MAX_ELEMENTS_SEARCHED:
    raise _error(f"the value of shape {shape} (from its first elements) is not a dense tensor "
                 f"of {dtype_name}: its lists differ in length or it holds values of another "
                 "type")
  flat: List[Any] = []
  _flatten(value, 0, shape, flat, dtype, dtype_name)
  if dtype == types_pb2.DT_STRING:
    if budget is not None:
      budget.charge(alias, shape, dtype, len(flat) * tensor_limits.STRING_ELEMENT_BYTES
                    + sum(len(v) for v in flat))
    array = np.empty(len(flat), dtype=object)
    array[:] = flat
    return array.reshape(shape)
  target = _numpy_type(dtype)
  if budget is not None:
    budget.charge(alias, shape, dtype, len(flat) * np.dtype(target).itemsize)
  return np.array(flat, dtype=target).reshape(shape)


def _is_named_object(value: Any) -> bool:
  return isinstance(value, dict) and not is_b64_object(value)


class _Decoder:
  """Decodes one request's tensors against its budget."""

  def __init__(self, budget: Optional[tensor_limits.Budget], may_hold_bools: bool):
    self.budget = budget
    self.may_hold_bools = may_hold_bools

  def tensor(self, value: Any, name: str, dtype: int) -> np.ndarray:
    return tensor_from_json(value, dtype, name, self.budget, self.may_hold_bools)

  def instances(self, instances: List[Any],
                inputs: Mapping[str, meta_graph_pb2.TensorInfo]) -> Dict[str, np.ndarray]:
    """The row format: all items at once when they are well-formed."""
    named = _is_named_object(instances[0])
    if not named and len(inputs) > 1:
      raise _error("instances is a plain list, but expecting list of objects as multiple "
                   f"input tensors required as per tensorinfo_map: {', '.join(sorted(inputs))}")
    names = set(inputs)
    try:
      if not named:
        # Objects among the items fail here and are found one by one below.
        name = next(iter(inputs))
        return {name: self.tensor(instances, name, inputs[name].dtype)}
      elif all(type(item) is dict and item.keys() == names for item in instances):
        return {name: self.tensor([item[name] for item in instances], name, info.dtype)
                for name, info in inputs.items()}
    except serving_errors.ServingError as e:
      if e.code != grpc.StatusCode.INVALID_ARGUMENT or len(instances) > _MAX_ELEMENTS_SEARCHED:
        raise
    return self._instances_one_by_one(instances, inputs, named)

  def _instances_one_by_one(self, instances: List[Any],
                            inputs: Mapping[str, meta_graph_pb2.TensorInfo],
                            named: bool) -> Dict[str, np.ndarray]:
    """Item by item, to say which item is wrong."""
    items: Dict[str, List[np.ndarray]] = {name: [] for name in inputs}
    for index, element in enumerate(instances):
      if named != _is_named_object(element):
        expected = "object" if named else "value/list"
        raise _error(f"Expecting {expected} but got {_json_type(element).lower()} at item "
                     f"{index} of input list")
      entries = element.items() if named else [(next(iter(inputs)), element)]
      if named and set(element) != set(inputs):
        raise _error(f"Failed to process element: {index} of 'instances' list. JSON object: "
                     f"{_short(element)} keys must be equal to: {','.join(sorted(inputs))}")
      for name, value in entries:
        try:
          tensor = self.tensor(value, name, inputs[name].dtype)
        except serving_errors.ServingError as e:
          key = f" key: {name}" if named else ""
          raise serving_errors.ServingError(
              e.code, f"Failed to process element: {index}{key} of 'instances' list. Error: "
              f"{e.message}") from e
        if items[name] and items[name][0].shape != tensor.shape:
          raise _error(f"Expecting shape {list(items[name][0].shape)} but got: "
                       f"{list(tensor.shape)} for input '{name}' at item {index} of "
                       "'instances' list")
        items[name].append(tensor)
    return {name: np.stack(tensors) for name, tensors in items.items()}

  def columns(self, value: Any,
              inputs: Mapping[str, meta_graph_pb2.TensorInfo]) -> Dict[str, np.ndarray]:
    if not _is_named_object(value):
      if len(inputs) > 1:
        raise _error("inputs is a plain value/list, but expecting an object as multiple input "
                     f"tensors required as per tensorinfo_map: {', '.join(sorted(inputs))}")
      name = next(iter(inputs))
      return {name: self.tensor(value, name, inputs[name].dtype)}
    for name in inputs:
      if name not in value:
        raise _error(f"Missing named input: {name} in 'inputs' object.")
    extra = sorted(set(value) - set(inputs))
    if extra:
      raise _error(f"'inputs' object has unknown input(s) {extra}; the signature's inputs are "
                   f"{sorted(inputs)}")
    return {name: self.tensor(value[name], name, info.dtype) for name, info in inputs.items()}


def predict_inputs(document: Mapping[str, Any], signature: meta_graph_pb2.SignatureDef,
                   budget: Optional[tensor_limits.Budget] = None,
                   may_hold_bools: bool = True) -> Tuple[Dict[str, np.ndarray], str]:
  """The request's input arrays and its format (ROW or COLUMNAR).

  `budget` limits the decoded bytes; `may_hold_bools=False` (the body has no
  true/false token) skips the search for bools among numbers.
  """
  try:
    return _predict_inputs(document, signature, _Decoder(budget, may_hold_bools))
  except RecursionError as e:
    raise _error("the request's lists are nested too deeply to be a tensor") from e


def _predict_inputs(document: Mapping[str, Any], signature: meta_graph_pb2.SignatureDef,
                    decoder: _Decoder) -> Tuple[Dict[str, np.ndarray], str]:
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
    return decoder.instances(instances, signature.inputs), ROW
  if has_inputs:
    return decoder.columns(document["inputs"], signature.inputs), COLUMNAR
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


def _format_each(template: str, values: np.ndarray) -> np.ndarray:
  """`template % value` for every value, in one %-format call (a C loop)."""
  if not values.size:
    return np.empty(0, dtype=object)
  as_list = values.tolist()
  return np.array((",".join([template] * len(as_list)) % tuple(as_list)).split(","),
                  dtype=object)


# Powers of ten that float64 holds exactly: scaling by one of them rounds once, as a
# decimal-to-double conversion does.
_EXACT_POWERS_OF_TEN = np.array([float(10**i) for i in range(23)])
# How close to a rounding tie a scaled value may come before it is formatted by
# Python instead (the float64 scaling is off by at most ~1e-7 of a unit there).
_TIE_MARGIN = 1e-6
# Bytes of one element in the character matrix: the widest %.9g layout has 31
# columns (most of them empty for any one value); the longest token
# ("-1.2345678901234567e-308", from %.17g) has 24.
_TOKEN_WIDTH = 32


def _scaled(magnitude: np.ndarray, exponent: np.ndarray) -> np.ndarray:
  """magnitude * 10**-exponent with one rounding (|exponent| <= 22)."""
  power = _EXACT_POWERS_OF_TEN[np.abs(exponent)]
  up = exponent < 0
  scaled = np.divide(magnitude, power, where=~up, out=np.empty_like(magnitude))
  return np.multiply(magnitude, power, where=up, out=scaled)


def _significand(magnitude: np.ndarray, digits: int):
  """(m, X, exact): magnitude rounded to `digits` significant digits is m * 10**(X-digits+1).

  `exact` is False where float64 cannot decide the rounding for sure (near a tie, or
  a power of ten beyond 1e22); those elements are formatted one by one.
  """
  with np.errstate(all="ignore"):
    exponent = np.floor(np.log10(np.where(magnitude > 0, magnitude, 1.0))).astype(np.int64)
  low, high = 10.0 ** (digits - 1), 10.0 ** digits
  fits = np.abs(exponent - (digits - 1)) <= 22
  scaled = _scaled(magnitude, np.where(fits, exponent - (digits - 1), 0))
  # log10 can be one off next to a power of ten.
  off = np.flatnonzero(fits & ((scaled < low) | (scaled >= high)))
  if off.size:
    exponent[off] += np.where(scaled[off] < low, -1, 1)
    fits[off] = np.abs(exponent[off] - (digits - 1)) <= 22
    scaled[off] = _scaled(magnitude[off], np.where(fits[off], exponent[off] - (digits - 1), 0))
  exact = fits & (scaled >= low) & (scaled < high)
  exact &= np.abs(scaled - np.floor(scaled) - 0.5) > _TIE_MARGIN
  significand = np.rint(scaled).astype(np.int64)
  carried = significand >= high  # 999999.7 -> 1e+06
  significand[carried] = int(low)
  exponent += carried
  exact &= np.abs(exponent - (digits - 1)) <= 22
  return significand, exponent, exact


def _decimal_value(significand: np.ndarray, exponent: np.ndarray, digits: int) -> np.ndarray:
  """The double nearest to significand * 10**(exponent-digits+1), as float() reads it."""
  return _scaled(significand.astype(np.float64), -np.clip(exponent - (digits - 1), -22, 22))


def _g_text(negative: np.ndarray, significand: np.ndarray, exponent: np.ndarray,
            precision: np.ndarray) -> np.ndarray:
  """The '%.<precision>g' text of each value, plus '.0' on whole numbers, as bytes.

  Each value is significand (9 digits, trailing zeros allowed) * 10**(exponent-8),
  with precision 6 or 9. Column i of the (_TOKEN_WIDTH, size) result holds element
  i's characters, with zero bytes where its layout has nothing; dropping the zeros
  leaves the text. Zero is significand 0, exponent 0.
  """
  digits = 9
  count = significand.size
  text = np.zeros((_TOKEN_WIDTH, count), np.uint8)
  slot = iter(range(_TOKEN_WIDTH))

  def put(condition: np.ndarray, character) -> None:
    row = text[next(slot)]
    if isinstance(character, str):
      np.multiply(condition, np.uint8(ord(character)), out=row, casting="unsafe")
    else:
      np.multiply(condition, character, out=row, casting="unsafe")

  places = [None] * digits
  rest = significand.astype(np.uint32)
  for j in range(digits - 1, -1, -1):
    places[j] = (rest % 10).astype(np.uint8)
    rest //= 10
  used = np.ones(count, np.int16)  # Significant digits without trailing zeros.
  for j in range(1, digits):
    used[places[j] != 0] = j + 1
  exponent = exponent.astype(np.int16)
  fixed = (exponent >= -4) & (exponent < precision)
  scientific = ~fixed
  small = fixed & (exponent < 0)
  large = fixed & (exponent >= 0)
  put(negative, "-")
  put(small, "0")
  put(small, ".")
  for zeros in range(1, 4):
    put(small & (exponent <= -1 - zeros), "0")
  for j in range(digits):
    shown = (used > j) | (large & (exponent >= j))
    places[j] += ord("0")
    put(shown, places[j])
    if j == 0:
      point = scientific & (used > 1)
      point |= large & (exponent == 0) & (used > 1)
    else:
      point = large & (exponent == j) & (used > j + 1)
    put(point, ".")
  whole = large & (used <= exponent + 1)
  put(whole, ".")
  put(whole, "0")
  put(scientific, "e")
  put(scientific, np.where(exponent < 0, np.uint8(ord("-")), np.uint8(ord("+"))))
  power = np.abs(exponent)
  put(scientific & (power >= 100), (power // 100 % 10 + ord("0")).astype(np.uint8))
  put(scientific, (power // 10 % 10 + ord("0")).astype(np.uint8))
  put(scientific, (power % 10 + ord("0")).astype(np.uint8))
  return text


def _python_text(tokens: List[str]) -> np.ndarray:
  """`tokens` laid out as _g_text lays out its text."""
  return np.array([t.encode("ascii") for t in tokens],
                  dtype=f"S{_TOKEN_WIDTH}").view(np.uint8).reshape(-1, _TOKEN_WIDTH).T


def _float_text(flat: np.ndarray) -> np.ndarray:
  # Non-finite and out-of-range elements go through the arithmetic too, then are redone.
  with np.errstate(all="ignore"):
    return _float_text_unchecked(flat)


def _float_text_unchecked(flat: np.ndarray) -> np.ndarray:
  """format_float of every element of `flat`, laid out as _g_text lays out its text.

  The %.6g form is derived with numpy integer arithmetic, and whether it reads back
  is decided as float() would: the decimal is its significand scaled by an exact power
  of ten (one rounding, as a correctly rounded conversion), then narrowed to float32
  for single precision. Elements float64 cannot settle (near a rounding tie, or
  beyond 1e22) and double-precision elements needing 17 digits are formatted by Python.
  """
  single = flat.dtype.itemsize <= 4
  values = flat.astype(np.float64)
  finite = np.isfinite(values)
  magnitude = np.where(finite, np.abs(values), 0.0)
  significand, exponent, exact = _significand(magnitude, 6)
  zero = magnitude == 0
  significand[zero], exponent[zero], exact[zero] = 0, 0, True
  read_back = _decimal_value(significand, exponent, 6)
  if single:
    short = read_back.astype(np.float32) == magnitude.astype(np.float32)
  else:
    short = read_back == magnitude
  short &= exact
  significand *= 1000
  precision = np.full(values.size, 6, np.int16)
  by_python = finite & ~exact
  precise = np.flatnonzero(finite & exact & ~short)
  if single and precise.size:
    nine, nine_exponent, nine_exact = _significand(magnitude[precise], 9)
    significand[precise] = nine
    exponent[precise] = nine_exponent
    precision[precise] = 9
    by_python[precise[~nine_exact]] = True
  text = _g_text(np.signbit(values), significand, exponent, precision)
  if not single and precise.size:
    tokens = _format_each("%.17g", values[precise]).tolist()
    text[:, precise] = _python_text([t if "." in t or "e" in t else t + ".0" for t in tokens])
  rows = np.flatnonzero(by_python | ~finite)
  if rows.size:
    text[:, rows] = _python_text([format_float(v, single) for v in values[rows].tolist()])
  return text


def _compacted(text: np.ndarray) -> str:
  """The characters of a (slots, elements) byte matrix, element by element, zeros dropped."""
  text = text[text.any(axis=1)]  # Most layouts leave whole slots empty for a given tensor.
  return text.T.tobytes().translate(None, b"\0").decode("ascii")


def _joined(text: np.ndarray, shape) -> str:
  """Nested JSON lists of `shape` around the elements of `text` (_g_text's layout)."""
  count = text.shape[1]
  rank = len(shape)
  # After element i, as many lists close (and reopen) as trailing axes end there.
  closing = np.zeros(count, np.int16)
  stride = 1
  for size in reversed(shape):
    stride *= size
    closing[stride - 1::stride] += 1
  more = np.ones(count, np.bool_)
  more[-1] = False
  after = np.zeros((2 * rank + 2, count), np.uint8)
  for i in range(rank):
    np.multiply(closing > i, np.uint8(ord("]")), out=after[i], casting="unsafe")
    np.multiply((closing > i) & more, np.uint8(ord("[")), out=after[rank + 2 + i],
                casting="unsafe")
  np.multiply(more, np.uint8(ord(",")), out=after[rank], casting="unsafe")
  np.multiply(more, np.uint8(ord(" ")), out=after[rank + 1], casting="unsafe")
  return "[" * rank + _compacted(np.concatenate([text, after]))


def _tokens(array: np.ndarray, alias: str) -> List[str]:
  """The JSON text of each element of `array`, in C order."""
  flat = array.reshape(-1)
  kind = array.dtype.kind
  if not flat.size:
    return []
  if _is_float(array):
    # One element per line, then split: no Python work per element.
    newlines = np.full((1, flat.size), ord("\n"), np.uint8)
    return _compacted(np.concatenate([_float_text(flat), newlines])).split("\n")[:-1]
  if kind in "iu":
    return list(map(str, flat.tolist()))
  if kind == "b":
    return np.where(flat, "true", "false").tolist()
  if kind in "OSU":
    as_bytes = alias.endswith(_BYTES_SUFFIX)
    return [_string(v if isinstance(v, bytes) else str(v).encode("utf-8"), as_bytes)
            for v in flat.tolist()]
  raise serving_errors.unimplemented(
      f"output '{alias}' has dtype {array.dtype}, which has no JSON form")


def _template(shape) -> str:
  """Nested JSON lists of `shape` with a %s for each element."""
  template = "%s"
  for size in reversed(shape):
    template = "[" + ", ".join([template] * size) + "]"
  return template


def _is_float(array: np.ndarray) -> bool:
  return array.dtype.kind == "f" or array.dtype == tf.bfloat16.as_numpy_dtype


def _write(array: np.ndarray, alias: str) -> str:
  if array.size and _is_float(array):
    return _joined(_float_text(array.reshape(-1)), array.shape)
  return _template(array.shape) % tuple(_tokens(array, alias))


def _key(name: str) -> str:
  return json.dumps(name).replace("%", "%%")


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
    return '{"predictions": ' + _write(outputs[names[0]], names[0]) + "}"
  if not batch:
    return '{"predictions": []}'
  # One object per batch item; its tokens are each output's item tokens in turn.
  item = "{" + ", ".join(_key(n) + ": " + _template(outputs[n].shape[1:]) for n in names) + "}"
  columns = [np.array(_tokens(outputs[n], n), dtype=object).reshape(batch, -1) for n in names]
  tokens = np.concatenate(columns, axis=1).reshape(-1).tolist()
  return '{"predictions": ' + ("[" + ", ".join([item] * batch) + "]") % tuple(tokens) + "}"


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
