"""Checks that the benchmark's op callers send the encoding they are labelled with.

The payload sweep compares the op's packed encoding with upstream's field encoding by
building each function's kernel under a different setting. If the kernel ignored the
setting, or a later kernel changed an earlier one's, both columns would measure the
same thing. A real grpcio PredictionService on loopback records what arrives.
"""

import concurrent.futures
import threading

from absl.testing import absltest
import grpc
import numpy as np
import tensorflow as tf

from tensorflow_serving.apis import predict_pb2
from tensorflow_serving.experimental.benchmarks import callers
from tensorflow_serving.experimental.benchmarks import models


class _RecordingPredictionService:
  """Answers Predict with output `y` = input `x`; keeps every request."""

  def __init__(self):
    self.requests = []
    self._lock = threading.Lock()
    self._server = grpc.server(concurrent.futures.ThreadPoolExecutor(4))
    handler = grpc.unary_unary_rpc_method_handler(
        self._predict,
        request_deserializer=predict_pb2.PredictRequest.FromString,
        response_serializer=predict_pb2.PredictResponse.SerializeToString)
    self._server.add_generic_rpc_handlers([grpc.method_handlers_generic_handler(
        "tensorflow.serving.PredictionService", {"Predict": handler})])
    self.address = f"127.0.0.1:{self._server.add_insecure_port('127.0.0.1:0')}"
    self._server.start()

  def _predict(self, request, context):
    del context
    with self._lock:
      self.requests.append(request)
    response = predict_pb2.PredictResponse()
    response.outputs[models.OUTPUT].CopyFrom(request.inputs[models.INPUT])
    return response

  def last_input(self):
    with self._lock:
      return self.requests[-1].inputs[models.INPUT]

  def stop(self):
    self._server.stop(grace=None).wait()


class OpEncodingTest(absltest.TestCase):

  def setUp(self):
    super().setUp()
    self.service = _RecordingPredictionService()
    self.addCleanup(self.service.stop)
    self.x = tf.constant(np.arange(6, dtype=np.float32))

  def _assert_packed(self, proto, packed: bool):
    if packed:
      self.assertEqual(proto.tensor_content, self.x.numpy().tobytes())
      self.assertEmpty(proto.float_val)
    else:
      self.assertEmpty(proto.tensor_content)
      self.assertEqual(list(proto.float_val), self.x.numpy().tolist())

  def test_each_function_keeps_the_encoding_it_was_built_with(self):
    packed = callers.op_function(self.service.address, [models.IDENTITY], self.x, packed=True)
    self._assert_packed(self.service.last_input(), packed=True)
    field = callers.op_function(self.service.address, [models.IDENTITY], self.x, packed=False)
    self._assert_packed(self.service.last_input(), packed=False)
    # Built later under the other setting, neither kernel changed.
    np.testing.assert_array_equal(packed().numpy(), self.x.numpy())
    self._assert_packed(self.service.last_input(), packed=True)
    np.testing.assert_array_equal(field().numpy(), self.x.numpy())
    self._assert_packed(self.service.last_input(), packed=False)

  def test_fan_out_calls_every_model_once_per_call(self):
    names = [models.fan_out_model_name(k) for k in range(4)]
    call = callers.op_function(self.service.address, names, self.x)
    before = len(self.service.requests)
    np.testing.assert_array_equal(call().numpy(), 4 * self.x.numpy())
    self.assertCountEqual([r.model_spec.name for r in self.service.requests[before:]], names)


class PythonClientTest(absltest.TestCase):

  def test_round_trips_the_array(self):
    service = _RecordingPredictionService()
    self.addCleanup(service.stop)
    client = callers.PythonClient(service.address)
    self.addCleanup(client.close)
    x = np.linspace(0, 1, 5, dtype=np.float32)
    np.testing.assert_array_equal(client.caller(models.IDENTITY, x)(), x)
    self.assertEqual(list(service.requests[-1].output_filter), [models.OUTPUT])


if __name__ == "__main__":
  absltest.main()
