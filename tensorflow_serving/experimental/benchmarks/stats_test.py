"""Tests of the figures' arithmetic, the bounded timing loop and the report's verdicts."""

import io
import json
import math
import os
import tempfile

from absl.testing import absltest

from tensorflow_serving.experimental.benchmarks import peak_memory
from tensorflow_serving.experimental.benchmarks import report as report_lib
from tensorflow_serving.experimental.benchmarks import stats
from tensorflow_serving.experimental.benchmarks import timing


class FigureTest(absltest.TestCase):

  def test_median_and_spread_of_repetitions(self):
    figure = stats.Figure("ms", [3.0, 1.0, 2.0, 10.0, 2.5])
    self.assertEqual(figure.median, 2.5)
    self.assertEqual((figure.low, figure.high), (1.0, 10.0))
    self.assertAlmostEqual(figure.spread_percent, 50.0 * 9.0 / 2.5)
    self.assertEqual(figure.format(), "2.50 ±180%")

  def test_empty_figure_is_not_a_number(self):
    figure = stats.Figure("ms")
    self.assertTrue(math.isnan(figure.median))
    self.assertEqual(figure.format(), "n/a")

  def test_latency_takes_p50_and_p99_per_repetition_in_milliseconds(self):
    latency = stats.Latency()
    latency.add_repetition([0.001] * 98 + [0.5, 0.5])
    latency.add_repetition([0.003] * 100)
    self.assertEqual(latency.p50.repetitions, [1.0, 3.0])
    self.assertGreater(latency.p99.repetitions[0], 1.0)
    self.assertEqual(latency.samples_per_repetition, [100, 100])

  def test_percentile_of_nothing_is_an_error(self):
    with self.assertRaisesRegex(ValueError, "no samples"):
      stats.percentile([], 50)

  def test_significant_digits(self):
    self.assertEqual(stats.significant(1234.5), "1234")
    self.assertEqual(stats.significant(0.012345), "0.0123")
    self.assertEqual(stats.significant(0), "0")


class TimingTest(absltest.TestCase):

  def test_stops_after_max_calls_and_skips_warmup(self):
    calls = []
    durations = timing.time_calls(lambda: calls.append(1), max_calls=7, max_seconds=60,
                                  warmup_calls=3)
    self.assertLen(durations, 7)
    self.assertLen(calls, 10)

  def test_stops_once_time_is_up_but_times_one_call(self):
    durations = timing.time_calls(lambda: None, max_calls=10**9, max_seconds=0.0)
    self.assertLen(durations, 1)

  def test_rejects_zero_calls(self):
    with self.assertRaisesRegex(ValueError, "max_calls"):
      timing.time_calls(lambda: None, max_calls=0, max_seconds=1)


class PeakMemoryTest(absltest.TestCase):

  def test_peak_follows_an_allocation_and_resets(self):
    peak_memory.reset_peak()
    before = peak_memory.resident_bytes()
    block = b"\x01" * (64 * 1024 * 1024)  # written, so every page is resident
    del block
    self.assertGreaterEqual(peak_memory.peak_resident_bytes() - before, 60 * 1024 * 1024)
    peak_memory.reset_peak()
    self.assertLess(peak_memory.peak_resident_bytes() - peak_memory.resident_bytes(),
                    32 * 1024 * 1024)


class ReportTest(absltest.TestCase):

  def _report(self):
    report = report_lib.Report({"repetitions": 2}, {"cpus": 2})
    section = report.section("s", "Section", ["ratio"])
    section.figure("fast", "ratio", "ratio").add(0.8)
    section.figure("fast", "ratio", "ratio").add(0.9)
    section.figure("slow", "ratio", "ratio").add(2.0)
    report.add_target(report_lib.Target("fast <= 1", "s", "fast", "ratio", "<=", 1.0))
    report.add_target(report_lib.Target("slow <= 1", "s", "slow", "ratio", "<=", 1.0))
    report.add_target(report_lib.Target("absent >= 1", "s", "absent", "ratio", ">=", 1.0))
    return report

  def test_verdicts_follow_the_medians(self):
    report = self._report()
    self.assertEqual([report.verdict(t)[0] for t in report.targets],
                     ["met", "missed", "not measured"])

  def test_table_and_json_say_the_same(self):
    report = self._report()
    out = io.StringIO()
    report.print_tables(out)
    self.assertIn("[    MET     ] fast <= 1: measured 0.850", out.getvalue())
    self.assertIn("[   MISSED   ] slow <= 1: measured 2.00", out.getvalue())
    self.assertIn("[NOT MEASURED] absent >= 1: not measured in this run", out.getvalue())
    path = os.path.join(tempfile.mkdtemp(dir=absltest.TEST_TMPDIR.value), "r.json")
    report.write_json(path)
    with open(path) as f:
      written = json.load(f)
    self.assertAlmostEqual(written["sections"]["s"]["rows"]["fast"]["ratio"]["median"], 0.85)
    self.assertEqual([t["verdict"] for t in written["targets"]],
                     ["met", "missed", "not measured"])
    self.assertIsNone(written["targets"][2]["value"])

  def test_unknown_column_is_refused(self):
    section = self._report().sections["s"]
    with self.assertRaisesRegex(KeyError, "no column 'p50'"):
      section.figure("fast", "p50", "ms")


if __name__ == "__main__":
  absltest.main()
