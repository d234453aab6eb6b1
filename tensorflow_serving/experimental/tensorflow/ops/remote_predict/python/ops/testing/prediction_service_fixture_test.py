"""Checks the PredictionService test fixture with a plain grpcio client.

The op tests trust the fixture's recordings and its barrier; this shows both
behave as documented without involving the op.
"""

import concurrent.futures

from absl.testing import absltest
import grpc
import numpy as np
import tensorflow as tf

from tensorflow_serving.apis import predict_pb2
from tensorflow_serving.apis import prediction_service_pb2_grpc
from tensorflow_serving.experimental.tensorflow.ops.remote_predict.python.ops.testing import prediction_service_fixture as fixture


def _request(**inputs: np.ndarray) -> predict_pb2.PredictRequest:
  request = predict_pb2.PredictRequest()
  request.model_spec.name = "m"
  for alias, value in inputs.items():
    request.inputs[alias].CopyFrom(tf.make_tensor_proto(value))
  return request


class PredictionServiceFixtureTest(absltest.TestCase):

  def setUp(self):
    super().setUp()
    self.server = self.enter_context(fixture.PredictionServiceFixture())
    channel = self.enter_context(grpc.insecure_channel(self.server.address))
    self.stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)

  def test_echo_records_request_and_deadline(self):
    request = _request(x=np.arange(3, dtype=np.float32))
    request.output_filter.append("x")
    response = self.stub.Predict(request, timeout=30)
    np.testing.assert_array_equal(
        tf.make_ndarray(response.outputs["x"]), [0, 1, 2])
    (call,) = self.server.calls()
    self.assertEqual(call.request, request)
    self.assertGreater(call.time_remaining, 0)
    self.assertLessEqual(call.time_remaining, 30)

  def test_echo_renames_and_rejects_missing_input(self):
    self.server.set_behaviour(fixture.Echo({"y": "x"}))
    request = _request(x=np.int64(7))
    request.output_filter.append("y")
    response = self.stub.Predict(request, timeout=30)
    self.assertEqual(tf.make_ndarray(response.outputs["y"]), 7)
    request.output_filter.append("z")
    with self.assertRaises(grpc.RpcError) as raised:
      self.stub.Predict(request, timeout=30)
    self.assertEqual(raised.exception.code(), grpc.StatusCode.INVALID_ARGUMENT)
    self.assertIn("'z'", raised.exception.details())

  def test_fail(self):
    self.server.set_behaviour(
        fixture.Fail(grpc.StatusCode.NOT_FOUND, "no model m"))
    with self.assertRaises(grpc.RpcError) as raised:
      self.stub.Predict(_request(x=np.float32(1)), timeout=30)
    self.assertEqual(raised.exception.code(), grpc.StatusCode.NOT_FOUND)
    self.assertEqual(raised.exception.details(), "no model m")
    self.assertLen(self.server.wait_for_calls(1, timeout_seconds=30), 1)

  def test_hold_releases_parallel_calls(self):
    hold = fixture.HoldUntilInFlight(parties=8, timeout_seconds=60)
    self.server.set_behaviour(hold)
    with concurrent.futures.ThreadPoolExecutor(max_workers=8) as pool:
      futures = [
          pool.submit(self.stub.Predict, _request(x=np.int32(i)), timeout=90)
          for i in range(8)
      ]
      values = sorted(
          int(tf.make_ndarray(f.result().outputs["x"])) for f in futures)
    self.assertEqual(values, list(range(8)))
    self.assertEqual(hold.max_waiting, 8)

  def test_hold_fails_sequential_calls(self):
    self.server.set_behaviour(
        fixture.HoldUntilInFlight(parties=2, timeout_seconds=0.2))
    with self.assertRaises(grpc.RpcError) as raised:
      self.stub.Predict(_request(x=np.int32(1)), timeout=30)
    self.assertEqual(raised.exception.code(),
                     grpc.StatusCode.FAILED_PRECONDITION)
    self.assertIn("only 1 were", raised.exception.details())

  def test_hold_until_cancelled_sees_client_deadline(self):
    hold = fixture.HoldUntilCancelled(timeout_seconds=60)
    self.server.set_behaviour(hold)
    with self.assertRaises(grpc.RpcError) as raised:
      self.stub.Predict(_request(x=np.int32(1)), timeout=0.2)
    self.assertEqual(raised.exception.code(),
                     grpc.StatusCode.DEADLINE_EXCEEDED)
    self.assertTrue(hold.cancelled.wait(timeout=30))


if __name__ == "__main__":
  absltest.main()
