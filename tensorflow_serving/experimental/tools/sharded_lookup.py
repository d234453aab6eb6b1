"""The master's replacement for one lookup into a sharded table, as GraphDef nodes.

table[ids] becomes: check every id is in [0, rows) (an InvalidArgument error like
tf.gather's otherwise), de-duplicate, route each unique id to its shard
(`partitioning`), one TfServingRemotePredict per shard (independent ops, so the
session runs them concurrently), stitch the rows back in input order and give them
the shape ids.shape + row_shape. `splice` inserts these nodes into the master's
GraphDef in place of the original gather node, under the gather's own name, so
every consumer of the gather reads the remote rows unchanged.
"""

import dataclasses
from typing import Sequence, Tuple

import tensorflow as tf

from tensorflow.core.framework import graph_pb2
from tensorflow_serving.experimental.tensorflow.ops.remote_predict.python.ops import remote_predict_ops
from tensorflow_serving.experimental.tools import graph_splice
from tensorflow_serving.experimental.tools import partitioning

# The shard models' signature: local row indices in, rows out.
SHARD_IDS = "ids"
SHARD_ROWS = "rows"
_IDS_PLACEHOLDER = "ids"
_OUTPUT = "output"


@dataclasses.dataclass(frozen=True)
class RemoteShard:
  address: str
  model_name: str


@dataclasses.dataclass(frozen=True)
class ShardedTable:
  """What a lookup needs to know about a table and where its shards are served."""
  name: str
  num_rows: int
  row_shape: Tuple[int, ...]
  dtype: tf.DType
  scheme: str
  shards: Tuple[RemoteShard, ...]
  model_version: int
  max_rpc_deadline_millis: int


def build(table: ShardedTable, ids: tf.Tensor) -> tf.Tensor:
  """Adds the sharded lookup of `ids` to the current graph; returns table[ids]."""
  flat = tf.reshape(tf.cast(ids, tf.int64), [-1])
  out_of_range = tf.boolean_mask(flat, (flat < 0) | (flat >= table.num_rows))
  check = tf.debugging.Assert(
      tf.equal(tf.size(out_of_range), 0),
      [f"ids of table '{table.name}' must be in [0, {table.num_rows}); out-of-range ids:",
       out_of_range], summarize=16, name="check_ids_in_range")
  # Nothing may reach a shard before the check: a shard would fail with a less
  # helpful message, or the call could hide the error.
  with tf.control_dependencies([check]):
    unique_ids, positions = tf.unique(flat)
  num_shards = len(table.shards)
  shard_of_id, local_ids = partitioning.route(table.scheme, table.num_rows, num_shards, unique_ids)
  local_parts = tf.dynamic_partition(local_ids, shard_of_id, num_shards)
  slots = tf.dynamic_partition(tf.range(tf.size(unique_ids)), shard_of_id, num_shards)
  rows = []
  for k, shard in enumerate(table.shards):
    [shard_rows] = remote_predict_ops.run(
        [SHARD_IDS], [local_parts[k]], [SHARD_ROWS], target_address=shard.address,
        model_name=shard.model_name, model_version=table.model_version,
        max_rpc_deadline_millis=table.max_rpc_deadline_millis, output_types=[table.dtype],
        name=f"shard_{k}")
    rows.append(tf.reshape(shard_rows, [-1, *table.row_shape]))
  unique_rows = tf.dynamic_stitch(slots, rows)
  gathered = tf.gather(unique_rows, positions)
  return tf.reshape(gathered, tf.concat([tf.shape(ids, out_type=tf.int32),
                                         tf.constant(table.row_shape, tf.int32)], 0))


def graph_def(table: ShardedTable, ids_dtype: tf.DType) -> graph_pb2.GraphDef:
  """The lookup as a GraphDef with a placeholder `ids` and an Identity `output`."""
  graph = tf.Graph()
  with graph.as_default():
    ids = tf.compat.v1.placeholder(ids_dtype, name=_IDS_PLACEHOLDER)
    tf.identity(build(table, ids), name=_OUTPUT)
  return graph.as_graph_def()


def splice(target: graph_pb2.GraphDef, lookup: graph_pb2.GraphDef, ids_tensor: str,
           output_node: str) -> None:
  """Appends `lookup` to `target`: its ids come from `ids_tensor`, its output is `output_node`.

  The other nodes are renamed under `<output_node>_sharded/`.
  """
  graph_splice.splice(target, lookup, {_IDS_PLACEHOLDER: ids_tensor}, _OUTPUT, output_node,
                      f"{output_node}_sharded/")


def rows_shape(variable_shape: Sequence[int]) -> Tuple[int, ...]:
  return tuple(int(d) for d in variable_shape[1:])
