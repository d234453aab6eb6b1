"""Section 5: the sharded embedding example's master model, for N = 1, 2, 4, 8 shards.

Deploys the example (shards spread over two model servers, masters on the first),
checks every master against tf.gather on the full table, then times lookups of a batch
of random ids from a Python gRPC client. The single shard called directly, without a
master, is the baseline the op's hop adds to.
"""

import os

import grpc
import numpy as np

from tensorflow_serving.apis import prediction_service_pb2_grpc
from tensorflow_serving.experimental.benchmarks import report as report_lib
from tensorflow_serving.experimental.benchmarks import settings as settings_lib
from tensorflow_serving.experimental.benchmarks import stats
from tensorflow_serving.experimental.benchmarks import timing
from tensorflow_serving.experimental.example import sharded_embedding

KEY = "sharded_embedding"
P50, P99, RATIO = "p50 ms", "p99 ms", "p50 / p50(N=1)"
_SEED = 0


def row_name(num_shards: int) -> str:
  return f"master, N = {num_shards}"


DIRECT = "shard 0 of 1 called directly (no op)"


def run(work_dir: str, settings: settings_lib.Settings, report: report_lib.Report) -> None:
  section = report.section(KEY, "5. Sharded embedding: master model latency by shard count",
                           [P50, P99, RATIO])
  table = sharded_embedding.make_table(settings.embedding_vocab_size, settings.embedding_dim,
                                       _SEED)
  section.notes.append(
      f"table {table.shape[0]} x {table.shape[1]} float32, {settings.embedding_batch_size} "
      "random ids per request, shards over two model servers, Python gRPC client")
  deploy_dir = os.path.join(work_dir, "sharded_embedding")
  os.makedirs(deploy_dir, exist_ok=True)
  counts = tuple(settings.shard_counts)
  with sharded_embedding.deploy(deploy_dir, table, counts, num_servers=2,
                                log_dir=os.path.join(deploy_dir, "logs")) as deployment:
    with grpc.insecure_channel(deployment.master_address) as channel:
      stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
      models = {row_name(n): sharded_embedding.master_model_name(n) for n in counts}
      if 1 in counts:
        models[DIRECT] = sharded_embedding.shard_model_name(0, 1)
      for n in counts:
        sharded_embedding.check_master(stub, n, table, _SEED)
      rng = np.random.default_rng(_SEED)
      ids = rng.integers(0, settings.embedding_vocab_size, settings.embedding_batch_size)
      latencies = {row: stats.Latency() for row in models}
      for _ in range(settings.repetitions):
        for row, model in models.items():
          latencies[row].add_repetition(timing.time_calls(
              lambda m=model: sharded_embedding.lookup(stub, m, ids),
              max_calls=settings.latency_calls, max_seconds=settings.latency_seconds,
              warmup_calls=settings.warmup_calls))
  for row, latency in latencies.items():
    section.rows[row] = {P50: latency.p50, P99: latency.p99}
  if 1 in counts:
    for row, latency in latencies.items():
      ratio = section.figure(row, RATIO, "ratio")
      for mine, one in zip(latency.p50.repetitions, latencies[row_name(1)].p50.repetitions):
        ratio.add(mine / one)
