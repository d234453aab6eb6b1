"""Runs the Remote Predict Op once, eagerly, against a model server; prints what it returns.

Every attr and input of `TfServingRemotePredict` is a flag, so this doubles as a way to
try the op against any served model. With half_plus_two served at localhost:8500:
  tools/bazel run //tensorflow_serving/experimental/example:remote_predict_client -- \
      --target_address=localhost:8500 --model_name=half_plus_two

prints `status_code: 0` and `y: float32 [1] [3.0]`. Inputs are JSON values, one
`--input_tensors` per alias in `--input_tensor_aliases`, e.g.
  --input_tensor_aliases=x --input_tensors='[1.0, 2.0, 5.0]'
The exit status is 0 when the call succeeded and 1 otherwise.
"""

import json
from typing import List, Sequence

from absl import app
from absl import flags
import tensorflow as tf

from tensorflow_serving.experimental.tensorflow.ops.remote_predict.python.ops import remote_predict_ops

_TARGET_ADDRESS = flags.DEFINE_string("target_address", "localhost:8500",
                                      "gRPC target of the model server (host:port or a gRPC URI).")
_MODEL_NAME = flags.DEFINE_string("model_name", "half_plus_two", "Remote model to call.")
_MODEL_VERSION = flags.DEFINE_integer("model_version", -1, "Version to call; -1 means the latest.")
_SIGNATURE_NAME = flags.DEFINE_string("signature_name", "serving_default",
                                      "Signature of the remote model to run.")
_MAX_RPC_DEADLINE_MILLIS = flags.DEFINE_integer("max_rpc_deadline_millis", 3000,
                                                "Deadline of the call, in milliseconds.")
_FAIL_OP_ON_RPC_ERROR = flags.DEFINE_bool(
    "fail_op_on_rpc_error", True,
    "If true an RPC error fails the op; if false the op reports it in status_code "
    "and status_error_message.")
_INPUT_TENSOR_ALIASES = flags.DEFINE_list("input_tensor_aliases", ["x"],
                                          "Comma-separated input aliases of the remote signature.")
_INPUT_TENSORS = flags.DEFINE_multi_string(
    "input_tensors", ["[2.0]"], "One JSON value per input alias, in order (repeat the flag).")
_INPUT_TYPES = flags.DEFINE_list(
    "input_types", ["float32"], "dtype of each input, in order; a single dtype applies to all.")
_OUTPUT_TENSOR_ALIASES = flags.DEFINE_list("output_tensor_aliases", ["y"],
                                           "Comma-separated output aliases to fetch.")
_OUTPUT_TYPES = flags.DEFINE_list(
    "output_types", ["float32"], "dtype of each output, in order; a single dtype applies to all.")
_SSL_ROOT_CERTS_FILE = flags.DEFINE_string(
    "ssl_root_certs_file", "", "PEM root certificates; setting any --ssl_* flag uses TLS.")
_SSL_CLIENT_CERT_FILE = flags.DEFINE_string("ssl_client_cert_file", "",
                                            "PEM client certificate chain for mutual TLS.")
_SSL_CLIENT_KEY_FILE = flags.DEFINE_string("ssl_client_key_file", "",
                                           "PEM private key of --ssl_client_cert_file.")
_SSL_TARGET_NAME_OVERRIDE = flags.DEFINE_string(
    "ssl_target_name_override", "", "Host name to check the server's certificate against.")


def _dtypes(flag_name: str, names: Sequence[str], count: int) -> List[tf.DType]:
  if len(names) == 1:
    names = list(names) * count
  if len(names) != count:
    raise app.UsageError(f"--{flag_name} has {len(names)} dtypes for {count} aliases; "
                         "give one per alias, or a single one for all")
  try:
    return [tf.as_dtype(name) for name in names]
  except TypeError as e:
    raise app.UsageError(f"--{flag_name}: {e}") from e


def _input_tensors(aliases: Sequence[str], values: Sequence[str],
                   dtypes: Sequence[tf.DType]) -> List[tf.Tensor]:
  if len(values) != len(aliases):
    raise app.UsageError(f"{len(values)} --input_tensors for {len(aliases)} "
                         f"--input_tensor_aliases {list(aliases)}; give one per alias")
  tensors = []
  for alias, text, dtype in zip(aliases, values, dtypes):
    try:
      tensors.append(tf.constant(json.loads(text), dtype=dtype))
    except (ValueError, TypeError) as e:
      raise app.UsageError(f"--input_tensors for '{alias}' is not a JSON {dtype.name} "
                           f"value: {text!r} ({e})") from e
  return tensors


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {argv[1:]}")
  input_aliases = _INPUT_TENSOR_ALIASES.value
  output_aliases = _OUTPUT_TENSOR_ALIASES.value
  inputs = _input_tensors(input_aliases, _INPUT_TENSORS.value,
                          _dtypes("input_types", _INPUT_TYPES.value, len(input_aliases)))
  output_types = _dtypes("output_types", _OUTPUT_TYPES.value, len(output_aliases))
  try:
    result = remote_predict_ops.tf_serving_remote_predict(
        input_tensor_aliases=input_aliases,
        input_tensors=inputs,
        output_tensor_aliases=output_aliases,
        output_types=output_types,
        target_address=_TARGET_ADDRESS.value,
        model_name=_MODEL_NAME.value,
        model_version=_MODEL_VERSION.value,
        fail_op_on_rpc_error=_FAIL_OP_ON_RPC_ERROR.value,
        max_rpc_deadline_millis=_MAX_RPC_DEADLINE_MILLIS.value,
        signature_name=_SIGNATURE_NAME.value,
        ssl_root_certs_file=_SSL_ROOT_CERTS_FILE.value,
        ssl_client_cert_file=_SSL_CLIENT_CERT_FILE.value,
        ssl_client_key_file=_SSL_CLIENT_KEY_FILE.value,
        ssl_target_name_override=_SSL_TARGET_NAME_OVERRIDE.value)
  except tf.errors.OpError as e:
    print(f"remote predict on model '{_MODEL_NAME.value}' at {_TARGET_ADDRESS.value} failed: "
          f"{type(e).__name__}: {e.message}")
    return 1
  status_code = int(result.status_code.numpy())
  print(f"status_code: {status_code}")
  print(f"status_error_message: {result.status_error_message.numpy().decode(errors='replace')}")
  for alias, tensor in zip(output_aliases, result.output_tensors):
    print(f"{alias}: {tensor.dtype.name} {tensor.shape.as_list()} {tensor.numpy().tolist()}")
  return 0 if status_code == 0 else 1


if __name__ == "__main__":
  app.run(main)
