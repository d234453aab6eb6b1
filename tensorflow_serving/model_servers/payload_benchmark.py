"""Prints what large payloads cost the model server: REST vs gRPC time, peak memory.

  tools/bazel run //tensorflow_serving/model_servers:payload_benchmark -- [--gib=1]

1. Predict on half_plus_two with 1M float32 values, over gRPC (packed TensorProto)
   and over REST (row-format JSON): median wall time of each, and their ratio.
2. A --gib GiB float32 gRPC round trip on a fresh server: the server's peak RSS
   (VmHWM) before and after, and the growth as a multiple of the payload.
Figures only; nothing is asserted.
"""

import http.client
import os
import statistics
import sys
import tempfile
import time

from absl import app
from absl import flags
import grpc
import numpy as np
import tensorflow as tf

from tensorflow_serving.apis import predict_pb2
from tensorflow_serving.apis import prediction_service_pb2_grpc
from tensorflow_serving.model_servers import json_tensor
from tensorflow_serving.model_servers import model_server_test_util as util

_GIB = flags.DEFINE_float("gib", 1.0, "Size of the large round trip, in GiB.")
_RUNS = flags.DEFINE_integer("runs", 5, "Timed runs per transport.")
_ELEMENTS = 1 << 20


def _vm_hwm_bytes(pid: int) -> int:
  with open(f"/proc/{pid}/status") as f:
    for line in f:
      if line.startswith("VmHWM:"):
        return int(line.split()[1]) * 1024
  raise RuntimeError("no VmHWM")


def _request(values: np.ndarray) -> predict_pb2.PredictRequest:
  request = predict_pb2.PredictRequest()
  request.model_spec.name = "half_plus_two"
  tensor = request.inputs["x"]
  tensor.dtype = tf.float32.as_datatype_enum
  tensor.tensor_shape.dim.add().size = values.size
  tensor.tensor_content = values.tobytes()
  return request


def _start(root: str, model_dir: str) -> util.ServerProcess:
  server = util.ServerProcess.start(root, [
      "--model_name=half_plus_two", f"--model_base_path={model_dir}",
      "--rest_api_timeout_in_ms=600000"])
  server.wait_until_available("half_plus_two")
  return server


def _median_seconds(call, runs: int) -> float:
  call()  # Warm-up.
  times = []
  for _ in range(runs):
    started = time.perf_counter()
    call()
    times.append(time.perf_counter() - started)
  return statistics.median(times)


def _rest_vs_grpc(server: util.ServerProcess, runs: int) -> None:
  values = (np.arange(_ELEMENTS, dtype=np.float32) / 7).astype(np.float32)
  stub = prediction_service_pb2_grpc.PredictionServiceStub(grpc.insecure_channel(
      server.grpc_address, options=[("grpc.max_receive_message_length", -1),
                                    ("grpc.max_send_message_length", -1)]))
  request = _request(values)
  grpc_seconds = _median_seconds(lambda: stub.Predict(request, timeout=600), runs)
  body = json_tensor.predict_response({"instances": values}, json_tensor.COLUMNAR)
  body = body.replace('{"outputs": ', '{"instances": ', 1).encode("utf-8")

  def rest():
    connection = http.client.HTTPConnection("127.0.0.1", server.rest_port, timeout=600)
    connection.request("POST", "/v1/models/half_plus_two:predict", body,
                       {"Content-Type": "application/json"})
    response = connection.getresponse()
    payload = response.read()
    connection.close()
    if response.status != 200:
      raise RuntimeError(f"REST predict failed: {response.status} {payload[:200]!r}")

  rest_seconds = _median_seconds(rest, runs)
  print(f"1M float32 predict: gRPC {grpc_seconds * 1000:.0f} ms | REST "
        f"{rest_seconds * 1000:.0f} ms ({len(body) / 1e6:.1f} MB JSON) | REST/gRPC "
        f"{rest_seconds / grpc_seconds:.2f}")


def _large_round_trip(root: str, model_dir: str, gib: float) -> None:
  server = _start(root, model_dir)
  try:
    count = int(gib * (1 << 30)) // 4
    stub = prediction_service_pb2_grpc.PredictionServiceStub(grpc.insecure_channel(
        server.grpc_address, options=[("grpc.max_receive_message_length", -1),
                                      ("grpc.max_send_message_length", -1)]))
    stub.Predict(_request(np.ones(4, np.float32)), timeout=60)
    before = _vm_hwm_bytes(server.process.pid)
    request = _request(np.ones(count, np.float32))
    payload = count * 4
    started = time.perf_counter()
    response = stub.Predict(request, timeout=1200)
    seconds = time.perf_counter() - started
    del response, request
    after = _vm_hwm_bytes(server.process.pid)
    print(f"{payload / (1 << 30):.2f} GiB float32 gRPC round trip: {seconds:.1f} s | server "
          f"peak RSS {before / (1 << 20):.0f} MiB idle -> {after / (1 << 20):.0f} MiB | growth "
          f"{(after - before) / payload:.2f}x payload, peak {after / payload:.2f}x payload")
  finally:
    server.stop()


def main(argv) -> int:
  del argv
  root = tempfile.mkdtemp(prefix="payload_benchmark_")
  model_dir = os.path.join(root, "half_plus_two")
  util.export_half_plus_two(model_dir, 123)
  server = _start(root, model_dir)
  try:
    _rest_vs_grpc(server, _RUNS.value)
  finally:
    server.stop()
  _large_round_trip(root, model_dir, _GIB.value)
  sys.stdout.flush()
  return 0


if __name__ == "__main__":
  app.run(main)
