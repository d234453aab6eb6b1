"""Exports half_plus_two_with_rpop: half_plus_two with its offset fetched remotely.

The model's `serving_default` signature computes y = a * x + b with a = 0.5. The
offset b is not stored in the model: on every request the model asks the remote
`half_plus_two` model (y = 0.5 * x + 2) for its output at x = 2.0, through the
Remote Predict Op (`TfServingRemotePredict`), so b = 3.0 and y = 0.5 * x + 3.

  input   x  float32 [batch]   e.g. [10.0] (what upstream's client sends)
  output  y  float32 [batch]   e.g. [8.0]

Usage, with the remote model served at localhost:8500:
  tools/bazel run //tensorflow_serving/experimental/example:half_plus_two_with_rpop -- \
      --target_address=localhost:8500

writes /tmp/half_plus_two_with_rpop/<version>/. The serving model server must load the
op library; //tensorflow_serving/model_servers:tensorflow_model_server does.
"""

import os

from absl import app
from absl import flags
import tensorflow as tf

from tensorflow_serving.experimental.example import staged_version
from tensorflow_serving.experimental.tensorflow.ops.remote_predict.python.ops import remote_predict_ops

DEFAULT_OUTPUT_DIR = "/tmp/half_plus_two_with_rpop"
DEFAULT_VERSION = 1
A = 0.5
# The remote model's input that yields b: half_plus_two(2.0) = 0.5 * 2.0 + 2 = 3.0.
REMOTE_INPUT = 2.0


class _HalfPlusTwoWithRpop(tf.Module):
  """y = a * x + b, with b = remote_model(REMOTE_INPUT)."""

  def __init__(self, target_address: str, remote_model_name: str, remote_model_version: int,
               max_rpc_deadline_millis: int, signature_name: str):
    super().__init__(name="half_plus_two_with_rpop")
    self.a = tf.Variable(A, name="a", trainable=False)
    self._remote = dict(
        target_address=target_address,
        model_name=remote_model_name,
        model_version=remote_model_version,
        max_rpc_deadline_millis=max_rpc_deadline_millis,
        signature_name=signature_name)

  @tf.function(input_signature=[tf.TensorSpec([None], tf.float32, name="x")])
  def serve(self, x):
    # Sent as [1, 1]: that is the shape of half_plus_two's x in its signature, so
    # any server that checks request shapes accepts it.
    [remote_y] = remote_predict_ops.run(
        ["x"], [tf.constant([[REMOTE_INPUT]], tf.float32)], ["y"],
        output_types=[tf.float32], name="remote_half_plus_two", **self._remote)
    b = tf.reshape(remote_y, [], name="b")
    return {"y": tf.add(self.a * x, b, name="y")}


def export(output_dir: str,
           target_address: str,
           remote_model_name: str = "half_plus_two",
           remote_model_version: int = -1,
           max_rpc_deadline_millis: int = 3000,
           signature_name: str = "serving_default",
           version: int = DEFAULT_VERSION) -> str:
  """Writes the model to OUTPUT_DIR/<version>; returns that directory.

  The version appears by an atomic rename, so a server polling `output_dir` never
  loads a half-written model.
  """
  if not target_address:
    raise ValueError("target_address is empty: give the host:port of the model server "
                     f"that serves '{remote_model_name}', e.g. localhost:8500")
  if not remote_model_name:
    raise ValueError("remote_model_name is empty: name the model that provides b, "
                     "e.g. half_plus_two")
  if version < 0:
    raise ValueError(f"version must be >= 0, got {version}")
  module = _HalfPlusTwoWithRpop(target_address, remote_model_name, remote_model_version,
                                max_rpc_deadline_millis, signature_name)
  with staged_version.staged_version_dir(output_dir, version) as path:
    tf.saved_model.save(module, path,
                        signatures={tf.saved_model.DEFAULT_SERVING_SIGNATURE_DEF_KEY: module.serve})
  return os.path.join(output_dir, str(version))


def _define_flags() -> None:
  # Defined only when this file is the program: the demo and the tests import
  # export() next to the half_plus_two exporter, whose --output_dir would clash.
  flags.DEFINE_string("output_dir", DEFAULT_OUTPUT_DIR,
                      "Model base path; the SavedModel goes to OUTPUT_DIR/<version>.")
  flags.DEFINE_integer("version", DEFAULT_VERSION, "Version number of the exported model.")
  flags.DEFINE_string("target_address", None,
                      "host:port (or gRPC target) of the model server serving the remote model.")
  flags.DEFINE_string("remote_model_name", "half_plus_two", "Name of the remote model.")
  flags.DEFINE_integer("remote_model_version", -1,
                       "Version of the remote model to call; -1 means the latest.")
  flags.DEFINE_integer("max_rpc_deadline_millis", 3000,
                       "Deadline of each remote call, in milliseconds.")
  flags.DEFINE_string("signature_name", "serving_default",
                      "Signature of the remote model to call.")
  flags.mark_flag_as_required("target_address")


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {argv[1:]}")
  f = flags.FLAGS
  try:
    path = export(f.output_dir, f.target_address, f.remote_model_name, f.remote_model_version,
                  f.max_rpc_deadline_millis, f.signature_name, f.version)
  except (ValueError, FileExistsError) as e:
    raise app.UsageError(str(e)) from e
  print(f"exported half_plus_two_with_rpop to {path} "
        f"(b comes from '{f.remote_model_name}' at {f.target_address})")


if __name__ == "__main__":
  _define_flags()
  app.run(main)
