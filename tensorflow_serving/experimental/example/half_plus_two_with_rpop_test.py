"""half_plus_two_with_rpop's exporter and both clients against a live model server.

One server serves half_plus_two and half_plus_two_with_rpop for the whole class; the
exporter and the clients run as the README runs them, as separate programs.
"""

import os
import subprocess
import tempfile
from typing import List

from absl import logging
from absl.testing import absltest
import grpc
import tensorflow as tf

from tensorflow_serving.apis import predict_pb2
from tensorflow_serving.apis import prediction_service_pb2_grpc
from tensorflow_serving.experimental.example import model_server_process
from tensorflow_serving.experimental.example import remote_predict_nodes

_EXAMPLE = "tensorflow_serving/experimental/example"
_PROGRAM_TIMEOUT_S = 120


def _run(program: str, *args: str) -> subprocess.CompletedProcess:
  """Runs one of this package's binaries; the result carries its merged output."""
  path = model_server_process.runfiles_path(os.path.join(_EXAMPLE, program))
  return subprocess.run([path, *args], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                        text=True, timeout=_PROGRAM_TIMEOUT_S, check=False)


class HalfPlusTwoWithRpopTest(absltest.TestCase):

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    # The exporters' progress lines would bury the test log.
    logging.set_verbosity(logging.WARNING)
    tf.get_logger().setLevel("ERROR")
    cls.work_dir = tempfile.mkdtemp(dir=absltest.TEST_TMPDIR.value)
    cls.server = model_server_process.ModelServer(
        model_config_file=os.path.join(cls.work_dir, "models.config"),
        label="half_plus_two_with_rpop_test_server")
    # Exported by the binary, as the README's guide does it.
    cls.rpop_dir = os.path.join(cls.work_dir, "half_plus_two_with_rpop")
    export = _run("half_plus_two_with_rpop", f"--output_dir={cls.rpop_dir}",
                  f"--target_address={cls.server.grpc_address}", "--version=7")
    if export.returncode != 0:
      raise AssertionError(f"half_plus_two_with_rpop failed:\n{export.stdout}")
    cls.export_output = export.stdout
    half_plus_two_dir = os.path.join(cls.work_dir, "half_plus_two")
    model_server_process.export_half_plus_two(half_plus_two_dir)
    model_server_process.write_model_config(
        os.path.join(cls.work_dir, "models.config"),
        {"half_plus_two": half_plus_two_dir, "half_plus_two_with_rpop": cls.rpop_dir})
    cls.addClassCleanup(cls.server.stop)
    cls.server.start()
    cls.server.wait_until_available(["half_plus_two", "half_plus_two_with_rpop"])

  def _predict(self, model: str, x: List[float], shape: List[int]) -> tf.Tensor:
    request = predict_pb2.PredictRequest()
    request.model_spec.name = model
    request.inputs["x"].CopyFrom(tf.make_tensor_proto(x, dtype=tf.float32, shape=shape))
    with grpc.insecure_channel(self.server.grpc_address) as channel:
      response = prediction_service_pb2_grpc.PredictionServiceStub(channel).Predict(
          request, timeout=30)
    return tf.make_ndarray(response.outputs["y"])

  def test_exporter_writes_the_version_with_a_remote_predict_op(self):
    version_dir = os.path.join(self.rpop_dir, "7")
    self.assertIn(version_dir, self.export_output)
    [node] = remote_predict_nodes.remote_predict_nodes(version_dir)
    self.assertEqual(node.attr["model_name"].s, b"half_plus_two")
    self.assertEqual(node.attr["target_address"].s, self.server.grpc_address.encode())

  def test_batches_compute_half_x_plus_three(self):
    y = self._predict("half_plus_two_with_rpop", [1.0, 2.0, 5.0, -4.0], [4])
    self.assertEqual(y.tolist(), [3.5, 4.0, 5.5, 1.0])

  def test_empty_batch(self):
    y = self._predict("half_plus_two_with_rpop", [], [0])
    self.assertEqual(y.shape, (0,))

  def test_half_plus_two_with_rpop_client_prints_8(self):
    result = _run("half_plus_two_with_rpop_client", f"--server={self.server.grpc_address}")
    self.assertEqual(result.returncode, 0, result.stdout)
    self.assertIn("y: [8.0]", result.stdout)

  def test_half_plus_two_with_rpop_client_reports_a_missing_model(self):
    result = _run("half_plus_two_with_rpop_client", f"--server={self.server.grpc_address}",
                  "--model_name=no_such_model")
    self.assertEqual(result.returncode, 1, result.stdout)
    self.assertIn("NOT_FOUND", result.stdout)
    self.assertIn("no_such_model", result.stdout)

  def test_remote_predict_client_calls_half_plus_two(self):
    result = _run("remote_predict_client", f"--target_address={self.server.grpc_address}",
                  "--model_name=half_plus_two", "--input_tensors=[[2.0], [4.0]]",
                  "--max_rpc_deadline_millis=20000")
    self.assertEqual(result.returncode, 0, result.stdout)
    self.assertIn("status_code: 0", result.stdout)
    self.assertIn("y: float32 [2, 1] [[3.0], [4.0]]", result.stdout)

  def test_remote_predict_client_reports_rpc_errors_as_status(self):
    result = _run("remote_predict_client", f"--target_address={self.server.grpc_address}",
                  "--model_name=no_such_model", "--nofail_op_on_rpc_error")
    self.assertEqual(result.returncode, 1, result.stdout)
    self.assertIn(f"status_code: {grpc.StatusCode.NOT_FOUND.value[0]}", result.stdout)
    self.assertIn("no_such_model", result.stdout)


if __name__ == "__main__":
  absltest.main()
