"""The op's per-call metrics on a real model server's Prometheus page.

A model served by the model server calls half_plus_two on the same server
through the op; the server's /monitoring/prometheus/metrics page (TensorFlow's
monitoring registry, as a TF Serving server exports it) then counts that call
with its target, model and status, and its latency and sizes.
"""

import json
import os
import re
import tempfile
import urllib.request

import tensorflow as tf

from tensorflow_serving.experimental.example import model_server_process
from tensorflow_serving.experimental.tensorflow.ops.remote_predict.python.ops import remote_predict_ops

_METRICS_PATH = "/monitoring/prometheus/metrics"
_TIMEOUT_S = 60


def _export_caller(base_path: str, target_address: str) -> None:
  """z = half_plus_two(x) at target_address, through the op."""
  v1 = tf.compat.v1
  graph = tf.Graph()
  with graph.as_default():
    x = v1.placeholder(tf.float32, name="x")
    (y,) = remote_predict_ops.run(["x"], [x], ["y"], target_address=target_address,
                                  model_name="half_plus_two", output_types=[tf.float32])
    z = tf.identity(y, name="z")
    with v1.Session(graph=graph) as session:
      builder = v1.saved_model.Builder(os.path.join(base_path, "1"))
      builder.add_meta_graph_and_variables(
          session, [tf.saved_model.SERVING],
          signature_def_map={"serving_default": v1.saved_model.predict_signature_def(
              inputs={"x": x}, outputs={"z": z})})
      builder.save()


def _http(url: str, body: bytes = None) -> str:
  with urllib.request.urlopen(url, data=body, timeout=_TIMEOUT_S) as response:
    return response.read().decode()


class RemotePredictMetricsTest(tf.test.TestCase):

  def test_a_call_through_the_op_shows_on_the_metrics_page(self):
    root = tempfile.mkdtemp(dir=os.environ.get("TEST_TMPDIR"))
    half_plus_two = os.path.join(root, "half_plus_two")
    model_server_process.export_half_plus_two(half_plus_two)
    port, rest_port = model_server_process.pick_unused_ports(2)
    target = f"127.0.0.1:{port}"
    caller = os.path.join(root, "caller")
    _export_caller(caller, target)
    config = model_server_process.write_model_config(
        os.path.join(root, "models.config"), {"half_plus_two": half_plus_two, "caller": caller})
    monitoring = os.path.join(root, "monitoring.config")
    with open(monitoring, "w") as f:
      f.write(f"prometheus_config {{ enable: true path: '{_METRICS_PATH}' }}")

    with model_server_process.ModelServer(
        model_config_file=config, port=port, rest_api_port=rest_port, log_dir=root,
        extra_args=[f"--monitoring_config_file={monitoring}"]) as server:
      server.wait_until_available(["half_plus_two", "caller"])
      answer = json.loads(_http(f"{server.rest_url}/v1/models/caller:predict",
                                json.dumps({"instances": [1.0, 2.0]}).encode()))
      self.assertEqual(answer["predictions"], [2.5, 3.0])
      page = _http(f"{server.rest_url}{_METRICS_PATH}")

    labels = f'target="{target}",model_name="half_plus_two"'
    print("\n".join(line for line in page.splitlines() if "remote_predict" in line
                    and "_bucket" not in line))
    self.assertIn("# TYPE :tensorflow:serving:remote_predict:call_count counter", page)
    self.assertIn(f':tensorflow:serving:remote_predict:call_count{{{labels},status="OK"}} 1\n',
                  page)
    self.assertIn(f":tensorflow:serving:remote_predict:latency_count{{{labels}}} 1\n", page)
    self.assertIn(
        f':tensorflow:serving:remote_predict:latency_bucket{{{labels},le="+Inf"}} 1\n', page)
    for counter in ("request_bytes", "response_bytes"):
      found = re.search(rf":tensorflow:serving:remote_predict:{counter}\{{{re.escape(labels)}\}} "
                        r"(\d+)\n", page)
      self.assertIsNotNone(found, f"no {counter} sample for {labels}")
      self.assertGreater(int(found.group(1)), 0)
    # The server's own metrics are listed once, not again from TensorFlow's registry.
    self.assertEqual(page.count("# TYPE :tensorflow:serving:request_count "), 1)


if __name__ == "__main__":
  tf.test.main()
