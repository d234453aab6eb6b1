"""Request batching (--enable_batching): concurrent runs of one signature share a session run.

What TensorFlow Serving's batching session does, for this server's session runs:
requests to the same model version with the same feeds and fetches, whose inputs agree
in dtype and in every dimension but the first, are queued together; a batch is run
when it holds max_batch_size rows, or batch_timeout_micros after its first request
(at once with the default 0, as soon as a batch thread is free, so batches form
under load). The inputs are concatenated along dimension 0 (padded up to the next
allowed_batch_sizes entry by repeating the first row), run once, and every output is
split back by each request's row count. Runs that cannot be merged (scalar inputs,
inputs of different first dimensions) run alone. A queue already holding
max_enqueued_batches batches answers UNAVAILABLE, as TF Serving does.

Parameters come from --batching_parameters_file (BatchingParameters), or with
--enable_per_model_batching_parameters from batching_params.pbtxt in the version's
directory (a version without one is not batched). The batch threads
(num_batch_threads of the global parameters) are shared by all models.
"""

import collections
import dataclasses
import os
import threading
import time
from typing import Callable, Dict, List, Optional, Sequence

from absl import logging
import numpy as np

from tensorflow_serving.model_servers import config_protos
from tensorflow_serving.model_servers import request_deadline
from tensorflow_serving.model_servers import server_flags
from tensorflow_serving.model_servers import serving_errors

PER_MODEL_PARAMETERS_FILE = "batching_params.pbtxt"

RunFn = Callable[[Dict[str, np.ndarray], Sequence[str], Optional[request_deadline.Deadline]],
                 List[np.ndarray]]


@dataclasses.dataclass(frozen=True)
class QueueOptions:
  """A model's batching parameters, with TF Serving's defaults for unset fields."""
  max_batch_size: int = 1000
  batch_timeout_micros: int = 0
  max_enqueued_batches: int = 10
  allowed_batch_sizes: tuple = ()


def read_parameters(path: str, what: str):
  """A BatchingParameters text file; raises ConfigError naming it."""
  from tensorflow_serving.model_servers import model_config  # pylint: disable=g-import-not-at-top
  return model_config.read_text_proto(path, config_protos.BatchingParameters(), what)


def queue_options(parameters, source: str) -> QueueOptions:
  """Checks BatchingParameters as TF Serving does; raises ConfigError naming `source`."""
  def value(field, default):
    return getattr(parameters, field).value if parameters.HasField(field) else default

  options = QueueOptions(
      max_batch_size=value("max_batch_size", QueueOptions.max_batch_size),
      batch_timeout_micros=value("batch_timeout_micros", QueueOptions.batch_timeout_micros),
      max_enqueued_batches=value("max_enqueued_batches", QueueOptions.max_enqueued_batches),
      allowed_batch_sizes=tuple(parameters.allowed_batch_sizes))
  if options.max_batch_size <= 0 or options.max_enqueued_batches <= 0:
    raise server_flags.ConfigError(f"{source}: max_batch_size and max_enqueued_batches must "
                                   "be positive")
  if options.batch_timeout_micros < 0:
    raise server_flags.ConfigError(f"{source}: batch_timeout_micros must not be negative")
  sizes = options.allowed_batch_sizes
  if sizes:
    if list(sizes) != sorted(set(sizes)) or sizes[0] <= 0:
      raise server_flags.ConfigError(f"{source}: allowed_batch_sizes must be positive and "
                                     f"strictly increasing, got {list(sizes)}")
    if sizes[-1] != options.max_batch_size:
      raise server_flags.ConfigError(
          f"{source}: the last entry of allowed_batch_sizes ({sizes[-1]}) must equal "
          f"max_batch_size ({options.max_batch_size})")
  if parameters.pad_variable_length_inputs:
    raise server_flags.ConfigError(f"{source}: pad_variable_length_inputs is not supported "
                                   "by this server; requests of different shapes run alone")
  if parameters.HasField("enable_large_batch_splitting") and (
      parameters.enable_large_batch_splitting.value):
    raise server_flags.ConfigError(f"{source}: enable_large_batch_splitting is not supported "
                                   "by this server")
  return options


class _Task:

  def __init__(self, feeds, rows: int, deadline):
    self.feeds = feeds
    self.rows = rows
    self.deadline = deadline
    self.done = threading.Event()
    self.outputs: Optional[List[np.ndarray]] = None
    self.error: Optional[BaseException] = None


class _Batch:

  def __init__(self, queue: "_Queue", ready_at: float):
    self.queue = queue
    self.tasks: List[_Task] = []
    self.rows = 0
    self.ready_at = ready_at


class _Queue:
  """The batches waiting for one (model version, feeds, fetches, trailing shapes)."""

  def __init__(self, options: QueueOptions, run: RunFn, fetches: Sequence[str], label: str):
    self.options = options
    self.run = run
    self.fetches = list(fetches)
    self.label = label
    self.batches = collections.deque()


class BatchScheduler:
  """The shared batch threads and every model's queues."""

  def __init__(self, num_batch_threads: int):
    self._cv = threading.Condition()
    self._queues: Dict[tuple, _Queue] = {}
    self._stopping = False
    self.session_runs = 0
    self._threads = [threading.Thread(target=self._work, name=f"batch_{i}", daemon=True)
                     for i in range(max(1, num_batch_threads))]
    for thread in self._threads:
      thread.start()

  def stop(self) -> None:
    """Stops the batch threads; requests still queued fail with UNAVAILABLE."""
    with self._cv:
      self._stopping = True
      self._cv.notify_all()
    for thread in self._threads:
      thread.join()
    with self._cv:
      for queue in self._queues.values():
        for batch in queue.batches:
          for task in batch.tasks:
            task.error = serving_errors.unavailable("the server is shutting down")
            task.done.set()
        queue.batches.clear()

  def submit(self, key: tuple, make_queue: Callable[[], _Queue], task: _Task) -> None:
    with self._cv:
      queue = self._queues.get(key)
      if queue is None:
        queue = self._queues[key] = make_queue()
      options = queue.options
      if task.rows > options.max_batch_size:
        raise serving_errors.invalid_argument(
            f"Task size {task.rows} is larger than maximum input batch size "
            f"{options.max_batch_size} of {queue.label}")
      batch = queue.batches[-1] if queue.batches else None
      if batch is None or batch.rows + task.rows > options.max_batch_size:
        if len(queue.batches) >= options.max_enqueued_batches:
          raise serving_errors.unavailable(
              f"The batch scheduling queue of {queue.label} is full "
              f"({options.max_enqueued_batches} batches); retry later")
        batch = _Batch(queue, time.monotonic() + options.batch_timeout_micros / 1e6)
        queue.batches.append(batch)
      batch.tasks.append(task)
      batch.rows += task.rows
      self._cv.notify_all()

  def forget(self, key_prefix) -> None:
    """Drops the (empty) queues of an unloaded version."""
    with self._cv:
      for key in [k for k in self._queues if k[0] is key_prefix]:
        if not self._queues[key].batches:
          del self._queues[key]

  def _next_batch(self) -> Optional[_Batch]:
    """Under the lock: the oldest batch that is full or due, else None."""
    now = time.monotonic()
    best = None
    for queue in self._queues.values():
      if not queue.batches:
        continue
      batch = queue.batches[0]
      if batch.rows >= queue.options.max_batch_size or batch.ready_at <= now:
        if best is None or batch.ready_at < best.ready_at:
          best = batch
    if best is not None:
      best.queue.batches.popleft()
    return best

  def _work(self) -> None:
    while True:
      with self._cv:
        while True:
          if self._stopping:
            return
          batch = self._next_batch()
          if batch is not None:
            break
          due = [q.batches[0].ready_at for q in self._queues.values() if q.batches]
          self._cv.wait(max(0.0, min(due) - time.monotonic()) if due else None)
        self.session_runs += 1
      _run_batch(batch)


def _run_batch(batch: _Batch) -> None:
  queue = batch.queue
  tasks = batch.tasks
  try:
    rows = batch.rows
    padded = rows
    for size in queue.options.allowed_batch_sizes:
      if size >= rows:
        padded = size
        break
    feeds = {}
    for name in tasks[0].feeds:
      parts = [task.feeds[name] for task in tasks]
      if padded > rows:
        first = parts[0][:1]
        parts.append(np.repeat(first, padded - rows, axis=0))
      feeds[name] = parts[0] if len(parts) == 1 else np.concatenate(parts, axis=0)
    # The batch runs until the latest of its requests' deadlines.
    deadlines = [task.deadline for task in tasks]
    deadline = (None if any(d is None for d in deadlines)
                else max(deadlines, key=lambda d: d.remaining_seconds()))
    outputs = queue.run(feeds, queue.fetches, deadline)
    for name, output in zip(queue.fetches, outputs):
      if np.ndim(output) == 0 or np.shape(output)[0] != padded:
        raise serving_errors.failed_precondition(
            f"Batched output tensor {name} of {queue.label} has shape {list(np.shape(output))};"
            f" its 0th dimension must equal the batch's {padded} rows to be split back")
    start = 0
    for task in tasks:
      task.outputs = [output[start:start + task.rows] for output in outputs]
      start += task.rows
  except BaseException as e:  # pylint: disable=broad-except
    for task in tasks:
      task.error = e
  finally:
    for task in tasks:
      task.done.set()


class ServableBatcher:
  """Batches the session runs of one model version."""

  def __init__(self, scheduler: BatchScheduler, options: QueueOptions, label: str):
    self._scheduler = scheduler
    self._options = options
    self._label = label

  def run(self, feeds: Dict[str, np.ndarray], fetches: Sequence[str],
          deadline: Optional[request_deadline.Deadline], run_now: RunFn) -> List[np.ndarray]:
    arrays = {name: np.asarray(value) for name, value in feeds.items()}
    rows = {a.shape[0] if a.ndim else None for a in arrays.values()}
    if not arrays or len(rows) != 1 or None in rows:
      return run_now(feeds, fetches, deadline)  # Nothing to merge along dimension 0.
    signature = tuple(sorted((name, a.dtype.str, a.shape[1:]) for name, a in arrays.items()))
    key = (self, signature, tuple(fetches))
    task = _Task(arrays, rows.pop(), deadline)
    self._scheduler.submit(
        key, lambda: _Queue(self._options, run_now, fetches, self._label), task)
    task.done.wait()
    if task.error is not None:
      raise task.error
    return task.outputs

  def close(self) -> None:
    self._scheduler.forget(self)


def options_for_version(global_options: Optional[QueueOptions], per_model: bool,
                        export_dir: str) -> Optional[QueueOptions]:
  """The version's queue options, or None if it is not batched."""
  if not per_model:
    return global_options
  path = os.path.join(export_dir, PER_MODEL_PARAMETERS_FILE)
  if not os.path.exists(path):
    return None
  try:
    return queue_options(read_parameters(path, "batching_params.pbtxt"), path)
  except server_flags.ConfigError as e:
    raise serving_errors.invalid_argument(str(e)) from e


def describe(options: QueueOptions) -> str:
  return (f"max_batch_size={options.max_batch_size} batch_timeout_micros="
          f"{options.batch_timeout_micros} max_enqueued_batches={options.max_enqueued_batches}")


def log_enabled(label: str, options: QueueOptions) -> None:
  logging.info("Batching %s: %s", label, describe(options))
