"""Exports the "half plus two" SavedModel that the model server's tests and demos serve.

The model computes y = 0.5 * x + 2 as a TF1 graph written with SavedModelBuilder,
with the signature keys and tensor names of TensorFlow Serving's own test model, so
clients written against that model work unchanged:

  serving_default    predict   x (float)           -> y
  regress_x_to_y     regress   serialized Examples -> y   (feature "x")
  regress_x_to_y2    regress   serialized Examples -> y2 = 0.5 * x + 3
  regress_x2_to_y3   regress   x2 (float)          -> y3 = 0.5 * x2 + 3
  classify_x_to_y    classify  serialized Examples -> scores y
  classify_x2_to_y3  classify  x2 (float)          -> scores y3

`x` and `x2` are fed directly for predict, or parsed from `tf.Example`s fed to the
`tf_example` placeholder (feature "x", and feature "x2" defaulting to 0). The model
also carries an asset file, `assets/foo.txt`, to exercise asset handling on load.

Usage:
  tools/bazel run //tensorflow_serving/servables/tensorflow/testdata:saved_model_half_plus_two -- \
      --output_dir=/tmp/half_plus_two

writes /tmp/half_plus_two/00000123/. The version directory is written under a
temporary name and renamed into place, so a server polling `--output_dir` never
sees a half-written version.
"""

import os
import tempfile

from absl import app
from absl import flags
import tensorflow as tf

from tensorflow_serving.experimental.example import staged_version

ASSET_FILENAME = "foo.txt"
ASSET_CONTENTS = "asset-file-contents"

_v1 = tf.compat.v1


def _signature(input_tensor, output_key, output_tensor, method_name):
  # Built by hand because regression_signature_def() and
  # classification_signature_def() insist on a string input, while
  # regress_x2_to_y3 and classify_x2_to_y3 take the float x2 as in upstream's model.
  build = _v1.saved_model.utils.build_tensor_info
  return _v1.saved_model.signature_def_utils.build_signature_def(
      inputs={"inputs": build(input_tensor)},
      outputs={output_key: build(output_tensor)},
      method_name=method_name)


def _regression_signature(input_tensor, output_tensor):
  return _signature(input_tensor, tf.saved_model.REGRESS_OUTPUTS, output_tensor,
                    tf.saved_model.REGRESS_METHOD_NAME)


def _classification_signature(input_tensor, scores_tensor):
  return _signature(input_tensor, tf.saved_model.CLASSIFY_OUTPUT_SCORES, scores_tensor,
                    tf.saved_model.CLASSIFY_METHOD_NAME)


def _build_graph(asset_path):
  """Adds the model to the default graph; returns its signature map."""
  a = _v1.Variable(0.5, name="a")
  b = _v1.Variable(2.0, name="b")
  c = _v1.Variable(3.0, name="c")

  serialized_examples = _v1.placeholder(tf.string, name="tf_example")
  features = _v1.io.parse_example(
      serialized_examples, {
          "x": _v1.io.FixedLenFeature([1], tf.float32),
          "x2": _v1.io.FixedLenFeature([1], tf.float32, default_value=[0.0]),
      })
  x = tf.identity(features["x"], name="x")
  x2 = tf.identity(features["x2"], name="x2")
  y = tf.add(tf.multiply(a, x), b, name="y")
  y2 = tf.add(tf.multiply(a, x), c, name="y2")
  y3 = tf.add(tf.multiply(a, x2), c, name="y3")

  _v1.add_to_collection(_v1.GraphKeys.ASSET_FILEPATHS, tf.constant(asset_path, name="asset_path"))

  predict = _v1.saved_model.predict_signature_def(inputs={"x": x}, outputs={"y": y})
  return {
      tf.saved_model.DEFAULT_SERVING_SIGNATURE_DEF_KEY: predict,
      "regress_x_to_y": _regression_signature(serialized_examples, y),
      "regress_x_to_y2": _regression_signature(serialized_examples, y2),
      "regress_x2_to_y3": _regression_signature(x2, y3),
      "classify_x_to_y": _classification_signature(serialized_examples, y),
      "classify_x2_to_y3": _classification_signature(x2, y3),
  }


def export(output_dir: str, version: int = 123, as_text: bool = False) -> str:
  """Writes the model to OUTPUT_DIR/<version, 8 digits>; returns that path."""
  version_name = "%08d" % version
  with staged_version.staged_version_dir(output_dir, version_name) as export_dir, \
       tempfile.TemporaryDirectory() as asset_dir:
    # The builder copies the asset into the model's assets/.
    asset_path = os.path.join(asset_dir, ASSET_FILENAME)
    with open(asset_path, "w") as f:
      f.write(ASSET_CONTENTS)
    graph = tf.Graph()
    with graph.as_default():
      signatures = _build_graph(asset_path)
      with _v1.Session(graph=graph) as session:
        session.run(_v1.global_variables_initializer())
        builder = _v1.saved_model.Builder(export_dir)
        builder.add_meta_graph_and_variables(
            session, [tf.saved_model.SERVING],
            signature_def_map=signatures,
            assets_collection=_v1.get_collection(_v1.GraphKeys.ASSET_FILEPATHS),
            strip_default_attrs=True)
        builder.save(as_text=as_text)
  return os.path.join(output_dir, version_name)


def _define_flags() -> None:
  # Defined only when this file is the program: the model server's tests and the
  # examples import export(), and flags defined at import would clash with theirs.
  flags.DEFINE_string("output_dir", None,
                      "Model base path; the SavedModel goes to OUTPUT_DIR/<version>.")
  flags.DEFINE_integer("version", 123, "Version number of the exported model.")
  flags.DEFINE_bool("as_text", False, "Write saved_model.pbtxt instead of .pb.")


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {argv[1:]}")
  f = flags.FLAGS
  if not f.output_dir:
    raise app.UsageError("--output_dir is required: the model base path to write into")
  print(export(f.output_dir, f.version, f.as_text))


if __name__ == "__main__":
  _define_flags()
  app.run(main)
