"""TensorProto <-> numpy for the gRPC front end, without per-element Python work.

tf.make_ndarray and tf.make_tensor_proto walk repeated fields element by element
and copy packed bytes several times, which dominated large Predict calls. Packed
numeric tensors are viewed in place here, repeated numeric fields are converted in
one numpy call, and replies are written packed; anything else (strings, half
floats, single values broadcast over a shape) goes through TensorFlow's converters.
"""

import numpy as np
import tensorflow as tf

from tensorflow.core.framework import tensor_pb2
from tensorflow.core.framework import types_pb2

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


def fill_tensor_proto(proto: tensor_pb2.TensorProto, value) -> None:
  """Writes `value` (numpy array or scalar) into `proto`, numbers packed."""
  array = np.asarray(value)
  if array.dtype.kind not in "biuf":
    proto.CopyFrom(tf.make_tensor_proto(array))
    return
  proto.dtype = tf.as_dtype(array.dtype).as_datatype_enum
  for size in array.shape:
    proto.tensor_shape.dim.add().size = size
  proto.tensor_content = np.ascontiguousarray(array).tobytes()
