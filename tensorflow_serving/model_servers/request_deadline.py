"""A request's deadline, from the gRPC client's deadline or the REST timeout.

Work is refused once the deadline has passed, and what remains of it becomes the
model run's RunOptions.timeout_in_ms, so no model work outlives the request.
"""

import math
import time
from typing import Optional

from tensorflow_serving.model_servers import serving_errors


class Deadline:
  """An absolute time on the monotonic clock; `never()` for unbounded requests."""

  def __init__(self, expires_at: float):
    self._expires_at = expires_at

  @classmethod
  def after_seconds(cls, seconds: Optional[float]) -> "Deadline":
    return cls(math.inf if seconds is None else time.monotonic() + seconds)

  @classmethod
  def never(cls) -> "Deadline":
    return cls(math.inf)

  def remaining_seconds(self) -> float:
    return self._expires_at - time.monotonic()

  def check(self, what: str) -> None:
    if self.remaining_seconds() <= 0:
      raise serving_errors.deadline_exceeded(
          f"the request's deadline passed before {what} could run")

  def remaining_ms_or_raise(self, what: str) -> int:
    """Milliseconds left (0 when unbounded, TensorFlow's "no timeout")."""
    remaining = self.remaining_seconds()
    if remaining == math.inf:
      return 0
    self.check(what)
    return max(1, int(remaining * 1000))
