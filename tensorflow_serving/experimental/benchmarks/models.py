"""The models the benchmark serves, exported into its work directory.

  half_plus_two          TensorFlow Serving's test model (x -> y = 0.5 * x + 2), for call
                         latency and server throughput
  half_plus_two_<k>      copies of it under K names, so fan-out calls K distinct models
  identity               float32 vector x -> y = x, for the payload sweep

Every model's `serving_default` signature takes float32 `x` and returns `y`.
"""

import os
import shutil
from typing import Dict

import tensorflow as tf

from tensorflow_serving.experimental.example import staged_version
from tensorflow_serving.servables.tensorflow.testdata import saved_model_half_plus_two

INPUT = "x"
OUTPUT = "y"
HALF_PLUS_TWO = "half_plus_two"
IDENTITY = "identity"
_IDENTITY_VERSION = 1


def fan_out_model_name(k: int) -> str:
  return f"{HALF_PLUS_TWO}_{k}"


class _Identity(tf.Module):

  @tf.function(input_signature=[tf.TensorSpec([None], tf.float32, name=INPUT)])
  def serve(self, x):
    return {OUTPUT: tf.identity(x)}


def export_identity(base_path: str) -> str:
  """Writes the identity model to BASE_PATH/1, atomically; returns that path."""
  module = _Identity()
  with staged_version.staged_version_dir(base_path, _IDENTITY_VERSION) as path:
    tf.saved_model.save(module, path, signatures={
        tf.saved_model.DEFAULT_SERVING_SIGNATURE_DEF_KEY: module.serve})
  return os.path.join(base_path, str(_IDENTITY_VERSION))


def export_all(work_dir: str, fan_out_models: int) -> Dict[str, str]:
  """Exports every model under WORK_DIR/models; returns model name -> base path."""
  root = os.path.join(work_dir, "models")
  base_paths = {
      HALF_PLUS_TWO: os.path.join(root, HALF_PLUS_TWO),
      IDENTITY: os.path.join(root, IDENTITY),
  }
  saved_model_half_plus_two.export(base_paths[HALF_PLUS_TWO])
  export_identity(base_paths[IDENTITY])
  for k in range(fan_out_models):
    name = fan_out_model_name(k)
    # Separate copies: each name is a model of its own to the server.
    base_paths[name] = os.path.join(root, name)
    shutil.copytree(base_paths[HALF_PLUS_TWO], base_paths[name])
  return base_paths
