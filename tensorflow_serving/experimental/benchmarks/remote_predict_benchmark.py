"""Benchmarks the Remote Predict Op against its peers, side by side in one run.

  tools/bazel run //tensorflow_serving/experimental/benchmarks:remote_predict_benchmark \\
      [-- --output_json=/tmp/remote_predict_benchmark.json] [--quick]

Starts every server it needs on 127.0.0.1 (a model server, one with --enable_batching, a bare grpcio echo server,
a bare aiohttp echo server, a tf.distribute.experimental.rpc server, the C-core floor
servers (C++ on gRPC's C core: canned Predict and echo), then the sharded embedding
example's two model servers), measures, stops and reaps them, and prints:

  1. call latency (p50, p99) of half_plus_two: the op in a tf.function, the
     tensorflow-serving-api Python client, tf.distribute.experimental.rpc, a grpcio
     echo; the op, the Python client and the C-core client loop against the C-core
     canned Predict, an empty tf.function, and the op's overhead from them
  2. fan-out: K = 1, 2, 4, 8, 16 parallel ops in one graph, latency(K) / latency(1),
     against the model server and the C-core canned Predict
  3. payload sweep: 4 KiB .. 64 MiB float32 round trips through the model server in
     MB/s, op packed / op field encoding / Python client / grpcio echo
  3b. payload sweep: 4 KiB .. 256 MiB op <-> C-core echo in MB/s (packed and field),
     the C-core client floor, and the calling process's peak memory
  4. model server QPS at concurrency 1, 8, 32 over gRPC and REST, as ratios to the floors
  4b. model server gRPC QPS with and without --enable_batching
  4c. one Predict of 1M float32 values, REST against gRPC
  5. sharded embedding master latency for N = 1, 2, 4, 8 shards

and the issues' targets (issue 7's, marked [7]; issue 14's, [14.N]), each marked met,
missed, or not measured in this run. Every figure is the median of
several repetitions, shown with its spread (half the range, in percent of the median);
warm-up calls are not timed. `--quick` runs every path with tiny bounds (for the smoke
test): its figures mean nothing.
"""

import os
import platform
import shutil
import signal
import sys
import tempfile
import time

from absl import app
from absl import flags
from absl import logging
import grpc
import tensorflow as tf

from tensorflow_serving.experimental.benchmarks import batching_throughput
from tensorflow_serving.experimental.benchmarks import call_latency
from tensorflow_serving.experimental.benchmarks import deployment
from tensorflow_serving.experimental.benchmarks import fan_out
from tensorflow_serving.experimental.benchmarks import payload
from tensorflow_serving.experimental.benchmarks import payload_c_core
from tensorflow_serving.experimental.benchmarks import report as report_lib
from tensorflow_serving.experimental.benchmarks import rest_vs_grpc
from tensorflow_serving.experimental.benchmarks import settings as settings_lib
from tensorflow_serving.experimental.benchmarks import sharded
from tensorflow_serving.experimental.benchmarks import throughput

_OUTPUT_JSON = flags.DEFINE_string("output_json", "",
                                   "Also write every figure and target verdict to this file.")
_QUICK = flags.DEFINE_bool("quick", False, "Tiny bounds for a smoke test; figures mean nothing.")
_SECTIONS = flags.DEFINE_list(
    "sections",
    ["call_latency", "fan_out", "payload", "payload_c_core", "throughput",
     "model_server_batching", "rest_vs_grpc", "sharded_embedding"],
    "Sections to run, in this order.")
_WORK_DIR = flags.DEFINE_string(
    "work_dir", "", "Where models, configs and server logs go; by default a temporary "
    "directory deleted at the end (kept if the run fails, for its logs).")

_ALL_SECTIONS = ("call_latency", "fan_out", "payload", "payload_c_core", "throughput",
                 "model_server_batching", "rest_vs_grpc", "sharded_embedding")
_SERVED_SECTIONS = {
    "call_latency": call_latency.run,
    "fan_out": fan_out.run,
    "payload": payload.run,
    "payload_c_core": payload_c_core.run,
    "throughput": throughput.run,
    "model_server_batching": batching_throughput.run,
    "rest_vs_grpc": rest_vs_grpc.run,
}


def _raise_keyboard_interrupt(signum, frame):
  del frame
  # Once: a second SIGTERM must not cut short the clean-up the first one started.
  signal.signal(signal.SIGTERM, signal.SIG_IGN)
  raise KeyboardInterrupt(f"signal {signum}")


def _environment() -> dict:
  return {
      "tensorflow": tf.__version__,
      "grpcio": grpc.__version__,
      "python": platform.python_version(),
      "cpus": os.cpu_count(),
      "load_average_at_start": os.getloadavg(),
      "machine": platform.machine(),
  }


def _add_model_server_targets(report: report_lib.Report) -> None:
  # Listed even when their sections are not run, so the table says "not measured".
  report.add_target(batching_throughput.TARGET)
  report.add_target(rest_vs_grpc.TARGET)


def _progress(message: str, start: float) -> None:
  print(f"[{time.perf_counter() - start:6.1f} s] {message}", file=sys.stderr, flush=True)


def run(work_dir: str, settings: settings_lib.Settings, sections) -> report_lib.Report:
  report = report_lib.Report(settings.to_json(), _environment())
  start = time.perf_counter()
  served = [s for s in sections if s in _SERVED_SECTIONS]
  if served:
    _progress("exporting models and starting the model server, floors and TF RPC server",
              start)
    with deployment.serve(work_dir, max(settings.fan_outs)) as servers:
      _progress(f"model server at {servers.model_server.grpc_address} (REST "
                f"{servers.model_server.rest_url}), gRPC echo {servers.grpc_echo.address}, "
                f"HTTP echo {servers.http_echo.address}, TF RPC {servers.tf_rpc.address}, "
                f"C-core canned {servers.c_core_canned.address}, C-core echo "
                f"{servers.c_core_echo.address}", start)
      for name in served:
        _progress(f"section {name}", start)
        _SERVED_SECTIONS[name](servers, settings, report)
    _progress("stopped the model server, floors and TF RPC server", start)
  if "sharded_embedding" in sections:
    _progress("section sharded_embedding: exporting and serving shards and masters", start)
    sharded.run(work_dir, settings, report)
  _add_model_server_targets(report)
  _progress("done", start)
  return report


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {argv[1:]}")
  unknown = [s for s in _SECTIONS.value if s not in _ALL_SECTIONS]
  if unknown:
    raise app.UsageError(f"--sections: unknown section(s) {unknown}; choose from "
                         f"{', '.join(_ALL_SECTIONS)}")
  if _OUTPUT_JSON.value:
    # Fail now rather than after ten minutes of measuring.
    directory = os.path.dirname(os.path.abspath(_OUTPUT_JSON.value))
    if not os.path.isdir(directory):
      raise app.UsageError(f"--output_json: directory {directory} does not exist")
  settings = settings_lib.QUICK if _QUICK.value else settings_lib.FULL
  # SavedModel export logs a dozen INFO lines per model, and building one tf.function
  # per fan-out width and payload size draws retracing warnings; progress lines say enough.
  logging.set_verbosity(logging.ERROR)
  tf.get_logger().setLevel("ERROR")
  # SIGTERM unwinds like Ctrl-C, so every server is stopped and reaped.
  signal.signal(signal.SIGTERM, _raise_keyboard_interrupt)
  work_dir = _WORK_DIR.value or tempfile.mkdtemp(prefix="remote_predict_benchmark.")
  os.makedirs(work_dir, exist_ok=True)
  succeeded = False
  try:
    report = run(work_dir, settings, _SECTIONS.value)
    succeeded = True
  except KeyboardInterrupt as e:
    # By now every context manager has stopped and reaped its servers.
    print(f"interrupted ({e or 'Ctrl-C'}); every server the benchmark started was stopped",
          file=sys.stderr)
    sys.exit(130)
  finally:
    if not _WORK_DIR.value:
      if succeeded:
        shutil.rmtree(work_dir, ignore_errors=True)
      else:
        print(f"the run failed; models and server logs are kept in {work_dir}",
              file=sys.stderr)
  mode = "quick, figures mean nothing" if _QUICK.value else "full"
  print(f"\nRemote Predict Op benchmark ({mode}): TensorFlow {tf.__version__}, "
        f"{os.cpu_count()} CPUs, every server on 127.0.0.1")
  print("Each figure: median of repetitions ±half their range (% of median).")
  report.print_tables(sys.stdout)
  if _OUTPUT_JSON.value:
    report.write_json(_OUTPUT_JSON.value)
    print(f"\nwrote {_OUTPUT_JSON.value}")


if __name__ == "__main__":
  app.run(main)
