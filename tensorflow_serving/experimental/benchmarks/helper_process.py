"""Runs one of the benchmark's own servers (echo floors, TF RPC server) as a child process.

The child is a module of this package run with the parent's interpreter and import
path. It announces readiness by printing `READY <port>` on stdout once it is serving,
so the parent waits for that line (under a deadline, noticing at once if the child
exits) instead of sleeping. Spawning, parent-death handling, the log and the stop are
example/child_process's: servers never outlive the benchmark, also when it fails or is
interrupted.
"""

import os
import select
import sys
import time
from typing import List, Optional, Sequence

from tensorflow_serving.experimental.example import child_process

READY_PREFIX = "READY "
_STOP_GRACE_S = 10.0
_LOG_TAIL_LINES = 30
# The longest one select() on the child's stdout blocks before its exit is checked.
_READ_SLICE_S = 0.5


class HelperProcessError(RuntimeError):
  """A helper server did not start, or exited early."""


def announce_ready(port: int) -> None:
  """Called by a child once it serves: tells the parent which port it listens on."""
  sys.stdout.write(f"{READY_PREFIX}{port}\n")
  sys.stdout.flush()


class HelperProcess:
  """`python -m <module> <args>` as a server child; use as a context manager."""

  def __init__(self, module: str, args: Sequence[str], *, log_path: str, label: str,
               env: Optional[dict] = None):
    self._module = module
    self._args = list(args)
    self._log_path = log_path
    self._label = label
    self._env = env
    self._child: Optional[child_process.ChildProcess] = None
    self.port: Optional[int] = None

  @property
  def address(self) -> str:
    return f"127.0.0.1:{self.port}"

  def command(self) -> List[str]:
    return child_process.python_module_command(self._module, self._args)

  def spawn(self) -> "HelperProcess":
    """Starts the child without waiting for it; see wait_until_ready()."""
    if self._child is not None:
      raise HelperProcessError(f"{self._label} was already started")
    # stdout carries the READY line; stderr goes to the log.
    self._child = child_process.ChildProcess(
        self.command(), log_path=self._log_path, label=self._label,
        env=child_process.python_module_env(self._env), stdout_to_log=False,
        error=HelperProcessError, log_tail_lines=_LOG_TAIL_LINES,
        stop_grace_s=_STOP_GRACE_S).start()
    return self

  def wait_until_ready(self, timeout_s: float = 120.0) -> int:
    """Returns the port once the child announced it; stops the child on failure."""
    if self._child is None:
      raise HelperProcessError(f"{self._label} is not running; call spawn() first")
    buffered = bytearray()
    try:
      self.port = self._child.wait_until(
          lambda deadline: self._read_ready_port(buffered, deadline),
          timeout_s=timeout_s, pause_s=0, while_doing="before it was ready",
          timeout_message=lambda: (f"{self._label} did not print "
                                   f"'{READY_PREFIX.strip()}' within {timeout_s:.0f} s"))
    except BaseException:
      self.stop()
      raise
    return self.port

  def _read_ready_port(self, buffered: bytearray, deadline: float) -> Optional[int]:
    """Reads what the child printed (waiting at most a slice); its port once announced."""
    stdout = self._child.process.stdout
    wait_s = max(0.0, min(deadline - time.monotonic(), _READ_SLICE_S))
    readable, _, _ = select.select([stdout], [], [], wait_s)
    if not readable:
      return None
    chunk = os.read(stdout.fileno(), 4096)
    if not chunk:
      self._child.process.wait()
      raise self._child.fail(
          f"{self._label} closed its output with status {self._child.process.returncode} "
          f"before it was ready")
    buffered += chunk
    for line in buffered.decode(errors="replace").splitlines():
      if line.startswith(READY_PREFIX):
        return int(line[len(READY_PREFIX):])
    return None

  def start(self, timeout_s: float = 120.0) -> "HelperProcess":
    self.spawn()
    self.wait_until_ready(timeout_s)
    return self

  def stop(self) -> None:
    """SIGTERM, then SIGKILL after a grace period; always reaps the child."""
    child, self._child = self._child, None
    if child is not None:
      child.stop()

  def __enter__(self) -> "HelperProcess":
    return self.start()

  def __exit__(self, *exc_info) -> None:
    self.stop()
