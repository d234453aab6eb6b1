"""Section 4b: model server gRPC throughput with and without --enable_batching.

The same closed-loop load as section 4, on half_plus_two, against two model servers
that differ only in --enable_batching (TF Serving's default BatchingParameters). The
ratio says what merging concurrent requests into one session run buys at each
concurrency; both servers alternate within each repetition.
"""

import numpy as np

from tensorflow_serving.experimental.benchmarks import callers
from tensorflow_serving.experimental.benchmarks import deployment
from tensorflow_serving.experimental.benchmarks import load
from tensorflow_serving.experimental.benchmarks import models
from tensorflow_serving.experimental.benchmarks import report as report_lib
from tensorflow_serving.experimental.benchmarks import settings as settings_lib
from tensorflow_serving.experimental.benchmarks import throughput

KEY = "model_server_batching"
WITHOUT, WITH, RATIO = "QPS without batching", "QPS with batching", "with / without"
TARGET = report_lib.Target(
    "[14.5a] model server gRPC QPS at concurrency 32 with --enable_batching >= 2 x without",
    KEY, throughput.row_name("gRPC", 32), RATIO, ">=", 2.0)


def run(servers: deployment.Servers, settings: settings_lib.Settings,
        report: report_lib.Report) -> None:
  section = report.section(KEY, "4b. Model server gRPC throughput, --enable_batching",
                           [WITHOUT, WITH, RATIO])
  section.notes.append("half_plus_two, 3 values per request; the same model server flags "
                       "but --enable_batching (TF Serving's default batching parameters)")
  payload = callers.predict_request(models.HALF_PLUS_TWO,
                                    np.asarray(throughput.X, np.float32))
  bounds = dict(max_requests=settings.throughput_max_requests,
                max_seconds=settings.throughput_seconds,
                warmup_seconds=settings.throughput_warmup_seconds)
  for _ in range(settings.throughput_repetitions):
    for concurrency in settings.concurrencies:
      row = throughput.row_name("gRPC", concurrency)
      without = load.grpc_qps(servers.model_server.grpc_address,
                              deployment.PREDICT_METHOD_PATH, payload,
                              concurrency=concurrency, **bounds)
      batched = load.grpc_qps(servers.batching_model_server.grpc_address,
                              deployment.PREDICT_METHOD_PATH, payload,
                              concurrency=concurrency, **bounds)
      section.figure(row, WITHOUT, "requests/s").add(without)
      section.figure(row, WITH, "requests/s").add(batched)
      section.figure(row, RATIO, "ratio").add(batched / without)
