"""Inserts a small GraphDef into a larger one, wiring its placeholders to existing tensors.

The master and the cut rewrite both build their new nodes (a sharded lookup, a
remote call) as a separate graph with placeholders for what they read and an
Identity for what they produce, then splice it into the SavedModel's GraphDef: the
placeholders disappear, their readers read the given tensors, the output Identity
takes the given name and every other node is renamed under a prefix.
"""

from typing import Mapping

from tensorflow.core.framework import graph_pb2
from tensorflow_serving.experimental.tools import serving_graph


def splice(target: graph_pb2.GraphDef, part: graph_pb2.GraphDef, inputs: Mapping[str, str],
           output: str, output_name: str, prefix: str) -> None:
  """Appends `part` to `target`.

  Args:
    target: the graph to extend.
    part: the nodes to add.
    inputs: placeholder node of `part` -> tensor of `target` it stands for.
    output: the node of `part` whose name becomes `output_name`.
    output_name: a name not used in `target` (or the name of a node just removed).
    prefix: put before the names of all other nodes of `part`.
  """
  existing = {n.name for n in target.node}
  clash = sorted(prefix + n.name for n in part.node if prefix + n.name in existing)
  if clash:
    raise serving_graph.ShardingError(
        f"cannot add nodes for '{output_name}': the graph already has nodes named {clash[:3]}")
  # Control flow (e.g. a tf.cond in a check) lives in functions.
  known = {f.signature.name for f in target.library.function}
  for function in part.library.function:
    if function.signature.name not in known:
      target.library.function.add().CopyFrom(function)

  def renamed(node_name: str) -> str:
    return output_name if node_name == output else prefix + node_name

  for node in part.node:
    if node.name in inputs:
      continue
    new = target.node.add()
    new.CopyFrom(node)
    new.name = renamed(node.name)
    del new.input[:]
    for name in node.input:
      control = name.startswith("^")
      source = serving_graph.tensor_node(name)
      if source in inputs:
        tensor = inputs[source]
        new.input.append("^" + serving_graph.tensor_node(tensor) if control else tensor)
      elif control:
        new.input.append("^" + renamed(source))
      else:
        new.input.append(f"{renamed(source)}:{serving_graph.tensor_index(name)}")
