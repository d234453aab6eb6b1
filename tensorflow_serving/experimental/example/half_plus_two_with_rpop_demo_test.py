"""Runs the one-command demo exactly as the README's first command does, and checks its output."""

import os
import signal
import subprocess

from absl.testing import absltest

_DEMO = os.path.join(os.path.dirname(os.path.abspath(__file__)), "half_plus_two_with_rpop_demo")
# Well above a normal run (tens of seconds); only a hung demo reaches it.
_DEMO_TIMEOUT_S = 240


class HalfPlusTwoWithRpopDemoTest(absltest.TestCase):

  def test_demo_prints_every_answer_and_exits_zero(self):
    process = subprocess.Popen([_DEMO], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               text=True)
    try:
      output, _ = process.communicate(timeout=_DEMO_TIMEOUT_S)
    except subprocess.TimeoutExpired:
      # The demo's model server dies with the demo (see model_server_process).
      process.send_signal(signal.SIGKILL)
      output, _ = process.communicate()
      self.fail(f"the demo did not finish within {_DEMO_TIMEOUT_S} s; its output:\n{output}")
    print(output)
    self.assertEqual(process.returncode, 0, f"the demo failed; its output:\n{output}")
    # The README promises these lines.
    self.assertIn('"predictions": [2.5, 3.0, 4.5]', output)  # half_plus_two
    self.assertIn('"predictions": [3.5, 4.0, 5.5]', output)  # half_plus_two_with_rpop
    self.assertIn("y: [8.0]", output)
    self.assertIn("demo OK", output)


if __name__ == "__main__":
  absltest.main()
