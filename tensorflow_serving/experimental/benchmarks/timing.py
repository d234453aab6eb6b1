"""Bounded timing loops: every loop stops after a number of calls or a time, whichever first.

Warm-up calls run before the clock starts and are not recorded, so first-call costs
(tracing a tf.function, building a kernel, opening a connection) stay out of the figures.
"""

import time
from typing import Callable, List


def time_calls(call: Callable[[], object], *, max_calls: int, max_seconds: float,
               warmup_calls: int = 0) -> List[float]:
  """Runs `call` one at a time; returns each call's wall time in seconds.

  Stops after `max_calls` timed calls or once `max_seconds` have passed since the
  first timed call, whichever comes first; at least one call is always timed.
  """
  if max_calls < 1:
    raise ValueError(f"max_calls must be >= 1, got {max_calls}")
  for _ in range(warmup_calls):
    call()
  durations = []
  clock = time.perf_counter
  stop_at = clock() + max_seconds
  while len(durations) < max_calls:
    start = clock()
    call()
    end = clock()
    durations.append(end - start)
    if end >= stop_at:
      break
  return durations
