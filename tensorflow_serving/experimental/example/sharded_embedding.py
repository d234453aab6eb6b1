"""Sharded embedding lookups: a table split over model servers, reassembled by the op.

The use case the Remote Predict Op exists for: a model too large for one machine. An
embedding table (VOCAB x DIM float32, random with a seed) is split by id modulo N into
N shard models; shard k holds the rows of ids k, k + N, k + 2N, ... and looks up rows
by local index (id // N). A master model takes a batch of ids, checks them, removes
duplicates, routes each id to its shard with one TfServingRemotePredict op per shard
(the N calls run in parallel) and puts the rows back in input order. Shards are spread
over two model server processes; the masters run on the first.

  tools/bazel run //tensorflow_serving/experimental/example:sharded_embedding

exports everything for N = 1, 2, 4, 8 into a temporary directory, starts the two
servers, checks every master against tf.gather on the full table and prints the
per-request latency for each N.

Models (all `serving_default`, input `ids` int64 [batch], output `embeddings`
float32 [batch, DIM]):
  embedding_shard_<k>_of_<N>   ids are local row indices of shard k
  embedding_master_<N>         ids are global ids in [0, VOCAB)
"""

import contextlib
import dataclasses
import os
import shutil
import tempfile
import time
from typing import Dict, Iterator, List, Optional, Sequence, Tuple

from absl import app
from absl import flags
from absl import logging
import grpc
import numpy as np
import tensorflow as tf

from tensorflow_serving.apis import predict_pb2
from tensorflow_serving.apis import prediction_service_pb2_grpc
from tensorflow_serving.experimental.example import model_server_process
from tensorflow_serving.experimental.example import staged_version
from tensorflow_serving.experimental.tensorflow.ops.remote_predict.python.ops import remote_predict_ops

IDS = "ids"
EMBEDDINGS = "embeddings"
VERSION = 1


def shard_model_name(shard: int, num_shards: int) -> str:
  return f"embedding_shard_{shard}_of_{num_shards}"


def master_model_name(num_shards: int) -> str:
  return f"embedding_master_{num_shards}"


def make_table(vocab_size: int, dim: int, seed: int) -> np.ndarray:
  return np.random.default_rng(seed).standard_normal((vocab_size, dim), dtype=np.float32)


class _Shard(tf.Module):
  """Rows k, k + N, k + 2N, ... of the table, looked up by local index."""

  def __init__(self, rows: np.ndarray):
    super().__init__(name="embedding_shard")
    self.rows = tf.Variable(rows, trainable=False, name="rows")

  @tf.function(input_signature=[tf.TensorSpec([None], tf.int64, name=IDS)])
  def lookup(self, ids):
    return {EMBEDDINGS: tf.gather(self.rows, ids)}


class _Master(tf.Module):
  """Routes global ids to the shard models and reassembles their rows."""

  def __init__(self, vocab_size: int, dim: int, shards: Sequence[Tuple[str, str]],
               max_rpc_deadline_millis: int):
    super().__init__(name="embedding_master")
    self._vocab_size = vocab_size
    self._dim = dim
    self._shards = list(shards)  # (target address, model name), indexed by shard
    self._deadline = max_rpc_deadline_millis

  @tf.function(input_signature=[tf.TensorSpec([None], tf.int64, name=IDS)])
  def lookup(self, ids):
    num_shards = len(self._shards)
    out_of_range = tf.boolean_mask(ids, (ids < 0) | (ids >= self._vocab_size))
    check = tf.debugging.Assert(
        tf.equal(tf.size(out_of_range), 0),
        [f"embedding ids must be in [0, {self._vocab_size}); out-of-range ids:", out_of_range],
        summarize=16, name="check_ids_in_range")
    # The remote calls run independently of other stateful ops, so without this
    # dependency a bad id could reach a shard before the check fails.
    with tf.control_dependencies([check]):
      unique_ids, positions = tf.unique(ids)
    shard_of_id = tf.cast(unique_ids % num_shards, tf.int32)
    local_ids = tf.dynamic_partition(unique_ids // num_shards, shard_of_id, num_shards)
    slots = tf.dynamic_partition(tf.range(tf.size(unique_ids)), shard_of_id, num_shards)
    rows = []
    for shard, (address, model_name) in enumerate(self._shards):
      [shard_rows] = remote_predict_ops.run(
          [IDS], [local_ids[shard]], [EMBEDDINGS], target_address=address,
          model_name=model_name, max_rpc_deadline_millis=self._deadline,
          output_types=[tf.float32], name=f"lookup_shard_{shard}")
      rows.append(tf.reshape(shard_rows, [-1, self._dim]))
    unique_rows = tf.dynamic_stitch(slots, rows)
    return {EMBEDDINGS: tf.gather(unique_rows, positions)}


def _save(module: tf.Module, base_path: str) -> str:
  """Saves `module.lookup` as serving_default under BASE_PATH/<VERSION>, atomically."""
  with staged_version.staged_version_dir(base_path, VERSION) as path:
    tf.saved_model.save(module, path, signatures={
        tf.saved_model.DEFAULT_SERVING_SIGNATURE_DEF_KEY: module.lookup})
  return os.path.join(base_path, str(VERSION))


def export_shard(table: np.ndarray, shard: int, num_shards: int, base_path: str) -> str:
  return _save(_Shard(table[shard::num_shards]), base_path)


def export_master(base_path: str, vocab_size: int, dim: int,
                  shards: Sequence[Tuple[str, str]], max_rpc_deadline_millis: int) -> str:
  return _save(_Master(vocab_size, dim, shards, max_rpc_deadline_millis), base_path)


@dataclasses.dataclass
class Deployment:
  """Two (or more) running model servers holding shards and masters."""
  servers: List[model_server_process.ModelServer]
  # The models each server holds, in the order of `servers`.
  models: List[List[str]]
  shard_counts: Tuple[int, ...]

  @property
  def master_address(self) -> str:
    return self.servers[0].grpc_address


@contextlib.contextmanager
def deploy(work_dir: str, table: np.ndarray, shard_counts: Sequence[int], num_servers: int = 2,
           max_rpc_deadline_millis: int = 10000, timeout_s: float = 300.0,
           log_dir: Optional[str] = None) -> Iterator[Deployment]:
  """Exports shards and masters, serves them and yields once all are AVAILABLE.

  Shard k of N goes to server k % num_servers, every master to server 0. The
  servers are stopped and reaped when the context exits, also on errors.
  """
  if not shard_counts or any(n < 1 for n in shard_counts) or len(set(shard_counts)) != len(
      shard_counts):
    raise ValueError(f"shard counts must be distinct and >= 1, got {list(shard_counts)}")
  vocab_size, dim = table.shape
  configs = [os.path.join(work_dir, f"server_{i}.config") for i in range(num_servers)]
  servers = [
      model_server_process.ModelServer(model_config_file=config, log_dir=log_dir or work_dir,
                                       label=f"embedding_server_{i}")
      for i, config in enumerate(configs)
  ]
  base_paths: List[Dict[str, str]] = [{} for _ in servers]  # per server: model -> base path
  for n in shard_counts:
    shards = []
    for k in range(n):
      name, server = shard_model_name(k, n), k % num_servers
      base_paths[server][name] = os.path.join(work_dir, name)
      export_shard(table, k, n, base_paths[server][name])
      shards.append((servers[server].grpc_address, name))
    name = master_model_name(n)
    base_paths[0][name] = os.path.join(work_dir, name)
    export_master(base_paths[0][name], vocab_size, dim, shards, max_rpc_deadline_millis)
  for config, models in zip(configs, base_paths):
    model_server_process.write_model_config(config, models)
  with contextlib.ExitStack() as stack:
    # All servers start before any is waited for, so they load in parallel.
    for server in servers:
      stack.enter_context(server)
    for server, models in zip(servers, base_paths):
      server.wait_until_available(sorted(models), timeout_s)
    yield Deployment(servers, [sorted(models) for models in base_paths], tuple(shard_counts))


def lookup(stub: prediction_service_pb2_grpc.PredictionServiceStub, model_name: str,
           ids: Sequence[int], timeout_s: float = 30.0) -> np.ndarray:
  """Looks `ids` up in a master or shard model over gRPC; returns [len(ids), DIM]."""
  ids = np.asarray(ids, dtype=np.int64).reshape(-1)
  request = predict_pb2.PredictRequest()
  request.model_spec.name = model_name
  request.inputs[IDS].CopyFrom(tf.make_tensor_proto(ids, shape=[ids.size]))
  request.output_filter.append(EMBEDDINGS)
  response = stub.Predict(request, timeout=timeout_s)
  return tf.make_ndarray(response.outputs[EMBEDDINGS])


def latencies_ms(stub, model_name: str, vocab_size: int, batch_size: int, num_requests: int,
                 seed: int, warmup: int = 3) -> np.ndarray:
  """Times `num_requests` lookups of `batch_size` random ids, one at a time."""
  rng = np.random.default_rng(seed)
  for _ in range(warmup):
    lookup(stub, model_name, rng.integers(0, vocab_size, batch_size))
  times = []
  for _ in range(num_requests):
    ids = rng.integers(0, vocab_size, batch_size)
    start = time.perf_counter()
    lookup(stub, model_name, ids)
    times.append((time.perf_counter() - start) * 1000.0)
  return np.asarray(times)


def check_master(stub, num_shards: int, table: np.ndarray, seed: int) -> None:
  """Raises AssertionError unless the master returns exactly tf.gather's rows."""
  vocab_size = table.shape[0]
  rng = np.random.default_rng(seed)
  ids = rng.integers(0, vocab_size, 64)
  batches = {
      "random ids with duplicates": np.concatenate([ids, ids[::3]]),
      "ids in descending order": np.sort(ids)[::-1],
      "the first and last id": [vocab_size - 1, 0],
      "an empty batch": [],
  }
  model = master_model_name(num_shards)
  for what, batch in batches.items():
    batch = np.asarray(batch, dtype=np.int64)
    expected = tf.gather(table, batch).numpy()
    actual = lookup(stub, model, batch)
    if actual.shape != expected.shape or not np.array_equal(actual, expected):
      raise AssertionError(f"{model} differs from tf.gather for {what}: got shape "
                           f"{actual.shape}, expected {expected.shape}")


def _define_flags() -> None:
  # Defined only when this file is the program: the benchmark and the test import
  # this module, and flags defined at import would clash with theirs.
  flags.DEFINE_integer("vocab_size", 100_000, "Rows of the embedding table.")
  flags.DEFINE_integer("embedding_dim", 64, "Columns of the embedding table.")
  flags.DEFINE_integer("seed", 0, "Seed of the random table and of the request ids.")
  flags.DEFINE_list("shard_counts", ["1", "2", "4", "8"], "Shard counts to deploy and time.")
  flags.DEFINE_integer("batch_size", 256, "Ids per timed request.")
  flags.DEFINE_integer("num_requests", 50, "Timed requests per shard count.")
  flags.DEFINE_integer("max_rpc_deadline_millis", 10000,
                       "Deadline of each master-to-shard call, in milliseconds.")
  flags.DEFINE_string(
      "work_dir", "", "Where to put models, configs and server logs; by default a temporary "
      "directory that is deleted at the end.")


def run(work_dir: str) -> None:
  f = flags.FLAGS
  try:
    shard_counts = [int(n) for n in f.shard_counts]
  except ValueError as e:
    raise app.UsageError(f"--shard_counts must be comma-separated integers: {e}") from e
  if not shard_counts or min(shard_counts) < 1 or len(set(shard_counts)) != len(shard_counts):
    raise app.UsageError(f"--shard_counts must be distinct integers >= 1, got {shard_counts}")
  table = make_table(f.vocab_size, f.embedding_dim, f.seed)
  print(f"embedding table: {table.shape[0]} x {table.shape[1]} float32 "
        f"({table.nbytes / 2**20:.1f} MiB), seed {f.seed}")
  start = time.perf_counter()
  with deploy(work_dir, table, shard_counts,
              max_rpc_deadline_millis=f.max_rpc_deadline_millis) as d:
    print(f"exported and loaded {sum(len(m) for m in d.models)} models on "
          f"{len(d.servers)} model servers in {time.perf_counter() - start:.1f} s:")
    for server, models in zip(d.servers, d.models):
      print(f"  {server.grpc_address}: {', '.join(models)}")
    with grpc.insecure_channel(d.master_address) as channel:
      stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
      for n in shard_counts:
        check_master(stub, n, table, f.seed)
      print("every master matches tf.gather on the full table (duplicates, descending "
            "ids, first/last id, empty batch)")
      try:
        lookup(stub, master_model_name(shard_counts[0]), [f.vocab_size, -1])
        raise AssertionError("out-of-range ids were not rejected")
      except grpc.RpcError as e:
        if e.code() != grpc.StatusCode.INVALID_ARGUMENT:
          raise
        first_line = e.details().splitlines()[0]
        print(f"out-of-range ids are rejected: {e.code().name}: {first_line}")

      print(f"\nper-request latency, {f.batch_size} random ids per request, "
            f"{f.num_requests} requests one after another:")
      print(f"  {'model':<24} {'shards':>9} {'median ms':>10} {'p90 ms':>8}")
      # The single shard called directly: the cost of the master's extra hop.
      rows = [(shard_model_name(0, 1), "1, direct")] if 1 in shard_counts else []
      rows += [(master_model_name(n), str(n)) for n in shard_counts]
      for model, shards in rows:
        ms = latencies_ms(stub, model, f.vocab_size, f.batch_size, f.num_requests, f.seed)
        print(f"  {model:<24} {shards:>9} {np.median(ms):>10.2f} {np.percentile(ms, 90):>8.2f}")
  print("stopped the model servers")


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {argv[1:]}")
  # The exporters' progress and deprecation notes are noise here.
  logging.set_verbosity(logging.WARNING)
  tf.get_logger().setLevel("ERROR")
  work_dir = flags.FLAGS.work_dir or tempfile.mkdtemp(prefix="sharded_embedding.")
  os.makedirs(work_dir, exist_ok=True)
  try:
    run(work_dir)
  finally:
    if not flags.FLAGS.work_dir:
      shutil.rmtree(work_dir, ignore_errors=True)


if __name__ == "__main__":
  _define_flags()
  app.run(main)
