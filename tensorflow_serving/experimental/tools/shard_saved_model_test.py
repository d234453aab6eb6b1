"""End-to-end tests of shard_saved_model on small TF1, TF2 and Keras SavedModels.

Each model is split into 3 shards per table over 2 loopback model servers; the
master's answers are compared with the original model's for ids in every shard,
duplicates, an empty batch and out-of-range ids (which must fail on both).
"""

import dataclasses
import os
import tempfile

from absl import logging
from absl.testing import absltest
import grpc
import numpy as np
import orjson
import tensorflow as tf

from tensorflow_serving.apis import prediction_service_pb2_grpc
from tensorflow_serving.experimental.example import remote_predict_nodes
from tensorflow_serving.experimental.tools import original_model
from tensorflow_serving.experimental.tools import shard_saved_model
from tensorflow_serving.experimental.tools import test_models
from tensorflow_serving.experimental.tools import verification

_NUM_SHARDS = 3
_SERVERS = ("host0:8500", "host1:8500")


class _SplitTestBase(absltest.TestCase):
  """Splits the model of `export` in setUpClass and serves it on loopback."""
  export = None
  model_name = None
  options = {}

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    logging.set_verbosity(logging.WARNING)
    tf.get_logger().setLevel("ERROR")
    root = tempfile.mkdtemp(dir=absltest.TEST_TMPDIR.value)
    cls.input_dir = cls.export(os.path.join(root, "original", "1"))
    cls.output_dir = os.path.join(root, "deploy")
    cls.report = []
    cls.result = shard_saved_model.split(shard_saved_model.Options(
        input_dir=cls.input_dir, model_name=cls.model_name, output_dir=cls.output_dir,
        num_shards=_NUM_SHARDS, servers=_SERVERS, **cls.options), report=cls.report.append)
    cls.original = cls.enterClassContext(
        original_model.OriginalModel(cls.input_dir, [tf.saved_model.SERVING]))
    serve_dir = tempfile.mkdtemp(dir=root)
    cls.servers = cls.enterClassContext(verification.serve_on_loopback(
        cls.result.plan, verification.table_master_writer(
            cls.result.plan, cls.result.graph, cls.result.values), serve_dir))
    channel = grpc.insecure_channel(cls.servers[0].grpc_address)
    cls.addClassCleanup(channel.close)
    cls.stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)

  def predict(self, inputs, signature="serving_default"):
    batch = verification.Batch("test", signature, {k: np.asarray(v) for k, v in inputs.items()})
    return verification.predict(self.stub, self.model_name, batch)

  def assert_same_as_original(self, inputs, signature="serving_default"):
    inputs = {k: np.asarray(v) for k, v in inputs.items()}
    batch = verification.Batch("test", signature, inputs)
    expected = self.original.run(signature, inputs)
    actual = verification.predict(self.stub, self.model_name, batch)
    comparisons = verification.compare(batch, expected, actual, 1e-6)
    self.assertTrue(comparisons)
    for c in comparisons:
      self.assertTrue(c.ok, str(c))
    return actual

  def assert_both_reject(self, inputs, signature="serving_default"):
    inputs = {k: np.asarray(v) for k, v in inputs.items()}
    with self.assertRaises(tf.errors.InvalidArgumentError):
      self.original.run(signature, inputs)
    with self.assertRaises(grpc.RpcError) as caught:
      self.predict(inputs, signature)
    self.assertEqual(caught.exception.code(), grpc.StatusCode.INVALID_ARGUMENT)
    self.assertIn("out-of-range ids", caught.exception.details())

  def test_layout_configs_and_manifest(self):
    plan = self.result.plan
    with open(os.path.join(self.output_dir, "manifest.json"), "rb") as f:
      manifest = orjson.loads(f.read())
    self.assertEqual(manifest["model_name"], self.model_name)
    self.assertEqual(manifest["version"], 1)
    self.assertEqual([t["variable"] for t in manifest["tables"]],
                     [t.variable.node for t in plan.tables])
    self.assertTrue(os.path.isfile(os.path.join(self.output_dir, self.model_name, "1",
                                                "saved_model.pb")))
    placed = {i: [] for i in range(len(_SERVERS))}
    for table in manifest["tables"]:
      self.assertEqual(table["num_shards"], _NUM_SHARDS)
      self.assertEqual(sum(s["rows"]["count"] for s in table["shards"]), table["shape"][0])
      for shard in table["shards"]:
        self.assertEqual(shard["model_name"], f"{self.model_name}_{table['name']}_shard_"
                                              f"{shard['index']}_of_{_NUM_SHARDS}")
        placed[shard["server"]].append(shard["model_name"])
        # The shard's checkpoint holds exactly its rows of the original table.
        reader = tf.train.load_checkpoint(os.path.join(shard["base_path"], "1", "variables",
                                                       "variables"))
        [key] = [k for k in reader.get_variable_to_shape_map() if "rows" in k and
                 "OPTIMIZER" not in k]
        variable = self.result.graph.variables[table["variable"]]
        rows = shard["rows"]
        rows = slice(rows["start"], rows["start"] + rows["count"] * rows["step"], rows["step"])
        np.testing.assert_array_equal(reader.get_tensor(key), self.original.value(variable)[rows])
    for i in range(len(_SERVERS)):
      with open(os.path.join(self.output_dir, f"server_{i}.config")) as f:
        config = f.read()
      for name in placed[i] + ([self.model_name] if i == 0 else []):
        self.assertIn(f'name: "{name}"', config)
    # The master calls each shard once per lookup, pinned to version 1, and holds no table.
    nodes = remote_predict_nodes.remote_predict_nodes(
        os.path.join(self.output_dir, self.model_name, "1"))
    lookups = sum(len(t.variable.lookups) for t in plan.tables)
    self.assertLen(nodes, lookups * _NUM_SHARDS)
    self.assertEqual({n.attr["model_version"].i for n in nodes}, {1})
    self.assertEqual({n.attr["target_address"].s.decode() for n in nodes}, set(_SERVERS))
    master_keys = tf.train.load_checkpoint(os.path.join(
        self.output_dir, self.model_name, "1", "variables", "variables")).get_variable_to_shape_map()
    for table in plan.tables:
      self.assertNotIn(table.variable.shape, list(master_keys.values()))


class KerasTwoTowersTest(_SplitTestBase):
  export = staticmethod(test_models.keras_two_towers)
  model_name = "towers"
  options = dict(min_table_bytes=4096, verify=False)

  def test_both_embedding_tables_are_sharded(self):
    self.assertCountEqual([t.name for t in self.result.plan.tables],
                          ["user_embedding_embeddings", "item_embedding_embeddings"])
    # model.export() writes two signatures (serve, serving_default); both are rewritten.
    for table in self.result.plan.tables:
      self.assertLen(table.variable.lookups, 2)

  def test_ids_in_every_shard_with_duplicates(self):
    users = np.concatenate([np.arange(2 * _NUM_SHARDS), [test_models.USERS - 1, 0, 0, 4]])
    items = np.concatenate([np.arange(2 * _NUM_SHARDS)[::-1], [test_models.ITEMS - 1, 5, 5, 5]])
    users, items = users.astype(np.int64), items.astype(np.int64)
    out = self.assert_same_as_original({"user_id": users, "item_id": items})
    self.assertEqual(out["output_0"].shape, (users.size, 1))

  def test_empty_batch(self):
    out = self.assert_same_as_original({"user_id": np.zeros([0], np.int64),
                                        "item_id": np.zeros([0], np.int64)})
    self.assertEqual(out["output_0"].shape, (0, 1))

  def test_negative_ids_wrap_as_in_keras(self):
    self.assert_same_as_original({"user_id": np.array([-1, -2], np.int64),
                                  "item_id": np.array([3, -test_models.ITEMS], np.int64)})

  def test_out_of_range_ids_fail_like_the_original(self):
    ok = np.array([0, 1], np.int64)
    self.assert_both_reject({"user_id": np.array([1, test_models.USERS], np.int64), "item_id": ok})
    self.assert_both_reject({"user_id": ok, "item_id": np.array([test_models.ITEMS + 5, 1],
                                                                np.int64)})


class Tf2ModuleTest(_SplitTestBase):
  export = staticmethod(test_models.tf2_module)
  model_name = "bag"
  options = dict(tables=["table"], partitioning="div", verify=False)

  def test_two_dimensional_ids(self):
    ids = np.array([[0, 336, 337], [1008, 673, 0], [5, 5, 5]], np.int32)
    out = self.assert_same_as_original({"ids": ids})
    self.assertEqual(out["rows"].shape, (3, 3, test_models.DIM))

  def test_empty_batch(self):
    self.assert_same_as_original({"ids": np.zeros([0, 3], np.int32)})

  def test_out_of_range_ids_fail_like_the_original(self):
    self.assert_both_reject({"ids": np.array([[0, 1, test_models.USERS]], np.int32)})
    self.assert_both_reject({"ids": np.array([[-1, 1, 2]], np.int32)})


class Tf1GraphTest(_SplitTestBase):
  export = staticmethod(test_models.tf1_graph)
  model_name = "tf1"
  options = dict(tables=["table"])  # verified by the tool itself

  def test_the_tool_verified_the_split(self):
    self.assertGreaterEqual(len(self.result.comparisons), 8)
    self.assertTrue(all(c.ok for c in self.result.comparisons))
    descriptions = {c.batch.description for c in self.result.comparisons}
    self.assertIn("empty batch", descriptions)
    self.assertIn("verified: all", self.report[-1])

  def test_both_lookups_of_the_table_are_rewritten(self):
    [table] = self.result.plan.tables
    self.assertLen(table.variable.lookups, 2)

  def test_ids_in_every_shard_with_duplicates(self):
    self.assert_same_as_original(
        {"ids": np.array([0, 1, 2, 3, 4, 5, 5, 5, 0, test_models.USERS - 1], np.int64)})

  def test_out_of_range_ids_fail_like_the_original(self):
    self.assert_both_reject({"ids": np.array([0, test_models.USERS], np.int64)})
    self.assert_both_reject({"ids": np.array([-3], np.int64)})

  def test_verification_fails_when_the_master_answers_differently(self):
    # A master that routes ids by ranges to shards cut by modulo gets wrong rows.
    wrong = dataclasses.replace(self.result.plan, partitioning="div")
    batches = verification.derived_batches(self.result.graph, test_models.USERS, _NUM_SHARDS)
    with self.assertRaisesRegex(verification.VerificationError,
                                r"outputs of the split deployment differ from the original "
                                r"model:\n(.|\n)*FAIL serving_default / random ids"):
      verification.verify(self.result.plan, verification.table_master_writer(
          wrong, self.result.graph, self.result.values), self.original, batches,
                          work_dir=absltest.TEST_TMPDIR.value)

  def test_sample_inputs_file(self):
    path = self.create_tempfile(content='[{"inputs": {"ids": [3, 1, 3]}}, '
                                '{"signature_name": "serving_default", "inputs": {"ids": []}}]')
    batches = verification.read_batches(path.full_path, self.result.graph)
    self.assertLen(batches, 2)
    self.assertEqual(batches[0].inputs["ids"].dtype, np.int64)
    self.assertEqual(batches[1].inputs["ids"].shape, (0,))
    bad = self.create_tempfile(content='{"inputs": {"user": [1]}}')
    with self.assertRaisesRegex(ValueError, r"has input 'user', which signature "
                                            r"'serving_default' does not take \(it takes \['ids'\]\)"):
      verification.read_batches(bad.full_path, self.result.graph)
    broken = self.create_tempfile(content='[{"inputs": ')
    with self.assertRaisesRegex(ValueError, "is not valid JSON"):
      verification.read_batches(broken.full_path, self.result.graph)

  def test_existing_version_is_refused(self):
    with self.assertRaisesRegex(ValueError, "version 1 already exists .* pass a new --version"):
      shard_saved_model.split(shard_saved_model.Options(
          input_dir=self.input_dir, model_name=self.model_name, output_dir=self.output_dir,
          num_shards=_NUM_SHARDS, servers=_SERVERS, tables=["table"], verify=False))


del _SplitTestBase  # not a test of its own

if __name__ == "__main__":
  absltest.main()
