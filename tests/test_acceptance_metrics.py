"""Acceptance: fixed-seed runs of both tasks give the metrics recorded in tests/data/acceptance.

The commands (tests/acceptance_runs.py: CWW ce, cww, cww_pel_al, focal_loss with holdout POD and
IEM, the within-corpus benchmark's fold 0; annotators baseline, MT task1, MT task1+2, one-hot,
each with a zero-shot corpus; two of them again by their ``--experiment`` name) run through the
launchers' flag parsing, on CPU with determinism,
so a refactor that changes any number (a metric, a corpus weight, a class count) fails here.
"""

import os
import tempfile
import unittest

from tests import acceptance_runs


class AcceptanceMetricsTest(unittest.TestCase):

  def test_runs_reproduce_the_recorded_metrics(self):
    with tempfile.TemporaryDirectory(prefix="tfser-acceptance-") as tmp:
      data_dir = os.path.join(tmp, "data")
      acceptance_runs.write_data(data_dir)
      actual = acceptance_runs.run_tasks(data_dir, os.path.join(tmp, "runs"))
    for task, runs in acceptance_runs.RUNS.items():
      expected = acceptance_runs.load_expected(task)
      self.assertEqual(sorted(expected), sorted(runs), f"{task}: recorded runs")
      for name in runs:
        diffs = acceptance_runs.compare(expected[name], actual[task][name], f"{task}/{name}")
        self.assertEqual(diffs, [], "\n".join(diffs[:20]))
      # The same runs selected by their registry name (--experiment) give the same metrics.
      for name, (recorded, _) in acceptance_runs.BY_NAME[task].items():
        diffs = acceptance_runs.compare(expected[recorded], actual[task][name], f"{task}/{name}")
        self.assertEqual(diffs, [], "\n".join(diffs[:20]))

  def test_compare_finds_a_changed_number(self):
    expected = {"a": {"x": 0.5, "y": [1, float("nan")]}}
    self.assertEqual(acceptance_runs.compare(expected, expected), [])
    self.assertNotEqual(acceptance_runs.compare(expected, {"a": {"x": 0.5001, "y": [1, 2.0]}}),
                        [])
    self.assertNotEqual(acceptance_runs.compare(expected, {"a": {"x": 0.5}}), [])


if __name__ == "__main__":
  unittest.main()
