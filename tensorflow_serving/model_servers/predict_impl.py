"""Predict: run a signature on named input tensors, as TensorFlow Serving does.

Shared by the gRPC and REST front ends, which turn TensorProtos or JSON into numpy
arrays first. Semantics follow TF Serving: the request's inputs must be exactly the
signature's inputs (by alias, with the signature's dtypes), `output_filter` selects a
subset of the signature's outputs (all of them when empty), and any signature can be
used, whatever its method name.
"""

from typing import Dict, Mapping, Optional, Sequence, Tuple

import grpc
import numpy as np

from tensorflow.core.framework import tensor_pb2
from tensorflow.core.framework import types_pb2
from tensorflow.core.protobuf import meta_graph_pb2
from tensorflow_serving.model_servers import request_deadline
from tensorflow_serving.model_servers import servable as servable_lib
from tensorflow_serving.model_servers import serving_errors
from tensorflow_serving.model_servers import tensor_limits
from tensorflow_serving.model_servers import tensor_protos


def dtype_name(dtype: int) -> str:
  return types_pb2.DataType.Name(dtype) if dtype in types_pb2.DataType.values() else str(dtype)


def dense_tensor_name(alias: str, info: meta_graph_pb2.TensorInfo, what: str) -> str:
  if info.WhichOneof("encoding") != "name":
    raise serving_errors.unimplemented(
        f"{what} '{alias}' is a {info.WhichOneof('encoding')} tensor; only dense tensors are "
        "supported")
  return info.name


def describe_inputs(signature: meta_graph_pb2.SignatureDef) -> str:
  return ", ".join(f"{alias} ({dtype_name(info.dtype)})"
                   for alias, info in sorted(signature.inputs.items())) or "none"


def arrays_from_tensor_protos(
    signature_key: str, signature: meta_graph_pb2.SignatureDef,
    protos: Mapping[str, tensor_pb2.TensorProto]) -> Dict[str, np.ndarray]:
  """Checks the protos' aliases and dtypes against the signature; converts to numpy."""
  check_input_names(signature_key, signature, list(protos))
  for alias, proto in protos.items():
    expected = signature.inputs[alias].dtype
    if proto.dtype != expected:
      raise serving_errors.invalid_argument(
          f"input '{alias}' is a {dtype_name(proto.dtype)} tensor but signature "
          f"\"{signature_key}\" expects {dtype_name(expected)}")
  budget = tensor_limits.Budget()
  return {alias: tensor_protos.to_ndarray(proto, alias, budget)
          for alias, proto in sorted(protos.items())}


def check_input_names(signature_key: str, signature: meta_graph_pb2.SignatureDef,
                      names: Sequence[str]) -> None:
  expected, given = set(signature.inputs), set(names)
  if expected == given:
    return
  missing, extra = sorted(expected - given), sorted(given - expected)
  parts = []
  if missing:
    parts.append(f"missing input(s) {missing}")
  if extra:
    parts.append(f"unknown input(s) {extra}")
  raise serving_errors.invalid_argument(
      f"Request inputs do not match signature \"{signature_key}\": {'; '.join(parts)}. "
      f"Its inputs are: {describe_inputs(signature)}")


def _selected_outputs(signature: meta_graph_pb2.SignatureDef,
                      output_filter: Sequence[str]) -> Sequence[str]:
  if not output_filter:
    return sorted(signature.outputs)
  seen = set()
  for alias in output_filter:
    if alias in seen:
      raise serving_errors.invalid_argument(f"duplicate output tensor alias: {alias}")
    seen.add(alias)
    if alias not in signature.outputs:
      raise serving_errors.invalid_argument(
          f"output tensor alias not found in signature: {alias}. Outputs expected to be in "
          f"the set {{{', '.join(sorted(signature.outputs))}}}.")
  return list(output_filter)


def predict(servable: servable_lib.Servable, signature_name: str,
            inputs: Mapping[str, np.ndarray], output_filter: Sequence[str],
            deadline: request_deadline.Deadline,
            max_output_bytes: Optional[int] = None) -> Tuple[str, Dict[str, np.ndarray]]:
  """Runs the signature; returns (signature key used, {output alias: array}).

  With `max_output_bytes`, outputs that could never fit the reply are refused
  (RESOURCE_EXHAUSTED) before they are copied into it.
  """
  signature_key = signature_name or servable_lib.DEFAULT_SIGNATURE
  signature = servable.signature(signature_key)
  check_input_names(signature_key, signature, list(inputs))
  feeds = {dense_tensor_name(alias, signature.inputs[alias], "input"): value
           for alias, value in inputs.items()}
  aliases = _selected_outputs(signature, output_filter)
  tensor_names = [dense_tensor_name(a, signature.outputs[a], "output") for a in aliases]
  unique_names = list(dict.fromkeys(tensor_names))
  values = servable.run(feeds, unique_names, deadline)
  by_name = dict(zip(unique_names, values))
  outputs = {alias: np.asarray(by_name[name]) for alias, name in zip(aliases, tensor_names)}
  if max_output_bytes is not None:
    total = sum(value.nbytes for value in outputs.values())
    if total > max_output_bytes:
      sizes = ", ".join(f"{alias} {list(value.shape)}" for alias, value in outputs.items())
      raise serving_errors.ServingError(
          grpc.StatusCode.RESOURCE_EXHAUSTED,
          f"the outputs of model {servable.name} version {servable.version} ({sizes}) take "
          f"{total} bytes, more than a reply can carry ({max_output_bytes} bytes); send "
          "smaller batches or select outputs with output_filter")
  return signature_key, outputs
