"""Models that use TfServingRemotePredict inside the server that has it linked in.

- "nested" calls half_plus_two on the same server, from gRPC and REST requests, many
  at once: the server must not deadlock on its own thread pools.
- "blocking" calls a PredictionService in this test process that holds each call until
  the test releases it, so a request is provably in flight when the server gets
  SIGTERM: the server refuses new work, finishes that request and exits 0.
"""

import concurrent.futures
import os
import signal
import threading
import time

import grpc
import numpy as np
import tensorflow as tf

from tensorflow_serving.apis import predict_pb2
from tensorflow_serving.apis import prediction_service_pb2_grpc
from tensorflow_serving.experimental.tensorflow.ops.remote_predict.python.ops import remote_predict_ops
from tensorflow_serving.model_servers import model_server_test_util as util

_WAIT_SECONDS = 60.0


def _export_remote_caller(base_path, target_address, model_name):
  """z = 2 * <model_name's y for input x at target_address>."""
  v1 = tf.compat.v1
  graph = tf.Graph()
  with graph.as_default():
    x = v1.placeholder(tf.float32, name="x")
    (y,) = remote_predict_ops.run(["x"], [x], ["y"], target_address=target_address,
                                  model_name=model_name, output_types=[tf.float32],
                                  max_rpc_deadline_millis=int(_WAIT_SECONDS * 1000))
    z = tf.multiply(y, 2.0, name="z")
    with v1.Session(graph=graph) as session:
      builder = v1.saved_model.Builder(os.path.join(base_path, "1"))
      builder.add_meta_graph_and_variables(
          session, [tf.saved_model.SERVING],
          signature_def_map={"serving_default": v1.saved_model.predict_signature_def(
              inputs={"x": x}, outputs={"z": z})})
      builder.save()


class _HoldingPredictionService(prediction_service_pb2_grpc.PredictionServiceServicer):
  """Echoes x as y, but only once the test releases the call."""

  def __init__(self):
    self.arrived = threading.Event()
    self.release = threading.Event()

  def Predict(self, request, context):
    self.arrived.set()
    if not self.release.wait(_WAIT_SECONDS):
      context.abort(grpc.StatusCode.ABORTED, "the test never released the call")
    response = predict_pb2.PredictResponse()
    response.outputs["y"].CopyFrom(request.inputs["x"])
    return response


def _predict_request(model, values):
  request = predict_pb2.PredictRequest()
  request.model_spec.name = model
  request.inputs["x"].CopyFrom(tf.make_tensor_proto(np.array(values, np.float32)))
  return request


class RemotePredictInServerTest(tf.test.TestCase):

  def setUp(self):
    super().setUp()
    self.root = self.create_tempdir().full_path
    self.half_plus_two = os.path.join(self.root, "half_plus_two")
    util.export_half_plus_two(self.half_plus_two)

  def test_nested_calls_into_the_same_server(self):
    grpc_port, rest_port = util.pick_unused_ports(2)
    nested = os.path.join(self.root, "nested")
    _export_remote_caller(nested, f"127.0.0.1:{grpc_port}", "half_plus_two")
    config = util.write_config(os.path.join(self.root, "models.config"), util.server_config(
        util.model_config("half_plus_two", self.half_plus_two),
        util.model_config("nested", nested)))
    server = util.ServerProcess([f"--port={grpc_port}", f"--rest_api_port={rest_port}",
                                 f"--model_config_file={config}"], self.root, grpc_port, rest_port)
    try:
      server.wait_until_available("half_plus_two")
      server.wait_until_available("nested")
      stub = prediction_service_pb2_grpc.PredictionServiceStub(server.channel())
      response = stub.Predict(_predict_request("nested", [1.0, 2.0]), timeout=_WAIT_SECONDS)
      self.assertAllClose(tf.make_ndarray(response.outputs["z"]), [5.0, 6.0])

      status, body = util.curl("POST", server.rest_url + "/v1/models/nested:predict",
                               '{"instances": [5.0]}')
      self.assertEqual((status, body), (200, '{"predictions": [9.0]}'))

      # More concurrent nested calls than there are CPUs, from both front ends.
      def call(i):
        if i % 2:
          reply = stub.Predict(_predict_request("nested", [float(i)]), timeout=_WAIT_SECONDS)
          return float(tf.make_ndarray(reply.outputs["z"])[0])
        status, body = util.curl("POST", server.rest_url + "/v1/models/nested:predict",
                                 f'{{"instances": [{float(i)}]}}')
        self.assertEqual(status, 200, body)
        return float(body.split("[")[1].split("]")[0])

      with concurrent.futures.ThreadPoolExecutor(16) as pool:
        results = list(pool.map(call, range(16)))
      self.assertAllClose(results, [i + 4.0 for i in range(16)])
    finally:
      code = server.stop()
    self.assertEqual(code, 0, server.log())

  def test_sigterm_drains_in_flight_requests(self):
    holder = _HoldingPredictionService()
    fake = grpc.server(concurrent.futures.ThreadPoolExecutor(4))
    prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(holder, fake)
    fake_port = fake.add_insecure_port("127.0.0.1:0")
    fake.start()
    self.addCleanup(fake.stop, None)
    self.addCleanup(holder.release.set)

    blocking = os.path.join(self.root, "blocking")
    _export_remote_caller(blocking, f"127.0.0.1:{fake_port}", "anything")
    config = util.write_config(os.path.join(self.root, "models.config"), util.server_config(
        util.model_config("blocking", blocking)))
    server = util.ServerProcess.start(self.root, [f"--model_config_file={config}"])
    self.addCleanup(server.stop)
    server.wait_until_available("blocking")

    stub = prediction_service_pb2_grpc.PredictionServiceStub(server.channel())
    in_flight = stub.Predict.future(_predict_request("blocking", [3.0]), timeout=_WAIT_SECONDS)
    self.assertTrue(holder.arrived.wait(_WAIT_SECONDS), server.log())
    server.process.send_signal(signal.SIGTERM)

    # New calls are refused once the server has begun shutting down.
    deadline = time.monotonic() + _WAIT_SECONDS
    while True:
      try:
        with server.new_channel() as channel:
          server.version_states_on(channel, "blocking")
      except grpc.RpcError as e:
        if e.code() == grpc.StatusCode.UNAVAILABLE:
          break
      self.assertLess(time.monotonic(), deadline, "the server kept accepting calls")
    self.assertIsNone(server.process.poll())  # Still draining the held request.

    holder.release.set()
    response = in_flight.result(timeout=_WAIT_SECONDS)
    self.assertAllClose(tf.make_ndarray(response.outputs["z"]), [6.0])
    self.assertEqual(server.wait_exit(), 0, server.log())


if __name__ == "__main__":
  tf.test.main()
