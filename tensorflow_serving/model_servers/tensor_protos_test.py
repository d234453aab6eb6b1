"""Tests for tensor_protos: the gRPC front end's TensorProto conversions."""

import numpy as np
import tensorflow as tf

from tensorflow.core.framework import tensor_pb2
from tensorflow.core.framework import types_pb2
from tensorflow_serving.model_servers import tensor_protos


class ToNdarrayTest(tf.test.TestCase):

  def test_packed_tensor(self):
    value = np.arange(12, dtype=np.float32).reshape(3, 4)
    proto = tf.make_tensor_proto(value)
    self.assertTrue(proto.tensor_content)
    self.assertAllEqual(tensor_protos.to_ndarray(proto), value)

  def test_repeated_field_tensor(self):
    proto = tensor_pb2.TensorProto(dtype=types_pb2.DT_INT64)
    proto.tensor_shape.dim.add().size = 2
    proto.tensor_shape.dim.add().size = 2
    proto.int64_val.extend([1, -2, 3, 1 << 40])
    array = tensor_protos.to_ndarray(proto)
    self.assertEqual(array.dtype, np.int64)
    self.assertAllEqual(array, [[1, -2], [3, 1 << 40]])

  def test_single_value_fills_the_shape(self):
    proto = tensor_pb2.TensorProto(dtype=types_pb2.DT_FLOAT, float_val=[7.0])
    proto.tensor_shape.dim.add().size = 3
    self.assertAllEqual(tensor_protos.to_ndarray(proto), [7.0, 7.0, 7.0])

  def test_strings(self):
    proto = tf.make_tensor_proto(np.array([b"a", b"\x00b"], dtype=object))
    self.assertAllEqual(tensor_protos.to_ndarray(proto), [b"a", b"\x00b"])

  def test_packed_bytes_that_do_not_fit_the_shape_are_rejected(self):
    proto = tf.make_tensor_proto(np.zeros([4], np.float32))
    proto.tensor_shape.dim[0].size = 5
    with self.assertRaises(ValueError):
      tensor_protos.to_ndarray(proto)


class FillTensorProtoTest(tf.test.TestCase):

  def test_numbers_are_packed_and_round_trip(self):
    value = np.arange(6, dtype=np.int32).reshape(2, 3)
    proto = tensor_pb2.TensorProto()
    tensor_protos.fill_tensor_proto(proto, value)
    self.assertEqual(proto.dtype, types_pb2.DT_INT32)
    self.assertEqual(len(proto.tensor_content), value.nbytes)
    self.assertAllEqual(tf.make_ndarray(proto), value)

  def test_scalar(self):
    proto = tensor_pb2.TensorProto()
    tensor_protos.fill_tensor_proto(proto, np.float64(2.5))
    self.assertEqual(proto.tensor_shape.dim, [])
    self.assertEqual(tf.make_ndarray(proto), 2.5)

  def test_strings_use_tensorflows_encoding(self):
    proto = tensor_pb2.TensorProto()
    tensor_protos.fill_tensor_proto(proto, np.array([b"x", b"yz"], dtype=object))
    self.assertEqual(proto.dtype, types_pb2.DT_STRING)
    self.assertEqual(list(proto.string_val), [b"x", b"yz"])


if __name__ == "__main__":
  tf.test.main()
