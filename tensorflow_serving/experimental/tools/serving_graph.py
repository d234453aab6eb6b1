"""The serving graph of a SavedModel, flattened, and how it reads each variable.

TF2 SavedModels keep their computation in nested functions; TF1 ones in one graph.
`load` inlines every function call of the serving signatures (Grappler's function
optimizer, nothing else) and keeps only what the signatures need, so both kinds
become one flat GraphDef whose variables are plain VarHandleOp (or VariableV2)
nodes. `Variable.lookups` are the gather-like reads of a variable that a sharded
lookup can replace; `Variable.other_reads` are every other use.
"""

import dataclasses
import re
from typing import Dict, List, Optional, Sequence, Set, Tuple

import numpy as np
import tensorflow as tf

from tensorflow.core.framework import graph_pb2
from tensorflow.core.protobuf import config_pb2
from tensorflow.core.protobuf import meta_graph_pb2
# Grappler and the SavedModel parser have no public API.
from tensorflow.python.grappler import tf_optimizer
from tensorflow.python.saved_model import loader_impl

# TF2 SavedModels carry their initialiser as this pseudo-signature.
INIT_OP_SIGNATURE_KEY = "__saved_model_init_op"
_RESOURCE_VARIABLE_OPS = ("VarHandleOp",)
_REF_VARIABLE_OPS = ("VariableV2", "Variable")
# Ops that pass a variable's handle or value on unchanged.
_ALIAS_OPS = ("Identity",)


class ShardingError(ValueError):
  """The model cannot be split as asked; the message names the node and what to do."""


def tensor_node(tensor_name: str) -> str:
  """'node:1' / 'node' / '^node' -> 'node'."""
  return tensor_name.lstrip("^").split(":")[0]


def tensor_index(tensor_name: str) -> int:
  parts = tensor_name.split(":")
  return int(parts[1]) if len(parts) > 1 else 0


@dataclasses.dataclass
class Lookup:
  """One gather-like read of a table: `node` produces table[ids] along axis 0."""
  node: str
  op: str
  ids: str  # the tensor holding the ids, e.g. "model/Cast:0"
  ids_dtype: tf.DType


@dataclasses.dataclass
class Variable:
  """A variable of the serving graph and every read of it."""
  node: str
  op: str
  dtype: tf.DType
  shape: Tuple[int, ...]  # -1 for a dimension not known statically
  lookups: List[Lookup] = dataclasses.field(default_factory=list)
  # (node, op) of every read that is not a lookup, in graph order.
  other_reads: List[Tuple[str, str]] = dataclasses.field(default_factory=list)
  # Identity / ReadVariableOp nodes that exist only to feed the lookups.
  read_path: List[str] = dataclasses.field(default_factory=list)

  @property
  def resource(self) -> bool:
    return self.op in _RESOURCE_VARIABLE_OPS

  @property
  def nbytes(self) -> int:
    if any(d < 0 for d in self.shape):
      return 0
    return int(np.prod(self.shape, dtype=np.int64)) * self.dtype.size

  def describe(self) -> str:
    shape = "x".join(str(d) for d in self.shape) or "scalar"
    return f"'{self.node}' ({self.dtype.name} {shape}, {self.nbytes / 2**20:.1f} MiB)"


@dataclasses.dataclass
class ServingGraph:
  """A SavedModel's serving graph, flattened, with its variables."""
  saved_model_dir: str
  tags: Tuple[str, ...]
  meta_graph: meta_graph_pb2.MetaGraphDef
  graph_def: graph_pb2.GraphDef
  signatures: Dict[str, meta_graph_pb2.SignatureDef]  # without the init pseudo-signature
  init_op: Optional[str]
  variables: Dict[str, Variable]


def _meta_graph(saved_model_dir: str, tags: Sequence[str]) -> meta_graph_pb2.MetaGraphDef:
  saved_model = loader_impl.parse_saved_model(saved_model_dir)
  for meta_graph in saved_model.meta_graphs:
    if set(meta_graph.meta_info_def.tags) == set(tags):
      return meta_graph
  available = [sorted(m.meta_info_def.tags) for m in saved_model.meta_graphs]
  raise ShardingError(f"{saved_model_dir} has no MetaGraph with tags {sorted(tags)}; it has "
                      f"{available}. Pass the right --tags.")


def _inline_functions(meta_graph: meta_graph_pb2.MetaGraphDef) -> graph_pb2.GraphDef:
  config = config_pb2.ConfigProto()
  rewrite = config.graph_options.rewrite_options
  rewrite.optimizers.append("function")
  rewrite.min_graph_nodes = -1
  rewrite.meta_optimizer_iterations = rewrite.ONE
  return tf_optimizer.OptimizeGraph(config, meta_graph, graph_id=b"shard_saved_model")


def load(saved_model_dir: str, tags: Sequence[str] = (tf.saved_model.SERVING,)) -> ServingGraph:
  """Parses the SavedModel and analyses how its serving signatures read variables."""
  meta_graph = _meta_graph(saved_model_dir, tags)
  if meta_graph.asset_file_def:
    names = [a.filename for a in meta_graph.asset_file_def]
    raise ShardingError(f"{saved_model_dir} has asset files {names}; models with assets are "
                        "not supported yet. Export the model without assets (e.g. vocabularies "
                        "as constants) or split it by hand.")
  signatures = {k: s for k, s in meta_graph.signature_def.items() if k != INIT_OP_SIGNATURE_KEY}
  if not signatures:
    raise ShardingError(f"{saved_model_dir} has no signatures with tags {sorted(tags)}: "
                        "nothing to serve")
  init_op = None
  if INIT_OP_SIGNATURE_KEY in meta_graph.signature_def:
    [init_tensor] = meta_graph.signature_def[INIT_OP_SIGNATURE_KEY].outputs.values()
    init_op = tensor_node(init_tensor.name)
  keep = {tensor_node(t.name) for s in signatures.values()
          for t in list(s.inputs.values()) + list(s.outputs.values())}
  if init_op:
    keep.add(init_op)
  flat = _inline_functions(meta_graph)
  graph_def = tf.compat.v1.graph_util.extract_sub_graph(flat, sorted(keep))
  graph_def.library.CopyFrom(flat.library)
  graph_def.versions.CopyFrom(flat.versions)
  return ServingGraph(saved_model_dir, tuple(tags), meta_graph, graph_def, signatures, init_op,
                      analyse_variables(graph_def))


def _const_value(node) -> Optional[np.ndarray]:
  if node is None or node.op != "Const":
    return None
  return tf.make_ndarray(node.attr["value"].tensor)


def analyse_variables(graph_def: graph_pb2.GraphDef) -> Dict[str, Variable]:
  nodes = {n.name: n for n in graph_def.node}
  # tensor name -> [(consumer node, input position)], data inputs only.
  consumers: Dict[str, List[Tuple[str, int]]] = {}
  for node in graph_def.node:
    for position, name in enumerate(node.input):
      if not name.startswith("^"):
        key = f"{tensor_node(name)}:{tensor_index(name)}"
        consumers.setdefault(key, []).append((node.name, position))

  variables = {}
  for node in graph_def.node:
    if node.op not in _RESOURCE_VARIABLE_OPS + _REF_VARIABLE_OPS:
      continue
    dtype = tf.as_dtype(node.attr["dtype"].type)
    shape = tuple(d.size for d in node.attr["shape"].shape.dim)
    if node.attr["shape"].shape.unknown_rank:
      shape = (-1,)
    variable = Variable(node.name, node.op, dtype, shape)
    # Resource variables are read through a handle; ref variables are values.
    pending = [(f"{node.name}:0", variable.resource)]
    seen: Set[str] = set()
    while pending:
      tensor, is_handle = pending.pop()
      for consumer_name, position in consumers.get(tensor, []):
        if (consumer_name, position) in seen:
          continue
        seen.add((consumer_name, position))
        consumer = nodes[consumer_name]
        if consumer.op in _ALIAS_OPS:
          variable.read_path.append(consumer_name)
          pending.append((f"{consumer_name}:0", is_handle))
        elif is_handle and consumer.op == "ReadVariableOp":
          variable.read_path.append(consumer_name)
          pending.append((f"{consumer_name}:0", False))
        elif _is_lookup(consumer, position, is_handle, nodes):
          ids = consumer.input[1]
          ids_dtype = tf.as_dtype(consumer.attr["Tindices"].type)
          variable.lookups.append(Lookup(consumer_name, consumer.op, ids, ids_dtype))
        else:
          variable.other_reads.append((consumer_name, consumer.op))
    variables[node.name] = variable
  return variables


def _is_lookup(node, position: int, is_handle: bool, nodes) -> bool:
  """Whether `node` gathers whole rows of its input `position` along axis 0."""
  if position != 0:
    return False
  # Reading a missing key of a proto map would add it, hence `in`.
  if "batch_dims" in node.attr and node.attr["batch_dims"].i != 0:
    return False
  if is_handle:
    return node.op == "ResourceGather"
  if node.op == "Gather":
    return True
  if node.op == "GatherV2":
    axis = _const_value(nodes.get(tensor_node(node.input[2])))
    return axis is not None and axis.size == 1 and int(axis.reshape(())) == 0
  return False


def sanitized(name: str) -> str:
  """A variable name as it may appear in a model name and a directory."""
  return re.sub(r"[^A-Za-z0-9_.-]", "_", name).strip("_.") or "table"
