"""Writes one shard model: a variable holding only its rows and a lookup signature.

The rows go from a numpy array straight into the variable and from there into the
SavedModel's checkpoint, never into a GraphDef constant, so a shard may exceed the
2 GiB limit of a protocol buffer.

Signature `serving_default`: input `ids` int64 [n] (local row indices, checked by
the master), output `rows` [n] + row_shape.
"""

import numpy as np
import tensorflow as tf

from tensorflow_serving.experimental.example import staged_version
from tensorflow_serving.experimental.tools import sharded_lookup


class _Shard(tf.Module):

  def __init__(self, rows: np.ndarray):
    super().__init__(name="table_shard")
    self.rows = tf.Variable(rows, trainable=False, name="rows")

  @tf.function(input_signature=[tf.TensorSpec([None], tf.int64, name=sharded_lookup.SHARD_IDS)])
  def lookup(self, ids):
    return {sharded_lookup.SHARD_ROWS: tf.gather(self.rows, ids)}


def write(rows: np.ndarray, base_path: str, version: int) -> None:
  """Writes BASE_PATH/VERSION, renamed into place once complete."""
  shard = _Shard(rows)
  with staged_version.staged_version_dir(base_path, version) as path:
    tf.saved_model.save(shard, path, signatures={
        tf.saved_model.DEFAULT_SERVING_SIGNATURE_DEF_KEY: shard.lookup})
