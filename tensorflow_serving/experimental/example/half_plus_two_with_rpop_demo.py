"""The one-command demo: half_plus_two_with_rpop served next to half_plus_two, end to end.

  tools/bazel run //tensorflow_serving/experimental/example:half_plus_two_with_rpop_demo

does, in a temporary directory, what the README's step-by-step guide does by hand:
exports half_plus_two and half_plus_two_with_rpop (whose Remote Predict Op calls
half_plus_two on the same server), writes the model config, starts the model server
on free ports (or --port / --rest_api_port), waits until both models are AVAILABLE,
sends {"instances": [1.0, 2.0, 5.0]} over REST to both models and x = [10.0] over gRPC
to half_plus_two_with_rpop, prints what each call returned and stops the server:

  half_plus_two            REST  -> {"predictions": [2.5, 3.0, 4.5]}   0.5 * x + 2
  half_plus_two_with_rpop  REST  -> {"predictions": [3.5, 4.0, 5.5]}   0.5 * x + 3
  half_plus_two_with_rpop  gRPC  -> y: [8.0]

It exits 0 only if every answer equals the formula's.
"""

import json
import os
import shutil
import tempfile
from typing import List, Sequence
import urllib.error
import urllib.request

from absl import app
from absl import flags
from absl import logging
import grpc
import tensorflow as tf

from tensorflow_serving.apis import predict_pb2
from tensorflow_serving.apis import prediction_service_pb2_grpc
from tensorflow_serving.experimental.example import half_plus_two_with_rpop
from tensorflow_serving.experimental.example import model_server_process

_PORT = flags.DEFINE_integer("port", 0, "gRPC port of the model server; 0 picks a free one.")
_REST_API_PORT = flags.DEFINE_integer("rest_api_port", 0,
                                      "REST port of the model server; 0 picks a free one.")
_WORK_DIR = flags.DEFINE_string(
    "work_dir", "", "Where to put the models, config and server log; by default a temporary "
    "directory that is deleted at the end.")
_TIMEOUT = flags.DEFINE_float("timeout_seconds", 180.0,
                              "How long to wait for the models to become AVAILABLE.")

REMOTE_MODEL = "half_plus_two"
MODEL = "half_plus_two_with_rpop"
REST_INSTANCES = [1.0, 2.0, 5.0]
GRPC_X = [10.0]


def half_plus_two(xs: Sequence[float]) -> List[float]:
  return [0.5 * x + 2.0 for x in xs]


def half_plus_two_with_rpop_expected(xs: Sequence[float]) -> List[float]:
  # a from the model; b is what the op fetches: half_plus_two(REMOTE_INPUT) = 3.0.
  [b] = half_plus_two([half_plus_two_with_rpop.REMOTE_INPUT])
  return [half_plus_two_with_rpop.A * x + b for x in xs]


def rest_predict(rest_url: str, model: str, body: dict, timeout_s: float = 30.0) -> dict:
  """POSTs `body` to the model's :predict endpoint; returns the decoded JSON reply."""
  url = f"{rest_url}/v1/models/{model}:predict"
  request = urllib.request.Request(url, data=json.dumps(body).encode(),
                                   headers={"Content-Type": "application/json"})
  try:
    with urllib.request.urlopen(request, timeout=timeout_s) as reply:
      return json.loads(reply.read())
  except urllib.error.HTTPError as e:
    raise RuntimeError(f"POST {url} returned HTTP {e.code}: "
                       f"{e.read().decode(errors='replace')}") from e


def grpc_predict(address: str, model: str, x: Sequence[float], timeout_s: float = 30.0) -> List[float]:
  """Calls PredictionService/Predict with input `x`; returns output `y`."""
  request = predict_pb2.PredictRequest()
  request.model_spec.name = model
  request.inputs["x"].CopyFrom(tf.make_tensor_proto(list(x), dtype=tf.float32, shape=[len(x)]))
  with grpc.insecure_channel(address) as channel:
    response = prediction_service_pb2_grpc.PredictionServiceStub(channel).Predict(
        request, timeout=timeout_s)
  return tf.make_ndarray(response.outputs["y"]).reshape(-1).tolist()


def run_demo(work_dir: str, port: int = 0, rest_api_port: int = 0,
             timeout_s: float = 180.0) -> bool:
  """Runs every step, printing as it goes; returns whether all answers were right."""
  server = model_server_process.ModelServer(
      model_config_file=os.path.join(work_dir, "models.config"), port=port,
      rest_api_port=rest_api_port, log_dir=work_dir, label="tensorflow_model_server")

  remote_dir = os.path.join(work_dir, REMOTE_MODEL)
  print(f"[1/5] exported {REMOTE_MODEL}: "
        f"{model_server_process.export_half_plus_two(remote_dir)}")
  model_dir = os.path.join(work_dir, MODEL)
  path = half_plus_two_with_rpop.export(model_dir, target_address=server.grpc_address,
                                        remote_model_name=REMOTE_MODEL)
  print(f"[2/5] exported {MODEL}: {path}\n"
        f"      (its Remote Predict Op calls '{REMOTE_MODEL}' at {server.grpc_address})")
  config = model_server_process.write_model_config(
      os.path.join(work_dir, "models.config"), {REMOTE_MODEL: remote_dir, MODEL: model_dir})
  print(f"[3/5] wrote the model config: {config}")

  with server:
    command = server.command()
    print(f"[4/5] started the model server (log: {server.log_path}):\n"
          f"      {' '.join([os.path.basename(command[0])] + command[1:])}")
    server.wait_until_available([REMOTE_MODEL, MODEL], timeout_s)
    print(f"      '{REMOTE_MODEL}' and '{MODEL}' are AVAILABLE")
    print("[5/5] calls:")
    body = {"instances": REST_INSTANCES}
    ok = True
    # half_plus_two alone first: the answer upstream's guide shows, and the remote
    # model that half_plus_two_with_rpop calls.
    for model, expected in ((REMOTE_MODEL, half_plus_two(REST_INSTANCES)),
                            (MODEL, half_plus_two_with_rpop_expected(REST_INSTANCES))):
      reply = rest_predict(server.rest_url, model, body)
      print(f"  REST POST {server.rest_url}/v1/models/{model}:predict {json.dumps(body)}\n"
            f"    -> {json.dumps(reply)}")
      ok &= _check(reply.get("predictions"), expected)

    y = grpc_predict(server.grpc_address, MODEL, GRPC_X)
    print(f"  gRPC Predict {MODEL} x={GRPC_X}\n    -> y: {y}")
    ok &= _check(y, half_plus_two_with_rpop_expected(GRPC_X))
  print("stopped the model server")
  return ok


def _check(actual, expected: Sequence[float]) -> bool:
  if actual != list(expected):
    print(f"    WRONG: expected {list(expected)}")
    return False
  return True


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {argv[1:]}")
  # The exporters' progress and deprecation notes are noise here.
  logging.set_verbosity(logging.WARNING)
  tf.get_logger().setLevel("ERROR")
  work_dir = _WORK_DIR.value or tempfile.mkdtemp(prefix="half_plus_two_with_rpop_demo.")
  os.makedirs(work_dir, exist_ok=True)
  try:
    ok = run_demo(work_dir, _PORT.value, _REST_API_PORT.value, _TIMEOUT.value)
  except grpc.RpcError as e:
    print(f"the demo failed: a gRPC call returned {e.code().name}: {e.details()}")
    return 1
  except RuntimeError as e:  # ModelServerError, or a REST call's HTTP error
    print(f"the demo failed: {e}")
    return 1
  finally:
    if not _WORK_DIR.value:
      shutil.rmtree(work_dir, ignore_errors=True)
  if not ok:
    print("the demo got wrong answers")
    return 1
  print("demo OK")
  return 0


if __name__ == "__main__":
  app.run(main)
