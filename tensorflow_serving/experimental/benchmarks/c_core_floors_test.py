"""Real calls through the C-core floors: c_core_predict_server and c_core_predict_client.

Each server runs as the benchmark runs it (a child process on a free loopback port);
its replies are checked byte for byte (canned) or tensor for tensor (echo), from the
C-core client, from grpcio and from the Remote Predict Op in both encodings.
"""

import os

from absl.testing import absltest
import grpc
import numpy as np
import tensorflow as tf

from tensorflow_serving.apis import predict_pb2
from tensorflow_serving.experimental.benchmarks import c_core_floors
from tensorflow_serving.experimental.benchmarks import callers
from tensorflow_serving.experimental.benchmarks import deployment
from tensorflow_serving.experimental.benchmarks import models
from tensorflow_serving.experimental.example import model_server_process


class CCoreFloorsTest(absltest.TestCase):

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    cls.dir = absltest.TEST_TMPDIR.value
    cls.canned_response = callers.half_plus_two_response(deployment.CANNED_X)
    response_file = os.path.join(cls.dir, "canned.pb")
    with open(response_file, "wb") as f:
      f.write(cls.canned_response)
    cls.canned = c_core_floors.CCoreServer(
        "canned", response_file=response_file, log_path=os.path.join(cls.dir, "canned.log"),
        label="C-core canned server").start(timeout_s=60)
    cls.echo = c_core_floors.CCoreServer(
        "echo", log_path=os.path.join(cls.dir, "echo.log"),
        label="C-core echo server").start(timeout_s=60)
    cls.request = predict_pb2.PredictRequest()
    cls.request.model_spec.name = models.IDENTITY
    cls.request.model_spec.signature_name = "serving_default"
    cls.request.inputs["a"].CopyFrom(tf.make_tensor_proto(np.arange(5, dtype=np.float32)))
    cls.request.inputs["b"].CopyFrom(tf.make_tensor_proto([[1, 2], [3, 4]], tf.int64))
    cls.request.output_filter.append("a")
    cls.request_file = os.path.join(cls.dir, "request.pb")
    with open(cls.request_file, "wb") as f:
      f.write(cls.request.SerializeToString())

  @classmethod
  def tearDownClass(cls):
    cls.canned.stop()
    cls.echo.stop()
    super().tearDownClass()

  def test_client_gets_the_canned_bytes_and_times_every_call(self):
    seconds = c_core_floors.client_seconds(
        self.canned.address, self.request_file, calls=7, warmup_calls=2, max_seconds=30,
        expected_response=self.canned_response)
    self.assertLen(seconds, 7)
    self.assertTrue(all(0 < s < 30 for s in seconds), seconds)

  def test_client_notices_a_wrong_reply(self):
    with self.assertRaisesRegex(c_core_floors.CCoreError, "not the 3 bytes expected"):
      c_core_floors.client_seconds(self.canned.address, self.request_file, calls=1,
                                   warmup_calls=0, max_seconds=30, expected_response=b"abc")

  def test_client_names_the_status_of_a_failed_call(self):
    [port] = model_server_process.pick_unused_ports(1)
    with self.assertRaisesRegex(c_core_floors.CCoreError, f"127.0.0.1:{port} failed"):
      c_core_floors.client_seconds(f"127.0.0.1:{port}", self.request_file, calls=1,
                                   warmup_calls=0, max_seconds=30)

  def test_echo_returns_the_inputs_as_outputs(self):
    response_file = os.path.join(self.dir, "echo_response.pb")
    c_core_floors.client_seconds(self.echo.address, self.request_file, calls=1,
                                 warmup_calls=0, max_seconds=30,
                                 response_file=response_file)
    with open(response_file, "rb") as f:
      response = predict_pb2.PredictResponse.FromString(f.read())
    self.assertEqual(response.model_spec, self.request.model_spec)
    self.assertEqual(dict(response.outputs), dict(self.request.inputs))

  def test_the_op_round_trips_through_the_echo_in_both_encodings(self):
    x = tf.constant(np.linspace(-1, 1, 1000, dtype=np.float32))
    for packed in (True, False):
      call = callers.op_function(self.echo.address, [models.IDENTITY], x, packed=packed,
                                 output_alias=models.INPUT, expected=x.numpy())
      np.testing.assert_array_equal(call().numpy(), x.numpy())

  def test_the_op_gets_the_canned_answer(self):
    x = tf.constant(list(deployment.CANNED_X))
    call = callers.op_function(self.canned.address, [models.HALF_PLUS_TWO], x)
    np.testing.assert_array_equal(call().numpy(), 0.5 * x.numpy() + 2.0)

  def test_bad_requests_get_errors_that_name_the_problem(self):
    with grpc.insecure_channel(self.echo.address) as channel:
      with self.assertRaises(grpc.RpcError) as raised:
        channel.unary_unary(deployment.PREDICT_METHOD_PATH)(b"\x0a\x05ab", timeout=30)
      self.assertEqual(raised.exception.code(), grpc.StatusCode.INVALID_ARGUMENT)
      self.assertIn("field 1 runs past the message", raised.exception.details())
      with self.assertRaises(grpc.RpcError) as raised:
        channel.unary_unary("/tensorflow.serving.PredictionService/Classify")(
            b"", timeout=30)
      self.assertEqual(raised.exception.code(), grpc.StatusCode.UNIMPLEMENTED)
      self.assertIn("not /tensorflow.serving.PredictionService/Classify",
                    raised.exception.details())


if __name__ == "__main__":
  absltest.main()
