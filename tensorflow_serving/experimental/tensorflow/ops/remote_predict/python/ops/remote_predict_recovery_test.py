"""Restarts a real model server under a stream of op calls.

Checks the two recovery behaviours of the op's gRPC channel: after the target is
back, calls succeed again within about a second (the reconnect backoff is
bounded); and with `retry_unavailable`, a restart shorter than the call deadline
fails no call at all. Prints the measured figures.
"""

import os
import tempfile
import threading
import time
from typing import Callable, List, NamedTuple

import grpc
import tensorflow as tf

from tensorflow_serving.apis import predict_pb2
from tensorflow_serving.apis import prediction_service_pb2_grpc
from tensorflow_serving.experimental.example import model_server_process
from tensorflow_serving.experimental.tensorflow.ops.remote_predict.python.ops import remote_predict_ops

_MODEL = "half_plus_two"
# Pause between calls of the stream, so that failing calls (which return at
# once) do not spin a core.
_CALL_PACING_S = 0.02
# How long the server stays down before it is started again: long enough for
# gRPC's default backoff (1 s growing 1.6x, to 120 s) to reach several seconds.
_OUTAGE_S = 6.0
# The bound on recovery: the op's reconnect backoff is at most 1 s (+20 %
# jitter); the rest is headroom for a loaded 2-core machine.
_RECOVERY_LIMIT_S = 2.5
# Only a broken op makes the stream wait this long for its first success.
_FIRST_SUCCESS_LIMIT_S = 60.0
# How often the test's own client asks whether the server is back.
_PROBE_INTERVAL_S = 0.05
_START_LIMIT_S = 180.0


class Outcome(NamedTuple):
  start: float
  end: float
  error: str  # empty when the call succeeded


class CallStream:
  """Calls `call` over and over on `threads` threads until stopped."""

  def __init__(self, call: Callable[[], None], threads: int = 1):
    self._call = call
    self._stop = threading.Event()
    self._lock = threading.Condition()
    self.outcomes: List[Outcome] = []
    self._threads = [threading.Thread(target=self._run, daemon=True)
                     for _ in range(threads)]

  def __enter__(self) -> "CallStream":
    for thread in self._threads:
      thread.start()
    return self

  def __exit__(self, *exc_info) -> None:
    self._stop.set()
    for thread in self._threads:
      thread.join()

  def _run(self) -> None:
    while not self._stop.is_set():
      start = time.monotonic()
      try:
        self._call()
        error = ""
      except tf.errors.OpError as e:
        error = f"{type(e).__name__}: {e.message}"
      with self._lock:
        self.outcomes.append(Outcome(start, time.monotonic(), error))
        self._lock.notify_all()
      self._stop.wait(_CALL_PACING_S)

  def wait_for(self, predicate: Callable[[List[Outcome]], bool],
               timeout_s: float) -> bool:
    with self._lock:
      return self._lock.wait_for(lambda: predicate(self.outcomes), timeout_s)


class RemotePredictRecoveryTest(tf.test.TestCase):

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    cls.base_path = os.path.join(tempfile.mkdtemp(dir=os.environ.get("TEST_TMPDIR")),
                                 "models", _MODEL)
    version_dir = model_server_process.export_half_plus_two(cls.base_path)
    assert os.path.isdir(version_dir), version_dir

  def setUp(self):
    super().setUp()
    self.server = model_server_process.ModelServer(
        model_name=_MODEL, model_base_path=self.base_path,
        log_dir=self.get_temp_dir(), label=self.id().rsplit(".", 1)[-1])
    self.addCleanup(self.server.stop)
    self.server.start()
    self.server.wait_until_available([_MODEL])

  def _wait_until_predict_answers(self) -> None:
    """Returns as soon as a Predict from a brand-new client succeeds.

    Each attempt uses a new channel with a subchannel pool of its own, so no
    reconnect backoff of an earlier attempt delays noticing the server.
    """
    request = predict_pb2.PredictRequest()
    request.model_spec.name = _MODEL
    request.inputs["x"].CopyFrom(tf.make_tensor_proto([1.0], dtype=tf.float32))
    deadline = time.monotonic() + _START_LIMIT_S
    pause = threading.Event()
    while time.monotonic() < deadline:
      with grpc.insecure_channel(
          self.server.grpc_address,
          options=[("grpc.use_local_subchannel_pool", 1)]) as channel:
        try:
          prediction_service_pb2_grpc.PredictionServiceStub(channel).Predict(
              request, timeout=1.0)
          return
        except grpc.RpcError:
          pass
      pause.wait(_PROBE_INTERVAL_S)
    self.fail(f"the restarted server did not answer Predict within "
              f"{_START_LIMIT_S:.0f} s")

  def _restart(self, stream: CallStream, outage_s: float) -> tuple:
    """Stops the server and starts it again on the same port.

    Returns (stopped, restarted, ready): when it was stopped, started again,
    and when a new client's Predict first succeeded, on the monotonic clock.
    """
    self.assertTrue(stream.wait_for(lambda o: any(not x.error for x in o),
                                    _FIRST_SUCCESS_LIMIT_S),
                    f"no call succeeded before the restart: {stream.outcomes[-3:]}")
    self.server.stop()
    stopped = time.monotonic()
    threading.Event().wait(outage_s)  # the outage itself, not a synchronisation
    restarted = time.monotonic()
    self.server.start()
    self._wait_until_predict_answers()
    return stopped, restarted, time.monotonic()

  def test_calls_succeed_within_a_second_of_the_target_returning(self):
    def call():
      remote_predict_ops.run(
          ["x"], [tf.constant([1.0, 2.0])], ["y"],
          target_address=self.server.grpc_address, model_name=_MODEL,
          max_rpc_deadline_millis=2000, output_types=[tf.float32])

    with CallStream(call) as stream:
      stopped, _, ready = self._restart(stream, _OUTAGE_S)
      recovered = stream.wait_for(
          lambda o: any(not x.error and x.start > ready for x in o),
          _FIRST_SUCCESS_LIMIT_S)
    self.assertTrue(recovered, f"no call succeeded after the restart: "
                    f"{stream.outcomes[-3:]}")
    during = [x for x in stream.outcomes if stopped < x.start < ready]
    failed_during = [x for x in during if x.error]
    self.assertTrue(failed_during, "no call failed while the server was down, "
                    "so the test restarted nothing")
    first_success = min(x.end for x in stream.outcomes
                        if not x.error and x.start > stopped)
    failed_after = sum(1 for x in stream.outcomes
                       if x.error and x.start >= ready)
    recovery_s = first_success - ready
    print(f"outage {ready - stopped:.1f} s (down {_OUTAGE_S:.0f} s + start-up); "
          f"{len(failed_during)} calls failed while down; first success "
          f"{recovery_s:+.2f} s after a new client's first success; "
          f"{failed_after} calls failed after that")
    self.assertLess(recovery_s, _RECOVERY_LIMIT_S,
                    f"calls kept failing {recovery_s:.2f} s after the server was "
                    f"back; last errors: {[x.error for x in failed_during[-2:]]}")

  def test_with_retries_a_restart_within_the_deadline_fails_no_call(self):
    def call():
      remote_predict_ops.gen_remote_predict_op.tf_serving_remote_predict(
          ["x"], [tf.constant([1.0, 2.0])], ["y"],
          target_address=self.server.grpc_address, model_name=_MODEL,
          max_rpc_deadline_millis=120000, retry_unavailable=True,
          output_types=[tf.float32])

    with CallStream(call, threads=2) as stream:
      stopped, restarted, ready = self._restart(stream, outage_s=1.0)
      self.assertTrue(stream.wait_for(
          lambda o: sum(1 for x in o if x.start > ready) >= 4,
          _FIRST_SUCCESS_LIMIT_S), "the stream stopped after the restart")
    failures = [x for x in stream.outcomes if x.error]
    # Calls in flight from before the server went away until it was back.
    spanning = [x for x in stream.outcomes
                if x.start < stopped and x.end > restarted]
    longest = max(x.end - x.start for x in stream.outcomes)
    print(f"{len(stream.outcomes)} calls, {len(failures)} failed; server down "
          f"{ready - stopped:.1f} s; {len(spanning)} calls waited through the "
          f"outage; longest call {longest:.1f} s")
    self.assertEqual(failures, [])
    self.assertTrue(spanning, "no call was in flight across the restart, so "
                    "the test showed nothing")


if __name__ == "__main__":
  tf.test.main()
