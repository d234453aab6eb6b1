"""TensorProto <-> numpy for the gRPC front end, without per-element Python work.

tf.make_ndarray and tf.make_tensor_proto walk repeated fields element by element
and copy packed bytes several times, which dominated large Predict calls. Packed
numeric tensors are viewed in place here, repeated numeric fields are converted in
one numpy call, and replies are built as wire bytes in bulk (proto_wire) and parsed
in C; anything else (strings, half floats in requests, single values broadcast over a
shape) goes through TensorFlow's converters.
"""

import numpy as np
import tensorflow as tf

from tensorflow.core.framework import tensor_pb2
from tensorflow.core.framework import types_pb2
from tensorflow_serving.model_servers import proto_wire

# The repeated field that carries each numeric dtype when it is not packed.
_VALUE_FIELDS = {
    types_pb2.DT_FLOAT: "float_val",
    types_pb2.DT_DOUBLE: "double_val",
    types_pb2.DT_INT32: "int_val",
    types_pb2.DT_INT16: "int_val",
    types_pb2.DT_INT8: "int_val",
    types_pb2.DT_UINT8: "int_val",
    types_pb2.DT_INT64: "int64_val",
    types_pb2.DT_UINT32: "uint32_val",
    types_pb2.DT_UINT64: "uint64_val",
    types_pb2.DT_BOOL: "bool_val",
}


def _numpy_dtype(dtype: int):
  return tf.as_dtype(dtype).as_numpy_dtype


def to_ndarray(proto: tensor_pb2.TensorProto) -> np.ndarray:
  """The tensor `proto` holds; raises TypeError/ValueError if it is malformed."""
  shape = [d.size for d in proto.tensor_shape.dim]
  if proto.dtype in _VALUE_FIELDS:
    count = int(np.prod(shape, dtype=np.int64))
    if proto.tensor_content:
      return np.frombuffer(proto.tensor_content, dtype=_numpy_dtype(proto.dtype)).reshape(shape)
    values = getattr(proto, _VALUE_FIELDS[proto.dtype])
    if len(values) == count:
      return np.array(values, dtype=_numpy_dtype(proto.dtype)).reshape(shape)
  return tf.make_ndarray(proto)


# TensorProto's typed field for each dtype, as TensorFlow's Tensor::AsProtoField
# writes it: small integers widen to int_val, half and bfloat16 go to half_val as their
# 16-bit patterns, complex numbers as (real, imaginary) pairs.
_REPLY_FIELDS = {
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
_FIXED_WIDTH = frozenset(["float_val", "double_val", "scomplex_val", "dcomplex_val"])
_FIELD_NUMBERS = {name: tensor_pb2.TensorProto.DESCRIPTOR.fields_by_name[name].number
                  for name in set(_REPLY_FIELDS.values()) | {"tensor_content"}}


def _little_endian_bytes(array: np.ndarray) -> bytes:
  array = np.ascontiguousarray(array)
  if array.dtype.byteorder == ">":
    array = array.astype(array.dtype.newbyteorder("<"))
  return array.tobytes()


def fill_tensor_proto(proto: tensor_pb2.TensorProto, value, *,
                      as_tensor_content: bool = False) -> None:
  """Writes `value` (numpy array or scalar) into `proto` as TensorFlow Serving replies.

  Numbers go to the dtype's typed repeated field (float_val, int64_val, ...), or packed
  in tensor_content when `as_tensor_content` (--enable_serialization_as_tensor_content).
  Strings are always string_val. The message is parsed from bytes built in bulk, so no
  Python code runs per element.
  """
  array = np.asarray(value)
  dtype = None
  if array.dtype.kind not in "OSU":
    try:
      dtype = tf.as_dtype(array.dtype).as_datatype_enum
    except TypeError:
      dtype = None
  if dtype not in _REPLY_FIELDS:
    proto.CopyFrom(tf.make_tensor_proto(array))
    return
  header = tensor_pb2.TensorProto(dtype=dtype)
  for size in array.shape:
    header.tensor_shape.dim.add().size = size
  wire = header.SerializeToString()
  if array.size:
    field = "tensor_content" if as_tensor_content else _REPLY_FIELDS[dtype]
    if field == "tensor_content" or field in _FIXED_WIDTH:
      payload = _little_endian_bytes(array)
    elif field == "half_val":
      payload = proto_wire.varints(np.ascontiguousarray(array).view(np.uint16))
    else:
      payload = proto_wire.varints(array)
    wire += proto_wire.length_delimited(_FIELD_NUMBERS[field], payload)
  proto.ParseFromString(wire)
