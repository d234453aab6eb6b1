"""Tests that routing ids (TensorFlow) agrees with cutting the table (numpy)."""

from absl.testing import parameterized
import numpy as np
import tensorflow as tf

from tensorflow_serving.experimental.tools import partitioning


class PartitioningTest(tf.test.TestCase, parameterized.TestCase):

  @parameterized.product(scheme=partitioning.SCHEMES, num_rows=[7, 10, 1009],
                         num_shards=[1, 2, 3, 7])
  def test_route_matches_the_rows_each_shard_holds(self, scheme, num_rows, num_shards):
    counts = [partitioning.num_shard_rows(scheme, num_rows, num_shards, k)
              for k in range(num_shards)]
    self.assertEqual(sum(counts), num_rows)
    self.assertLessEqual(max(counts) - min(counts), 1)
    ids = np.arange(num_rows, dtype=np.int64)
    shard, local = partitioning.route(scheme, num_rows, num_shards, tf.constant(ids))
    want_shard, want_local = partitioning.reference_route(scheme, num_rows, num_shards, ids)
    self.assertAllEqual(shard, want_shard)
    self.assertAllEqual(local, want_local)

  def test_bad_arguments(self):
    with self.assertRaisesRegex(ValueError, "unknown partitioning 'hash'"):
      partitioning.shard_rows("hash", 10, 2, 0)
    with self.assertRaisesRegex(ValueError, "cannot split 3 rows into 4 shards"):
      partitioning.shard_rows("mod", 3, 4, 0)


if __name__ == "__main__":
  tf.test.main()
