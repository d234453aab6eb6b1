"""Section 3b: float32 tensors through the C-core echo and back, with the caller's memory.

The op (in a tf.function, packed tensor_content and upstream's per-field float_val)
sends a tensor to c_core_predict_server's echo, which answers with the request's
inputs as outputs without copying them (C++ on gRPC's C core): what is left is the
op's own cost of moving the bytes. The C-core client loop sending the same request is
the floor. MB/s is the tensor's size (10^6 bytes) over the round trip's time.

Memory is the calling process's (this benchmark's): its peak resident size during the
timed calls (reset just before them), less its resident size before the input tensor
existed. It therefore counts the input tensor, the returned tensor and every buffer
the round trip holds at its peak; "/ payload" divides it by the tensor's size.
"""

import gc
import os

import numpy as np
import tensorflow as tf

from tensorflow_serving.experimental.benchmarks import c_core_floors
from tensorflow_serving.experimental.benchmarks import callers
from tensorflow_serving.experimental.benchmarks import deployment
from tensorflow_serving.experimental.benchmarks import models
from tensorflow_serving.experimental.benchmarks import peak_memory
from tensorflow_serving.experimental.benchmarks import report as report_lib
from tensorflow_serving.experimental.benchmarks import settings as settings_lib
from tensorflow_serving.experimental.benchmarks import timing

KEY = "payload_c_core"
PACKED = "op packed MB/s"
FIELD = "op field MB/s"
C_CORE = "C-core client MB/s (floor)"
PACKED_VS_FLOOR = "packed / floor"
PACKED_MEMORY = "packed peak MiB"
PACKED_MEMORY_RATIO = "packed peak / payload"
FIELD_MEMORY_RATIO = "field peak / payload"
PROCESS_PEAK = "process peak MiB"
_MIB = float(settings_lib.MIB)


def _input(num_bytes: int) -> tf.Tensor:
  # Made by TensorFlow directly, so no NumPy copy sits beside it.
  return tf.random.stateless_normal([num_bytes // 4], seed=[0, num_bytes],
                                    dtype=tf.float32)


def run(servers: deployment.Servers, settings: settings_lib.Settings,
        report: report_lib.Report) -> None:
  section = report.section(
      KEY, "3b. Payload sweep: float32 tensor through the C-core echo and back",
      [PACKED, FIELD, C_CORE, PACKED_VS_FLOOR, PACKED_MEMORY, PACKED_MEMORY_RATIO,
       FIELD_MEMORY_RATIO, PROCESS_PEAK])
  section.notes.append(
      "MB/s = tensor bytes (10^6) / round-trip time, median call per repetition. "
      "peak = the calling process's peak resident size during the calls less its size "
      "before the input tensor existed (input + output + transient buffers); process "
      "peak = its whole peak resident size (TensorFlow included), packed calls")
  address = servers.c_core_echo.address
  request_file = os.path.join(servers.work_dir, "c_core_payload_request.pb")
  for size in settings.c_core_payload_bytes:
    row = settings_lib.size_label(size)
    # The C-core client's request, written before the baseline is taken.
    with open(request_file, "wb") as f:
      f.write(callers.predict_request(models.IDENTITY, _input(size).numpy()))
    gc.collect()
    baseline = peak_memory.resident_bytes()
    x = _input(size)
    expected = x.numpy()
    ways = {
        PACKED: callers.op_function(address, [models.IDENTITY], x, packed=True,
                                    output_alias=models.INPUT, expected=expected),
        FIELD: callers.op_function(address, [models.IDENTITY], x, packed=False,
                                   output_alias=models.INPUT, expected=expected),
    }
    del expected
    gc.collect()
    for _ in range(settings.payload_repetitions(size)):
      seconds = {}
      for column, call in ways.items():
        peak_memory.reset_peak()
        durations = timing.time_calls(call, max_calls=settings.payload_calls,
                                      max_seconds=settings.payload_seconds)
        peak = peak_memory.peak_resident_bytes()
        seconds[column] = float(np.median(durations))
        growth = (peak - baseline) / _MIB
        if column == PACKED:
          section.figure(row, PACKED_MEMORY, "MiB").add(growth)
          section.figure(row, PROCESS_PEAK, "MiB").add(peak / _MIB)
        section.figure(row, PACKED_MEMORY_RATIO if column == PACKED else FIELD_MEMORY_RATIO,
                       "ratio").add(growth * _MIB / size)
      seconds[C_CORE] = float(np.median(c_core_floors.client_seconds(
          address, request_file, calls=settings.payload_calls, warmup_calls=1,
          max_seconds=settings.payload_seconds)))
      for column, value in seconds.items():
        section.figure(row, column, "MB/s").add(size / 1e6 / value)
      section.figure(row, PACKED_VS_FLOOR, "ratio").add(seconds[C_CORE] / seconds[PACKED])
    del ways, x
    gc.collect()
  os.remove(request_file)
  report.add_target(report_lib.Target(
      "[14.4] 64 MiB op packed <-> C-core echo >= 1 GB/s", KEY,
      settings_lib.size_label(64 * settings_lib.MIB), PACKED, ">=", 1000.0))
  report.add_target(report_lib.Target(
      "[14.4] 256 MiB round trip: calling-process peak <= 3 x payload", KEY,
      settings_lib.size_label(256 * settings_lib.MIB), PACKED_MEMORY_RATIO, "<=", 3.0))
