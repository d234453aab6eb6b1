"""Tests for batching: merging, splitting, runs alone, full queues, parameter checks.

The session run is a recording function; concurrency is arranged with barriers and
events, never with sleeps.
"""

import concurrent.futures
import threading

from absl.testing import absltest
from google.protobuf import text_format
import numpy as np

from tensorflow_serving.model_servers import batching
from tensorflow_serving.model_servers import config_protos
from tensorflow_serving.model_servers import server_flags
from tensorflow_serving.model_servers import serving_errors

# Longer than any test: batches close because they are full, not by time.
NEVER_MICROS = 600 * 1000 * 1000


class RecordingRun:
  """y = 2 x + 1 on feed "x:0"; records the rows of every run; may hold runs."""

  def __init__(self):
    self.runs = []
    self.release = threading.Event()
    self.release.set()
    self.started = threading.Event()
    self._lock = threading.Lock()

  def __call__(self, feeds, fetches, deadline):
    with self._lock:
      self.runs.append({name: np.array(value) for name, value in feeds.items()})
    self.started.set()
    self.release.wait()
    x = feeds["x:0"]
    return [2 * x + 1 for _ in fetches]


class BatchingTest(absltest.TestCase):

  def setUp(self):
    super().setUp()
    self.scheduler = batching.BatchScheduler(num_batch_threads=1)
    self.addCleanup(self.scheduler.stop)
    self.run_fn = RecordingRun()

  def _batcher(self, **options):
    return batching.ServableBatcher(self.scheduler, batching.QueueOptions(**options), "model m")

  def _concurrently(self, batcher, feeds_list, fetches=("y:0",)):
    barrier = threading.Barrier(len(feeds_list))

    def call(feeds):
      barrier.wait()
      return batcher.run(feeds, list(fetches), None, self.run_fn)

    with concurrent.futures.ThreadPoolExecutor(len(feeds_list)) as pool:
      return list(pool.map(call, feeds_list))

  def test_concurrent_requests_are_merged_and_split_back(self):
    batcher = self._batcher(max_batch_size=6, batch_timeout_micros=NEVER_MICROS)
    feeds = [{"x:0": np.full([n, 2], n, np.float32)} for n in (1, 2, 3)]
    results = self._concurrently(batcher, feeds)
    self.assertLen(self.run_fn.runs, 1)
    self.assertEqual(self.run_fn.runs[0]["x:0"].shape, (6, 2))
    for n, (y,) in zip((1, 2, 3), results):
      np.testing.assert_array_equal(y, np.full([n, 2], 2 * n + 1, np.float32))

  def test_padding_to_an_allowed_batch_size(self):
    batcher = self._batcher(max_batch_size=4, batch_timeout_micros=NEVER_MICROS,
                            allowed_batch_sizes=(2, 4))
    results = self._concurrently(batcher, [{"x:0": np.array([1.0, 2.0])},
                                           {"x:0": np.array([3.0, 4.0])}])
    self.assertLen(self.run_fn.runs, 1)
    np.testing.assert_array_equal(results[0][0], [3.0, 5.0])
    np.testing.assert_array_equal(results[1][0], [7.0, 9.0])
    # With a due batch of 3 rows, the run is padded to 4 by repeating the first row.
    batcher = self._batcher(max_batch_size=4, batch_timeout_micros=0, allowed_batch_sizes=(2, 4))
    (y,) = batcher.run({"x:0": np.array([5.0, 6.0, 7.0])}, ["y:0"], None, self.run_fn)
    np.testing.assert_array_equal(self.run_fn.runs[-1]["x:0"], [5.0, 6.0, 7.0, 5.0])
    np.testing.assert_array_equal(y, [11.0, 13.0, 15.0])

  def test_different_shapes_and_fetches_are_not_merged(self):
    batcher = self._batcher(max_batch_size=2, batch_timeout_micros=0)
    batcher.run({"x:0": np.zeros([1, 2])}, ["y:0"], None, self.run_fn)
    batcher.run({"x:0": np.zeros([1, 3])}, ["y:0"], None, self.run_fn)
    batcher.run({"x:0": np.zeros([1, 3])}, ["y:0", "z:0"], None, self.run_fn)
    self.assertEqual([r["x:0"].shape for r in self.run_fn.runs], [(1, 2), (1, 3), (1, 3)])

  def test_scalars_run_alone(self):
    batcher = self._batcher(max_batch_size=2, batch_timeout_micros=NEVER_MICROS)
    (y,) = batcher.run({"x:0": np.float32(3.0)}, ["y:0"], None, self.run_fn)
    self.assertEqual(float(y), 7.0)
    self.assertEqual(self.scheduler.session_runs, 0)  # Not through the batch threads.

  def test_full_queue_is_unavailable(self):
    batcher = self._batcher(max_batch_size=1, batch_timeout_micros=0, max_enqueued_batches=1)
    self.run_fn.release.clear()
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
      running = pool.submit(batcher.run, {"x:0": np.zeros([1])}, ["y:0"], None, self.run_fn)
      self.run_fn.started.wait()  # The only batch thread is busy with the first batch.
      queued = pool.submit(batcher.run, {"x:0": np.ones([1])}, ["y:0"], None, self.run_fn)
      with self.assertRaises(serving_errors.ServingError) as raised:
        # The queue holds one batch; wait until it is there, then overflow it.
        while not self._queued_batches():
          self.run_fn.started.wait(0.01)
        batcher.run({"x:0": np.ones([1])}, ["y:0"], None, self.run_fn)
      self.run_fn.release.set()
      running.result()
      queued.result()
    self.assertEqual(raised.exception.code.name, "UNAVAILABLE")
    self.assertIn("queue of model m is full", raised.exception.message)

  def _queued_batches(self):
    with self.scheduler._cv:  # pylint: disable=protected-access
      return sum(len(q.batches) for q in self.scheduler._queues.values())  # pylint: disable=protected-access

  def test_too_large_request_is_invalid(self):
    batcher = self._batcher(max_batch_size=2)
    with self.assertRaises(serving_errors.ServingError) as raised:
      batcher.run({"x:0": np.zeros([3])}, ["y:0"], None, self.run_fn)
    self.assertEqual(raised.exception.code.name, "INVALID_ARGUMENT")

  def test_outputs_that_cannot_be_split_fail_the_batch(self):
    batcher = self._batcher(max_batch_size=4, batch_timeout_micros=0)
    with self.assertRaises(serving_errors.ServingError) as raised:
      batcher.run({"x:0": np.zeros([2])}, ["y:0"], None,
                  lambda feeds, fetches, deadline: [np.float32(1.0)])
    self.assertIn("0th dimension", raised.exception.message)

  def test_parameters_are_checked(self):
    def options(text):
      return batching.queue_options(
          text_format.Parse(text, config_protos.BatchingParameters()), "params.txt")

    self.assertEqual(options(""), batching.QueueOptions())
    self.assertEqual(options("max_batch_size { value: 8 } allowed_batch_sizes: 4 "
                             "allowed_batch_sizes: 8").allowed_batch_sizes, (4, 8))
    for text, message in [
        ("max_batch_size { value: 8 } allowed_batch_sizes: 4", "must equal max_batch_size"),
        ("max_batch_size { value: 0 }", "must be positive"),
        ("pad_variable_length_inputs: true", "pad_variable_length_inputs"),
    ]:
      with self.assertRaisesRegex(server_flags.ConfigError, f"params.txt: .*{message}"):
        options(text)


if __name__ == "__main__":
  absltest.main()
