"""Tables 1 and 2 from results.json files: layout, seed pairing and significance marks."""

import json
import os
import shutil
import tempfile

import numpy as np
from scipy import stats

import tfser  # noqa: F401
import tensorflow as tf

from tfser.tasks.annotators import report as report_annotators


def _write(root, corpus, model, objective, seed, test=None, zero_shot=None):
  path = os.path.join(root, corpus, f"{model}_{objective}", f"seed{seed}", "results.json")
  os.makedirs(os.path.dirname(path))
  with open(path, "w") as f:
    json.dump({"task": "annotators", "seed": seed,
               "config": {"corpus": corpus, "model": model, "objective": objective},
               "validation": test or {}, "test": test or {}, "zero_shot": zero_shot or {}}, f)


class ReportTest(tf.test.TestCase):

  def setUp(self):
    super().setUp()
    self.root = tempfile.mkdtemp(prefix="tfser_report_")
    self.addCleanup(shutil.rmtree, self.root, ignore_errors=True)

  def test_table1_layout_and_marks(self):
    rng = np.random.default_rng(0)
    base_tvd = 0.5 + 0.01 * rng.normal(size=5)
    for seed in range(5):
      _write(self.root, "IMP", "baseline", "baseline", seed,
             {"tvd": base_tvd[seed], "jsd": 0.2, "consensus_ccc_act": 0.6,
              "consensus_ccc_val": 0.5 + 0.01 * seed})
      # MT: clearly lower TVD on every seed (improvement), valence CCC clearly lower (decline).
      _write(self.root, "IMP", "mt", "task1+2", seed,
             {"tvd": base_tvd[seed] - 0.05 - 0.001 * seed, "jsd": 0.2,
              "consensus_ccc_act": 0.6, "consensus_ccc_val": 0.3 + 0.011 * seed,
              "individual_ccc_act": 0.6, "individual_ccc_val": 0.4, "kde_tvd": 0.55,
              "kde_jsd": 0.26})
    runs = report_annotators.load_runs(self.root)
    paths = report_annotators.table1(runs, "IMP", os.path.join(self.root, "table1"))
    self.assertLen(paths, 4)
    with open(os.path.join(self.root, "table1.md")) as f:
      text = f.read()
    lines = [l for l in text.splitlines() if l.startswith("|")]
    self.assertIn("TVD", lines[0])
    baseline_row = [l for l in lines if l.startswith("| Baseline")][0]
    mt_row = [l for l in lines if l.startswith("| MT (Task 1+2)")][0]
    cells = [c.strip() for c in mt_row.strip("|").split("|")]
    self.assertEqual(cells[1], "5")
    self.assertTrue(cells[2].endswith("*"), cells)  # TVD improved
    self.assertTrue(cells[5].endswith("\u2020"), cells)  # valence CCC declined
    self.assertFalse(cells[4].endswith(("*", "\u2020")), cells)  # identical: no mark
    self.assertNotIn("*", baseline_row)
    # The p-value in the CSV is scipy's paired t-test.
    with open(os.path.join(self.root, "table1.csv")) as f:
      rows = [r.split(",") for r in f.read().splitlines()]
    tvd_row = [r for r in rows if r[0] == "MT (Task 1+2)" and r[2].startswith("TVD")][0]
    expected = stats.ttest_rel(base_tvd - 0.05 - 0.001 * np.arange(5), base_tvd).pvalue
    self.assertAllClose(float(tvd_row[6]), expected)
    with open(os.path.join(self.root, "table1_individual.md")) as f:
      self.assertIn("Individual act. CCC", f.read())

  def test_table2_layout(self):
    for seed in range(3):
      for model, objective, tvd in (("baseline", "baseline", 0.6),
                                    ("mt", "task1", 0.5 + seed / 100), ("mt", "task1+2", 0.52)):
        _write(self.root, "IMP", model, objective, seed, zero_shot={
            other: {"tvd": tvd, "jsd": 0.2, "consensus_ccc_act": 0.3, "consensus_ccc_val": 0.3}
            for other in ("POD", "IEM")})
    runs = report_annotators.load_runs(self.root)
    report_annotators.table2(runs, "IMP", os.path.join(self.root, "table2"))
    with open(os.path.join(self.root, "table2.md")) as f:
      lines = [l for l in f.read().splitlines() if l.startswith("|")]
    self.assertIn("MT-12", lines[0])
    self.assertLen(lines, 2 + 4 * 2)  # header, rule, 4 metrics x 2 corpora
    tvd_pod = [l for l in lines if "TVD" in l and "POD" in l][0]
    self.assertIn("*", tvd_pod)

  def test_duplicate_and_missing_runs_are_clear_errors(self):
    with self.assertRaisesRegex(ValueError, "no results.json"):
      report_annotators.load_runs(self.root)
    _write(self.root, "IMP", "mt", "task1", 0, {"tvd": 0.5})
    _write(os.path.join(self.root, "copy"), "IMP", "mt", "task1", 0, {"tvd": 0.5})
    with self.assertRaisesRegex(ValueError, "two runs of .* seed 0"):
      report_annotators.load_runs(self.root)


if __name__ == "__main__":
  tf.test.main()
