"""TensorProto <-> numpy for the gRPC front end, without per-element Python work.

tf.make_ndarray and tf.make_tensor_proto walk repeated fields element by element
and copy packed bytes several times, which dominated large Predict calls. Packed
numeric tensors are viewed in place here, repeated numeric fields are converted in
one numpy call, and replies are built as wire bytes in bulk (proto_wire) and parsed
in C; anything else (strings, half floats in requests) goes through TensorFlow's
converters. Requests are checked against their declared shapes and the per-request
tensor budget (tensor_limits) before anything is allocated.
"""

from typing import List, Optional

import numpy as np
import tensorflow as tf

from tensorflow.core.framework import tensor_pb2
from tensorflow.core.framework import types_pb2
from tensorflow_serving.model_servers import proto_wire
from tensorflow_serving.model_servers import serving_errors
from tensorflow_serving.model_servers import tensor_limits

# TensorProto's typed field for each dtype, as TensorFlow's Tensor::AsProtoField
# writes it: small integers widen to int_val, half and bfloat16 go to half_val as their
# 16-bit patterns, complex numbers as (real, imaginary) pairs.
_TYPED_FIELDS = {
    types_pb2.DT_FLOAT: "float_val",
    types_pb2.DT_DOUBLE: "double_val",
    types_pb2.DT_INT32: "int_val",
    types_pb2.DT_INT16: "int_val",
    types_pb2.DT_INT8: "int_val",
    types_pb2.DT_UINT8: "int_val",
    types_pb2.DT_UINT16: "int_val",
    types_pb2.DT_INT64: "int64_val",
    types_pb2.DT_UINT32: "uint32_val",
    types_pb2.DT_UINT64: "uint64_val",
    types_pb2.DT_BOOL: "bool_val",
    types_pb2.DT_HALF: "half_val",
    types_pb2.DT_BFLOAT16: "half_val",
    types_pb2.DT_COMPLEX64: "scomplex_val",
    types_pb2.DT_COMPLEX128: "dcomplex_val",
}

# The numpy type of each repeated field's values.
_FIELD_NUMPY_TYPES = {
    "float_val": np.float32,
    "double_val": np.float64,
    "int_val": np.int32,
    "int64_val": np.int64,
    "uint32_val": np.uint32,
    "uint64_val": np.uint64,
    "bool_val": np.bool_,
}
# The dtypes whose repeated field numpy reads in one call (requests).
_VALUE_FIELDS = {dtype: field for dtype, field in _TYPED_FIELDS.items()
                 if field in _FIELD_NUMPY_TYPES}


def _numpy_dtype(dtype: int):
  return tf.as_dtype(dtype).as_numpy_dtype


# TensorFlow feeds a numpy array in place when its data is 64-byte aligned and copies
# it otherwise; the data of a bytes object never is. A large input is copied once into
# aligned memory (and the field's bytes freed) instead of being held twice during a run.
_ALIGNMENT = 64
_ALIGNED_COPY_MIN_BYTES = 1 << 20


def _aligned_copy(content: bytes, dtype, shape) -> np.ndarray:
  buffer = np.empty(len(content) + _ALIGNMENT, np.uint8)
  start = -buffer.ctypes.data % _ALIGNMENT
  aligned = buffer[start:start + len(content)]
  aligned[:] = np.frombuffer(content, np.uint8)
  return aligned.view(dtype).reshape(shape)


def _content_or_values(proto: tensor_pb2.TensorProto, alias: str, shape, count: int,
                       budget: tensor_limits.Budget) -> np.ndarray:
  """A numeric tensor from its packed bytes or its repeated field, as TensorFlow reads them."""
  dtype = _numpy_dtype(proto.dtype)
  nbytes = count * np.dtype(dtype).itemsize
  budget.charge(alias, shape, proto.dtype, nbytes)
  content = proto.tensor_content  # Each read of the field is a fresh copy: read it once.
  if content:
    if len(content) != nbytes:
      raise serving_errors.invalid_argument(
          f"input '{alias}': tensor_content holds {len(content)} bytes but shape "
          f"{shape} of {tensor_limits.dtype_name(proto.dtype)} needs exactly {nbytes}")
    if nbytes < _ALIGNED_COPY_MIN_BYTES:
      return np.frombuffer(content, dtype=dtype).reshape(shape)
    return _aligned_copy(content, dtype, shape)
  # TensorFlow's rule for repeated fields: none means zeros, fewer values than
  # elements repeat the last one, extra values are ignored.
  values = getattr(proto, _VALUE_FIELDS[proto.dtype])
  given = len(values)
  if given == 0:
    return np.zeros(shape, dtype=dtype)
  field = np.array(values[:count] if given > count else values,
                   dtype=_FIELD_NUMPY_TYPES[_VALUE_FIELDS[proto.dtype]])
  if given >= count:
    return field.astype(dtype, copy=False).reshape(shape)
  array = np.empty(count, dtype=dtype)
  array[:given] = field
  array[given:] = field[-1]
  return array.reshape(shape)


def _other_dtype_nbytes(proto: tensor_pb2.TensorProto, count: int) -> int:
  if proto.dtype == types_pb2.DT_STRING:
    values = proto.string_val
    repeated = count - len(values) if len(values) < count else 0
    last = len(values[-1]) if values else 0
    return (count * tensor_limits.STRING_ELEMENT_BYTES + sum(len(v) for v in values)
            + repeated * last + len(proto.tensor_content))
  return count * max(1, tf.as_dtype(proto.dtype).size)


def to_ndarray(proto: tensor_pb2.TensorProto, alias: str = "",
               budget: Optional[tensor_limits.Budget] = None) -> np.ndarray:
  """The tensor `proto` holds, checked against its shape and `budget` before allocation.

  Raises ServingError (INVALID_ARGUMENT, RESOURCE_EXHAUSTED) naming `alias`.
  """
  if budget is None:
    budget = tensor_limits.Budget()
  if proto.tensor_shape.unknown_rank:
    raise serving_errors.invalid_argument(
        f"input '{alias}' has an unknown rank; a request's tensor needs a full shape")
  shape = [d.size for d in proto.tensor_shape.dim]
  count = tensor_limits.element_count(alias, shape)
  if proto.dtype in _VALUE_FIELDS:
    return _content_or_values(proto, alias, shape, count, budget)
  budget.charge(alias, shape, proto.dtype, _other_dtype_nbytes(proto, count))
  try:
    return tf.make_ndarray(proto)
  except (TypeError, ValueError) as e:
    raise serving_errors.invalid_argument(
        f"input '{alias}' of shape {shape} and type {tensor_limits.dtype_name(proto.dtype)} "
        f"is not a valid TensorProto: {e}") from e


_FIXED_WIDTH = frozenset(["float_val", "double_val", "scomplex_val", "dcomplex_val"])
_FIELD_NUMBERS = {name: tensor_pb2.TensorProto.DESCRIPTOR.fields_by_name[name].number
                  for name in set(_TYPED_FIELDS.values()) | {"tensor_content"}}


def _little_endian(array: np.ndarray) -> memoryview:
  """The array's bytes, little-endian, without a copy when they already are."""
  array = np.ascontiguousarray(array)
  if array.dtype.byteorder == ">":
    array = array.astype(array.dtype.newbyteorder("<"))
  return memoryview(array.reshape(-1).view(np.uint8))


def tensor_proto_chunks(value, *, as_tensor_content: bool = False) -> List[bytes]:
  """The serialized TensorProto TensorFlow Serving replies with for `value`, in pieces.

  Numbers go to the dtype's typed repeated field (float_val, int64_val, ...), or packed
  in tensor_content when `as_tensor_content` (--enable_serialization_as_tensor_content).
  Strings are always string_val. The pieces (bytes-like; fixed-width payloads are
  views of the array) joined are the message; no Python code runs per element.
  """
  array = np.asarray(value)
  del value
  dtype = None
  if array.dtype.kind not in "OSU":
    try:
      dtype = tf.as_dtype(array.dtype).as_datatype_enum
    except TypeError:
      dtype = None
  if dtype not in _TYPED_FIELDS:
    return [tf.make_tensor_proto(array).SerializeToString()]
  header = tensor_pb2.TensorProto(dtype=dtype)
  for size in array.shape:
    header.tensor_shape.dim.add().size = size
  chunks = [header.SerializeToString()]
  if array.size:
    field = "tensor_content" if as_tensor_content else _TYPED_FIELDS[dtype]
    if field == "tensor_content" or field in _FIXED_WIDTH:
      payload = _little_endian(array)
    elif field == "half_val":
      payload = proto_wire.varints(np.ascontiguousarray(array).view(np.uint16))
    else:
      payload = proto_wire.varints(array)
    chunks += [proto_wire.length_delimited_head(_FIELD_NUMBERS[field], payload.nbytes
                                                if isinstance(payload, memoryview)
                                                else len(payload)), payload]
  return chunks


def fill_tensor_proto(proto: tensor_pb2.TensorProto, value, *,
                      as_tensor_content: bool = False) -> None:
  """Writes `value` (numpy array or scalar) into `proto` as TensorFlow Serving replies.

  The message is parsed from tensor_proto_chunks' bytes.
  """
  proto.ParseFromString(b"".join(tensor_proto_chunks(value, as_tensor_content=as_tensor_content)))
