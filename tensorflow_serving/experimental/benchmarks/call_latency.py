"""Section 1: latency of one call to half_plus_two, four ways, side by side.

Each repetition times every way in turn, so drift on a shared machine hits all of them
alike; ratios are taken within a repetition, then their median is reported.

Three more rows take the comparison apart: the op and the Python client against the
gRPC floor's canned Predict (a server that costs almost nothing, so what remains is the
client side and the transport), and the same computation in a local tf.function (what
calling any tf.function costs, remote call or not).
"""

import numpy as np
import tensorflow as tf

from tensorflow_serving.experimental.benchmarks import callers
from tensorflow_serving.experimental.benchmarks import deployment
from tensorflow_serving.experimental.benchmarks import models
from tensorflow_serving.experimental.benchmarks import report as report_lib
from tensorflow_serving.experimental.benchmarks import settings as settings_lib
from tensorflow_serving.experimental.benchmarks import stats
from tensorflow_serving.experimental.benchmarks import timing

KEY = "call_latency"
OP = "Remote Predict Op in tf.function"
PYTHON = "tensorflow-serving-api client (Python)"
TF_RPC = "tf.distribute.experimental.rpc in tf.function"
ECHO = "bare grpcio echo (floor)"
OP_CANNED = "op in tf.function -> canned Predict"
PYTHON_CANNED = "Python client -> canned Predict"
LOCAL = "tf.function, 0.5 * x + 2 locally, no RPC"
P50, P99 = "p50 ms", "p99 ms"
VS_PYTHON, VS_TF_RPC = "p50 / Python client", "p50 / TF RPC"
# The model's input, for which the canned Predict's answer is right.
X = list(deployment.CANNED_X)


def run(servers: deployment.Servers, settings: settings_lib.Settings,
        report: report_lib.Report) -> None:
  section = report.section(KEY, "1. Call latency, half_plus_two, one call at a time",
                           [P50, P99, VS_PYTHON, VS_TF_RPC])
  x = tf.constant(X, dtype=tf.float32)
  python_client = callers.PythonClient(servers.model_server.grpc_address)
  canned_client = callers.PythonClient(servers.grpc_echo.address)
  echo_client = callers.EchoClient(servers.grpc_echo.address)

  @tf.function
  def local(x):
    return 0.5 * x + 2.0

  local(x)
  try:
    ways = {
        OP: callers.op_function(servers.model_server.grpc_address, [models.HALF_PLUS_TWO], x),
        PYTHON: python_client.caller(models.HALF_PLUS_TWO, x),
        TF_RPC: callers.tf_rpc_function(servers.tf_rpc.address, x),
        ECHO: echo_client.caller(
            callers.predict_request(models.HALF_PLUS_TWO, np.asarray(X, np.float32))),
        OP_CANNED: callers.op_function(servers.grpc_echo.address, [models.HALF_PLUS_TWO], x),
        PYTHON_CANNED: canned_client.caller(models.HALF_PLUS_TWO, x),
        LOCAL: lambda: local(x),
    }
    section.notes.append(
        "TF RPC: tf.distribute.experimental.rpc works in TensorFlow "
        f"{tf.__version__}; its server (another process) runs 0.5 * x + 2 as a registered "
        "tf.function. The echo floor sends the Python client's serialized request. "
        "Canned Predict: the gRPC floor answers Predict with fixed bytes, no model.")
    latencies = {name: stats.Latency() for name in ways}
    for _ in range(settings.repetitions):
      for name, call in ways.items():
        latencies[name].add_repetition(timing.time_calls(
            call, max_calls=settings.latency_calls, max_seconds=settings.latency_seconds,
            warmup_calls=settings.warmup_calls))
    for name, latency in latencies.items():
      section.rows[name] = {P50: latency.p50, P99: latency.p99}
      for column, reference in ((VS_PYTHON, PYTHON), (VS_TF_RPC, TF_RPC)):
        ratio = section.figure(name, column, "ratio")
        for mine, theirs in zip(latency.p50.repetitions,
                                latencies[reference].p50.repetitions):
          ratio.add(mine / theirs)
  finally:
    python_client.close()
    canned_client.close()
    echo_client.close()
  report.add_target(report_lib.Target(
      "op p50 <= 0.9 x Python client p50", KEY, OP, VS_PYTHON, "<=", 0.9))
  report.add_target(report_lib.Target(
      "op p50 <= 1.0 x tf.distribute.experimental.rpc p50", KEY, OP, VS_TF_RPC, "<=", 1.0))
