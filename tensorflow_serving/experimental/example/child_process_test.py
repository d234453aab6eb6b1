"""Tests of child_process: exits and timeouts are reported with the log, stops reap."""

import os
import select
import signal
import socket
import subprocess
import sys

from absl.testing import absltest

from tensorflow_serving.experimental.example import child_process


def _python(code: str):
  return [sys.executable, "-c", code]


class ChildProcessTest(absltest.TestCase):

  def setUp(self):
    super().setUp()
    self.log_dir = self.create_tempdir().full_path

  def _child(self, code: str, **kwargs) -> child_process.ChildProcess:
    child = child_process.ChildProcess(
        _python(code), log_path=os.path.join(self.log_dir, "child.log"), label="the child",
        **kwargs).start()
    self.addCleanup(child.stop)
    return child

  def _wait_for_log(self, child, text: str) -> None:
    child.wait_until(lambda _: text in child_process.read_log(child.log_path, 10) or None,
                     timeout_s=60, timeout_message=lambda: f"no {text!r} in the log")

  def test_pick_unused_ports_are_distinct_and_free(self):
    ports = child_process.pick_unused_ports(3)
    self.assertLen(set(ports), 3)
    for port in ports:
      with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", port))

  def test_exit_before_ready_is_reported_with_status_and_log(self):
    child = self._child("import sys; print('cannot bind'); sys.exit(3)")
    with self.assertRaisesRegex(child_process.ChildError,
                                r"(?s)the child exited with status 3 while starting.*cannot bind"):
      child.wait_until(lambda _: None, timeout_s=60, timeout_message=lambda: "not ready",
                       while_doing="while starting")

  def test_timeout_raises_the_callers_error_and_stop_reaps(self):

    class MyError(Exception):
      pass

    child = self._child("import time; print('still starting', flush=True); time.sleep(600)",
                        error=MyError)
    self._wait_for_log(child, "still starting")
    with self.assertRaisesRegex(MyError, r"(?s)never ready.*still starting"):
      child.wait_until(lambda _: None, timeout_s=0.2, timeout_message=lambda: "never ready")
    self.assertEqual(child.stop(), -signal.SIGTERM)
    self.assertIsNotNone(child.process.poll())

  def test_stop_kills_a_child_that_ignores_sigterm(self):
    child = self._child(
        "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
        "print('ignoring', flush=True); time.sleep(600)", stop_grace_s=0.5)
    self._wait_for_log(child, "ignoring")
    self.assertEqual(child.stop(), -signal.SIGKILL)

  def test_stdout_pipe_and_stderr_log(self):
    child = self._child("import sys; print('READY 1', flush=True); "
                        "sys.stderr.write('to the log\\n')", stdout_to_log=False)
    self.assertEqual(child.process.stdout.readline(), b"READY 1\n")
    self.assertEqual(child.process.wait(timeout=60), 0)
    self.assertEqual(child.stop(), 0)
    self.assertEqual(child_process.read_log(child.log_path, 5), "to the log\n")

  def test_child_dies_with_its_parent(self):
    # The parent starts a child and is then killed outright: it runs no cleanup.
    parent = subprocess.Popen(
        _python("import sys, time\n"
                "from tensorflow_serving.experimental.example import child_process\n"
                "child = child_process.ChildProcess(\n"
                "    [sys.executable, '-c', 'import time; time.sleep(600)'],\n"
                f"    log_path={os.path.join(self.log_dir, 'grandchild.log')!r},\n"
                "    label='grandchild').start()\n"
                "print(child.pid, flush=True)\n"
                "time.sleep(600)\n"),
        stdout=subprocess.PIPE, env=child_process.python_module_env())
    self.addCleanup(parent.wait)
    self.addCleanup(parent.kill)
    grandchild = int(parent.stdout.readline())
    pidfd = os.pidfd_open(grandchild)
    self.addCleanup(os.close, pidfd)
    parent.kill()
    readable, _, _ = select.select([pidfd], [], [], 60)
    self.assertEqual(readable, [pidfd], f"process {grandchild} outlived its parent")


if __name__ == "__main__":
  absltest.main()
