"""Sends one gRPC Predict request to half_plus_two_with_rpop and prints the answer.

With the model served at localhost:8500:
  tools/bazel run //tensorflow_serving/experimental/example:half_plus_two_with_rpop_client -- \
      --server=localhost:8500

prints `y: [8.0]` for the default x = [10.0] (0.5 * 10 + 3; the model fetches the 3
from half_plus_two through the Remote Predict Op).
"""

from typing import List, Sequence

from absl import app
from absl import flags
import grpc
import tensorflow as tf

from tensorflow_serving.apis import predict_pb2
from tensorflow_serving.apis import prediction_service_pb2_grpc

_SERVER = flags.DEFINE_string("server", "localhost:8500", "host:port of the model server's gRPC API.")
_MODEL_NAME = flags.DEFINE_string("model_name", "half_plus_two_with_rpop", "Model to call.")
_MODEL_VERSION = flags.DEFINE_integer("model_version", -1, "Version to call; -1 means the latest.")
_SIGNATURE_NAME = flags.DEFINE_string("signature_name", "serving_default", "Signature to run.")
_X = flags.DEFINE_list("x", ["10.0"], "Comma-separated float inputs; one output per input.")
_TIMEOUT = flags.DEFINE_float("timeout_seconds", 10.0, "Deadline of the Predict call.")


def predict(server: str, x: Sequence[float], model_name: str = "half_plus_two_with_rpop",
            model_version: int = -1, signature_name: str = "serving_default",
            timeout_seconds: float = 10.0) -> List[float]:
  """Calls Predict with input `x` (a float vector) and returns output `y`."""
  request = predict_pb2.PredictRequest()
  request.model_spec.name = model_name
  request.model_spec.signature_name = signature_name
  if model_version >= 0:
    request.model_spec.version.value = model_version
  request.inputs["x"].CopyFrom(tf.make_tensor_proto(list(x), dtype=tf.float32, shape=[len(x)]))
  request.output_filter.append("y")
  with grpc.insecure_channel(server) as channel:
    stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
    response = stub.Predict(request, timeout=timeout_seconds)
  return tf.make_ndarray(response.outputs["y"]).reshape(-1).tolist()


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {argv[1:]}")
  try:
    x = [float(v) for v in _X.value]
  except ValueError as e:
    raise app.UsageError(f"--x must be comma-separated numbers: {e}") from e
  try:
    y = predict(_SERVER.value, x, _MODEL_NAME.value, _MODEL_VERSION.value,
                _SIGNATURE_NAME.value, _TIMEOUT.value)
  except grpc.RpcError as e:
    print(f"Predict on model '{_MODEL_NAME.value}' at {_SERVER.value} failed: "
          f"{e.code().name}: {e.details()}")
    return 1
  print(f"y: {y}")
  return 0


if __name__ == "__main__":
  app.run(main)
