"""Python API of the Remote Predict Op (`TfServingRemotePredict`).

`run` and `run_returning_status` add one call of TensorFlow Serving's
`PredictionService/Predict` to the current graph (or execute it eagerly). The
op and its kernel live in `_remote_predict_op.so`, which this module loads from
its own directory, where Bazel puts it beside this file (also in the runfiles
of `bazel run` and `bazel test`).

Concurrency inside `tf.function`: TensorFlow's automatic control dependencies
chain every stateful op that has no resource input in program order, so K
independent remote calls in one function would run one after another. A remote
call's side effects are confined to the remote server, so this module marks
each op it creates as having independent side effects; automatic control
dependencies then still make the op run before the function returns, but no
longer order it after the other stateful ops. This holds for calls made in
the function itself and in its tf.cond/tf.while_loop branches. A call to a
nested tf.function is a stateful op of its own, which TensorFlow orders like
any other, so remote calls meant to overlap belong in the same function. The
mechanism is checked when this module is imported, so a TensorFlow without it
fails here instead of quietly serialising calls.
"""

import os
from typing import Optional, Sequence, Union

import tensorflow as tf
# Automatic control dependencies have no public API for marking an op as
# independent; these are the internals the check below verifies.
from tensorflow.python.framework import auto_control_deps
from tensorflow.python.framework import ops as framework_ops

from tensorflow_serving.experimental.tensorflow.ops.remote_predict.ops import gen_remote_predict_op

# The generated op function, for callers that need the raw op (all attrs,
# including fail_op_on_rpc_error).
tf_serving_remote_predict = gen_remote_predict_op.tf_serving_remote_predict

_OP_LIBRARY_FILE = "_remote_predict_op.so"
# Where the op library is: beside this file.
OP_LIBRARY_PATH = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                               _OP_LIBRARY_FILE)
_OP_LIBRARY_TARGET = ("//tensorflow_serving/experimental/tensorflow/ops/"
                      "remote_predict:python/ops/_remote_predict_op.so")


def _load_op_library():
  """Registers the op and its kernel with TensorFlow."""
  path = OP_LIBRARY_PATH
  if not os.path.exists(path):
    raise ImportError(
        f"the Remote Predict Op library {path} does not exist. Build it with "
        f"`tools/bazel build {_OP_LIBRARY_TARGET}`, or depend on the "
        "`remote_predict_py` target, which ships it as data")
  return tf.load_op_library(path)


_remote_predict_op_module = _load_op_library()


def _check_independent_side_effects_supported() -> None:
  """Fails the import if this TensorFlow cannot run remote calls in parallel.

  Without `run_independently` and the graph's `experimental_acd_manager`,
  remote calls inside a `tf.function` would still work, but one at a time.
  """
  problem = None
  if not callable(getattr(auto_control_deps.AutomaticControlDependencies,
                          "run_independently", None)):
    problem = "AutomaticControlDependencies.run_independently is missing"
  else:
    graph = framework_ops.Graph()
    with graph.as_default():
      with auto_control_deps.AutomaticControlDependencies() as manager:
        if getattr(graph, "experimental_acd_manager", None) is not manager:
          problem = ("an active AutomaticControlDependencies is not published "
                     "as Graph.experimental_acd_manager")
  if problem:
    raise ImportError(
        f"TensorFlow {tf.__version__} changed its automatic control "
        f"dependencies ({problem}); remote_predict_ops.py uses them to keep "
        "remote calls inside tf.function concurrent. Update "
        "_mark_independent() in remote_predict_ops.py for this TensorFlow.")


_check_independent_side_effects_supported()


def _mark_independent(op: tf.Operation) -> None:
  """Lets automatic control dependencies run `op` in parallel with the rest."""
  manager = getattr(op.graph, "experimental_acd_manager", None)
  if manager is not None:
    manager.run_independently(op)
  elif getattr(op.graph, "_add_control_dependencies", False):
    # The import-time check passed, yet this graph adds control dependencies
    # without publishing its manager: a TensorFlow change this code missed.
    raise RuntimeError(
        "automatic control dependencies are active in this graph but their "
        "manager is not reachable; the remote predict op would be serialised "
        "with every other stateful op. Update _mark_independent() in "
        "remote_predict_ops.py for TensorFlow " + tf.__version__)


def _check_arguments(model_name, input_tensor_alias, input_tensors,
                     output_tensor_alias, output_types) -> None:
  if not model_name:
    raise ValueError(
        "model_name must be specified: it names the model on the remote "
        "TensorFlow Serving server that Predict is sent to")
  if output_types is None:
    raise ValueError(
        f"output_types must be specified for model '{model_name}': one dtype "
        "per alias in output_tensor_alias")
  if isinstance(input_tensor_alias, (list, tuple)) and len(
      input_tensor_alias) != len(input_tensors):
    raise ValueError(
        f"model '{model_name}': {len(input_tensor_alias)} input aliases "
        f"{list(input_tensor_alias)} for {len(input_tensors)} input tensors; "
        "give one alias per input tensor")
  if isinstance(output_tensor_alias, (list, tuple)) and len(
      output_tensor_alias) != len(output_types):
    raise ValueError(
        f"model '{model_name}': {len(output_tensor_alias)} output aliases "
        f"{list(output_tensor_alias)} for {len(output_types)} output_types; "
        "give one dtype per output alias")


def _remote_predict(input_tensor_alias, input_tensors, output_tensor_alias,
                    target_address, model_name, model_version,
                    max_rpc_deadline_millis, output_types, name,
                    signature_name, fail_op_on_rpc_error):
  """Adds (or eagerly runs) one TfServingRemotePredict op."""
  _check_arguments(model_name, input_tensor_alias, input_tensors,
                   output_tensor_alias, output_types)
  result = gen_remote_predict_op.tf_serving_remote_predict(
      input_tensor_alias,
      input_tensors,
      output_tensor_alias,
      target_address=target_address,
      model_name=model_name,
      model_version=model_version,
      fail_op_on_rpc_error=fail_op_on_rpc_error,
      max_rpc_deadline_millis=max_rpc_deadline_millis,
      signature_name=signature_name,
      output_types=output_types,
      name=name)
  if not tf.executing_eagerly():
    _mark_independent(result.status_code.op)
  return result


TensorsOrAliases = Union[Sequence[str], tf.Tensor]


def run(input_tensor_alias: TensorsOrAliases,
        input_tensors: Sequence[tf.Tensor],
        output_tensor_alias: TensorsOrAliases,
        target_address: str,
        model_name: str,
        model_version: int = -1,
        max_rpc_deadline_millis: int = 3000,
        output_types: Optional[Sequence[tf.DType]] = None,
        name: Optional[str] = None,
        signature_name: str = "serving_default") -> list[tf.Tensor]:
  """Calls Predict on a remote model and returns its outputs.

  Args:
    input_tensor_alias: the request's input aliases, one per input tensor.
    input_tensors: the tensors sent as those inputs.
    output_tensor_alias: the outputs to ask for (the request's output_filter).
    target_address: where the server listens: `host:port` or a gRPC target
      URI such as `ipv4:127.0.0.1:8500,127.0.0.1:8501`.
    model_name: the served model's name.
    model_version: the version to call; -1 calls the server's default
      (normally the latest).
    max_rpc_deadline_millis: the call's deadline in milliseconds.
    output_types: the dtype of each output alias, in order.
    name: the op's name in the graph.
    signature_name: the SignatureDef the server runs.

  Returns:
    A list with one tensor per output alias.

  Raises:
    ValueError: model_name or output_types is missing, or the aliases do not
      match the tensors or dtypes given.
    tf.errors.OpError: (when the op runs) the call failed; the error has the
      RPC's status code.
  """
  return _remote_predict(input_tensor_alias, input_tensors,
                         output_tensor_alias, target_address, model_name,
                         model_version, max_rpc_deadline_millis, output_types,
                         name, signature_name,
                         fail_op_on_rpc_error=True).output_tensors


def run_returning_status(
    input_tensor_alias: TensorsOrAliases,
    input_tensors: Sequence[tf.Tensor],
    output_tensor_alias: TensorsOrAliases,
    target_address: str,
    model_name: str,
    model_version: int = -1,
    max_rpc_deadline_millis: int = 3000,
    output_types: Optional[Sequence[tf.DType]] = None,
    name: Optional[str] = None,
    signature_name: str = "serving_default"):
  """Calls Predict on a remote model; an RPC error is returned, not raised.

  Takes the same arguments as `run`.

  Returns:
    `(status_code, status_error_message, output_tensors)`: an int32 scalar
    with the gRPC status code (0 for OK), a string scalar with its message and
    the list of output tensors, which are empty when the call failed.

  Raises:
    ValueError: model_name or output_types is missing, or the aliases do not
      match the tensors or dtypes given.
  """
  result = _remote_predict(input_tensor_alias, input_tensors,
                           output_tensor_alias, target_address, model_name,
                           model_version, max_rpc_deadline_millis,
                           output_types, name, signature_name,
                           fail_op_on_rpc_error=False)
  return (result.status_code, result.status_error_message,
          result.output_tensors)
