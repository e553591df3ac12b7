"""Acceptance: fixed-seed runs of both tasks give the metrics recorded in tests/data/acceptance.

The commands (tests/acceptance_runs.py: CWW ce, cww, cww_pel_al, focal_loss with holdout POD and
IEM, the within-corpus benchmark's fold 0; annotators baseline, MT task1, MT task1+2, one-hot,
each with a zero-shot corpus; two of them again by their ``--experiment`` name) run through the
launchers' flag parsing, on CPU with determinism,
so a refactor that changes any number (a metric, a corpus weight, a class count) fails here.

The same commands run on the embedded demo too (acceptance_runs' ``demo`` source; metrics
recorded with the tfser before the issue-14 refactor, commit b69d44c): about as long again as the
generated runs, on the demo the suite prepares once for the table scripts (the cache under
``TFSER_DEMO_DIR``, default the launchers' ``~/.cache/tfser/demo``). ``TFSER_DEMO_ACCEPTANCE=0``
skips them.
"""

import os
import tempfile
import unittest

from tests import acceptance_runs


class AcceptanceMetricsTest(unittest.TestCase):

  def _check(self, actual, source):
    for task in acceptance_runs.RUNS:
      runs = acceptance_runs.runs(task, source)
      expected = acceptance_runs.load_expected(task, source)
      self.assertEqual(sorted(expected), sorted(runs), f"{source} {task}: recorded runs")
      for name in runs:
        diffs = acceptance_runs.compare(expected[name], actual[task][name],
                                        f"{source}:{task}/{name}")
        self.assertEqual(diffs, [], "\n".join(diffs[:20]))
      # The same runs selected by their registry name (--experiment) give the same metrics.
      for name, (recorded, _) in acceptance_runs.by_name(task, source).items():
        diffs = acceptance_runs.compare(expected[recorded], actual[task][name], f"{task}/{name}")
        self.assertEqual(diffs, [], "\n".join(diffs[:20]))

  def test_runs_reproduce_the_recorded_metrics(self):
    with tempfile.TemporaryDirectory(prefix="tfser-acceptance-") as tmp:
      data_dir = os.path.join(tmp, "data")
      acceptance_runs.write_data(data_dir)
      actual = acceptance_runs.run_tasks(data_dir, os.path.join(tmp, "runs"))
    self._check(actual, "generated")

  @unittest.skipIf(os.environ.get("TFSER_DEMO_ACCEPTANCE") == "0",
                   "TFSER_DEMO_ACCEPTANCE=0: the demo acceptance runs are skipped")
  def test_demo_runs_reproduce_the_metrics_of_the_code_before_the_refactor(self):
    with tempfile.TemporaryDirectory(prefix="tfser-acceptance-demo-") as tmp:
      data_dir = acceptance_runs.demo_data_dir(
          os.environ.get("TFSER_DEMO_DIR", "~/.cache/tfser/demo"), tmp)
      actual = acceptance_runs.run_tasks(data_dir, os.path.join(tmp, "runs"), "demo")
    self._check(actual, "demo")

  def test_the_demo_data_check_tells_other_records_from_the_same_ones(self):
    # demo_summary on prepared corpus sets: the same data written again elsewhere summarise the
    # same; other data (another seed) do not.
    with tempfile.TemporaryDirectory(prefix="tfser-acceptance-summary-") as tmp:
      summaries = []
      for name, seed in (("a", 7), ("b", 7), ("c", 8)):
        acceptance_runs.write_data(os.path.join(tmp, name), seed=seed)
        summaries.append(acceptance_runs.demo_summary(os.path.join(tmp, name)))
    self.assertEqual(sorted(summaries[0]), ["CRE", "IEM", "IMP", "LIBRI", "POD"])
    self.assertEqual(acceptance_runs.compare(summaries[0], summaries[1]), [])
    diffs = acceptance_runs.compare(summaries[0], summaries[2])
    self.assertTrue(any("features/is10" in d for d in diffs), diffs[:5])

  def test_the_demo_commands_are_the_generated_ones_on_the_demo(self):
    for task, generated in acceptance_runs.RUNS.items():
      demo = acceptance_runs.runs(task, "demo")
      self.assertEqual(sorted(demo), sorted(generated))
      for name, argv in demo.items():
        self.assertIn("--feature_dim=1582" if task == "cww" else "--batch_size=32", argv)
        self.assertNotIn("--feature_dim=16", argv)
        self.assertEqual(len(argv), len(generated[name]))

  def test_compare_finds_a_changed_number(self):
    expected = {"a": {"x": 0.5, "y": [1, float("nan")]}}
    self.assertEqual(acceptance_runs.compare(expected, expected), [])
    self.assertNotEqual(acceptance_runs.compare(expected, {"a": {"x": 0.5001, "y": [1, 2.0]}}),
                        [])
    self.assertNotEqual(acceptance_runs.compare(expected, {"a": {"x": 0.5}}), [])


if __name__ == "__main__":
  unittest.main()
