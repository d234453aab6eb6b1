"""Tests of --cut: a sub-graph served as its own model, verified against the original."""

import os
import tempfile

from absl import logging
from absl.testing import absltest
import tensorflow as tf

from tensorflow_serving.experimental.example import remote_predict_nodes
from tensorflow_serving.experimental.tools import serving_graph
from tensorflow_serving.experimental.tools import shard_saved_model
from tensorflow_serving.experimental.tools import test_models

_SERVERS = ("host0:8500", "host1:8500")


def _variable_shapes(saved_model_version_dir):
  reader = tf.train.load_checkpoint(os.path.join(saved_model_version_dir, "variables",
                                                 "variables"))
  return sorted(tuple(s) for s in reader.get_variable_to_shape_map().values() if s)


class CutTest(absltest.TestCase):

  def setUp(self):
    super().setUp()
    logging.set_verbosity(logging.WARNING)
    tf.get_logger().setLevel("ERROR")
    self.root = tempfile.mkdtemp(dir=absltest.TEST_TMPDIR.value)

  def split(self, input_dir, cut, **kwargs):
    report = []
    result = shard_saved_model.split(shard_saved_model.Options(
        input_dir=input_dir, model_name="model", output_dir=os.path.join(self.root, "deploy"),
        num_shards=0, servers=_SERVERS, cut=cut, **kwargs), report=report.append)
    return result, report

  def test_keras_layer_becomes_a_shared_model_and_the_split_verifies(self):
    path = test_models.keras_two_towers(os.path.join(self.root, "towers", "1"))
    result, report = self.split(path, "user_embedding", cut_model_name="user_tower")
    self.assertIn("verified: all", report[-1])
    self.assertTrue(all(c.ok for c in result.comparisons))
    deploy = os.path.join(self.root, "deploy")
    # The user table moved to the sub-graph model; the item table stayed.
    user, item = (test_models.USERS, test_models.DIM), (test_models.ITEMS, test_models.DIM)
    self.assertIn(user, _variable_shapes(os.path.join(deploy, "user_tower", "1")))
    self.assertNotIn(item, _variable_shapes(os.path.join(deploy, "user_tower", "1")))
    self.assertIn(item, _variable_shapes(os.path.join(deploy, "model", "1")))
    self.assertNotIn(user, _variable_shapes(os.path.join(deploy, "model", "1")))
    # One call per signature (serve, serving_default), to the sub-graph model on server 1.
    nodes = remote_predict_nodes.remote_predict_nodes(os.path.join(deploy, "model", "1"))
    # strip_default_attrs drops signature_name when it is the default.
    self.assertEqual(sorted(n.attr["signature_name"].s.decode() or "serving_default"
                            for n in nodes),
                     ["serve", "serving_default"])
    self.assertEqual({n.attr["target_address"].s.decode() for n in nodes}, {_SERVERS[1]})
    self.assertEqual({n.attr["model_name"].s.decode() for n in nodes}, {"user_tower"})
    with open(os.path.join(deploy, "server_1.config")) as f:
      self.assertIn('name: "user_tower"', f.read())

  def test_tf1_tensor_cut_verifies(self):
    path = test_models.tf1_encoder(os.path.join(self.root, "encoder", "1"))
    result, report = self.split(path, "encoder/MatMul:0")
    self.assertIn("verified: all", report[-1])
    [tensor] = result.plan.tensors
    self.assertEqual(sorted(tensor.inputs), ["x"])
    self.assertEqual(_variable_shapes(os.path.join(self.root, "deploy", "encoder_MatMul_0", "1")),
                     [(4, 6)])

  def test_cut_that_shares_state_with_its_consumers_is_refused(self):
    # The table is read by the cut gather and by another lookup outside it.
    path = test_models.tf1_graph(os.path.join(self.root, "tf1", "1"))
    with self.assertRaisesRegex(serving_graph.ShardingError,
                                r"--cut=Gather: variable 'table' is read inside the cut "
                                r"sub-graph and also by the rest of the model \(node "
                                r"'embedding_lookup.*'\)"):
      self.split(path, "Gather", verify=False)

  def test_unknown_cut(self):
    path = test_models.tf1_encoder(os.path.join(self.root, "encoder", "1"))
    with self.assertRaisesRegex(serving_graph.ShardingError,
                                "--cut=decoder is neither a node or tensor"):
      self.split(path, "decoder", verify=False)


if __name__ == "__main__":
  absltest.main()
