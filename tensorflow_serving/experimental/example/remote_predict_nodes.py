"""Finds the TfServingRemotePredict nodes of an exported SavedModel, for the tests."""

import os
from typing import List

from tensorflow.core.framework import node_def_pb2
from tensorflow.core.protobuf import saved_model_pb2


def remote_predict_nodes(saved_model_dir: str) -> List[node_def_pb2.NodeDef]:
  """Every TfServingRemotePredict node in the SavedModel, in graphs and functions."""
  saved_model = saved_model_pb2.SavedModel()
  with open(os.path.join(saved_model_dir, "saved_model.pb"), "rb") as f:
    saved_model.ParseFromString(f.read())
  nodes = []
  for meta_graph in saved_model.meta_graphs:
    nodes.extend(meta_graph.graph_def.node)
    for function in meta_graph.graph_def.library.function:
      nodes.extend(function.node_def)
  return [node for node in nodes if node.op == "TfServingRemotePredict"]
