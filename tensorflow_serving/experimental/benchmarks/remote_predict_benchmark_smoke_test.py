"""Runs the whole benchmark in --quick mode: it must finish, print and write every figure.

No timing is asserted: only that every section measured something positive (the C-core
floors included: their rows exist only if real calls went through them and returned
the right answer), that every target got a verdict, that the table and the JSON agree
on them, and that no server the benchmark started outlives it.
"""

import json
import os
import subprocess

from absl.testing import absltest

_BINARY = os.path.join("tensorflow_serving", "experimental", "benchmarks",
                       "remote_predict_benchmark")
_SECTIONS = ("call_latency", "fan_out", "payload", "payload_c_core", "throughput",
             "model_server_batching", "rest_vs_grpc", "sharded_embedding")
_HELPER_MODULES = ("benchmarks.grpc_echo_server", "benchmarks.http_echo_server",
                   "benchmarks.tf_rpc_server", "benchmarks/c_core_predict_server",
                   "benchmarks/c_core_predict_client")
# Rows and columns that only real calls through the C-core floors can fill.
_C_CORE_FIGURES = (
    ("call_latency", "C-core client -> C-core canned (floor)", "p50 ms"),
    ("call_latency", "op in tf.function -> C-core canned", "p50 ms"),
    ("call_latency", "Python client -> C-core canned", "p50 ms"),
    ("call_latency", "op overhead: op -> C-core canned - empty tf.function",
     "p50 / C-core floor"),
    ("fan_out", "K = 2", "C-core p50(K) / p50(1)"),
    ("payload_c_core", "256 KiB", "op packed MB/s"),
    ("payload_c_core", "256 KiB", "op field MB/s"),
    ("payload_c_core", "256 KiB", "C-core client MB/s (floor)"),
    ("payload_c_core", "256 KiB", "packed peak / payload"),
)


def _binary_path() -> str:
  return os.path.join(os.environ["TEST_SRCDIR"], os.environ["TEST_WORKSPACE"], _BINARY)


def _command_lines():
  for pid in os.listdir("/proc"):
    if pid.isdigit():
      try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
          yield pid, f.read().replace(b"\0", b" ").decode(errors="replace")
      except OSError:
        continue


class RemotePredictBenchmarkSmokeTest(absltest.TestCase):

  def test_quick_run_reports_every_section_and_target(self):
    work_dir = self.create_tempdir("work").full_path
    json_path = os.path.join(self.create_tempdir("out").full_path, "figures.json")
    result = subprocess.run(
        [_binary_path(), "--quick", f"--output_json={json_path}",
         f"--work_dir={work_dir}"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=800)
    self.assertEqual(result.returncode, 0,
                     f"stdout:\n{result.stdout}\nstderr (tail):\n{result.stderr[-5000:]}")

    with open(json_path) as f:
      figures = json.load(f)
    self.assertEqual(list(figures["sections"]), list(_SECTIONS))
    for key, section in figures["sections"].items():
      self.assertNotEmpty(section["rows"], key)
      for row, cells in section["rows"].items():
        for column, figure in cells.items():
          if column.startswith(("packed peak", "field peak")):
            # Memory growth: small payloads may reuse resident memory and grow by 0.
            self.assertGreaterEqual(figure["median"], 0, f"{key} / {row} / {column}")
          else:
            self.assertGreater(figure["median"], 0, f"{key} / {row} / {column}")
    for key, row, column in _C_CORE_FIGURES:
      self.assertIn(column, figures["sections"][key]["rows"][row], f"{key} / {row}")
    self.assertLen(figures["targets"], 13)
    for target in figures["targets"]:
      self.assertIn(target["verdict"], ("met", "missed", "not measured"))
      # The table prints the same verdict for the same target.
      self.assertIn(f"{target['verdict'].upper():^12}] {target['description']}",
                    result.stdout)
    # Quick mode measures neither 64 / 256 MiB, K = 8, concurrency 32 nor 1M values
    # (the last two targets); the rest are judged.
    self.assertEqual(
        [t["verdict"] == "not measured" for t in figures["targets"]],
        [False] * 4 + [True] * 6 + [False] + [True] * 2)
    self.assertIn("not measured in this run", result.stdout)
    for title in ("1. Call latency", "2. Fan-out", "3. Payload sweep", "3b. Payload sweep",
                  "4. Model server throughput", "4b. Model server gRPC throughput",
                  "4c. One Predict", "5. Sharded embedding"):
      self.assertIn(title, result.stdout)

    leftovers = [(pid, line) for pid, line in _command_lines()
                 if work_dir in line or any(m in line for m in _HELPER_MODULES)]
    self.assertEmpty(leftovers, "servers outlived the benchmark")


if __name__ == "__main__":
  absltest.main()
