"""End-to-end test of sharded embedding lookups over two model server processes.

Every master (N = 1, 2, 4, 8 shards) must return exactly the rows tf.gather takes
from the full table, and reject out-of-range ids with INVALID_ARGUMENT. The table is
smaller than the example's default to keep the test quick; the code path is the same.
"""

import os
import subprocess
import tempfile

from absl import flags
from absl import logging
from absl.testing import absltest
import grpc
import numpy as np
import tensorflow as tf

from tensorflow_serving.apis import prediction_service_pb2_grpc
from tensorflow_serving.experimental.example import remote_predict_nodes
from tensorflow_serving.experimental.example import sharded_embedding

_VOCAB_SIZE = 10_007  # prime: no shard count divides it, so shards differ in size
_DIM = 64
_SHARD_COUNTS = (1, 2, 4, 8)
_SEED = 42


class ShardedEmbeddingTest(absltest.TestCase):

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    # The exporters' progress lines would bury the test log.
    logging.set_verbosity(logging.WARNING)
    tf.get_logger().setLevel("ERROR")
    cls.table = sharded_embedding.make_table(_VOCAB_SIZE, _DIM, _SEED)
    cls.work_dir = tempfile.mkdtemp(dir=absltest.TEST_TMPDIR.value)
    deployment = sharded_embedding.deploy(
        cls.work_dir, cls.table, _SHARD_COUNTS,
        log_dir=os.environ.get("TEST_UNDECLARED_OUTPUTS_DIR"))
    # Stops and reaps both servers even if a later step of setUpClass fails.
    cls.deployment = cls.enterClassContext(deployment)
    cls.channel = grpc.insecure_channel(cls.deployment.master_address)
    cls.addClassCleanup(cls.channel.close)
    cls.stub = prediction_service_pb2_grpc.PredictionServiceStub(cls.channel)

  def assert_matches_gather(self, ids):
    ids = np.asarray(ids, dtype=np.int64)
    expected = tf.gather(self.table, ids).numpy()
    for n in _SHARD_COUNTS:
      with self.subTest(shards=n):
        actual = sharded_embedding.lookup(self.stub, sharded_embedding.master_model_name(n), ids)
        self.assertEqual(actual.dtype, np.float32)
        self.assertEqual(actual.shape, expected.shape)
        np.testing.assert_array_equal(actual, expected)

  def test_random_ids_with_duplicates(self):
    ids = np.random.default_rng(1).integers(0, _VOCAB_SIZE, 300)
    self.assert_matches_gather(np.concatenate([ids, ids[:50], ids[::7]]))

  def test_the_same_id_repeated(self):
    self.assert_matches_gather([17] * 9)

  def test_out_of_order_ids(self):
    ids = np.random.default_rng(2).choice(_VOCAB_SIZE, 200, replace=False)
    self.assert_matches_gather(np.sort(ids)[::-1])
    self.assert_matches_gather([9, 3, 8, 0, 5, 1, 7, 2, 6, 4])

  def test_first_and_last_ids(self):
    self.assert_matches_gather([_VOCAB_SIZE - 1, 0, _VOCAB_SIZE - 2, 1])

  def test_single_id(self):
    self.assert_matches_gather([1234])

  def test_empty_batch(self):
    self.assert_matches_gather([])
    actual = sharded_embedding.lookup(self.stub, sharded_embedding.master_model_name(8), [])
    self.assertEqual(actual.shape, (0, _DIM))

  def test_out_of_range_ids_are_invalid_argument(self):
    for n in _SHARD_COUNTS:
      for ids in ([_VOCAB_SIZE], [-1], [3, _VOCAB_SIZE + 5, 4]):
        with self.subTest(shards=n, ids=ids):
          with self.assertRaises(grpc.RpcError) as caught:
            sharded_embedding.lookup(self.stub, sharded_embedding.master_model_name(n), ids)
          error = caught.exception
          self.assertEqual(error.code(), grpc.StatusCode.INVALID_ARGUMENT, error.details())
          self.assertIn(f"embedding ids must be in [0, {_VOCAB_SIZE})", error.details())
          bad = [i for i in ids if not 0 <= i < _VOCAB_SIZE]
          self.assertIn(str(bad[0]), error.details())

  def test_each_master_has_one_remote_call_per_shard_across_both_servers(self):
    addresses = [server.grpc_address for server in self.deployment.servers]
    for n in _SHARD_COUNTS:
      with self.subTest(shards=n):
        nodes = remote_predict_nodes.remote_predict_nodes(
            os.path.join(self.work_dir, sharded_embedding.master_model_name(n), "1"))
        called = sorted((node.attr["model_name"].s.decode(), node.attr["target_address"].s.decode())
                        for node in nodes)
        expected = sorted((sharded_embedding.shard_model_name(k, n), addresses[k % 2])
                          for k in range(n))
        self.assertEqual(called, expected)

  def test_shards_are_served_by_both_servers(self):
    first, second = self.deployment.models
    self.assertIn(sharded_embedding.shard_model_name(1, 8), second)
    self.assertNotIn(sharded_embedding.shard_model_name(1, 8), first)
    self.assertIn(sharded_embedding.master_model_name(8), first)

  def test_latency_per_shard_count(self):
    # Printed for the reader of the test log; timings are never asserted.
    print(f"\nper-request latency, 128 ids, {_VOCAB_SIZE} x {_DIM} table:")
    for n in _SHARD_COUNTS:
      ms = sharded_embedding.latencies_ms(self.stub, sharded_embedding.master_model_name(n),
                                          _VOCAB_SIZE, batch_size=128, num_requests=10, seed=n)
      self.assertLen(ms, 10)
      print(f"  {n} shard(s): median {np.median(ms):.2f} ms")


class ShardedEmbeddingProgramTest(absltest.TestCase):

  def test_importing_the_module_defines_no_flags(self):
    # The benchmark imports the module next to its own flags; the example's flags
    # belong to the program alone.
    for name in ("vocab_size", "embedding_dim", "seed", "shard_counts", "batch_size",
                 "num_requests", "max_rpc_deadline_millis", "work_dir"):
      self.assertNotIn(name, flags.FLAGS, f"importing sharded_embedding defined --{name}")

  def test_the_example_program_checks_and_times_every_shard_count(self):
    # A small table: this checks the program's flow, the class above its results.
    program = os.path.join(os.path.dirname(os.path.abspath(__file__)), "sharded_embedding")
    result = subprocess.run(
        [program, "--vocab_size=1000", "--embedding_dim=8", "--shard_counts=1,3",
         "--batch_size=16", "--num_requests=3"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=300, check=False)
    self.assertEqual(result.returncode, 0, result.stdout)
    self.assertIn("every master matches tf.gather", result.stdout)
    self.assertIn("out-of-range ids are rejected: INVALID_ARGUMENT", result.stdout)
    for model in ("embedding_shard_0_of_1", "embedding_master_1", "embedding_master_3"):
      self.assertRegex(result.stdout, rf"\n  {model} +[0-9a-z, ]+ +[0-9.]+ +[0-9.]+\n")


if __name__ == "__main__":
  absltest.main()
