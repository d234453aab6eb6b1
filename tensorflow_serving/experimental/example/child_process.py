"""One server child process: free ports, a log file, a bounded readiness wait, a sure stop.

The examples, the model server's tests and the benchmarks all run servers as child
processes on loopback. `ChildProcess` is the one mechanism they share:
- ports are picked at run time (`pick_unused_ports`);
- the child gets a session of its own and dies with its parent (PR_SET_PDEATHSIG), so a
  parent killed outright (a test timeout's SIGKILL) leaves no server behind;
- its output goes to a log file whose tail is quoted in every error;
- `wait_until` polls a readiness check under a deadline and notices at once when the
  child exits (the pause between attempts is a wait on the child);
- `stop` sends SIGTERM (or another signal) to the child's session, SIGKILL after a grace
  period, and always reaps it.

It lives in the example package because that package is vendored into TF Serving forks
and every other user may depend on it there.
"""

import ctypes
import os
import signal
import socket
import subprocess
import sys
import time
from typing import Callable, Dict, List, Mapping, Optional, Sequence, Type, TypeVar

T = TypeVar("T")
_PR_SET_PDEATHSIG = 1


class ChildError(RuntimeError):
  """A child process did not start, did not become ready, or exited early."""


def pick_unused_ports(count: int) -> List[int]:
  """Returns `count` distinct TCP ports that are free on 127.0.0.1 right now.

  All sockets stay bound until every port is chosen, so the ports differ. Another
  process may still take one before the child binds it; the child then fails to start,
  which `wait_until` reports with the child's log.
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


def die_with_parent() -> None:
  """Runs in the child before exec: the kernel kills it when its parent dies.

  A parent killed outright runs no cleanup; this keeps the child from outliving it.
  """
  ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


def python_module_command(module: str, args: Sequence[str] = ()) -> List[str]:
  """`python -m module args` with this process's interpreter."""
  return [sys.executable, "-m", module, *args]


def python_module_env(env: Optional[Mapping[str, str]] = None) -> Dict[str, str]:
  """`env` (default: this process's) with PYTHONPATH set to this process's sys.path,
  so a `python_module_command` child imports this workspace the way the parent did."""
  result = dict(os.environ if env is None else env)
  result["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p)
  return result


def read_log(log_path: str, lines: int) -> str:
  """The last `lines` lines of `log_path` ("" if it cannot be read)."""
  try:
    with open(log_path, errors="replace") as f:
      return "".join(f.readlines()[-lines:])
  except OSError:
    return ""


def log_tail(log_path: str, lines: int) -> str:
  """The last `lines` lines of `log_path` under a heading, for an error message."""
  tail = read_log(log_path, lines)
  return f"\n--- last lines of {log_path} ---\n{tail}" if tail else ""


class ChildProcess:
  """`command` as a child process whose output goes to `log_path`.

  With `stdout_to_log=False` only stderr goes to the log and stdout is a pipe the
  caller reads (e.g. for a readiness line). Errors are raised as `error` (a subclass of
  Exception taking one message), so each caller keeps its own error type.
  """

  def __init__(self,
               command: Sequence[str],
               *,
               log_path: str,
               label: str,
               env: Optional[Mapping[str, str]] = None,
               stdout_to_log: bool = True,
               error: Type[Exception] = ChildError,
               log_tail_lines: int = 40,
               stop_grace_s: float = 15.0):
    self.command = list(command)
    self.log_path = log_path
    self.label = label
    self._env = None if env is None else dict(env)
    self._stdout_to_log = stdout_to_log
    self._error = error
    self._log_tail_lines = log_tail_lines
    self._stop_grace_s = stop_grace_s
    self.process: Optional[subprocess.Popen] = None

  def start(self) -> "ChildProcess":
    """Spawns the child without waiting for it to be ready."""
    if self.process is not None:
      raise self._error(f"{self.label} was already started")
    with open(self.log_path, "wb") as log:
      # A session of its own, so stop() signals the child and anything it spawned
      # without touching the caller's process group.
      self.process = subprocess.Popen(
          self.command, stdin=subprocess.DEVNULL,
          stdout=log if self._stdout_to_log else subprocess.PIPE, stderr=log,
          env=self._env, start_new_session=True, preexec_fn=die_with_parent)
    return self

  @property
  def pid(self) -> Optional[int]:
    return self.process.pid if self.process is not None else None

  def log_tail(self, lines: Optional[int] = None) -> str:
    return log_tail(self.log_path, lines or self._log_tail_lines)

  def fail(self, message: str) -> Exception:
    """The caller's error type, with `message` and the log's tail."""
    return self._error(message + self.log_tail())

  def raise_if_exited(self, while_doing: str = "") -> None:
    if self.process is None:
      raise self._error(f"{self.label} is not running; call start() first")
    code = self.process.poll()
    if code is not None:
      during = f" {while_doing}" if while_doing else ""
      raise self.fail(f"{self.label} exited with status {code}{during} "
                      f"(command: {' '.join(self.command)})")

  def wait_until(self,
                 attempt: Callable[[float], Optional[T]],
                 *,
                 timeout_s: float,
                 timeout_message: Callable[[], str],
                 while_doing: str = "",
                 pause_s: float = 0.1) -> T:
    """Calls `attempt(deadline)` until it returns a value other than None.

    Between attempts, waits up to `pause_s` on the child, so an exit is noticed at once.
    Raises the caller's error, with the log's tail, if the child exits or `timeout_s`
    passes first (the message then is `timeout_message()`).
    """
    deadline = time.monotonic() + timeout_s
    while True:
      self.raise_if_exited(while_doing)
      result = attempt(deadline)
      if result is not None:
        return result
      if time.monotonic() >= deadline:
        raise self.fail(timeout_message())
      if pause_s > 0:
        try:
          self.process.wait(timeout=pause_s)
        except subprocess.TimeoutExpired:
          pass

  def send_signal(self, signum: int) -> None:
    """Sends `signum` to the child's session, if it still runs."""
    if self.process is not None and self.process.poll() is None:
      try:
        os.killpg(self.process.pid, signum)
      except ProcessLookupError:
        pass

  def stop(self, signum: int = signal.SIGTERM) -> Optional[int]:
    """Sends `signum`, then SIGKILL after the grace period; reaps; returns the status."""
    process = self.process
    if process is None:
      return None
    if process.poll() is None:
      self.send_signal(signum)
      try:
        process.wait(timeout=self._stop_grace_s)
      except subprocess.TimeoutExpired:
        self.send_signal(signal.SIGKILL)
        process.wait()
    if process.stdout is not None:
      process.stdout.close()
    return process.returncode
