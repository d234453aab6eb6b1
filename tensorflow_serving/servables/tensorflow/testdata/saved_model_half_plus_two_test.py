"""Checks the exported half_plus_two: its signatures compute what they promise."""

import os

from absl import flags
import numpy as np
import tensorflow as tf

from tensorflow_serving.servables.tensorflow.testdata import saved_model_half_plus_two


def _examples(values, feature="x"):
  return np.array([
      tf.train.Example(features=tf.train.Features(feature={
          feature: tf.train.Feature(float_list=tf.train.FloatList(value=[v]))
      })).SerializeToString() for v in values
  ], dtype=object)


class SavedModelHalfPlusTwoTest(tf.test.TestCase):

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    cls.base_path = os.path.join(tf.compat.v1.test.get_temp_dir(), "half_plus_two")
    cls.export_dir = saved_model_half_plus_two.export(cls.base_path, 123)
    cls.graph = tf.Graph()
    cls.session = tf.compat.v1.Session(graph=cls.graph)
    with cls.graph.as_default():
      cls.meta_graph = tf.compat.v1.saved_model.loader.load(cls.session, ["serve"], cls.export_dir)

  @classmethod
  def tearDownClass(cls):
    cls.session.close()
    super().tearDownClass()

  def _run(self, signature_name, input_value, output_key):
    signature = self.meta_graph.signature_def[signature_name]
    (input_info,) = signature.inputs.values()
    return self.session.run(signature.outputs[output_key].name, {input_info.name: input_value})

  def test_version_directory_and_asset(self):
    self.assertEqual(os.path.basename(self.export_dir), "00000123")
    with open(os.path.join(self.export_dir, "assets", saved_model_half_plus_two.ASSET_FILENAME)) as f:
      self.assertEqual(f.read(), saved_model_half_plus_two.ASSET_CONTENTS)
    self.assertEqual([e for e in os.listdir(self.base_path) if e.startswith(".")], [])

  def test_signatures_and_methods(self):
    methods = {k: v.method_name for k, v in self.meta_graph.signature_def.items()}
    self.assertEqual(methods, {
        "serving_default": "tensorflow/serving/predict",
        "classify_x_to_y": "tensorflow/serving/classify",
        "classify_x2_to_y3": "tensorflow/serving/classify",
        "regress_x_to_y": "tensorflow/serving/regress",
        "regress_x_to_y2": "tensorflow/serving/regress",
        "regress_x2_to_y3": "tensorflow/serving/regress",
    })
    predict = self.meta_graph.signature_def["serving_default"]
    self.assertEqual(predict.inputs["x"].name, "x:0")
    self.assertEqual(predict.outputs["y"].name, "y:0")

  def test_predict_is_half_plus_two(self):
    self.assertAllClose(self._run("serving_default", [[1.0], [2.0], [5.0]], "y"),
                        [[2.5], [3.0], [4.5]])

  def test_regressions_parse_examples(self):
    self.assertAllClose(self._run("regress_x_to_y", _examples([2.0]), "outputs"), [[3.0]])
    self.assertAllClose(self._run("regress_x_to_y2", _examples([2.0]), "outputs"), [[4.0]])
    self.assertAllClose(self._run("classify_x_to_y", _examples([4.0]), "scores"), [[4.0]])

  def test_x2_signatures(self):
    self.assertAllClose(self._run("regress_x2_to_y3", [[2.0]], "outputs"), [[4.0]])
    self.assertAllClose(self._run("classify_x2_to_y3", [[4.0]], "scores"), [[5.0]])

  def test_refuses_to_overwrite_a_version(self):
    with self.assertRaisesRegex(FileExistsError, "00000123"):
      saved_model_half_plus_two.export(self.base_path, 123)

  def test_importing_the_module_defines_no_flags(self):
    # Tests and examples import export() next to flags of their own.
    for name in ("output_dir", "version", "as_text"):
      self.assertNotIn(name, flags.FLAGS, f"importing the exporter defined --{name}")


if __name__ == "__main__":
  tf.test.main()
