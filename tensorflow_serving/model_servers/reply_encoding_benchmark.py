"""Prints how fast Predict replies are encoded: typed fields, tensor_content, value by value.

  tools/bazel run //tensorflow_serving/model_servers:reply_encoding_benchmark -- --mib=64

For each dtype, the best of three fills of one TensorProto with a MIB-sized tensor:
tensor_protos.fill_tensor_proto into the typed field (the default reply),
with as_tensor_content (--enable_serialization_as_tensor_content), and protobuf's own
RepeatedField.extend(array.tolist()) as the value-by-value reference.
"""

import time

from absl import app
from absl import flags
import numpy as np

from tensorflow.core.framework import tensor_pb2
from tensorflow_serving.model_servers import tensor_protos

_MIB = flags.DEFINE_integer("mib", 64, "Size of each tensor, in MiB.")

# (dtype, typed field, value range)
_CASES = [
    (np.float32, "float_val", (-1e6, 1e6)),
    (np.float64, "double_val", (-1e6, 1e6)),
    (np.int32, "int_val", (0, 100)),
    (np.int64, "int64_val", (0, 1 << 20)),
    (np.int64, "int64_val", (-500, 500)),
    (np.float16, "half_val", (-100, 100)),
]


def _best_seconds(fill, repeats: int = 3) -> float:
  best = float("inf")
  for _ in range(repeats):
    started = time.perf_counter()
    fill()
    best = min(best, time.perf_counter() - started)
  return best


def main(argv):
  del argv
  rng = np.random.default_rng(0)
  print(f"{'dtype':8} {'values':>14}  {'typed field':>12} {'tensor_content':>15} "
        f"{'value by value':>15}   (MiB/s)")
  for dtype, field, (low, high) in _CASES:
    count = (_MIB.value << 20) // np.dtype(dtype).itemsize
    array = rng.uniform(low, high, count).astype(dtype)
    values = array.view(np.uint16) if dtype == np.float16 else array
    mib = array.nbytes / (1 << 20)
    typed = _best_seconds(lambda: tensor_protos.fill_tensor_proto(tensor_pb2.TensorProto(), array))
    packed = _best_seconds(lambda: tensor_protos.fill_tensor_proto(
        tensor_pb2.TensorProto(), array, as_tensor_content=True))
    one_by_one = _best_seconds(
        lambda: getattr(tensor_pb2.TensorProto(), field).extend(values.tolist()), repeats=1)
    print(f"{np.dtype(dtype).name:8} {f'{low}..{high}':>14}  {mib / typed:12.0f} "
          f"{mib / packed:15.0f} {mib / one_by_one:15.0f}")


if __name__ == "__main__":
  app.run(main)
