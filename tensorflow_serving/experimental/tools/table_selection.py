"""Chooses the variables to shard: the ones named, or every large lookup-only one.

A table can be sharded when the serving graph reads it only through gather-like
lookups (tf.gather, tf.nn.embedding_lookup, Keras Embedding) along axis 0, and its
shape is static. Anything else gets a ShardingError that names the node.
"""

import re
from typing import List, Optional, Sequence

from absl import logging

from tensorflow_serving.experimental.tools import serving_graph

DEFAULT_MIN_TABLE_BYTES = 64 * 2**20


def _find(graph: serving_graph.ServingGraph, name: str) -> serving_graph.Variable:
  if name in graph.variables:
    return graph.variables[name]
  # Also the sanitized name, and the name without Keras's export suffix ("_1").
  similar = [v for v in graph.variables.values()
             if name in (serving_graph.sanitized(v.node), re.sub(r"_\d+$", "", v.node))]
  if len(similar) == 1:
    return similar[0]
  other = [n for n in graph.graph_def.node if n.name == name]
  if other:
    raise serving_graph.ShardingError(
        f"--tables names '{name}', a {other[0].op} node, which is not a variable: only "
        "variables (VarHandleOp, VariableV2) can be sharded. Hash tables and other resources "
        f"stay in the master; remove '{name}' from --tables.")
  known = ", ".join(v.describe() for v in _largest_first(graph.variables.values())[:10])
  raise serving_graph.ShardingError(
      f"--tables names '{name}', which is not a variable the serving signatures read. "
      f"Variables, largest first: {known or 'none'}")


def _largest_first(variables) -> List[serving_graph.Variable]:
  return sorted(variables, key=lambda v: (-v.nbytes, v.node))


def check_shardable(variable: serving_graph.Variable, num_shards: int) -> None:
  """Raises ShardingError unless `variable` can be split into `num_shards` row ranges."""
  if variable.other_reads:
    node, op = variable.other_reads[0]
    raise serving_graph.ShardingError(
        f"table {variable.describe()} is read by {op} node '{node}', which is not a "
        "gather-like lookup; only tf.gather / tf.nn.embedding_lookup / Keras Embedding reads "
        "along axis 0 can be served from shards. Leave it out of --tables (it then stays in "
        "the master), or change the model to read it only through lookups.")
  if not variable.lookups:
    raise serving_graph.ShardingError(
        f"table {variable.describe()} is not read by any lookup in the serving signatures; "
        "there is nothing to shard. Leave it out of --tables.")
  if not variable.shape or any(d < 0 for d in variable.shape):
    raise serving_graph.ShardingError(
        f"table '{variable.node}' has a dynamic shape {list(variable.shape)}; only tables "
        "whose shape is fixed in the SavedModel can be sharded (a table that grows at serving "
        "time cannot be split ahead of time). Export it with a static shape.")
  if variable.shape[0] < num_shards:
    raise serving_graph.ShardingError(
        f"table {variable.describe()} has {variable.shape[0]} rows, fewer than --num_shards="
        f"{num_shards}; lower --num_shards")


def select(graph: serving_graph.ServingGraph, num_shards: int,
           names: Optional[Sequence[str]] = None,
           min_table_bytes: int = DEFAULT_MIN_TABLE_BYTES) -> List[serving_graph.Variable]:
  """The tables to shard, in the order of the graph's variables."""
  if names:
    chosen = []
    for name in names:
      variable = _find(graph, name)
      check_shardable(variable, num_shards)
      if variable not in chosen:
        chosen.append(variable)
    return chosen
  chosen = []
  for variable in graph.variables.values():
    if variable.nbytes < min_table_bytes:
      continue
    try:
      check_shardable(variable, num_shards)
    except serving_graph.ShardingError as e:
      logging.warning("not sharding a large variable: %s", e)
      continue
    chosen.append(variable)
  if not chosen:
    known = ", ".join(v.describe() for v in _largest_first(graph.variables.values())[:5])
    raise serving_graph.ShardingError(
        f"no variable of at least --min_table_bytes={min_table_bytes} is read only by "
        f"lookups, so there is nothing to shard. Largest variables: {known or 'none'}. "
        "Name the tables with --tables, or lower --min_table_bytes.")
  return chosen
