"""Server processes over time: start-up errors, version discovery, config reloads, signals.

Each scenario is one test running against its own server, because the steps depend on
each other (a version appears, then breaks, then goes away) and a config reload
replaces every model of the server.
"""

import os
import shutil
import signal
import socket
import subprocess
import sys

import grpc
import numpy as np
import tensorflow as tf

from tensorflow_serving.apis import model_management_pb2
from tensorflow_serving.apis import model_service_pb2_grpc
from tensorflow_serving.apis import predict_pb2
from tensorflow_serving.apis import prediction_service_pb2_grpc
from tensorflow_serving.model_servers import model_server_test_util as util

State = util.State


class ServerLifecycleTest(tf.test.TestCase):

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    cls.template = util.export_half_plus_two(
        os.path.join(tf.compat.v1.test.get_temp_dir(), "template"), 123)

  def setUp(self):
    super().setUp()
    self.root = self.create_tempdir().full_path
    self.servers = []

  def tearDown(self):
    for server in self.servers:
      server.stop()
    super().tearDown()

  def _start(self, *args):
    server = util.ServerProcess.start(self.root, args)
    self.servers.append(server)
    return server

  def _predict_version(self, server, model):
    stub = prediction_service_pb2_grpc.PredictionServiceStub(server.channel())
    request = predict_pb2.PredictRequest()
    request.model_spec.name = model
    request.inputs["x"].CopyFrom(tf.make_tensor_proto(np.array([2.0], np.float32)))
    response = stub.Predict(request, timeout=30)
    self.assertAllClose(tf.make_ndarray(response.outputs["y"]), [3.0])
    return response.model_spec.version.value

  def _reload(self, server, config):
    stub = model_service_pb2_grpc.ModelServiceStub(server.channel())
    return stub.HandleReloadConfigRequest(
        model_management_pb2.ReloadConfigRequest(config=config), timeout=120)

  def _run_to_exit(self, *args):
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p))
    result = subprocess.run(
        [sys.executable, "-m", "tensorflow_serving.model_servers.main", *args],
        capture_output=True, env=env, timeout=120, check=False)
    return result.returncode, result.stdout.decode() + result.stderr.decode()

  def test_start_up_errors_name_the_culprit(self):
    port = util.pick_unused_ports(1)[0]
    # The ports open only after the model has loaded, so the model is a real one.
    base = f"--model_base_path={os.path.dirname(self.template)}"
    taken = socket.socket()
    taken.bind(("0.0.0.0", 0))
    taken.listen()
    self.addCleanup(taken.close)
    taken_port = taken.getsockname()[1]
    cases = [
        ([base, f"--rest_api_port={taken_port}"], f"cannot listen for HTTP/REST on port {taken_port}"),
        ([base, f"--port={taken_port}"], f"cannot listen for gRPC on 0.0.0.0:{taken_port}"),
        (["--mixed_precision=bfloat16", base],
         "--mixed_precision=bfloat16: this TensorFlow Serving flag is accepted only at its "
         "default"),
        ([f"--model_config_file={self.root}/absent.config"], "cannot read --model_config_file"),
        ([base, "--custom_op_library_paths=/no/such/ops.so"], "'/no/such/ops.so' is not a file"),
        ([base, f"--port={port}", f"--rest_api_port={port}"], "equals --port"),
        ([base, f"--ssl_config_file={self.root}/absent.ssl"], "cannot read --ssl_config_file"),
    ]
    for args, message in cases:
      code, output = self._run_to_exit(f"--port={port}", *args)
      self.assertEqual(code, 255, args)
      self.assertIn("Failed to start server. Error: ", output, args)
      self.assertIn(message, output, args)

  def test_versions_come_and_go(self):
    base = os.path.join(self.root, "m")
    util.copy_version(self.template, base, 1)
    server = self._start("--model_name=m", f"--model_base_path={base}",
                         "--file_system_poll_wait_seconds=1", "--max_num_load_retries=0")
    server.wait_until_available("m", [1])
    self.assertEqual(self._predict_version(server, "m"), 1)

    # A new version replaces the old one under the default `latest` policy.
    util.copy_version(self.template, base, 2)
    server.wait_for("m", lambda s: s == {1: State.END, 2: State.AVAILABLE}, "replaced by 2")
    self.assertEqual(self._predict_version(server, "m"), 2)

    # A broken newer version fails alone; version 2 keeps serving.
    util.write_broken_version(base, 3)
    states = server.wait_for("m", lambda s: s.get(3) == State.END, "failed in version 3")
    self.assertEqual(states[2], State.AVAILABLE)
    self.assertEqual(self._predict_version(server, "m"), 2)
    _, body = util.curl("GET", server.rest_url + "/v1/models/m/versions/3")
    self.assertIn("saved_model.pb", body)

    # Fixing the broken version (it disappears, then comes back) loads it.
    shutil.rmtree(os.path.join(base, "3"))
    server.wait_for("m", lambda s: 3 not in s and s.get(2) == State.AVAILABLE,
                    "rid of the failed version 3")
    util.copy_version(self.template, base, 3)
    server.wait_for("m", lambda s: s.get(3) == State.AVAILABLE and s.get(2) == State.END,
                    "serving the repaired version 3")
    self.assertEqual(self._predict_version(server, "m"), 3)
    self.assertEqual(server.stop(signal.SIGINT), 0)

  def test_config_reloads(self):
    first, second = os.path.join(self.root, "first"), os.path.join(self.root, "second")
    util.copy_version(self.template, first, 1)
    util.copy_version(self.template, second, 7)
    config_path = util.write_config(os.path.join(self.root, "models.config"),
                                    util.server_config(util.model_config("first", first)))
    server = self._start(f"--model_config_file={config_path}",
                         "--model_config_file_poll_wait_seconds=1")
    server.wait_until_available("first")

    # HandleReloadConfigRequest answers once the new models are loaded.
    response = self._reload(server, util.server_config(
        util.model_config("first", first), util.model_config("second", second, labels={"prod": 7})))
    self.assertEqual(response.status.error_code, 0)
    self.assertEqual(server.version_states("second"), {7: State.AVAILABLE})
    self.assertEqual(self._predict_version(server, "second"), 7)

    for config, code, fragment in [
        (util.server_config(util.model_config("second", second, labels={"prod": 8})),
         grpc.StatusCode.FAILED_PRECONDITION, "version 8"),
        (util.server_config(util.model_config("dup", first), util.model_config("dup", second)),
         grpc.StatusCode.INVALID_ARGUMENT, "more than once"),
        (util.model_server_config_pb2.ModelServerConfig(), grpc.StatusCode.INVALID_ARGUMENT,
         "model_config_list"),
    ]:
      with self.assertRaises(grpc.RpcError) as raised:
        self._reload(server, config)
      self.assertEqual(raised.exception.code(), code)
      self.assertIn(fragment, raised.exception.details())

    # Rewriting the config file is picked up by polling; "first" goes away.
    util.write_config(config_path, util.server_config(util.model_config("second", second)))
    server.wait_for("first", lambda s: s == {1: State.END}, "unloaded")
    self.assertEqual(self._predict_version(server, "second"), 7)
    self.assertEqual(server.stop(), 0)


if __name__ == "__main__":
  tf.test.main()
