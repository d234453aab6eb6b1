"""Tests for tensor_protos: the gRPC front end's TensorProto conversions."""

from absl.testing import parameterized
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


def _field_by_field(array, field, values):
  """The reference reply, filled one value at a time through protobuf's own API."""
  proto = tensor_pb2.TensorProto(dtype=tf.as_dtype(array.dtype).as_datatype_enum)
  for size in array.shape:
    proto.tensor_shape.dim.add().size = size
  getattr(proto, field).extend(values)
  return proto


class FillTensorProtoTest(tf.test.TestCase, parameterized.TestCase):

  @parameterized.named_parameters(
      ("float", np.float32, "float_val"),
      ("double", np.float64, "double_val"),
      ("int32", np.int32, "int_val"),
      ("int16", np.int16, "int_val"),
      ("int8", np.int8, "int_val"),
      ("uint8", np.uint8, "int_val"),
      ("uint16", np.uint16, "int_val"),
      ("int64", np.int64, "int64_val"),
      ("uint32", np.uint32, "uint32_val"),
      ("uint64", np.uint64, "uint64_val"),
  )
  def test_numbers_fill_the_typed_field_as_tensorflow_does(self, np_type, field):
    info = np.iinfo(np_type) if np.dtype(np_type).kind in "iu" else np.finfo(np_type)
    numbers = [0, 1, 127, 128, 300, 16384, info.max, info.min]
    if np.dtype(np_type).kind == "i":
      numbers[0] = -1
    value = np.array([min(max(n, info.min), info.max) for n in numbers],
                     dtype=np_type).reshape(2, 4)
    proto = tensor_pb2.TensorProto()
    tensor_protos.fill_tensor_proto(proto, value)
    expected = _field_by_field(value, field, value.reshape(-1).tolist())
    self.assertEqual(proto.SerializeToString(), expected.SerializeToString())
    self.assertEmpty(proto.tensor_content)
    self.assertAllEqual(tf.make_ndarray(proto), value)

  def test_varints_of_every_length_match_protobufs_encoder(self):
    # 1 to 10 bytes: each power of 128, its neighbours, and negative numbers.
    numbers = [0, 1, -1, np.iinfo(np.int64).min, np.iinfo(np.int64).max]
    for group in range(1, 9):  # 2**63 itself is beyond int64.
      numbers += [(1 << (7 * group)) - 1, 1 << (7 * group), -(1 << (7 * group))]
    value = np.array(numbers, np.int64)
    proto = tensor_pb2.TensorProto()
    tensor_protos.fill_tensor_proto(proto, value)
    self.assertEqual(proto.SerializeToString(),
                     _field_by_field(value, "int64_val", numbers).SerializeToString())

  def test_bool(self):
    value = np.array([True, False, True])
    proto = tensor_pb2.TensorProto()
    tensor_protos.fill_tensor_proto(proto, value)
    self.assertEqual(list(proto.bool_val), [True, False, True])
    self.assertEqual(proto.SerializeToString(),
                     _field_by_field(value, "bool_val", value.tolist()).SerializeToString())

  @parameterized.parameters(tf.float16, tf.bfloat16)
  def test_half_floats_are_bit_patterns_in_half_val(self, tf_type):
    value = np.array([1.5, -2.0, 65504.0 if tf_type == tf.float16 else 3e38],
                     dtype=tf_type.as_numpy_dtype)
    proto = tensor_pb2.TensorProto()
    tensor_protos.fill_tensor_proto(proto, value)
    self.assertEqual(proto.dtype, tf_type.as_datatype_enum)
    self.assertEqual(list(proto.half_val), value.view(np.uint16).tolist())
    self.assertAllEqual(tf.make_ndarray(proto), value)

  @parameterized.parameters((np.complex64, "scomplex_val"), (np.complex128, "dcomplex_val"))
  def test_complex_numbers_are_real_imaginary_pairs(self, np_type, field):
    value = np.array([1 + 2j, -3.5 - 0.25j], dtype=np_type)
    proto = tensor_pb2.TensorProto()
    tensor_protos.fill_tensor_proto(proto, value)
    self.assertEqual(list(getattr(proto, field)), [1.0, 2.0, -3.5, -0.25])
    self.assertAllEqual(tf.make_ndarray(proto), value)

  def test_tensor_content_when_asked(self):
    value = np.arange(6, dtype=np.int32).reshape(2, 3)
    proto = tensor_pb2.TensorProto()
    tensor_protos.fill_tensor_proto(proto, value, as_tensor_content=True)
    self.assertEqual(proto.dtype, types_pb2.DT_INT32)
    self.assertEqual(proto.tensor_content, value.tobytes())
    self.assertEmpty(proto.int_val)
    self.assertAllEqual(tf.make_ndarray(proto), value)

  def test_scalar_and_empty(self):
    proto = tensor_pb2.TensorProto()
    tensor_protos.fill_tensor_proto(proto, np.float64(2.5))
    self.assertEqual(proto.tensor_shape.dim, [])
    self.assertEqual(list(proto.double_val), [2.5])
    tensor_protos.fill_tensor_proto(proto, np.zeros([0, 3], np.float32))
    self.assertEqual([d.size for d in proto.tensor_shape.dim], [0, 3])
    self.assertEmpty(proto.float_val)

  def test_large_float_tensor_is_the_packed_bytes(self):
    value = np.random.default_rng(0).random(1 << 20, dtype=np.float32)
    proto = tensor_pb2.TensorProto()
    tensor_protos.fill_tensor_proto(proto, value)
    self.assertEqual(len(proto.float_val), value.size)
    self.assertEqual(np.array(proto.float_val, np.float32).tobytes(), value.tobytes())

  def test_strings_use_tensorflows_encoding(self):
    proto = tensor_pb2.TensorProto()
    tensor_protos.fill_tensor_proto(proto, np.array([b"x", b"yz"], dtype=object))
    self.assertEqual(proto.dtype, types_pb2.DT_STRING)
    self.assertEqual(list(proto.string_val), [b"x", b"yz"])


if __name__ == "__main__":
  tf.test.main()
