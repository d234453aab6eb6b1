"""Section 4c: one Predict of 1M float32 values (fewer in a quick run) over REST against the same over gRPC.

Both go to the identity model on the same model server: gRPC with the tensor packed in
tensor_content, REST as TF Serving's columnar JSON, each answer read whole. The ratio
is what a REST client pays for JSON on both sides of the call.
"""

import http.client
import time
import urllib.parse

import grpc
import numpy as np
import orjson

from tensorflow_serving.experimental.benchmarks import callers
from tensorflow_serving.experimental.benchmarks import deployment
from tensorflow_serving.experimental.benchmarks import models
from tensorflow_serving.experimental.benchmarks import report as report_lib
from tensorflow_serving.experimental.benchmarks import settings as settings_lib

KEY = "rest_vs_grpc"
GRPC_MS, REST_MS, RATIO = "gRPC ms", "REST ms", "REST / gRPC"
_TIMEOUT_S = 600


def row_name(elements: int) -> str:
  return f"{elements} float32"


# The target's row is the full run's 1M values; the quick run sends fewer.
TARGET = report_lib.Target("[14.6] REST predict of 1M float32 <= 5 x the gRPC time", KEY,
                           row_name(1 << 20), RATIO, "<=", 5.0)


def _timed(call) -> float:
  started = time.perf_counter()
  call()
  return (time.perf_counter() - started) * 1000.0


def run(servers: deployment.Servers, settings: settings_lib.Settings,
        report: report_lib.Report) -> None:
  section = report.section(KEY, "4c. One Predict of float32 values, REST vs gRPC",
                           [GRPC_MS, REST_MS, RATIO])
  elements = settings.rest_vs_grpc_elements
  # Multiples of 1/8: exact in float32, so the JSON numbers are the tensor's values.
  values = (np.arange(elements, dtype=np.float32) / 8).astype(np.float32)
  request = callers.predict_request(models.IDENTITY, values)
  body = orjson.dumps({"inputs": {models.INPUT: values.tolist()}})
  section.notes.append(f"identity model; REST body {len(body) / 1e6:.1f} MB of JSON, "
                       f"gRPC request {len(request) / 1e6:.1f} MB")
  channel = grpc.insecure_channel(servers.model_server.grpc_address, options=[
      ("grpc.max_send_message_length", -1), ("grpc.max_receive_message_length", -1)])
  predict = channel.unary_unary(deployment.PREDICT_METHOD_PATH)
  url = urllib.parse.urlparse(servers.rest_predict_url(models.IDENTITY))

  def rest() -> None:
    connection = http.client.HTTPConnection(url.hostname, url.port, timeout=_TIMEOUT_S)
    try:
      connection.request("POST", url.path, body, {"Content-Type": "application/json"})
      response = connection.getresponse()
      answer = response.read()
    finally:
      connection.close()
    if response.status != 200:
      raise RuntimeError(f"REST predict of {elements} values failed: HTTP {response.status} "
                         f"{answer[:200]!r}")

  def grpc_call() -> None:
    predict(request, timeout=_TIMEOUT_S)

  try:
    grpc_call()
    rest()
    row = row_name(elements)
    for _ in range(settings.repetitions):
      grpc_ms, rest_ms = _timed(grpc_call), _timed(rest)
      section.figure(row, GRPC_MS, "ms").add(grpc_ms)
      section.figure(row, REST_MS, "ms").add(rest_ms)
      section.figure(row, RATIO, "ratio").add(rest_ms / grpc_ms)
  finally:
    channel.close()
