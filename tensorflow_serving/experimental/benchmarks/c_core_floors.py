"""The C-core floors from Python: start c_core_predict_server, run c_core_predict_client.

Both programs are C++ on gRPC's C core alone (see their headers), so nothing Python is
in their serving path: the server is started by helper_process like the benchmark's
other servers (it prints `READY <port>` too), and the client loop runs as a child
process that prints its per-call times as JSON. Their binaries come from the calling
program's runfiles (list the targets in its `data`).
"""

import json
import os
import subprocess
from typing import List, Optional

from tensorflow_serving.experimental.benchmarks import helper_process
from tensorflow_serving.experimental.example import model_server_process

_PACKAGE_PATH = os.path.join("tensorflow_serving", "experimental", "benchmarks")
SERVER_TARGET = "//tensorflow_serving/experimental/benchmarks:c_core_predict_server"
CLIENT_TARGET = "//tensorflow_serving/experimental/benchmarks:c_core_predict_client"
SERVER_BINARY = "c_core_predict_server"
CLIENT_BINARY = "c_core_predict_client"
# The server's threads: one per core of the machine the figures come from.
DEFAULT_THREADS = 2
_CLIENT_TIMEOUT_S = 600.0


class CCoreError(RuntimeError):
  """A floor program is missing, failed, or answered wrongly."""


def binary_path(name: str, target: str) -> str:
  path = model_server_process.runfiles_path(os.path.join(_PACKAGE_PATH, name))
  if not os.access(path, os.X_OK):
    raise CCoreError(f"{path} is missing: run with `tools/bazel run` or `tools/bazel "
                     f"test` and list {target} in the target's `data`")
  return path


class CCoreServer(helper_process.HelperProcess):
  """c_core_predict_server as a child process: `canned` (answers every Predict with
  `response_file`'s bytes) or `echo` (answers with the request's inputs as outputs)."""

  def __init__(self, reply: str, *, log_path: str, label: str,
               response_file: Optional[str] = None, threads: int = DEFAULT_THREADS):
    if reply not in ("canned", "echo"):
      raise ValueError(f"reply must be 'canned' or 'echo', got {reply!r}")
    args = [f"--reply={reply}", "--port=0", f"--threads={threads}"]
    if response_file:
      args.append(f"--response_file={response_file}")
    super().__init__(SERVER_BINARY, args, log_path=log_path, label=label)
    self._server_args = args

  def command(self) -> List[str]:
    # A C++ program, not a Python module: the same readiness line and life cycle.
    return [binary_path(SERVER_BINARY, SERVER_TARGET), *self._server_args]


def client_seconds(address: str, request_file: str, *, calls: int, warmup_calls: int,
                   max_seconds: float, expected_response: Optional[bytes] = None,
                   response_file: Optional[str] = None) -> List[float]:
  """Per-call seconds of c_core_predict_client calling Predict on `address`.

  The client sends `request_file`'s bytes; if `expected_response` is given, the reply
  must be exactly those bytes (the reply is kept in `response_file`, or next to the
  request).
  """
  response_file = response_file or request_file + ".response"
  command = [binary_path(CLIENT_BINARY, CLIENT_TARGET), f"--target={address}",
             f"--request_file={request_file}", f"--calls={calls}",
             f"--warmup_calls={warmup_calls}", f"--max_seconds={max_seconds}",
             f"--response_file={response_file}"]
  result = subprocess.run(command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True, timeout=_CLIENT_TIMEOUT_S,
                          check=False)
  if result.returncode != 0:
    raise CCoreError(f"{CLIENT_BINARY} exited with status {result.returncode}: "
                     f"{result.stderr.strip()[-2000:]}")
  figures = json.loads(result.stdout)
  if expected_response is not None:
    with open(response_file, "rb") as f:
      response = f.read()
    if response != expected_response:
      raise CCoreError(f"{address} answered {len(response)} bytes, not the "
                       f"{len(expected_response)} bytes expected")
  if not figures["seconds"]:
    raise CCoreError(f"{CLIENT_BINARY} timed no call")
  return [float(s) for s in figures["seconds"]]
