"""Runs the recommender example end to end with small tables."""

import tempfile

from absl import logging
from absl.testing import absltest
import tensorflow as tf

from tensorflow_serving.experimental.tools import sharded_recommender


class ShardedRecommenderTest(absltest.TestCase):

  def test_small_run_splits_verifies_serves_and_measures(self):
    logging.set_verbosity(logging.WARNING)
    tf.get_logger().setLevel("ERROR")
    lines = []
    figures = sharded_recommender.run(
        tempfile.mkdtemp(dir=absltest.TEST_TMPDIR.value), num_users=5003, num_items=1009,
        dim=16, num_shards=4, num_servers=2, train_steps=2, batch_size=16, num_requests=10,
        report=lines.append)
    text = "\n".join(lines)
    self.assertIn("shard_saved_model: verified: all", text)
    self.assertIn("recommender_user_embedding_embeddings_shard_3_of_4/1 on server 1", text)
    for key in ("split_p50_ms", "split_p99_ms", "unsplit_p50_ms", "unsplit_p99_ms",
                "unsplit_rss_mib", "server_0_rss_mib", "server_1_rss_ratio"):
      self.assertGreater(figures[key], 0, key)
    self.assertGreaterEqual(figures["split_p99_ms"], figures["split_p50_ms"])


if __name__ == "__main__":
  absltest.main()
