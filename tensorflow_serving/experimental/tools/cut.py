"""--cut=NAME: serve the sub-graph that computes one tensor as a model of its own.

NAME is a tensor or node of a TF1 graph ("encoder/Relu:0"), or a Keras layer name
("user_tower"): every call of that layer in the serving signatures is cut at its
one output tensor. The sub-graph model computes the tensor from the signature
inputs it needs (signature `<original signature>`, output `cut`), holding the
variables it reads; the master sends those inputs through TfServingRemotePredict
and computes the rest. Several masters can call one sub-graph model (a shared
encoder).

The sub-graph must own its state: a variable read both inside the cut sub-graph
and by the rest of the model is refused with both readers named.
"""

import dataclasses
import os
import re
from typing import Dict, List, Optional, Sequence, Set

import tensorflow as tf

from tensorflow.core.framework import graph_pb2
from tensorflow.core.protobuf import meta_graph_pb2
from tensorflow_serving.experimental.tensorflow.ops.remote_predict.python.ops import remote_predict_ops
from tensorflow_serving.experimental.tools import graph_splice
from tensorflow_serving.experimental.tools import serving_graph

CUT_OUTPUT = "cut"


@dataclasses.dataclass
class CutTensor:
  tensor: str  # "node:index" in the flattened serving graph
  signature: str  # the sub-graph model's signature that computes it
  inputs: Dict[str, meta_graph_pb2.TensorInfo]  # signature input key -> placeholder
  dtype: tf.DType
  shape: tf.TensorShape


@dataclasses.dataclass
class CutPlan:
  """The master, the sub-graph model and where they are served."""
  output_dir: str
  model_name: str
  cut_name: str
  cut_model_name: str
  version: int
  servers: List[str]
  tensors: List[CutTensor]
  max_rpc_deadline_millis: int

  @property
  def cut_server(self) -> int:
    return 1 if len(self.servers) > 1 else 0

  def base_path(self, model_name: str) -> str:
    return os.path.join(os.path.abspath(self.output_dir), model_name)

  def config_path(self, server: int) -> str:
    return os.path.join(self.output_dir, f"server_{server}.config")

  def models_on(self, server: int) -> Dict[str, str]:
    models = {self.model_name: self.base_path(self.model_name)} if server == 0 else {}
    if server == self.cut_server:
      models[self.cut_model_name] = self.base_path(self.cut_model_name)
    return models

  def manifest(self) -> Dict:
    return {
        "model_name": self.model_name,
        "version": self.version,
        "master": {"model_name": self.model_name, "server": 0,
                   "base_path": self.base_path(self.model_name)},
        "servers": [{"index": i, "address": a, "config": os.path.abspath(self.config_path(i))}
                    for i, a in enumerate(self.servers)],
        "tables": [],
        "cut": {"name": self.cut_name, "model_name": self.cut_model_name,
                "server": self.cut_server, "address": self.servers[self.cut_server],
                "base_path": self.base_path(self.cut_model_name), "version": self.version,
                "tensors": [{"tensor": t.tensor, "signature": t.signature,
                             "inputs": sorted(t.inputs), "dtype": t.dtype.name}
                            for t in self.tensors]},
    }


def _normalized(tensor: str) -> str:
  return f"{serving_graph.tensor_node(tensor)}:{serving_graph.tensor_index(tensor)}"


def _closure(nodes, starts: Sequence[str], data_only: bool = False,
             no_control_into: Set[str] = frozenset()) -> Set[str]:
  """The nodes `starts` depend on, through data and (unless `data_only`) control edges.

  Control edges into `no_control_into` are not followed: a TF2 function orders its
  call after every variable it captures, which does not make them inputs.
  """
  seen: Set[str] = set()
  pending = list(starts)
  while pending:
    name = pending.pop()
    if name in seen or name not in nodes:
      continue
    seen.add(name)
    for source in nodes[name].input:
      control = source.startswith("^")
      if control and (data_only or serving_graph.tensor_node(source) in no_control_into):
        continue
      pending.append(serving_graph.tensor_node(source))
  return seen


def _sub_graph_nodes(graph: serving_graph.ServingGraph, cut: "CutPlan") -> Set[str]:
  nodes = {n.name: n for n in graph.graph_def.node}
  return _closure(nodes, [serving_graph.tensor_node(t.tensor) for t in cut.tensors],
                  no_control_into=set(graph.variables))


def _resolve(graph: serving_graph.ServingGraph, name: str) -> List[str]:
  """The tensors NAME stands for: one tensor, or one output per call of a Keras layer."""
  nodes = {n.name: n for n in graph.graph_def.node}
  if ":" in name or name in nodes:
    if serving_graph.tensor_node(name) not in nodes:
      raise serving_graph.ShardingError(
          f"--cut={name}: the serving graph has no node '{serving_graph.tensor_node(name)}'")
    return [_normalized(name)]
  layer = re.compile(rf"{re.escape(name)}(_\d+)?")
  groups: Dict[str, Set[str]] = {}
  for node in graph.graph_def.node:
    if node.name in graph.variables:
      continue  # a layer's variable is read by the call, not part of it
    parts = node.name.split("/")
    for i, part in enumerate(parts[:-1]):
      if layer.fullmatch(part):
        groups.setdefault("/".join(parts[:i + 1]), set()).add(node.name)
        break
  if not groups:
    raise serving_graph.ShardingError(
        f"--cut={name} is neither a node or tensor of the serving graph nor the name of a Keras "
        "layer the serving signatures call; give a layer name or a tensor name such as "
        "'dense/Relu:0'")
  tensors = []
  for prefix, members in sorted(groups.items()):
    outputs = sorted({_normalized(i) for n in graph.graph_def.node if n.name not in members
                      for i in n.input if not i.startswith("^") and
                      serving_graph.tensor_node(i) in members})
    if len(outputs) != 1:
      raise serving_graph.ShardingError(
          f"--cut={name}: the layer call '{prefix}' has {len(outputs)} output tensors "
          f"{outputs[:4]}; cut at one tensor by its name instead")
    tensors.append(outputs[0])
  return tensors


def plan(graph: serving_graph.ServingGraph, name: str, output_dir: str, model_name: str,
         cut_model_name: str, version: int, servers: Sequence[str],
         max_rpc_deadline_millis: int) -> CutPlan:
  nodes = {n.name: n for n in graph.graph_def.node}
  reached_by = {key: _closure(nodes, [serving_graph.tensor_node(t.name)
                                      for t in s.outputs.values()])
                for key, s in graph.signatures.items()}
  typed = tf.Graph()
  with typed.as_default():
    tf.graph_util.import_graph_def(graph.graph_def, name="")
  tensors = []
  used_keys: Set[str] = set()
  for tensor in _resolve(graph, name):
    keys = [k for k in sorted(graph.signatures) if serving_graph.tensor_node(tensor) in
            reached_by[k]]
    if not keys:
      continue
    key = keys[0] if keys[0] not in used_keys else f"{keys[0]}_{len(used_keys)}"
    used_keys.add(key)
    inputs = {}
    for node_name in sorted(_closure(nodes, [serving_graph.tensor_node(tensor)])):
      if nodes[node_name].op != "Placeholder":
        continue
      found = [(k, info) for k, info in graph.signatures[keys[0]].inputs.items()
               if serving_graph.tensor_node(info.name) == node_name]
      if not found:
        raise serving_graph.ShardingError(
            f"--cut={name}: the sub-graph of '{tensor}' reads placeholder '{node_name}', which "
            f"is not an input of signature '{keys[0]}'")
      inputs[found[0][0]] = found[0][1]
    t = typed.get_tensor_by_name(tensor)
    tensors.append(CutTensor(tensor, key, inputs, t.dtype, t.shape))
  if not tensors:
    raise serving_graph.ShardingError(f"--cut={name}: no serving signature computes it")
  return CutPlan(output_dir, model_name, name, cut_model_name, version, list(servers), tensors,
                 max_rpc_deadline_millis)


def _derived(graph: serving_graph.ServingGraph, graph_def: graph_pb2.GraphDef,
             signatures: Dict[str, meta_graph_pb2.SignatureDef],
             init_op: Optional[str]) -> serving_graph.ServingGraph:
  return serving_graph.ServingGraph(graph.saved_model_dir, graph.tags, graph.meta_graph,
                                    graph_def, signatures, init_op,
                                    serving_graph.analyse_variables(graph_def))


def sub_graph(graph: serving_graph.ServingGraph, cut: CutPlan) -> serving_graph.ServingGraph:
  """The sub-graph model: every cut tensor computed from the inputs it needs."""
  keep = _sub_graph_nodes(graph, cut)
  graph_def = graph_pb2.GraphDef()
  graph_def.versions.CopyFrom(graph.graph_def.versions)
  graph_def.library.CopyFrom(graph.graph_def.library)
  for node in graph.graph_def.node:
    if node.name in keep:
      new = graph_def.node.add()
      new.CopyFrom(node)
      del new.input[:]
      new.input.extend(i for i in node.input if serving_graph.tensor_node(i) in keep)
  signatures = {}
  for t in cut.tensors:
    signature = meta_graph_pb2.SignatureDef(method_name=tf.saved_model.PREDICT_METHOD_NAME)
    for key, info in t.inputs.items():
      signature.inputs[key].CopyFrom(info)
    output = signature.outputs[CUT_OUTPUT]
    output.name = t.tensor
    output.dtype = t.dtype.as_datatype_enum
    output.tensor_shape.CopyFrom(t.shape.as_proto())
    signatures[t.signature] = signature
  return _derived(graph, graph_def, signatures, None)


def master(graph: serving_graph.ServingGraph, cut: CutPlan,
           addresses: Sequence[str]) -> serving_graph.ServingGraph:
  """The rest of the model, calling the sub-graph model at addresses[cut.cut_server]."""
  graph_def = graph_pb2.GraphDef()
  graph_def.CopyFrom(graph.graph_def)
  replaced = {}
  for i, t in enumerate(cut.tensors):
    part = tf.Graph()
    with part.as_default():
      keys = sorted(t.inputs)
      placeholders = [tf.compat.v1.placeholder(tf.as_dtype(t.inputs[k].dtype), name=f"input_{j}")
                      for j, k in enumerate(keys)]
      [rows] = remote_predict_ops.run(
          keys, placeholders, [CUT_OUTPUT], target_address=addresses[cut.cut_server],
          model_name=cut.cut_model_name, model_version=cut.version,
          max_rpc_deadline_millis=cut.max_rpc_deadline_millis, output_types=[t.dtype],
          signature_name=t.signature, name="call")
      tf.identity(rows, name="output")
    output_name = f"{serving_graph.tensor_node(t.tensor)}_from_{cut.cut_model_name}_{i}"
    graph_splice.splice(graph_def, part.as_graph_def(),
                        {f"input_{j}": t.inputs[k].name for j, k in enumerate(keys)},
                        "output", output_name, output_name + "/")
    replaced[t.tensor] = f"{output_name}:0"
  for node in graph_def.node:
    for j, name in enumerate(node.input):
      if not name.startswith("^") and _normalized(name) in replaced:
        node.input[j] = replaced[_normalized(name)]
  signatures = {}
  for key, original in graph.signatures.items():
    signature = meta_graph_pb2.SignatureDef()
    signature.CopyFrom(original)
    for info in signature.outputs.values():
      if _normalized(info.name) in replaced:  # the cut tensor is itself an output
        info.name = replaced[_normalized(info.name)]
    signatures[key] = signature
  keep = [serving_graph.tensor_node(t.name) for s in signatures.values()
          for t in list(s.inputs.values()) + list(s.outputs.values())]
  if graph.init_op:
    keep.append(graph.init_op)
  # Control edges into the cut sub-graph (TF2 functions order their variable reads
  # before returning) would keep it alive in the master; the master needs only what
  # its outputs read.
  nodes = {n.name: n for n in graph_def.node}
  needed = _closure(nodes, keep, data_only=True)
  cut_only = _sub_graph_nodes(graph, cut) - needed
  for node in graph_def.node:
    kept = [i for i in node.input
            if not (i.startswith("^") and serving_graph.tensor_node(i) in cut_only)]
    del node.input[:]
    node.input.extend(kept)
  pruned = tf.compat.v1.graph_util.extract_sub_graph(graph_def, keep)
  pruned.library.CopyFrom(graph_def.library)
  pruned.versions.CopyFrom(graph_def.versions)
  return _derived(graph, pruned, signatures, graph.init_op)


def check_state_is_owned(sub: serving_graph.ServingGraph, rest: serving_graph.ServingGraph,
                         cut_name: str) -> None:
  for name, variable in rest.variables.items():
    if name in sub.variables:
      readers = [n for n, _ in variable.other_reads] + [l.node for l in variable.lookups] + [
          n for n in variable.read_path]
      raise serving_graph.ShardingError(
          f"--cut={cut_name}: variable '{name}' is read inside the cut sub-graph and also by "
          f"the rest of the model (node '{readers[0] if readers else name}'), so the cut "
          "tensor's consumers would need the sub-graph's state. Cut where the sub-graph owns "
          "all of its variables (e.g. after every read of this one), or not at all.")
