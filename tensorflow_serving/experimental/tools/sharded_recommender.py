"""A recommender split with shard_saved_model, verified, served and measured.

  tools/bazel run //tensorflow_serving/experimental/tools:sharded_recommender

1. Builds a two-tower Keras model (user id -> a 1M x 64 table, item id -> a 100k x 64
   table, a small MLP on their product), trains it for a few steps on synthetic
   clicks and exports it with model.export().
2. Splits it with shard_saved_model: both tables into 4 shards, over 2 model servers
   on loopback; the tool verifies the split against the original.
3. Serves the split deployment (2 servers) and the unsplit model (1 server), and
   prints the p50/p99 latency of Predict on both and each server's resident memory
   next to the table bytes it holds.

Flags scale it: --num_users=9000000 makes the user table 2.1 GiB, over the 2 GiB
protocol buffer limit (needs about 4x the table in memory and minutes to export).
It lives beside the tool rather than in example/, because example/ is vendored into
TF Serving forks without this package.
"""

import contextlib
import multiprocessing
import os
import shutil
import subprocess
import tempfile
import time
from typing import Dict, List

from absl import app
from absl import flags
from absl import logging
import grpc
import keras
import numpy as np
import orjson
import tensorflow as tf

from tensorflow_serving.apis import predict_pb2
from tensorflow_serving.apis import prediction_service_pb2_grpc
from tensorflow_serving.experimental.example import model_server_process

MODEL_NAME = "recommender"
UNSPLIT_MODEL_NAME = "recommender_unsplit"
USER_TABLE = "user_embedding/embeddings"
ITEM_TABLE = "item_embedding/embeddings"
_TOOL_PATH_IN_WORKSPACE = os.path.join("tensorflow_serving", "experimental", "tools",
                                       "shard_saved_model")
_TOOL_TIMEOUT_S = 3600.0


def build_and_train(num_users: int, num_items: int, dim: int, train_steps: int,
                    seed: int = 0) -> keras.Model:
  keras.utils.set_random_seed(seed)
  user = keras.Input(shape=(), dtype="int64", name="user_id")
  item = keras.Input(shape=(), dtype="int64", name="item_id")
  u = keras.layers.Embedding(num_users, dim, name="user_embedding")(user)
  v = keras.layers.Embedding(num_items, dim, name="item_embedding")(item)
  hidden = keras.layers.Dense(32, activation="relu", name="hidden")(
      keras.layers.Multiply()([u, v]))
  click = keras.layers.Dense(1, activation="sigmoid", name="click")(hidden)
  model = keras.Model({"user_id": user, "item_id": item}, click)
  model.compile(optimizer=keras.optimizers.SGD(0.1), loss="binary_crossentropy")
  rng = np.random.default_rng(seed)
  batch = 256
  users = rng.integers(0, num_users, train_steps * batch)
  items = rng.integers(0, num_items, train_steps * batch)
  # Synthetic taste: users like items of their own residue class.
  clicks = (users % 5 == items % 5).astype(np.float32)
  model.fit({"user_id": users, "item_id": items}, clicks, batch_size=batch, epochs=1,
            verbose=0)
  return model


def train_and_export(path: str, num_users: int, num_items: int, dim: int,
                     train_steps: int) -> None:
  logging.set_verbosity(logging.WARNING)
  tf.get_logger().setLevel("ERROR")
  build_and_train(num_users, num_items, dim, train_steps).export(path, verbose=False)


def _rss_mib(pid: int) -> float:
  with open(f"/proc/{pid}/status") as f:
    for line in f:
      if line.startswith("VmRSS:"):
        return int(line.split()[1]) / 1024.0
  raise RuntimeError(f"no VmRSS for process {pid}")


def _latencies_ms(stub, model_name: str, num_users: int, num_items: int, batch_size: int,
                  num_requests: int, seed: int) -> np.ndarray:
  rng = np.random.default_rng(seed)
  times = []
  for i in range(num_requests + 5):  # the first 5 warm up
    request = predict_pb2.PredictRequest()
    request.model_spec.name = model_name
    request.inputs["user_id"].CopyFrom(tf.make_tensor_proto(
        rng.integers(0, num_users, batch_size)))
    request.inputs["item_id"].CopyFrom(tf.make_tensor_proto(
        rng.integers(0, num_items, batch_size)))
    start = time.perf_counter()
    stub.Predict(request, timeout=60)
    if i >= 5:
      times.append((time.perf_counter() - start) * 1000.0)
  return np.asarray(times)


def run(work_dir: str, num_users: int, num_items: int, dim: int, num_shards: int,
        num_servers: int, train_steps: int, batch_size: int, num_requests: int,
        report=print) -> Dict[str, float]:
  """Runs every step; returns the figures it printed."""
  start = time.perf_counter()
  original_base = os.path.join(work_dir, "original")
  # Training keeps gigabytes that Keras does not give back; a child process does.
  child = multiprocessing.get_context("spawn").Process(
      target=train_and_export,
      args=(os.path.join(original_base, "1"), num_users, num_items, dim, train_steps))
  child.start()
  child.join()
  if child.exitcode != 0:
    raise RuntimeError(f"training and exporting the model failed (exit status {child.exitcode})")
  table_mib = (num_users + num_items) * dim * 4 / 2**20
  report(f"trained and exported the two-tower model: user table {num_users} x {dim}, item "
         f"table {num_items} x {dim} ({table_mib:.1f} MiB of tables) in "
         f"{time.perf_counter() - start:.1f} s")

  ports = model_server_process.pick_unused_ports(2 * num_servers)
  addresses = [f"127.0.0.1:{p}" for p in ports[:num_servers]]
  output_dir = os.path.join(work_dir, "deploy")
  start = time.perf_counter()
  # The tool runs as users run it: its own process, whose memory is gone when it ends.
  command = [model_server_process.runfiles_path(_TOOL_PATH_IN_WORKSPACE),
             f"--input_dir={os.path.join(original_base, '1')}", f"--model_name={MODEL_NAME}",
             f"--output_dir={output_dir}", f"--num_shards={num_shards}",
             f"--servers={','.join(addresses)}", f"--tables={USER_TABLE},{ITEM_TABLE}"]
  tool = subprocess.run(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                        check=False, timeout=_TOOL_TIMEOUT_S)
  for line in tool.stdout.splitlines():
    report(f"  shard_saved_model: {line}")
  if tool.returncode != 0:
    raise RuntimeError(f"shard_saved_model failed with status {tool.returncode}:\n"
                       + "\n".join(tool.stderr.splitlines()[-20:]))
  report(f"split and verified in {time.perf_counter() - start:.1f} s")

  with open(os.path.join(output_dir, "manifest.json"), "rb") as f:
    manifest = orjson.loads(f.read())
  held_mib: List[float] = [0.0] * num_servers
  models_on: List[List[str]] = [[] for _ in range(num_servers)]
  models_on[0].append(MODEL_NAME)
  for table in manifest["tables"]:
    row_bytes = table["bytes"] / table["shape"][0]
    for shard in table["shards"]:
      held_mib[shard["server"]] += shard["rows"]["count"] * row_bytes / 2**20
      models_on[shard["server"]].append(shard["model_name"])

  figures: Dict[str, float] = {}
  with contextlib.ExitStack() as stack:
    split_servers = [
        stack.enter_context(model_server_process.ModelServer(
            model_config_file=os.path.join(output_dir, f"server_{i}.config"), port=ports[i],
            rest_api_port=ports[num_servers + i], log_dir=work_dir, label=f"split_server_{i}"))
        for i in range(num_servers)
    ]
    unsplit = stack.enter_context(model_server_process.ModelServer(
        model_name=UNSPLIT_MODEL_NAME, model_base_path=original_base, log_dir=work_dir,
        label="unsplit_server"))
    for i, server in enumerate(split_servers):
      server.wait_until_available(sorted(models_on[i]))
    unsplit.wait_until_available([UNSPLIT_MODEL_NAME])
    report(f"serving: split on {', '.join(addresses)}; unsplit on {unsplit.grpc_address}")

    report(f"\nPredict latency, {batch_size} (user, item) pairs per request, "
           f"{num_requests} requests one after another:")
    for label, server, name in (("split", split_servers[0], MODEL_NAME),
                                ("unsplit", unsplit, UNSPLIT_MODEL_NAME)):
      with grpc.insecure_channel(server.grpc_address) as channel:
        ms = _latencies_ms(prediction_service_pb2_grpc.PredictionServiceStub(channel), name,
                           num_users, num_items, batch_size, num_requests, seed=1)
      figures[f"{label}_p50_ms"] = float(np.percentile(ms, 50))
      figures[f"{label}_p99_ms"] = float(np.percentile(ms, 99))
      report(f"  {label:<8} p50 {figures[f'{label}_p50_ms']:7.2f} ms   "
             f"p99 {figures[f'{label}_p99_ms']:7.2f} ms")

    unsplit_rss = _rss_mib(unsplit.pid)
    figures["unsplit_rss_mib"] = unsplit_rss
    report("\nresident memory (RSS) of each model server:")
    report(f"  unsplit server    {unsplit_rss:8.1f} MiB   holds all tables "
           f"({table_mib:.1f} MiB)")
    for i, server in enumerate(split_servers):
      rss = _rss_mib(server.pid)
      figures[f"server_{i}_rss_mib"] = rss
      figures[f"server_{i}_rss_ratio"] = rss / unsplit_rss
      role = "master + shards" if i == 0 else "shards"
      report(f"  split server {i}    {rss:8.1f} MiB   {role}, {held_mib[i]:.1f} MiB of table "
             f"rows ({held_mib[i] / table_mib:.2f} of the tables); RSS / unsplit RSS "
             f"{rss / unsplit_rss:.2f}")
  report("stopped the model servers")
  return figures


def _define_flags() -> None:
  flags.DEFINE_integer("num_users", 1_000_000, "Rows of the user table.")
  flags.DEFINE_integer("num_items", 100_000, "Rows of the item table.")
  flags.DEFINE_integer("embedding_dim", 64, "Columns of both tables.")
  flags.DEFINE_integer("num_shards", 4, "Shards per table.")
  flags.DEFINE_integer("num_servers", 2, "Model servers of the split deployment.")
  flags.DEFINE_integer("train_steps", 20, "Training batches of 256 synthetic clicks.")
  flags.DEFINE_integer("batch_size", 64, "(user, item) pairs per timed request.")
  flags.DEFINE_integer("num_requests", 200, "Timed requests per deployment.")
  flags.DEFINE_string("work_dir", "", "Where models, configs and logs go; by default a "
                      "temporary directory deleted at the end.")


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {argv[1:]}")
  f = flags.FLAGS
  logging.set_verbosity(logging.WARNING)
  tf.get_logger().setLevel("ERROR")
  work_dir = f.work_dir or tempfile.mkdtemp(prefix="sharded_recommender.")
  os.makedirs(work_dir, exist_ok=True)
  try:
    run(work_dir, f.num_users, f.num_items, f.embedding_dim, f.num_shards, f.num_servers,
        f.train_steps, f.batch_size, f.num_requests)
  finally:
    if not f.work_dir:
      shutil.rmtree(work_dir, ignore_errors=True)


if __name__ == "__main__":
  _define_flags()
  app.run(main)
