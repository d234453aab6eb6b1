"""Small SavedModels with embedding tables, exported as users export them, for the tests.

Table sizes are primes, so no shard count divides them and shards differ in size.
"""

import os

import keras
import numpy as np
import tensorflow as tf

USERS = 1009
ITEMS = 307
DIM = 8

_v1 = tf.compat.v1


def keras_two_towers(path: str, seed: int = 0) -> str:
  """Keras: user and item Embedding layers, a Dense on their product.

  Exported with model.export(), Keras 3's way to write a SavedModel for serving.
  """
  keras.utils.set_random_seed(seed)
  user = keras.Input(shape=(), dtype="int64", name="user_id")
  item = keras.Input(shape=(), dtype="int64", name="item_id")
  u = keras.layers.Embedding(USERS, DIM, name="user_embedding")(user)
  v = keras.layers.Embedding(ITEMS, DIM, name="item_embedding")(item)
  score = keras.layers.Dense(1, name="score")(keras.layers.Multiply()([u, v]))
  model = keras.Model({"user_id": user, "item_id": item}, score)
  model.export(path, verbose=False)
  return path


class _Tf2Module(tf.Module):
  """tf.nn.embedding_lookup on a tf.Variable, with 2-D ids and a second variable."""

  def __init__(self, seed: int):
    super().__init__(name="bag_of_ids")
    rng = np.random.default_rng(seed)
    self.table = tf.Variable(rng.standard_normal((USERS, DIM), dtype=np.float32), name="table")
    self.scale = tf.Variable(rng.standard_normal((DIM,), dtype=np.float32), name="scale")

  @tf.function(input_signature=[tf.TensorSpec([None, 3], tf.int32, name="ids")])
  def serve(self, ids):
    rows = tf.nn.embedding_lookup(self.table, ids)
    return {"rows": rows, "pooled": tf.reduce_sum(rows, axis=1) * self.scale}


def tf2_module(path: str, seed: int = 0) -> str:
  module = _Tf2Module(seed)
  tf.saved_model.save(module, path, signatures={"serving_default": module.serve})
  return path


def tf1_graph(path: str, seed: int = 0, matmul_with_table: bool = False) -> str:
  """SavedModelBuilder: tf.gather and embedding_lookup on a get_variable table.

  With `matmul_with_table`, the table is also multiplied as a whole, which the tool
  must refuse to shard.
  """
  rng = np.random.default_rng(seed)
  graph = tf.Graph()
  with graph.as_default():
    ids = _v1.placeholder(tf.int64, [None], name="ids")
    table = _v1.get_variable(
        "table", initializer=rng.standard_normal((USERS, DIM), dtype=np.float32))
    bias = _v1.get_variable("bias", initializer=np.float32(0.25))
    gathered = tf.gather(table, ids)
    looked_up = tf.nn.embedding_lookup(table, ids[::-1])
    outputs = {"gathered": gathered, "sum": tf.reduce_sum(gathered + looked_up, axis=1) + bias}
    if matmul_with_table:
      outputs["projected"] = tf.matmul(gathered, table, transpose_b=True, name="whole_table")
    with _v1.Session(graph=graph) as session:
      session.run(_v1.global_variables_initializer())
      builder = _v1.saved_model.Builder(path)
      signature = _v1.saved_model.signature_def_utils.predict_signature_def(
          inputs={"ids": ids}, outputs=outputs)
      builder.add_meta_graph_and_variables(session, [tf.saved_model.SERVING],
                                           signature_def_map={"serving_default": signature})
      builder.save()
  return path


def tf1_encoder(path: str, seed: int = 0) -> str:
  """SavedModelBuilder: y = relu(x W1) W2 + b, with the encoder x W1 under `encoder/`."""
  rng = np.random.default_rng(seed)
  graph = tf.Graph()
  with graph.as_default():
    x = _v1.placeholder(tf.float32, [None, 4], name="x")
    with _v1.variable_scope("encoder"):
      w1 = _v1.get_variable("w1", initializer=rng.standard_normal((4, 6), dtype=np.float32))
      hidden = tf.matmul(x, w1, name="MatMul")
    with _v1.variable_scope("head"):
      w2 = _v1.get_variable("w2", initializer=rng.standard_normal((6, 2), dtype=np.float32))
      b = _v1.get_variable("b", initializer=np.float32([0.5, -0.5]))
      y = tf.matmul(tf.nn.relu(hidden), w2) + b
    with _v1.Session(graph=graph) as session:
      session.run(_v1.global_variables_initializer())
      builder = _v1.saved_model.Builder(path)
      signature = _v1.saved_model.signature_def_utils.predict_signature_def(
          inputs={"x": x}, outputs={"y": y})
      builder.add_meta_graph_and_variables(session, [tf.saved_model.SERVING],
                                           signature_def_map={"serving_default": signature})
      builder.save()
  return path
