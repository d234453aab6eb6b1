"""Runs the model server as a child process for the examples, the demo and their tests.

`ModelServer` starts //tensorflow_serving/model_servers:tensorflow_model_server on
loopback ports picked at run time (unless given), waits until the named models are
AVAILABLE by polling gRPC `ModelService.GetModelStatus` under a deadline, and always
stops and reaps the process, also when the caller fails half-way. The server's output
goes to a log file whose tail is quoted in every error, so a model that fails to load
says why.

The server is started from the caller's Bazel runfiles (list the server target in
`data`), so the examples depend only on its command-line flags.
"""

import os
import subprocess
import tempfile
import time
from typing import Iterable, List, Mapping, Optional, Sequence

import grpc

from google.protobuf import text_format
from tensorflow_serving.apis import get_model_status_pb2
from tensorflow_serving.apis import model_service_pb2_grpc
from tensorflow_serving.config import model_server_config_pb2
from tensorflow_serving.experimental.example import child_process

SERVER_TARGET = "//tensorflow_serving/model_servers:tensorflow_model_server"
_SERVER_PATH_IN_WORKSPACE = os.path.join("tensorflow_serving", "model_servers",
                                         "tensorflow_model_server")
HALF_PLUS_TWO_EXPORTER_TARGET = (
    "//tensorflow_serving/servables/tensorflow/testdata:saved_model_half_plus_two")
_HALF_PLUS_TWO_EXPORTER_PATH_IN_WORKSPACE = os.path.join(
    "tensorflow_serving", "servables", "tensorflow", "testdata", "saved_model_half_plus_two")
_STOP_GRACE_S = 15.0
# Exporting takes seconds; only a hung exporter reaches this (run() then kills it).
_EXPORT_TIMEOUT_S = 300.0
_LOG_TAIL_LINES = 40


class ModelServerError(RuntimeError):
  """The model server could not be started, or a model did not become available."""


# Free loopback ports, for callers that configure servers themselves.
pick_unused_ports = child_process.pick_unused_ports


def write_model_config(path: str, models: Mapping[str, str]) -> str:
  """Writes an ASCII ModelServerConfig serving `models` (name -> base path)."""
  config = model_server_config_pb2.ModelServerConfig()
  for name, base_path in models.items():
    model = config.model_config_list.config.add()
    model.name = name
    model.base_path = os.path.abspath(base_path)
    model.model_platform = "tensorflow"
  with open(path, "w") as f:
    f.write(text_format.MessageToString(config))
  return path


def runfiles_path(path_in_workspace: str) -> str:
  """Where a file of this workspace is in the running program's runfiles."""
  # This file is <root>/tensorflow_serving/experimental/example/ in the runfiles.
  here = os.path.dirname(os.path.abspath(__file__))
  root = os.path.dirname(os.path.dirname(os.path.dirname(here)))
  return os.path.join(root, path_in_workspace)


def _runfiles_binary(path_in_workspace: str, target: str) -> str:
  path = runfiles_path(path_in_workspace)
  if not os.access(path, os.X_OK):
    raise ModelServerError(
        f"{path} is missing. Run this program with `tools/bazel run` or "
        f"`tools/bazel test`, and list {target} in its target's `data`")
  return path


def model_server_command() -> List[str]:
  """The command that starts the model server from this program's runfiles."""
  return [_runfiles_binary(_SERVER_PATH_IN_WORKSPACE, SERVER_TARGET)]


def export_half_plus_two(output_dir: str) -> str:
  """Writes the vanilla half_plus_two model under `output_dir` with its exporter binary.

  Runs the binary (not its module) because only its flags are the same in a TF
  Serving fork. Returns the version directory the exporter printed.
  """
  exporter = _runfiles_binary(_HALF_PLUS_TWO_EXPORTER_PATH_IN_WORKSPACE,
                              HALF_PLUS_TWO_EXPORTER_TARGET)
  try:
    result = subprocess.run([exporter, f"--output_dir={output_dir}"], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, check=False,
                            timeout=_EXPORT_TIMEOUT_S)
  except subprocess.TimeoutExpired as e:
    raise ModelServerError(f"{HALF_PLUS_TWO_EXPORTER_TARGET} did not finish within "
                           f"{_EXPORT_TIMEOUT_S:.0f} s writing to {output_dir}") from e
  if result.returncode != 0:
    raise ModelServerError(f"{HALF_PLUS_TWO_EXPORTER_TARGET} failed:\n{result.stdout}")
  return result.stdout.strip().splitlines()[-1]


class ModelServer:
  """One model server child process; use as a context manager.

  Serve either `model_config_file` or one model (`model_name`, `model_base_path`).
  Ports of 0 are replaced by free ones before the server starts.
  """

  def __init__(self,
               *,
               model_config_file: Optional[str] = None,
               model_name: Optional[str] = None,
               model_base_path: Optional[str] = None,
               port: int = 0,
               rest_api_port: int = 0,
               extra_args: Sequence[str] = (),
               log_dir: Optional[str] = None,
               label: str = "model_server"):
    if bool(model_config_file) == bool(model_base_path):
      raise ValueError("give the model server either model_config_file or "
                       "model_base_path (with model_name), not both or neither")
    free = iter(pick_unused_ports(2))
    self.port = port or next(free)
    self.rest_api_port = rest_api_port or next(free)
    if self.port == self.rest_api_port:
      raise ValueError(f"the gRPC and REST ports must differ; both are {self.port}")
    self._model_args = ([f"--model_config_file={model_config_file}"]
                        if model_config_file else
                        [f"--model_name={model_name or 'default'}",
                         f"--model_base_path={model_base_path}"])
    self._extra_args = list(extra_args)
    self._label = label
    log_dir = log_dir or os.environ.get("TEST_UNDECLARED_OUTPUTS_DIR") or tempfile.gettempdir()
    os.makedirs(log_dir, exist_ok=True)
    self.log_path = os.path.join(log_dir, f"{label}.{os.getpid()}.{self.port}.log")
    self._child: Optional[child_process.ChildProcess] = None
    self._channel: Optional[grpc.Channel] = None

  @property
  def grpc_address(self) -> str:
    return f"127.0.0.1:{self.port}"

  @property
  def rest_url(self) -> str:
    return f"http://127.0.0.1:{self.rest_api_port}"

  @property
  def pid(self) -> Optional[int]:
    """The server's process id while it runs (e.g. to read its memory use)."""
    return self._child.pid if self._child is not None else None

  def command(self) -> List[str]:
    return model_server_command() + [
        f"--port={self.port}",
        f"--rest_api_port={self.rest_api_port}",
        *self._model_args,
        *self._extra_args,
    ]

  def start(self) -> "ModelServer":
    if self._child is not None:
      raise ModelServerError(f"{self._label} was already started")
    self._child = child_process.ChildProcess(
        self.command(), log_path=self.log_path, label=self._label, error=ModelServerError,
        log_tail_lines=_LOG_TAIL_LINES, stop_grace_s=_STOP_GRACE_S).start()
    return self

  def wait_until_available(self, model_names: Iterable[str], timeout_s: float = 180.0) -> None:
    """Returns once every named model has an AVAILABLE version.

    Raises ModelServerError if the server exits, a model's load fails, or
    `timeout_s` passes first.
    """
    if self._child is None:
      raise ModelServerError(f"{self._label} is not running; call start() first")
    # One deadline for all the models.
    deadline = time.monotonic() + timeout_s
    stub = model_service_pb2_grpc.ModelServiceStub(self._grpc_channel())
    for name in model_names:
      self._child.wait_until(
          lambda _, name=name: self._is_available(stub, name, deadline) or None,
          timeout_s=deadline - time.monotonic(),
          timeout_message=lambda name=name: (
              f"model '{name}' did not become AVAILABLE on {self._label} "
              f"({self.grpc_address}) within {timeout_s:.0f} s"))

  def _is_available(self, stub, name: str, deadline: float) -> bool:
    request = get_model_status_pb2.GetModelStatusRequest()
    request.model_spec.name = name
    try:
      # wait_for_ready blocks until the server accepts connections (or the short
      # timeout passes), so a server still starting up costs no failed attempts.
      response = stub.GetModelStatus(
          request, timeout=max(0.05, min(1.0, deadline - time.monotonic())),
          wait_for_ready=True)
    except grpc.RpcError as e:
      # UNAVAILABLE / DEADLINE_EXCEEDED: not listening yet; NOT_FOUND: the
      # model's first version is not loaded yet.
      if e.code() in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED,
                      grpc.StatusCode.NOT_FOUND):
        return False
      raise self._child.fail(f"GetModelStatus('{name}') on {self._label} failed: "
                             f"{e.code().name}: {e.details()}") from e
    state = get_model_status_pb2.ModelVersionStatus.State
    for version in response.model_version_status:
      if version.state == state.AVAILABLE:
        return True
      if version.state == state.END and version.status.error_code != 0:
        raise self._child.fail(
            f"model '{name}' version {version.version} failed to load on {self._label}: "
            f"{version.status.error_message}")
    return False

  def _grpc_channel(self) -> grpc.Channel:
    if self._channel is None:
      self._channel = grpc.insecure_channel(self.grpc_address)
    return self._channel

  def stop(self) -> Optional[int]:
    """Stops the server (SIGTERM, then SIGKILL) and reaps it; returns its exit status."""
    if self._channel is not None:
      self._channel.close()
      self._channel = None
    child, self._child = self._child, None
    return child.stop() if child is not None else None

  def __enter__(self) -> "ModelServer":
    return self.start()

  def __exit__(self, *exc_info) -> None:
    self.stop()
