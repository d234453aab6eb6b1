"""Section 3: throughput of a float32 tensor sent to the identity model and returned.

MB/s is the tensor's size (10^6 bytes) over the round trip's time: a 64 MiB tensor at
1000 MB/s makes the round trip, both directions, in 67 ms. Three ways: the op with its
packed encoding (TensorProto.tensor_content), the op with upstream's typed repeated
fields (float_val), and the tensorflow-serving-api client from Python. The gRPC floor's
echo of the Python client's serialized request is what grpcio alone allows.
"""

import numpy as np
import tensorflow as tf

from tensorflow_serving.experimental.benchmarks import callers
from tensorflow_serving.experimental.benchmarks import deployment
from tensorflow_serving.experimental.benchmarks import models
from tensorflow_serving.experimental.benchmarks import report as report_lib
from tensorflow_serving.experimental.benchmarks import settings as settings_lib
from tensorflow_serving.experimental.benchmarks import timing

KEY = "payload"
PACKED = "op packed MB/s"
FIELD = "op field MB/s"
PYTHON = "Python client MB/s"
ECHO = "grpcio echo MB/s (floor)"
PACKED_VS_FIELD = "packed / field"


def run(servers: deployment.Servers, settings: settings_lib.Settings,
        report: report_lib.Report) -> None:
  section = report.section(KEY, "3. Payload sweep: float32 tensor to the model server's identity and back",
                           [PACKED, FIELD, PYTHON, ECHO, PACKED_VS_FIELD])
  section.notes.append("MB/s = tensor bytes (10^6) / round-trip time; median call per "
                       "repetition")
  address = servers.model_server.grpc_address
  python_client = callers.PythonClient(address)
  echo_client = callers.EchoClient(servers.grpc_echo.address)
  rng = np.random.default_rng(0)
  try:
    for size in settings.payload_bytes:
      row = settings_lib.size_label(size)
      array = rng.standard_normal(size // 4, dtype=np.float32)
      x = tf.constant(array)
      ways = {
          PACKED: callers.op_function(address, [models.IDENTITY], x, packed=True),
          FIELD: callers.op_function(address, [models.IDENTITY], x, packed=False),
          PYTHON: python_client.caller(models.IDENTITY, array),
          ECHO: echo_client.caller(callers.predict_request(models.IDENTITY, array)),
      }
      for _ in range(settings.payload_repetitions(size)):
        seconds = {}
        for column, call in ways.items():
          durations = timing.time_calls(call, max_calls=settings.payload_calls,
                                        max_seconds=settings.payload_seconds)
          seconds[column] = float(np.median(durations))
          section.figure(row, column, "MB/s").add(size / 1e6 / seconds[column])
        section.figure(row, PACKED_VS_FIELD, "ratio").add(seconds[FIELD] / seconds[PACKED])
      del ways, x, array
  finally:
    python_client.close()
    echo_client.close()
  largest = settings_lib.size_label(64 * settings_lib.MIB)
  report.add_target(report_lib.Target(
      "[7] 64 MiB round trip, op packed >= 1 GB/s (model server)", KEY, largest, PACKED, ">=", 1000.0))
  report.add_target(report_lib.Target(
      "[7] 64 MiB round trip, op packed >= 5 x op field (model server)", KEY, largest, PACKED_VS_FIELD, ">=",
      5.0))
