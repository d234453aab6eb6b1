"""Starts every server sections 1-4 need on loopback, and stops and reaps them all.

  model server     half_plus_two, its fan-out copies and identity
  batching server  half_plus_two on a model server with --enable_batching
  gRPC floor       grpc_echo_server: grpcio Echo (the model server's library, bare)
  C-core floors    c_core_predict_server (C++ on gRPC's C core): Predict answered with
                   half_plus_two's canned response, and Predict echoing its inputs
  REST echo floor  http_echo_server
  TF RPC server    tf_rpc_server (half_plus_two as a registered tf.function)

All processes start before any is waited for, so they load in parallel. Leaving the
context stops them, also on errors and KeyboardInterrupt.
"""

import contextlib
import dataclasses
import os
from typing import Iterator

from tensorflow_serving.experimental.benchmarks import c_core_floors
from tensorflow_serving.experimental.benchmarks import callers
from tensorflow_serving.experimental.benchmarks import helper_process
from tensorflow_serving.experimental.benchmarks import models
from tensorflow_serving.experimental.example import model_server_process

_PACKAGE = "tensorflow_serving.experimental.benchmarks"
PREDICT_METHOD_PATH = "/tensorflow.serving.PredictionService/Predict"
# half_plus_two's input for which the gRPC floor's canned Predict answer is right.
CANNED_X = (1.0, 2.0, 5.0)


@dataclasses.dataclass
class Servers:
  work_dir: str
  model_server: model_server_process.ModelServer
  batching_model_server: model_server_process.ModelServer
  grpc_echo: helper_process.HelperProcess
  http_echo: helper_process.HelperProcess
  tf_rpc: helper_process.HelperProcess
  c_core_canned: c_core_floors.CCoreServer
  c_core_echo: c_core_floors.CCoreServer
  # half_plus_two's serialized response to CANNED_X, which c_core_canned answers.
  canned_response: bytes

  def rest_predict_url(self, model_name: str) -> str:
    return f"{self.model_server.rest_url}/v1/models/{model_name}:predict"

  def http_echo_url(self, model_name: str) -> str:
    # The same path as the model server's, so the requests are byte for byte alike.
    return f"http://{self.http_echo.address}/v1/models/{model_name}:predict"


@contextlib.contextmanager
def serve(work_dir: str, fan_out_models: int, timeout_s: float = 300.0) -> Iterator[Servers]:
  """Exports the models, starts all servers and yields once every one is ready."""
  base_paths = models.export_all(work_dir, fan_out_models)
  config = model_server_process.write_model_config(
      os.path.join(work_dir, "models.config"), base_paths)
  logs = os.path.join(work_dir, "logs")
  os.makedirs(logs, exist_ok=True)
  [tf_rpc_port] = model_server_process.pick_unused_ports(1)
  canned_response = callers.half_plus_two_response(CANNED_X)
  canned_response_file = os.path.join(work_dir, "half_plus_two_response.pb")
  with open(canned_response_file, "wb") as f:
    f.write(canned_response)
  with contextlib.ExitStack() as stack:
    model_server = model_server_process.ModelServer(
        model_config_file=config, log_dir=logs, label="tensorflow_model_server")
    stack.enter_context(model_server)
    batching_config = model_server_process.write_model_config(
        os.path.join(work_dir, "batching.config"),
        {models.HALF_PLUS_TWO: base_paths[models.HALF_PLUS_TWO]})
    batching_model_server = model_server_process.ModelServer(
        model_config_file=batching_config, log_dir=logs, extra_args=["--enable_batching"],
        label="tensorflow_model_server_batching")
    stack.enter_context(batching_model_server)
    helpers = {
        "grpc_echo": helper_process.HelperProcess(
            f"{_PACKAGE}.grpc_echo_server", ["--port=0"],
            log_path=os.path.join(logs, "grpc_echo_server.log"), label="gRPC echo server"),
        "http_echo": helper_process.HelperProcess(
            f"{_PACKAGE}.http_echo_server", ["--port=0"],
            log_path=os.path.join(logs, "http_echo_server.log"), label="HTTP echo server"),
        "tf_rpc": helper_process.HelperProcess(
            f"{_PACKAGE}.tf_rpc_server", [f"--port={tf_rpc_port}"],
            log_path=os.path.join(logs, "tf_rpc_server.log"), label="TF RPC server"),
        "c_core_canned": c_core_floors.CCoreServer(
            "canned", response_file=canned_response_file,
            log_path=os.path.join(logs, "c_core_canned.log"), label="C-core canned server"),
        "c_core_echo": c_core_floors.CCoreServer(
            "echo", log_path=os.path.join(logs, "c_core_echo.log"),
            label="C-core echo server"),
    }
    for helper in helpers.values():
      # Entered before it starts, so a start that fails half-way is still reaped.
      stack.callback(helper.stop)
    for helper in helpers.values():
      helper.spawn()
    for helper in helpers.values():
      helper.wait_until_ready(timeout_s)
    model_server.wait_until_available(sorted(base_paths), timeout_s)
    batching_model_server.wait_until_available([models.HALF_PLUS_TWO], timeout_s)
    yield Servers(work_dir=work_dir, model_server=model_server,
                  batching_model_server=batching_model_server,
                  canned_response=canned_response, **helpers)
