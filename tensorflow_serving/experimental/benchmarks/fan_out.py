"""Section 2: K Remote Predict Ops in one tf.function, each calling its own model.

The K calls run in parallel, so latency(K) / latency(1) shows what K concurrent calls
cost over one. The same functions also call c_core_predict_server's canned Predict
(C++ on gRPC's C core, --threads as in c_core_floors), a server that costs almost
nothing: there the ratio is the op's own (and the client machine's) scaling, and the
difference to the model server's ratio is the server's.
"""

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

KEY = "fan_out"
P50, P99, RATIO = "p50 ms", "p99 ms", "p50(K) / p50(1)"
C_CORE_P50, C_CORE_P99 = "C-core p50 ms", "C-core p99 ms"
C_CORE_RATIO = "C-core p50(K) / p50(1)"


def row_name(k: int) -> str:
  return f"K = {k}"


def run(servers: deployment.Servers, settings: settings_lib.Settings,
        report: report_lib.Report) -> None:
  section = report.section(KEY, "2. Fan-out: K parallel ops in one graph, K models",
                           [P50, P99, RATIO, C_CORE_P50, C_CORE_P99, C_CORE_RATIO])
  section.notes.append(
      "models half_plus_two_0 .. half_plus_two_{K-1} on one model server; the function "
      "adds the K outputs. C-core: the same calls answered by c_core_predict_server's "
      f"canned Predict ({c_core_floors.DEFAULT_THREADS} threads)")
  fan_outs = sorted(set(settings.fan_outs) | {1})
  x = tf.constant(list(deployment.CANNED_X))
  half_plus_two = 0.5 * np.asarray(deployment.CANNED_X, np.float32) + 2.0
  targets = {"server": servers.model_server.grpc_address,
             "c_core": servers.c_core_canned.address}
  functions = {
      (where, k): callers.op_function(address,
                                      [models.fan_out_model_name(i) for i in range(k)], x,
                                      expected=k * half_plus_two)
      for where, address in targets.items() for k in fan_outs
  }
  latencies = {key: stats.Latency() for key in functions}
  for _ in range(settings.repetitions):
    for key, call in functions.items():
      latencies[key].add_repetition(timing.time_calls(
          call, max_calls=settings.latency_calls, max_seconds=settings.latency_seconds,
          warmup_calls=settings.warmup_calls))
  for k in fan_outs:
    row = row_name(k)
    section.rows[row] = {P50: latencies["server", k].p50, P99: latencies["server", k].p99,
                         C_CORE_P50: latencies["c_core", k].p50,
                         C_CORE_P99: latencies["c_core", k].p99}
    for where, column in (("server", RATIO), ("c_core", C_CORE_RATIO)):
      ratio = section.figure(row, column, "ratio")
      for mine, one in zip(latencies[where, k].p50.repetitions,
                           latencies[where, 1].p50.repetitions):
        ratio.add(mine / one)
  report.add_target(report_lib.Target(
      "[7] fan-out latency(8) / latency(1) <= 1.5 (model server)", KEY, row_name(8), RATIO,
      "<=", 1.5))
  report.add_target(report_lib.Target(
      "[14.3] fan-out p50(8) / p50(1) <= 1.5 against the C-core server", KEY, row_name(8),
      C_CORE_RATIO, "<=", 1.5))
