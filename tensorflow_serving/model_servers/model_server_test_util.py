"""Test helpers: the model server as a child process, models to serve, curl.

`ServerProcess` runs `python -m tensorflow_serving.model_servers.main` (the
tensorflow_model_server entry point) with this process's sys.path, on loopback ports
picked at run time. Readiness is waiting, under a deadline, for GetModelStatus to
report a version AVAILABLE; the child is always stopped and reaped, and dies with the
test process if that is killed. Its log is quoted in every failure.
"""

import os
import shutil
import signal
import subprocess
import tempfile
import time
from typing import Dict, Optional, Sequence, Tuple

import grpc
import tensorflow as tf

from google.protobuf import text_format
from tensorflow_serving.apis import get_model_status_pb2
from tensorflow_serving.apis import model_service_pb2_grpc
from tensorflow_serving.config import model_server_config_pb2
from tensorflow_serving.experimental.example import child_process
from tensorflow_serving.servables.tensorflow.testdata import saved_model_half_plus_two

State = get_model_status_pb2.ModelVersionStatus.State
START_TIMEOUT_SECONDS = 120.0
_STOP_GRACE_SECONDS = 60.0
_LOG_TAIL_LINES = 60

# Distinct TCP ports free on 127.0.0.1 now.
pick_unused_ports = child_process.pick_unused_ports


def export_half_plus_two(base_path: str, version: int = 123) -> str:
  return saved_model_half_plus_two.export(base_path, version)


def export_counting_model(base_path: str, version: int = 1) -> str:
  """A model that counts to its input `n`: as slow as the caller asks it to be.

  Signature serving_default: n (int64 scalar) -> total (float, sum of 0..n-1).
  """
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  v1 = tf.compat.v1
  export_dir = os.path.join(base_path, str(version))
  graph = tf.Graph()
  with graph.as_default():
    n = v1.placeholder(tf.int64, [], name="n")
    _, total = tf.while_loop(lambda i, t: i < n,
                             lambda i, t: (i + 1, t + tf.cast(i, tf.float32)),
                             [tf.constant(0, tf.int64), tf.constant(0.0)])
    total = tf.identity(total, name="total")
    with v1.Session(graph=graph) as session:
      builder = v1.saved_model.Builder(export_dir)
      builder.add_meta_graph_and_variables(
          session, [tf.saved_model.SERVING],
          signature_def_map={"serving_default": v1.saved_model.predict_signature_def(
              inputs={"n": n}, outputs={"total": total})})
      builder.save()
  return export_dir


def copy_version(source_dir: str, base_path: str, version: int) -> str:
  """Copies a version directory to BASE_PATH/VERSION, appearing atomically."""
  os.makedirs(base_path, exist_ok=True)
  staging = tempfile.mkdtemp(prefix=".staging-", dir=base_path)
  shutil.copytree(source_dir, os.path.join(staging, "v"))
  target = os.path.join(base_path, str(version))
  os.rename(os.path.join(staging, "v"), target)
  os.rmdir(staging)
  return target


def write_broken_version(base_path: str, version: int) -> str:
  """A version directory whose saved_model.pb is not a SavedModel."""
  target = os.path.join(base_path, str(version))
  os.makedirs(target)
  with open(os.path.join(target, "saved_model.pb"), "wb") as f:
    f.write(b"this is not a SavedModel")
  return target


def write_config(path: str, config: model_server_config_pb2.ModelServerConfig) -> str:
  """Writes an ASCII config, replacing any previous one atomically."""
  staging = path + ".tmp"
  with open(staging, "w") as f:
    f.write(text_format.MessageToString(config))
  os.replace(staging, path)
  return path


def model_config(name: str, base_path: str, policy: str = "", labels: Optional[Dict[str, int]] = None):
  model = model_server_config_pb2.ModelConfig(name=name, base_path=base_path,
                                              model_platform="tensorflow")
  if policy:
    text_format.Parse(policy, model.model_version_policy)
  for label, version in (labels or {}).items():
    model.version_labels[label] = version
  return model


def server_config(*models) -> model_server_config_pb2.ModelServerConfig:
  config = model_server_config_pb2.ModelServerConfig()
  config.model_config_list.config.extend(models)
  return config


class ServerError(AssertionError):
  pass


class ServerProcess:
  """A tensorflow_model_server child process."""

  def __init__(self, args: Sequence[str], log_dir: str, grpc_port: Optional[int] = None,
               rest_port: Optional[int] = None):
    self.grpc_port = grpc_port
    self.rest_port = rest_port
    self.log_path = os.path.join(log_dir, f"model_server_{time.monotonic_ns()}.log")
    env = child_process.python_module_env()
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "1")
    self._child = child_process.ChildProcess(
        child_process.python_module_command("tensorflow_serving.model_servers.main", args),
        log_path=self.log_path, label="the model server", env=env, error=ServerError,
        log_tail_lines=_LOG_TAIL_LINES, stop_grace_s=_STOP_GRACE_SECONDS).start()
    self.process: subprocess.Popen = self._child.process
    self._channel = None
    # For a TLS server: credentials and the name its certificate is issued to.
    self.channel_credentials: Optional[grpc.ChannelCredentials] = None
    self.tls_server_name = "localhost"

  @classmethod
  def start(cls, log_dir: str, extra_args: Sequence[str] = (), rest: bool = True) -> "ServerProcess":
    grpc_port, rest_port = pick_unused_ports(2)
    args = [f"--port={grpc_port}"]
    if rest:
      args.append(f"--rest_api_port={rest_port}")
    return cls(args + list(extra_args), log_dir, grpc_port, rest_port if rest else None)

  def new_channel(self, credentials: Optional[grpc.ChannelCredentials] = None) -> grpc.Channel:
    if credentials is None:
      return grpc.insecure_channel(self.grpc_address)
    return grpc.secure_channel(self.grpc_address, credentials,
                               options=[("grpc.ssl_target_name_override", self.tls_server_name)])

  @property
  def grpc_address(self) -> str:
    return f"127.0.0.1:{self.grpc_port}"

  @property
  def rest_url(self) -> str:
    return f"http://127.0.0.1:{self.rest_port}"

  def channel(self) -> grpc.Channel:
    if self._channel is None:
      self._channel = self.new_channel(self.channel_credentials)
    return self._channel

  def log(self) -> str:
    return child_process.read_log(self.log_path, _LOG_TAIL_LINES)

  def fail(self, message: str) -> ServerError:
    return self._child.fail(message)

  def version_states(self, model: str, timeout: float = 5.0) -> Dict[int, int]:
    return self.version_states_on(self.channel(), model, timeout)

  @staticmethod
  def version_states_on(channel: grpc.Channel, model: str, timeout: float = 5.0) -> Dict[int, int]:
    stub = model_service_pb2_grpc.ModelServiceStub(channel)
    request = get_model_status_pb2.GetModelStatusRequest()
    request.model_spec.name = model
    response = stub.GetModelStatus(request, timeout=timeout)
    return {s.version: s.state for s in response.model_version_status}

  def wait_for(self, model: str, predicate, what: str,
               timeout: float = START_TIMEOUT_SECONDS) -> Dict[int, int]:
    """Polls GetModelStatus until predicate(version states) holds."""
    last_error = None

    def attempt(_) -> Optional[Dict[int, int]]:
      nonlocal last_error
      try:
        states = self.version_states(model)
      except grpc.RpcError as e:
        last_error = f"{e.code().name}: {e.details()}"
        return None
      last_error = f"states {states}"
      return states if predicate(states) else None

    return self._child.wait_until(
        attempt, timeout_s=timeout,
        while_doing=f"while waiting for model {model} to be {what}",
        timeout_message=lambda: (f"model {model} was not {what} within {timeout}s "
                                 f"(last: {last_error})"))

  def wait_until_available(self, model: str, versions: Sequence[int] = ()) -> Dict[int, int]:
    if versions:
      return self.wait_for(
          model, lambda s: all(s.get(v) == State.AVAILABLE for v in versions),
          f"AVAILABLE in versions {list(versions)}")
    return self.wait_for(model, lambda s: State.AVAILABLE in s.values(), "AVAILABLE")

  def wait_exit(self, timeout: float = 60.0) -> int:
    try:
      return self.process.wait(timeout)
    except subprocess.TimeoutExpired:
      raise self.fail(f"the model server did not exit within {timeout}s") from None

  def stop(self, signum: int = signal.SIGTERM) -> Optional[int]:
    """Sends `signum`, then SIGKILL if the server lingers; returns the exit code."""
    if self._channel is not None:
      self._channel.close()
      self._channel = None
    return self._child.stop(signum)


class ServerTestCase(tf.test.TestCase):
  """A test class sharing one model server process, `cls.server`.

  `start_server` starts it and waits for the named models, stopping it if they never
  become AVAILABLE; `tearDownClass` stops it and fails the class unless SIGTERM made it
  exit 0, because a server that cannot shut down cleanly is a bug too.
  """

  server: Optional[ServerProcess] = None

  @classmethod
  def start_server(cls, log_dir: str, extra_args: Sequence[str], models: Sequence[str],
                   rest: bool = True) -> ServerProcess:
    cls.server = ServerProcess.start(log_dir, extra_args, rest=rest)
    try:
      for model in models:
        cls.server.wait_until_available(model)
    except BaseException:
      cls.server.stop()
      raise
    return cls.server

  @classmethod
  def tearDownClass(cls):
    code = cls.server.stop() if cls.server is not None else 0
    super().tearDownClass()
    if code != 0:
      raise cls.server.fail(f"the server exited with {code} on SIGTERM")


def curl(method: str, url: str, body: Optional[str] = None,
         extra_args: Sequence[str] = ()) -> Tuple[int, str]:
  """Runs curl; returns (HTTP status, response body)."""
  command = ["curl", "-sS", "-X", method, "-o", "-", "-w", "\n%{http_code}", *extra_args]
  if body is not None:
    command += ["-H", "Content-Type: application/json", "--data-binary", "@-"]
  command.append(url)
  result = subprocess.run(command, input=(body or "").encode("utf-8"), capture_output=True,
                          timeout=120, check=False)
  if result.returncode != 0:
    raise AssertionError(f"curl {method} {url} failed ({result.returncode}): "
                         f"{result.stderr.decode('utf-8', 'replace')}")
  text = result.stdout.decode("utf-8")
  payload, _, status = text.rpartition("\n")
  return int(status), payload
