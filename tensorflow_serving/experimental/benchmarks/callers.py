"""The ways the benchmark calls a remote model, each a zero-argument callable once built.

  op           the Remote Predict Op inside a tf.function (one call, or K in parallel)
  Python       tensorflow-serving-api's gRPC stub between TensorFlow calls: tensor to
               TensorProto, Predict, TensorProto back to an array
  TF RPC       tf.distribute.experimental.rpc's client inside a tf.function
  echo         a bare grpcio call carrying the same request bytes (no TensorFlow)
  C-core       c_core_predict_client, a C++ loop on gRPC's C core (see c_core_floors)

The op's wire encoding is chosen when its kernel is built, from the environment variable
the kernel reads (see kernels/remote_predict_op_kernel.h); `op_function` builds the
kernel by running the function once with the variable set as asked.
"""

import contextlib
import os
from typing import Callable, Iterator, Optional, Sequence

import grpc
import numpy as np
import tensorflow as tf

from tensorflow_serving.apis import predict_pb2
from tensorflow_serving.apis import prediction_service_pb2_grpc
from tensorflow_serving.experimental.benchmarks import grpc_echo_server
from tensorflow_serving.experimental.benchmarks import models
from tensorflow_serving.experimental.benchmarks import tf_rpc_server
from tensorflow_serving.experimental.tensorflow.ops.remote_predict.python.ops import remote_predict_ops

# The kernel's switch between packed tensor_content ("true", its default) and upstream's
# typed repeated fields ("false"); kUseTensorContentEnvVar in the kernel's header.
USE_TENSOR_CONTENT_ENV_VAR = "TF_SERVING_REMOTE_PREDICT_USE_TENSOR_CONTENT"
DEADLINE_MILLIS = 60_000
_UNLIMITED = [("grpc.max_send_message_length", -1), ("grpc.max_receive_message_length", -1)]


@contextlib.contextmanager
def _op_encoding(packed: bool) -> Iterator[None]:
  previous = os.environ.get(USE_TENSOR_CONTENT_ENV_VAR)
  os.environ[USE_TENSOR_CONTENT_ENV_VAR] = "true" if packed else "false"
  try:
    yield
  finally:
    if previous is None:
      del os.environ[USE_TENSOR_CONTENT_ENV_VAR]
    else:
      os.environ[USE_TENSOR_CONTENT_ENV_VAR] = previous


def op_function(address: str, model_names: Sequence[str], x: tf.Tensor, *,
                packed: bool = True, output_alias: str = models.OUTPUT,
                expected: Optional[np.ndarray] = None) -> Callable[[], tf.Tensor]:
  """One tf.function calling every model in `model_names` with `x`, all in parallel.

  The function has run once when this returns: its kernels exist, built with the
  encoding asked for, and the call's result was checked (its shape, and its values
  against `expected` if given). `output_alias` is the output asked for; an echo
  server answers with the input's alias.
  """

  @tf.function
  def call(x):
    outputs = [
        remote_predict_ops.run([models.INPUT], [x], [output_alias], target_address=address,
                               model_name=name, max_rpc_deadline_millis=DEADLINE_MILLIS,
                               output_types=[tf.float32], name=f"call_{i}")[0]
        for i, name in enumerate(model_names)
    ]
    return outputs[0] if len(outputs) == 1 else tf.add_n(outputs)

  with _op_encoding(packed):
    first = call(x)
  if first.shape != x.shape:
    raise AssertionError(f"the op returned shape {first.shape} for input shape {x.shape}")
  if expected is not None and not np.array_equal(first.numpy(), expected):
    raise AssertionError(f"the op's first call to {address} returned values other than "
                         "expected")
  return lambda: call(x)


class PythonClient:
  """tensorflow-serving-api's Predict stub, used the way a Python program between two
  TensorFlow calls uses it."""

  def __init__(self, address: str):
    self._channel = grpc.insecure_channel(address, options=_UNLIMITED)
    self._stub = prediction_service_pb2_grpc.PredictionServiceStub(self._channel)

  def predict(self, model_name: str, x) -> np.ndarray:
    request = predict_pb2.PredictRequest()
    request.model_spec.name = model_name
    request.inputs[models.INPUT].CopyFrom(tf.make_tensor_proto(x))
    request.output_filter.append(models.OUTPUT)
    response = self._stub.Predict(request, timeout=DEADLINE_MILLIS / 1000)
    return tf.make_ndarray(response.outputs[models.OUTPUT])

  def caller(self, model_name: str, x) -> Callable[[], np.ndarray]:
    first = self.predict(model_name, x)
    if first.shape != tuple(x.shape):
      raise AssertionError(f"{model_name} returned shape {first.shape} for input shape "
                           f"{tuple(x.shape)}")
    return lambda: self.predict(model_name, x)

  def close(self) -> None:
    self._channel.close()


def tf_rpc_function(address: str, x: tf.Tensor) -> Callable[[], tf.Tensor]:
  """A tf.function calling tf_rpc_server's half_plus_two through TensorFlow's RPC client."""
  client = tf.distribute.experimental.rpc.Client.create(
      "grpc", address, name="benchmark", timeout_in_ms=DEADLINE_MILLIS)

  @tf.function
  def call(x):
    return client.call(tf_rpc_server.METHOD, [x],
                       output_specs=tf_rpc_server.OUTPUT_SPEC).get_value()

  first = call(x)
  expected = 0.5 * x + 2.0
  if not np.allclose(first.numpy(), expected.numpy()):
    raise AssertionError(f"TF RPC half_plus_two returned {first.numpy()}, expected "
                         f"{expected.numpy()}")
  return lambda: call(x)


def predict_request(model_name: str, x: np.ndarray) -> bytes:
  """The serialized PredictRequest the clients send (also the echo floor's payload)."""
  request = predict_pb2.PredictRequest()
  request.model_spec.name = model_name
  request.inputs[models.INPUT].CopyFrom(tf.make_tensor_proto(x))
  request.output_filter.append(models.OUTPUT)
  return request.SerializeToString()


def half_plus_two_response(x) -> bytes:
  """The serialized PredictResponse half_plus_two gives for `x` (the canned floor's)."""
  response = predict_pb2.PredictResponse()
  response.model_spec.name = models.HALF_PLUS_TWO
  response.outputs[models.OUTPUT].CopyFrom(
      tf.make_tensor_proto(0.5 * np.asarray(x, np.float32) + 2.0))
  return response.SerializeToString()


class EchoClient:
  """A bare grpcio call of grpc_echo_server with fixed request bytes."""

  def __init__(self, address: str):
    self._channel = grpc.insecure_channel(address, options=_UNLIMITED)
    self._echo = self._channel.unary_unary(grpc_echo_server.METHOD_PATH)

  def caller(self, payload: bytes) -> Callable[[], bytes]:
    if self._echo(payload, timeout=DEADLINE_MILLIS / 1000) != payload:
      raise AssertionError("the echo server did not return the bytes it was sent")
    return lambda: self._echo(payload, timeout=DEADLINE_MILLIS / 1000)

  def close(self) -> None:
    self._channel.close()
