"""Summaries of repeated measurements: the median of the repetitions and their spread.

Every figure the benchmark reports is measured in several repetitions that are
interleaved with the figures it is compared with, so drift on a shared machine hits
all of them alike. A `Figure` keeps each repetition's value; the reported number is
their median and the spread is their range.
"""

import dataclasses
import math
from typing import Dict, List, Sequence

import numpy as np


@dataclasses.dataclass
class Figure:
  """One reported number: the median of `repetitions`, in `unit`."""
  unit: str
  repetitions: List[float] = dataclasses.field(default_factory=list)

  def add(self, value: float) -> None:
    self.repetitions.append(float(value))

  @property
  def median(self) -> float:
    return float(np.median(self.repetitions)) if self.repetitions else math.nan

  @property
  def low(self) -> float:
    return min(self.repetitions) if self.repetitions else math.nan

  @property
  def high(self) -> float:
    return max(self.repetitions) if self.repetitions else math.nan

  @property
  def spread_percent(self) -> float:
    """Half the range of the repetitions, relative to their median."""
    median = self.median
    if not self.repetitions or median == 0:
      return math.nan
    return 50.0 * (self.high - self.low) / abs(median)

  def format(self, digits: int = 3) -> str:
    """`median ±spread%` with `digits` significant digits."""
    if not self.repetitions:
      return "n/a"
    spread = self.spread_percent
    spread_text = "" if math.isnan(spread) else f" ±{spread:.0f}%"
    return f"{significant(self.median, digits)}{spread_text}"

  def to_json(self) -> Dict[str, object]:
    return {
        "unit": self.unit,
        "median": self.median,
        "min": self.low,
        "max": self.high,
        "spread_percent": self.spread_percent,
        "repetitions": list(self.repetitions),
    }


def significant(value: float, digits: int = 3) -> str:
  """`value` with `digits` significant digits, without exponent notation."""
  if math.isnan(value) or math.isinf(value):
    return str(value)
  if value == 0:
    return "0"
  decimals = max(0, digits - 1 - int(math.floor(math.log10(abs(value)))))
  return f"{value:.{decimals}f}"


def percentile(samples: Sequence[float], q: float) -> float:
  """The q-th percentile (0..100) of `samples`; raises on an empty sequence."""
  if not len(samples):
    raise ValueError("no samples to take a percentile of")
  return float(np.percentile(np.asarray(samples, dtype=np.float64), q))


@dataclasses.dataclass
class Latency:
  """p50 and p99 of call latencies in milliseconds, one value per repetition."""
  p50: Figure = dataclasses.field(default_factory=lambda: Figure("ms"))
  p99: Figure = dataclasses.field(default_factory=lambda: Figure("ms"))
  samples_per_repetition: List[int] = dataclasses.field(default_factory=list)

  def add_repetition(self, seconds: Sequence[float]) -> None:
    millis = [s * 1000.0 for s in seconds]
    self.p50.add(percentile(millis, 50))
    self.p99.add(percentile(millis, 99))
    self.samples_per_repetition.append(len(millis))

  def to_json(self) -> Dict[str, object]:
    return {
        "p50": self.p50.to_json(),
        "p99": self.p99.to_json(),
        "samples_per_repetition": list(self.samples_per_repetition),
    }
