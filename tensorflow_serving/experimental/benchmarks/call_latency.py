"""Section 1: latency of one call to half_plus_two, every way, side by side.

Each repetition times every way in turn, so drift on a shared machine hits all of them
alike; ratios and differences are taken within a repetition, then their median is
reported.

The model server rows compare the op with its peers on a real model. The C-core rows
take the op apart: against c_core_predict_server's canned Predict (C++ on gRPC's C
core, costing almost nothing) what remains is the client side; the C-core client loop
calling the same server is the floor of one call on this machine; an empty tf.function
is what calling any tf.function costs. So

  op overhead = p50(op -> C-core canned) - p50(empty tf.function)

is what the op itself adds to a graph, to be compared with the C-core client's p50.
tf.distribute.experimental.rpc speaks its own protocol, not Predict, so it cannot call
the C-core server; it appears against its own server only.
"""

import os
from typing import Callable, List

import numpy as np
import tensorflow as tf

from tensorflow_serving.experimental.benchmarks import c_core_floors
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
OP_C_CORE = "op in tf.function -> C-core canned"
PYTHON_C_CORE = "Python client -> C-core canned"
C_CORE = "C-core client -> C-core canned (floor)"
LOCAL = "tf.function, 0.5 * x + 2 locally, no RPC"
EMPTY = "empty tf.function (returns its input)"
OP_OVERHEAD = "op overhead: op -> C-core canned - empty tf.function"
P50, P99 = "p50 ms", "p99 ms"
VS_PYTHON, VS_TF_RPC = "p50 / Python client", "p50 / TF RPC"
VS_PYTHON_C_CORE = "p50 / Python client -> C-core"
VS_C_CORE = "p50 / C-core floor"
# The model's input, for which the canned Predict's answer is right.
X = list(deployment.CANNED_X)


def _timed(call: Callable[[], object],
           settings: settings_lib.Settings) -> Callable[[], List[float]]:
  return lambda: timing.time_calls(call, max_calls=settings.latency_calls,
                                   max_seconds=settings.latency_seconds,
                                   warmup_calls=settings.warmup_calls)


def c_core_client(address: str, request_file: str, expected_response: bytes,
                  settings: settings_lib.Settings) -> Callable[[], List[float]]:
  """The C-core client loop with the latency section's bounds."""
  return lambda: c_core_floors.client_seconds(
      address, request_file, calls=settings.latency_calls,
      warmup_calls=settings.warmup_calls, max_seconds=settings.latency_seconds,
      expected_response=expected_response)


def run(servers: deployment.Servers, settings: settings_lib.Settings,
        report: report_lib.Report) -> None:
  section = report.section(
      KEY, "1. Call latency, half_plus_two, one call at a time",
      [P50, P99, VS_PYTHON, VS_TF_RPC, VS_PYTHON_C_CORE, VS_C_CORE])
  x = tf.constant(X, dtype=tf.float32)
  x_array = np.asarray(X, np.float32)
  python_client = callers.PythonClient(servers.model_server.grpc_address)
  c_core_python_client = callers.PythonClient(servers.c_core_canned.address)
  echo_client = callers.EchoClient(servers.grpc_echo.address)
  request = callers.predict_request(models.HALF_PLUS_TWO, x_array)
  request_file = os.path.join(servers.work_dir, "half_plus_two_request.pb")
  with open(request_file, "wb") as f:
    f.write(request)

  @tf.function
  def local(x):
    return 0.5 * x + 2.0

  @tf.function
  def empty(x):
    return x

  local(x)
  empty(x)
  expected = 0.5 * x_array + 2.0
  try:
    ways = {
        OP: _timed(callers.op_function(servers.model_server.grpc_address,
                                       [models.HALF_PLUS_TWO], x), settings),
        PYTHON: _timed(python_client.caller(models.HALF_PLUS_TWO, x), settings),
        TF_RPC: _timed(callers.tf_rpc_function(servers.tf_rpc.address, x), settings),
        ECHO: _timed(echo_client.caller(request), settings),
        OP_C_CORE: _timed(callers.op_function(servers.c_core_canned.address,
                                              [models.HALF_PLUS_TWO], x,
                                              expected=expected), settings),
        PYTHON_C_CORE: _timed(c_core_python_client.caller(models.HALF_PLUS_TWO, x),
                              settings),
        C_CORE: c_core_client(servers.c_core_canned.address, request_file,
                              servers.canned_response, settings),
        LOCAL: _timed(lambda: local(x), settings),
        EMPTY: _timed(lambda: empty(x), settings),
    }
    section.notes.append(
        "TF RPC: tf.distribute.experimental.rpc works in TensorFlow "
        f"{tf.__version__}; its server (another process) runs 0.5 * x + 2 as a registered "
        "tf.function; it cannot call a Predict server. The grpcio echo floor sends the "
        "Python client's serialized request. C-core canned: c_core_predict_server "
        f"(C++, {c_core_floors.DEFAULT_THREADS} threads) answers Predict with fixed "
        "bytes; the C-core client is a C++ loop sending the Python client's request bytes.")
    latencies = {name: stats.Latency() for name in ways}
    for _ in range(settings.repetitions):
      for name, timed in ways.items():
        latencies[name].add_repetition(timed())
  finally:
    python_client.close()
    c_core_python_client.close()
    echo_client.close()
  for name, latency in latencies.items():
    section.rows[name] = {P50: latency.p50, P99: latency.p99}
  overhead = section.figure(OP_OVERHEAD, P50, "ms")
  for op, empty_p50 in zip(latencies[OP_C_CORE].p50.repetitions,
                           latencies[EMPTY].p50.repetitions):
    overhead.add(op - empty_p50)
  p50s = {name: latency.p50.repetitions for name, latency in latencies.items()}
  p50s[OP_OVERHEAD] = overhead.repetitions
  ratios = ((VS_PYTHON, PYTHON, (OP, TF_RPC)), (VS_TF_RPC, TF_RPC, (OP, PYTHON)),
            (VS_PYTHON_C_CORE, PYTHON_C_CORE, (OP_C_CORE, PYTHON_C_CORE)),
            (VS_C_CORE, C_CORE, (OP_C_CORE, PYTHON_C_CORE, OP_OVERHEAD, EMPTY)))
  for column, reference, rows in ratios:
    for row in rows:
      ratio = section.figure(row, column, "ratio")
      for mine, theirs in zip(p50s[row], p50s[reference]):
        ratio.add(mine / theirs)
  report.add_target(report_lib.Target(
      "[7] op p50 <= 0.9 x Python client p50 (model server)", KEY, OP, VS_PYTHON, "<=", 0.9))
  report.add_target(report_lib.Target(
      "[7] op p50 <= 1.0 x tf.distribute.experimental.rpc p50", KEY, OP, VS_TF_RPC, "<=", 1.0))
  report.add_target(report_lib.Target(
      "[14.1] op overhead <= 1.3 x C-core client floor p50", KEY, OP_OVERHEAD, VS_C_CORE,
      "<=", 1.3))
  report.add_target(report_lib.Target(
      "[14.2] op -> C-core canned p50 <= 0.8 x Python client -> C-core canned p50", KEY,
      OP_C_CORE, VS_PYTHON_C_CORE, "<=", 0.8))
