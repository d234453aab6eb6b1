"""Writes the master model: the original serving graph with its tables read remotely.

The flattened serving graph (`serving_graph`) loses its sharded tables and the
nodes that only read them; each lookup into them is replaced by a sharded lookup
(`sharded_lookup`) under the lookup's own name. The variables that stay are
recreated from their values (fed, never embedded as constants) and saved in the
master's checkpoint. Signatures are copied unchanged, so clients send the same
requests to the master as to the original model.
"""

from typing import Dict, Mapping, Sequence

import numpy as np
import tensorflow as tf

from tensorflow.core.framework import graph_pb2
from tensorflow_serving.experimental.example import staged_version
from tensorflow_serving.experimental.tools import serving_graph
from tensorflow_serving.experimental.tools import sharded_lookup

_VARIABLE_SCOPE = "master_variables"


def _rewritten_graph_def(graph: serving_graph.ServingGraph,
                         tables: Mapping[str, sharded_lookup.ShardedTable]) -> graph_pb2.GraphDef:
  """The serving graph without the tables, their reads and the other variables' nodes."""
  removed = set()
  for node in tables:
    variable = graph.variables[node]
    removed.update([node, *variable.read_path, *(l.node for l in variable.lookups)])
  replaced_by_import = {v for v in graph.variables if v not in tables}
  result = graph_pb2.GraphDef()
  result.versions.CopyFrom(graph.graph_def.versions)
  result.library.CopyFrom(graph.graph_def.library)
  for node in graph.graph_def.node:
    if node.name in removed or node.name in replaced_by_import:
      continue
    new = result.node.add()
    new.CopyFrom(node)
    # Colocation with a removed table would make the import fail; placement is
    # the server's business anyway.
    if "_class" in new.attr:
      del new.attr["_class"]
    del new.input[:]
    for name in node.input:
      # A control edge from a read of a removed table orders nothing any more; the
      # lookups themselves keep their names, so edges from them stay.
      if name.startswith("^") and serving_graph.tensor_node(name) in removed and (
          serving_graph.tensor_node(name) not in {l.node for t in tables
                                                  for l in graph.variables[t].lookups}):
        continue
      new.input.append(name)
  for node, table in tables.items():
    for lookup in graph.variables[node].lookups:
      sharded_lookup.splice(result, sharded_lookup.graph_def(table, lookup.ids_dtype),
                            lookup.ids, lookup.node)
  return result


def write(graph: serving_graph.ServingGraph, tables: Mapping[str, sharded_lookup.ShardedTable],
          values: Mapping[str, np.ndarray], base_path: str, version: int) -> None:
  """Writes the master to BASE_PATH/VERSION.

  `tables` maps each sharded variable's node to where its shards are; `values` holds
  every other variable's value.
  """
  graph_def = _rewritten_graph_def(graph, tables)
  master = tf.Graph()
  with master.as_default():
    input_map: Dict[str, tf.Tensor] = {}
    control_inputs = {name for node in graph_def.node for name in node.input
                      if name.startswith("^")}
    feeds = {}
    initializers = []
    with tf.name_scope(_VARIABLE_SCOPE):
      for name, variable in graph.variables.items():
        if name in tables:
          continue
        value = values[name]
        placeholder = tf.compat.v1.placeholder(variable.dtype, value.shape)
        new = tf.compat.v1.Variable(placeholder, name=name, trainable=False, use_resource=True)
        feeds[placeholder] = value
        initializers.append(new.initializer)
        input_map[f"{name}:0"] = new.handle if variable.resource else new.read_value()
        if f"^{name}" in control_inputs:
          input_map[f"^{name}"] = new.handle
    tf.graph_util.import_graph_def(graph_def, input_map=input_map, name="")
    for key, signature in graph.signatures.items():
      for tensor in list(signature.inputs.values()) + list(signature.outputs.values()):
        try:
          master.get_tensor_by_name(tensor.name)
        except KeyError as e:
          raise serving_graph.ShardingError(
              f"signature '{key}' names tensor '{tensor.name}', which the rewritten master "
              "graph lacks") from e
    main_op = master.get_operation_by_name(graph.init_op) if graph.init_op else None
    with tf.compat.v1.Session(graph=master) as session:
      session.run(initializers, feeds)
      with staged_version.staged_version_dir(base_path, version) as path:
        builder = tf.compat.v1.saved_model.Builder(path)
        builder.add_meta_graph_and_variables(
            session, list(graph.tags), signature_def_map=dict(graph.signatures),
            main_op=main_op, strip_default_attrs=True)
        builder.save()


def other_variables(graph: serving_graph.ServingGraph,
                    tables: Sequence[str]) -> Sequence[serving_graph.Variable]:
  """The variables that stay in the master."""
  return [v for name, v in graph.variables.items() if name not in tables]
