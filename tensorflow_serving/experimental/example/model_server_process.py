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

import ctypes
import os
import signal
import socket
import subprocess
import tempfile
import time
from typing import Iterable, List, Mapping, Optional, Sequence

import grpc

from google.protobuf import text_format
from tensorflow_serving.apis import get_model_status_pb2
from tensorflow_serving.apis import model_service_pb2_grpc
from tensorflow_serving.config import model_server_config_pb2

SERVER_TARGET = "//tensorflow_serving/model_servers:tensorflow_model_server"
_SERVER_PATH_IN_WORKSPACE = os.path.join("tensorflow_serving", "model_servers",
                                         "tensorflow_model_server")
HALF_PLUS_TWO_EXPORTER_TARGET = (
    "//tensorflow_serving/servables/tensorflow/testdata:saved_model_half_plus_two")
_HALF_PLUS_TWO_EXPORTER_PATH_IN_WORKSPACE = os.path.join(
    "tensorflow_serving", "servables", "tensorflow", "testdata", "saved_model_half_plus_two")
# How long GetModelStatus polls pause between attempts. The pause is a wait on the
# server process, so a server that exits is noticed at once.
_POLL_INTERVAL_S = 0.1
_STOP_GRACE_S = 15.0
# Exporting takes seconds; only a hung exporter reaches this (run() then kills it).
_EXPORT_TIMEOUT_S = 300.0
_LOG_TAIL_LINES = 40


def _die_with_parent() -> None:
  """Runs in the child before exec: the kernel kills it if its parent dies.

  A parent that is killed outright (a test timeout's SIGKILL) runs no cleanup;
  this keeps the server from outliving it.
  """
  pr_set_pdeathsig = 1
  ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGKILL)


class ModelServerError(RuntimeError):
  """The model server could not be started, or a model did not become available."""


def pick_unused_ports(count: int) -> List[int]:
  """Returns `count` distinct TCP ports that are free on 127.0.0.1 right now.

  All sockets stay bound until every port is chosen, so the ports differ. Another
  process may still take one before the server binds it; the server then fails to
  start and says so, which `ModelServer` reports with the server's log.
  """
  sockets = []
  try:
    for _ in range(count):
      s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
      s.bind(("127.0.0.1", 0))
      sockets.append(s)
    return [s.getsockname()[1] for s in sockets]
  finally:
    for s in sockets:
      s.close()


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
    self._process: Optional[subprocess.Popen] = None
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
    return self._process.pid if self._process is not None else None

  def command(self) -> List[str]:
    return model_server_command() + [
        f"--port={self.port}",
        f"--rest_api_port={self.rest_api_port}",
        *self._model_args,
        *self._extra_args,
    ]

  def start(self) -> "ModelServer":
    if self._process is not None:
      raise ModelServerError(f"{self._label} was already started")
    command = self.command()
    with open(self.log_path, "wb") as log:
      # A session of its own, so stop() can signal the server and anything it
      # spawned without touching the caller's process group.
      self._process = subprocess.Popen(
          command, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
          start_new_session=True, preexec_fn=_die_with_parent)
    return self

  def wait_until_available(self, model_names: Iterable[str], timeout_s: float = 180.0) -> None:
    """Returns once every named model has an AVAILABLE version.

    Raises ModelServerError if the server exits, a model's load fails, or
    `timeout_s` passes first.
    """
    if self._process is None:
      raise ModelServerError(f"{self._label} is not running; call start() first")
    deadline = time.monotonic() + timeout_s
    stub = model_service_pb2_grpc.ModelServiceStub(self._grpc_channel())
    for name in model_names:
      while not self._is_available(stub, name, deadline):
        self._pause_unless_exited()
        if time.monotonic() >= deadline:
          raise ModelServerError(
              f"model '{name}' did not become AVAILABLE on {self._label} "
              f"({self.grpc_address}) within {timeout_s:.0f} s" + self._log_tail())

  def _is_available(self, stub, name: str, deadline: float) -> bool:
    self._raise_if_exited()
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
      raise ModelServerError(f"GetModelStatus('{name}') on {self._label} failed: "
                             f"{e.code().name}: {e.details()}" + self._log_tail()) from e
    state = get_model_status_pb2.ModelVersionStatus.State
    for version in response.model_version_status:
      if version.state == state.AVAILABLE:
        return True
      if version.state == state.END and version.status.error_code != 0:
        raise ModelServerError(
            f"model '{name}' version {version.version} failed to load on {self._label}: "
            f"{version.status.error_message}" + self._log_tail())
    return False

  def _pause_unless_exited(self) -> None:
    try:
      self._process.wait(timeout=_POLL_INTERVAL_S)
    except subprocess.TimeoutExpired:
      return
    self._raise_if_exited()

  def _raise_if_exited(self) -> None:
    code = self._process.poll()
    if code is not None:
      raise ModelServerError(f"{self._label} exited with status {code} "
                             f"(command: {' '.join(self.command())})" + self._log_tail())

  def _grpc_channel(self) -> grpc.Channel:
    if self._channel is None:
      self._channel = grpc.insecure_channel(self.grpc_address)
    return self._channel

  def _log_tail(self) -> str:
    try:
      with open(self.log_path, errors="replace") as f:
        lines = f.readlines()[-_LOG_TAIL_LINES:]
    except OSError:
      return ""
    return f"\n--- last lines of {self.log_path} ---\n" + "".join(lines)

  def stop(self) -> Optional[int]:
    """Stops the server (SIGTERM, then SIGKILL) and reaps it; returns its exit status."""
    if self._channel is not None:
      self._channel.close()
      self._channel = None
    process, self._process = self._process, None
    if process is None:
      return None
    if process.poll() is None:
      self._signal_group(process, signal.SIGTERM)
      try:
        process.wait(timeout=_STOP_GRACE_S)
      except subprocess.TimeoutExpired:
        self._signal_group(process, signal.SIGKILL)
        process.wait()
    return process.returncode

  @staticmethod
  def _signal_group(process: subprocess.Popen, sig: int) -> None:
    try:
      os.killpg(process.pid, sig)
    except ProcessLookupError:
      pass

  def __enter__(self) -> "ModelServer":
    return self.start()

  def __exit__(self, *exc_info) -> None:
    self.stop()
