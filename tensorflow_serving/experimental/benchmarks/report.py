"""Collects the benchmark's figures, prints them as tables and writes them as JSON.

A section is a table: rows (what was measured) by columns (which figure), every cell a
`stats.Figure`. Targets are the issue's goals, each judged on the median of a figure
already in some table, so the table and the verdict cannot disagree.
"""

import dataclasses
import json
import math
import operator
from typing import Dict, List, Optional, TextIO

from tensorflow_serving.experimental.benchmarks import stats


@dataclasses.dataclass
class Section:
  key: str
  title: str
  columns: List[str]
  notes: List[str] = dataclasses.field(default_factory=list)
  rows: Dict[str, Dict[str, stats.Figure]] = dataclasses.field(default_factory=dict)

  def figure(self, row: str, column: str, unit: str) -> stats.Figure:
    """The cell's Figure, created empty on first use."""
    if column not in self.columns:
      raise KeyError(f"section '{self.key}' has no column '{column}'")
    return self.rows.setdefault(row, {}).setdefault(column, stats.Figure(unit))

  def get(self, row: str, column: str) -> Optional[stats.Figure]:
    return self.rows.get(row, {}).get(column)


@dataclasses.dataclass
class Target:
  description: str
  section: str
  row: str
  column: str
  comparison: str  # "<=" or ">="
  threshold: float


_COMPARE = {"<=": operator.le, ">=": operator.ge}


class Report:
  """Every section and target of one run."""

  def __init__(self, settings: Dict[str, object], environment: Dict[str, object]):
    self.settings = settings
    self.environment = environment
    self.sections: Dict[str, Section] = {}
    self.targets: List[Target] = []

  def section(self, key: str, title: str, columns: List[str]) -> Section:
    if key in self.sections:
      raise ValueError(f"section '{key}' was added twice")
    self.sections[key] = Section(key, title, list(columns))
    return self.sections[key]

  def add_target(self, target: Target) -> None:
    self.targets.append(target)

  def verdict(self, target: Target) -> "tuple[str, float]":
    """('met' | 'missed' | 'not measured', the figure's median)."""
    section = self.sections.get(target.section)
    figure = section.get(target.row, target.column) if section else None
    if figure is None or not figure.repetitions or math.isnan(figure.median):
      return "not measured", math.nan
    met = _COMPARE[target.comparison](figure.median, target.threshold)
    return ("met" if met else "missed"), figure.median

  def print_tables(self, out: TextIO) -> None:
    for section in self.sections.values():
      out.write(f"\n== {section.title} ==\n")
      header = [""] + section.columns
      lines = [[row] + [cells[c].format() if c in cells else "-" for c in section.columns]
               for row, cells in section.rows.items()]
      widths = [max(len(line[i]) for line in [header] + lines) for i in range(len(header))]
      for line in [header] + lines:
        out.write("  ".join(text.ljust(w) if i == 0 else text.rjust(w)
                            for i, (text, w) in enumerate(zip(line, widths))).rstrip() + "\n")
      for note in section.notes:
        out.write(f"  note: {note}\n")
    out.write("\n== Targets (judged on medians) ==\n")
    for target in self.targets:
      verdict, value = self.verdict(target)
      value_text = ("not measured in this run" if math.isnan(value)
                    else f"measured {stats.significant(value)}")
      out.write(f"  [{verdict.upper():^12}] {target.description}: {value_text} "
                f"(target {target.comparison} {stats.significant(target.threshold)})\n")

  def to_json(self) -> Dict[str, object]:
    targets = []
    for target in self.targets:
      verdict, value = self.verdict(target)
      targets.append({**dataclasses.asdict(target), "value": value, "verdict": verdict})
    return {
        "settings": self.settings,
        "environment": self.environment,
        "sections": {
            key: {
                "title": s.title,
                "columns": s.columns,
                "notes": s.notes,
                "rows": {row: {c: f.to_json() for c, f in cells.items()}
                         for row, cells in s.rows.items()},
            } for key, s in self.sections.items()
        },
        "targets": targets,
    }

  def write_json(self, path: str) -> None:
    with open(path, "w") as f:
      # NaN is not JSON; figures that could not be computed are null.
      json.dump(_nan_to_none(self.to_json()), f, indent=2, allow_nan=False)
      f.write("\n")


def _nan_to_none(value):
  if isinstance(value, float) and (math.isnan(value) or math.isinf(value)):
    return None
  if isinstance(value, dict):
    return {k: _nan_to_none(v) for k, v in value.items()}
  if isinstance(value, list):
    return [_nan_to_none(v) for v in value]
  return value
