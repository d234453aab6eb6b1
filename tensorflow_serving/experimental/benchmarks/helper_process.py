"""Runs one of the benchmark's own servers (echo floors, TF RPC server) as a child process.

The child is a module of this package run with the parent's interpreter and import
path. It announces readiness by printing `READY <port>` on stdout once it is serving,
so the parent waits for that line (under a deadline, noticing at once if the child
exits) instead of sleeping. The child gets a session of its own and dies with its
parent, and `stop()` signals and reaps it: servers never outlive the benchmark, also
when it fails or is interrupted.
"""

import ctypes
import os
import select
import signal
import subprocess
import sys
import time
from typing import List, Optional, Sequence

READY_PREFIX = "READY "
_STOP_GRACE_S = 10.0
_LOG_TAIL_LINES = 30


class HelperProcessError(RuntimeError):
  """A helper server did not start, or exited early."""


def announce_ready(port: int) -> None:
  """Called by a child once it serves: tells the parent which port it listens on."""
  sys.stdout.write(f"{READY_PREFIX}{port}\n")
  sys.stdout.flush()


def _die_with_parent() -> None:
  # Runs in the child before exec. A parent killed outright runs no cleanup; the
  # kernel then kills the child too (PR_SET_PDEATHSIG = 1).
  ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)


class HelperProcess:
  """`python -m <module> <args>` as a server child; use as a context manager."""

  def __init__(self, module: str, args: Sequence[str], *, log_path: str, label: str,
               env: Optional[dict] = None):
    self._module = module
    self._args = list(args)
    self._log_path = log_path
    self._label = label
    self._env = env
    self._process: Optional[subprocess.Popen] = None
    self.port: Optional[int] = None

  @property
  def address(self) -> str:
    return f"127.0.0.1:{self.port}"

  def command(self) -> List[str]:
    return [sys.executable, "-m", self._module, *self._args]

  def spawn(self) -> "HelperProcess":
    """Starts the child without waiting for it; see wait_until_ready()."""
    if self._process is not None:
      raise HelperProcessError(f"{self._label} was already started")
    env = dict(os.environ if self._env is None else self._env)
    # The child imports this package the way the parent did.
    env["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p)
    with open(self._log_path, "wb") as log:
      self._process = subprocess.Popen(
          self.command(), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=log,
          env=env, start_new_session=True, preexec_fn=_die_with_parent)
    return self

  def wait_until_ready(self, timeout_s: float = 120.0) -> int:
    """Returns the port once the child announced it; stops the child on failure."""
    if self._process is None:
      raise HelperProcessError(f"{self._label} is not running; call spawn() first")
    try:
      self.port = self._wait_for_ready(timeout_s)
    except BaseException:
      self.stop()
      raise
    return self.port

  def start(self, timeout_s: float = 120.0) -> "HelperProcess":
    self.spawn()
    self.wait_until_ready(timeout_s)
    return self

  def _wait_for_ready(self, timeout_s: float) -> int:
    deadline = time.monotonic() + timeout_s
    stdout = self._process.stdout
    buffered = b""
    while True:
      remaining = deadline - time.monotonic()
      if remaining <= 0:
        raise HelperProcessError(
            f"{self._label} did not print '{READY_PREFIX.strip()}' within {timeout_s:.0f} s"
            + self._log_tail())
      readable, _, _ = select.select([stdout], [], [], min(remaining, 0.5))
      if not readable:
        if self._process.poll() is not None:
          raise HelperProcessError(
              f"{self._label} exited with status {self._process.returncode} before it was "
              f"ready (command: {' '.join(self.command())})" + self._log_tail())
        continue
      chunk = os.read(stdout.fileno(), 4096)
      if not chunk:
        self._process.wait()
        raise HelperProcessError(
            f"{self._label} closed its output with status {self._process.returncode} before "
            f"it was ready" + self._log_tail())
      buffered += chunk
      for line in buffered.decode(errors="replace").splitlines():
        if line.startswith(READY_PREFIX):
          return int(line[len(READY_PREFIX):])

  def _log_tail(self) -> str:
    try:
      with open(self._log_path, errors="replace") as f:
        lines = f.readlines()[-_LOG_TAIL_LINES:]
    except OSError:
      return ""
    return f"\n--- last lines of {self._log_path} ---\n" + "".join(lines)

  def stop(self) -> None:
    """SIGTERM, then SIGKILL after a grace period; always reaps the child."""
    process, self._process = self._process, None
    if process is None:
      return
    if process.poll() is None:
      try:
        os.killpg(process.pid, signal.SIGTERM)
      except ProcessLookupError:
        pass
      try:
        process.wait(timeout=_STOP_GRACE_S)
      except subprocess.TimeoutExpired:
        try:
          os.killpg(process.pid, signal.SIGKILL)
        except ProcessLookupError:
          pass
        process.wait()
    if process.stdout is not None:
      process.stdout.close()

  def __enter__(self) -> "HelperProcess":
    return self.start()

  def __exit__(self, *exc_info) -> None:
    self.stop()
