"""Tests of which variables are sharded, and of the refusals for the rest."""

import os

from absl import logging
from absl.testing import absltest
import numpy as np
import tensorflow as tf

from tensorflow_serving.experimental.tools import serving_graph
from tensorflow_serving.experimental.tools import table_selection
from tensorflow_serving.experimental.tools import test_models


class _OddReads(tf.Module):
  """A table read along axis 1, and a table whose row count is not fixed."""

  def __init__(self):
    super().__init__()
    self.columns = tf.Variable(np.ones((50, 40), np.float32), name="columns")
    self.growing = tf.Variable(np.ones((50, 4), np.float32), name="growing",
                               shape=tf.TensorShape([None, 4]))

  @tf.function(input_signature=[tf.TensorSpec([None], tf.int64, name="ids")])
  def serve(self, ids):
    return {"columns": tf.gather(self.columns, ids, axis=1),
            "growing": tf.gather(self.growing, ids)}


class TableSelectionTest(absltest.TestCase):

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    logging.set_verbosity(logging.ERROR)
    root = absltest.TEST_TMPDIR.value
    cls.tf1 = serving_graph.load(test_models.tf1_graph(os.path.join(root, "tf1", "1")))
    cls.matmul = serving_graph.load(test_models.tf1_graph(os.path.join(root, "matmul", "1"),
                                                          matmul_with_table=True))
    module = _OddReads()
    odd_dir = os.path.join(root, "odd", "1")
    tf.saved_model.save(module, odd_dir, signatures={"serving_default": module.serve})
    cls.odd = serving_graph.load(odd_dir)

  def test_lookups_are_found(self):
    table = self.tf1.variables["table"]
    self.assertEqual(table.shape, (test_models.USERS, test_models.DIM))
    self.assertLen(table.lookups, 2)
    self.assertEqual(table.other_reads, [])
    self.assertEqual(self.tf1.variables["bias"].lookups, [])

  def test_named_table(self):
    [table] = table_selection.select(self.tf1, 4, ["table"])
    self.assertEqual(table.node, "table")

  def test_large_lookup_only_variables_are_chosen(self):
    [table] = table_selection.select(self.tf1, 4, min_table_bytes=4096)
    self.assertEqual(table.node, "table")

  def test_nothing_large_enough(self):
    with self.assertRaisesRegex(serving_graph.ShardingError,
                                r"no variable of at least --min_table_bytes=67108864 .*"
                                r"Largest variables: 'table' \(float32 1009x8"):
      table_selection.select(self.tf1, 4)

  def test_table_read_by_a_matmul_is_refused_naming_the_op(self):
    with self.assertRaisesRegex(serving_graph.ShardingError,
                                r"table 'table' .* is read by MatMul node 'whole_table', which "
                                r"is not a gather-like lookup"):
      table_selection.select(self.matmul, 4, ["table"])
    # Chosen by size, it is skipped, so nothing is left to shard.
    with self.assertRaisesRegex(serving_graph.ShardingError, "no variable of at least"):
      table_selection.select(self.matmul, 4, min_table_bytes=4096)

  def test_gather_along_another_axis_is_refused(self):
    with self.assertRaisesRegex(serving_graph.ShardingError,
                                r"table 'columns' .* is read by GatherV2 node '.*GatherV2'"):
      table_selection.select(self.odd, 2, ["columns"])

  def test_dynamic_table_is_refused(self):
    with self.assertRaisesRegex(serving_graph.ShardingError,
                                r"table 'growing' has a dynamic shape \[-1, 4\]"):
      table_selection.select(self.odd, 2, ["growing"])

  def test_unknown_name_lists_the_variables(self):
    with self.assertRaisesRegex(serving_graph.ShardingError,
                                r"--tables names 'embeddings', which is not a variable .* "
                                r"Variables, largest first: 'table'"):
      table_selection.select(self.tf1, 4, ["embeddings"])

  def test_node_that_is_not_a_variable(self):
    with self.assertRaisesRegex(serving_graph.ShardingError,
                                r"--tables names 'ids', a Placeholder node, which is not a "
                                r"variable"):
      table_selection.select(self.tf1, 4, ["ids"])

  def test_more_shards_than_rows(self):
    with self.assertRaisesRegex(serving_graph.ShardingError,
                                r"has 1009 rows, fewer than --num_shards=2000"):
      table_selection.select(self.tf1, 2000, ["table"])


if __name__ == "__main__":
  absltest.main()
