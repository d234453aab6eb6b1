"""Section 4: model server throughput on half_plus_two against bare echo floors.

Closed-loop load at each concurrency, over gRPC and REST. The floors are a bare grpcio
server and a bare aiohttp server, answering the same request bytes with an echo; the
ratio says how much of what the libraries allow the model server delivers. Model
server and floor alternate within each repetition.
"""

import json

import numpy as np

from tensorflow_serving.experimental.benchmarks import callers
from tensorflow_serving.experimental.benchmarks import deployment
from tensorflow_serving.experimental.benchmarks import grpc_echo_server
from tensorflow_serving.experimental.benchmarks import load
from tensorflow_serving.experimental.benchmarks import models
from tensorflow_serving.experimental.benchmarks import report as report_lib
from tensorflow_serving.experimental.benchmarks import settings as settings_lib

KEY = "throughput"
SERVER, FLOOR, RATIO = "model server QPS", "echo floor QPS", "server / floor"
X = [1.0, 2.0, 5.0]


def row_name(protocol: str, concurrency: int) -> str:
  return f"{protocol}, concurrency {concurrency}"


def run(servers: deployment.Servers, settings: settings_lib.Settings,
        report: report_lib.Report) -> None:
  section = report.section(KEY, "4. Model server throughput, half_plus_two",
                           [SERVER, FLOOR, RATIO])
  section.notes.append("closed loop from one asyncio client process (grpc.aio / aiohttp); "
                       "floors: bare grpcio / aiohttp echo of the same bytes")
  grpc_payload = callers.predict_request(models.HALF_PLUS_TWO, np.asarray(X, np.float32))
  rest_body = json.dumps({"instances": X}).encode()
  bounds = dict(max_requests=settings.throughput_max_requests,
                max_seconds=settings.throughput_seconds,
                warmup_seconds=settings.throughput_warmup_seconds)
  measurements = {}
  for concurrency in settings.concurrencies:
    measurements[row_name("gRPC", concurrency)] = (
        lambda c=concurrency: load.grpc_qps(servers.model_server.grpc_address,
                                            deployment.PREDICT_METHOD_PATH, grpc_payload,
                                            concurrency=c, **bounds),
        lambda c=concurrency: load.grpc_qps(servers.grpc_echo.address,
                                            grpc_echo_server.METHOD_PATH, grpc_payload,
                                            concurrency=c, **bounds))
  for concurrency in settings.concurrencies:
    measurements[row_name("REST", concurrency)] = (
        lambda c=concurrency: load.http_qps(servers.rest_predict_url(models.HALF_PLUS_TWO),
                                            rest_body, concurrency=c, **bounds),
        lambda c=concurrency: load.http_qps(servers.http_echo_url(models.HALF_PLUS_TWO),
                                            rest_body, concurrency=c, **bounds))
  for _ in range(settings.throughput_repetitions):
    for row, (server_qps, floor_qps) in measurements.items():
      served, floor = server_qps(), floor_qps()
      section.figure(row, SERVER, "requests/s").add(served)
      section.figure(row, FLOOR, "requests/s").add(floor)
      section.figure(row, RATIO, "ratio").add(served / floor)
  report.add_target(report_lib.Target(
      "[7, 14.5b] model server gRPC QPS at concurrency 8 >= 0.5 x grpcio echo floor", KEY,
      row_name("gRPC", 8), RATIO, ">=", 0.5))
