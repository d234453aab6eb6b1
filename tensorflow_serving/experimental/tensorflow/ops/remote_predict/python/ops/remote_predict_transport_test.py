"""Tests the op's gRPC transport end to end: deadlines, size, balancing.

Each test fixes one of upstream's transport defects: deadlines were truncated
to whole seconds, responses over gRPC's 4 MiB default failed, a step's own
deadline and cancellation were ignored, and only one address could be named.
The transport is also shared: kernels do not add threads.
The server is the in-process PredictionService fixture on loopback ports.
"""

import os

import grpc
import numpy as np
import tensorflow as tf

from tensorflow_serving.experimental.tensorflow.ops.remote_predict.python.ops import remote_predict_ops
from tensorflow_serving.experimental.tensorflow.ops.remote_predict.python.ops.testing import prediction_service_fixture as fixture

_MIB = 1 << 20
# Upper bound for waits on events that should happen at once; only reached
# when the code under test is broken.
_PATIENCE_SECONDS = 60
_CLOCK_SLACK_SECONDS = 0.05


def _echo(server_address: str, x, deadline_millis: int):
  return remote_predict_ops.run(["x"], [x], ["x"],
                                target_address=server_address,
                                model_name="m",
                                max_rpc_deadline_millis=deadline_millis,
                                output_types=[x.dtype])[0]


class RemotePredictTransportTest(tf.test.TestCase):

  def setUp(self):
    super().setUp()
    self.server = self.enter_context(fixture.PredictionServiceFixture())

  def test_deadline_keeps_milliseconds(self):
    # Whole-second truncation would send 1 s for 1900 ms, and 0 s (an instant
    # failure) for 800 ms.
    for deadline_millis in (1900, 800):
      self.server.clear_calls()
      self.assertEqual(
          int(_echo(self.server.address, tf.constant(1), deadline_millis)), 1)
      (call,) = self.server.calls()
      # gRPC carries the deadline as a timeout and the server turns it back
      # into a wall-clock time, which can add a fraction of a millisecond.
      self.assertLessEqual(call.time_remaining,
                           deadline_millis / 1000 + _CLOCK_SLACK_SECONDS)
      self.assertGreater(call.time_remaining, deadline_millis // 1000)

  def test_500_distinct_kernels_add_at_most_a_handful_of_threads(self):
    # The first call starts the op's completion-queue threads and gRPC's own.
    _echo(self.server.address, tf.constant(1), 10000)
    threads_before = len(os.listdir("/proc/self/task"))
    for i in range(500):
      # Each deadline is another attr value, so eager mode builds (and keeps)
      # another kernel.
      self.assertEqual(
          int(_echo(self.server.address, tf.constant(i), 10001 + i)), i)
    threads_after = len(os.listdir("/proc/self/task"))
    print(f"threads: {threads_before} before, {threads_after} after 500 "
          "more kernels")
    self.assertLessEqual(threads_after - threads_before, 8)

  def test_64_mib_tensor_both_ways(self):
    values = np.arange(64 * _MIB // 4, dtype=np.int32)
    echoed = _echo(self.server.address, tf.constant(values), 60000)
    self.assertTrue(np.array_equal(echoed.numpy(), values))
    request = self.server.calls()[0].request
    self.assertLen(request.inputs["x"].tensor_content, 64 * _MIB)

  def test_step_timeout_cancels_the_call(self):
    hold = fixture.HoldUntilCancelled(timeout_seconds=_PATIENCE_SECONDS)
    self.server.set_behaviour(hold)
    with tf.Graph().as_default() as graph:
      y = _echo(self.server.address, tf.constant(1), 10 * 60 * 1000)
      with tf.compat.v1.Session(graph=graph) as session:
        with self.assertRaises(tf.errors.DeadlineExceededError):
          session.run(y, options=tf.compat.v1.RunOptions(timeout_in_ms=1000))
    # The RPC must not outlive the step (its own deadline was ten minutes).
    self.assertTrue(hold.cancelled.wait(_PATIENCE_SECONDS))

  def test_round_robin_target_reaches_every_address(self):
    with fixture.PredictionServiceFixture() as second:
      target = f"ipv4:127.0.0.1:{self.server.port},127.0.0.1:{second.port}"

      @tf.function
      def predict(x):
        return _echo(target, x, 30000)

      # One kernel (one channel) serves every call of the function; round
      # robin sends the calls to each address once its connection is up.
      for i in range(50):
        self.assertEqual(int(predict(tf.constant(i))), i)
        if self.server.calls() and second.calls():
          break
      self.assertNotEmpty(self.server.calls())
      self.assertNotEmpty(second.calls())

  def test_unreachable_target_fails_unavailable(self):
    # A port the fixture held and released: nothing listens there now.
    with fixture.PredictionServiceFixture() as gone:
      address = gone.address
    code, message, _ = remote_predict_ops.run_returning_status(
        ["x"], [tf.constant(1)], ["x"], target_address=address,
        model_name="m", max_rpc_deadline_millis=5000,
        output_types=[tf.int32])
    self.assertEqual(int(code), grpc.StatusCode.UNAVAILABLE.value[0])
    self.assertNotEmpty(message.numpy())


if __name__ == "__main__":
  tf.test.main()
