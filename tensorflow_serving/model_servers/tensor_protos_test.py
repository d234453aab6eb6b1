"""Tests for tensor_protos: the gRPC front end's TensorProto conversions."""

import grpc
import numpy as np
import tensorflow as tf

from tensorflow.core.framework import tensor_pb2
from tensorflow.core.framework import types_pb2
from tensorflow_serving.model_servers import serving_errors
from tensorflow_serving.model_servers import tensor_limits
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

  def _error(self, proto, code, *fragments, budget=None):
    with self.assertRaises(serving_errors.ServingError) as raised:
      tensor_protos.to_ndarray(proto, "x", budget)
    self.assertEqual(raised.exception.code, code, raised.exception.message)
    for fragment in fragments:
      self.assertIn(fragment, raised.exception.message)

  def test_packed_bytes_that_do_not_fit_the_shape_are_rejected(self):
    proto = tf.make_tensor_proto(np.zeros([4], np.float32))
    proto.tensor_shape.dim[0].size = 5
    self._error(proto, grpc.StatusCode.INVALID_ARGUMENT, "input 'x'", "16 bytes", "20")

  def test_no_values_means_zeros_and_fewer_repeat_the_last(self):
    proto = tensor_pb2.TensorProto(dtype=types_pb2.DT_INT32)
    proto.tensor_shape.dim.add().size = 4
    self.assertAllEqual(tensor_protos.to_ndarray(proto), [0, 0, 0, 0])
    proto.int_val.extend([5, 6])
    self.assertAllEqual(tensor_protos.to_ndarray(proto), [5, 6, 6, 6])
    proto.int_val.extend([7, 8, 9])
    self.assertAllEqual(tensor_protos.to_ndarray(proto), [5, 6, 7, 8])

  def test_int_val_wraps_into_small_types_as_a_cast_does(self):
    proto = tensor_pb2.TensorProto(dtype=types_pb2.DT_UINT8, int_val=[300, -1])
    proto.tensor_shape.dim.add().size = 2
    self.assertAllEqual(tensor_protos.to_ndarray(proto), [44, 255])

  def test_negative_dimension(self):
    proto = tensor_pb2.TensorProto(dtype=types_pb2.DT_FLOAT, float_val=[1.0])
    proto.tensor_shape.dim.add().size = -1
    self._error(proto, grpc.StatusCode.INVALID_ARGUMENT, "input 'x'", "[-1]", "negative")

  def test_overflowing_shape(self):
    proto = tensor_pb2.TensorProto(dtype=types_pb2.DT_FLOAT, float_val=[1.0])
    for _ in range(3):
      proto.tensor_shape.dim.add().size = 1 << 30
    self._error(proto, grpc.StatusCode.INVALID_ARGUMENT, "input 'x'", "overflow int64")

  def test_too_many_dimensions(self):
    proto = tensor_pb2.TensorProto(dtype=types_pb2.DT_FLOAT)
    for _ in range(65):
      proto.tensor_shape.dim.add().size = 1
    self._error(proto, grpc.StatusCode.INVALID_ARGUMENT, "rank 65")

  def test_declared_shape_over_the_budget_allocates_nothing(self):
    proto = tensor_pb2.TensorProto(dtype=types_pb2.DT_FLOAT, float_val=[1.0])
    proto.tensor_shape.dim.add().size = 1 << 40
    self._error(proto, grpc.StatusCode.RESOURCE_EXHAUSTED, "input 'x'", "[1099511627776]",
                "DT_FLOAT", "--max_request_tensor_bytes")
    strings = tensor_pb2.TensorProto(dtype=types_pb2.DT_STRING, string_val=[b"ab"])
    strings.tensor_shape.dim.add().size = 1 << 29
    self._error(strings, grpc.StatusCode.RESOURCE_EXHAUSTED, "DT_STRING")

  def test_budget_is_shared_by_a_requests_inputs(self):
    budget = tensor_limits.Budget(100)
    small = tf.make_tensor_proto(np.zeros([20], np.float32))
    tensor_protos.to_ndarray(small, "a", budget)
    self._error(small, grpc.StatusCode.RESOURCE_EXHAUSTED, "80 bytes", "limit of 100",
                budget=budget)


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
