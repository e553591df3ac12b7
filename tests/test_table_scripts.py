"""The paper-table scripts in launch/ run end to end on the embedded demo and write their tables.

Each script runs as a user would run it (bash, one ``python -m tfser.launch`` per run, then the
report step), cut down to one seed / one epoch / a few rows (annotators_multi: two seeds, the
fewest a paired t-test takes, of the cheapest row) so the four together take about three minutes
on 2 cores. Every run uses the embedded demo the README's main job prepares, shared through its
cache directory (--demo_dir's default, prepared once under a lock). The numbers are not checked
here (tests/test_*_report.py test the report arithmetic on hand-made runs); what is checked is
that every run the script names finished, and that the tables list the rows and columns the paper
lays out (annotators_multi: also its p-values, against scipy on the runs' own numbers).
"""

import csv
import glob
import json
import os
import subprocess
import sys
import tempfile
import unittest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _run_script(name, env_overrides, *args):
  env = dict(os.environ, PYTHON=sys.executable, TF_CPP_MIN_LOG_LEVEL="2", **env_overrides)
  result = subprocess.run(["bash", os.path.join(REPO, "launch", name), *args], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=900)
  if result.returncode != 0:
    raise AssertionError(f"{name} exited {result.returncode}\nstdout:\n{result.stdout[-4000:]}\n"
                         f"stderr:\n{result.stderr[-4000:]}")
  return result


def _csv_rows(path):
  with open(path, newline="", encoding="utf-8") as f:
    return list(csv.DictReader(f))


class TableScriptsTest(unittest.TestCase):

  def setUp(self):
    self._tmp = tempfile.TemporaryDirectory()
    self.root = self._tmp.name
    self.addCleanup(self._tmp.cleanup)

  def test_cww_table2_script(self):
    root = os.path.join(self.root, "table2")
    env = {"ROOT": root, "SEEDS": "0", "HOLDOUTS": "POD", "METHODS": "within ce cww",
           "FOLDS": "0"}
    _run_script("cww_table2.sh", env, "--max_epochs=1", "--noexport")
    for method in ("ce", "cww"):
      with open(os.path.join(root, method, "POD", "seed0", "results.json")) as f:
        results = json.load(f)
      self.assertEqual((results["holdout"], results["method"]), ("POD", method))
      self.assertEqual(sorted(results["training_corpora"]), ["CRE", "IEM", "IMP"])
    # The within-corpus baseline runs per fold (POD: one, its fixed splits).
    with open(os.path.join(root, "within", "POD", "fold0", "seed0", "results.json")) as f:
      results = json.load(f)
    self.assertEqual((results["training_corpora"], results["fold"]["index"]), (["POD"], 0))
    table2 = open(os.path.join(root, "report", "table2.md"), encoding="utf-8").read()
    self.assertIn("| Method | CRE | IEM | IMP | POD | Avg |", table2)
    self.assertIn("Within-single-corpus (CE)", table2)
    self.assertIn("Out-of-corpus (CE)", table2)
    self.assertIn("CWW", table2)
    table3 = open(os.path.join(root, "report", "table3.md"), encoding="utf-8").read()
    for corpus in ("CRE", "IEM", "IMP"):
      self.assertIn(f"| {corpus} |", table3)
    # A finished run is skipped when the script is started again (crash recovery).
    again = _run_script("cww_table2.sh", env, "--max_epochs=1", "--noexport")
    self.assertNotIn("== ", again.stdout)

  def test_annotators_table1_script(self):
    out = os.path.join(self.root, "annotators_table1")
    _run_script("annotators_table1.sh", {"OUT": out, "QUICK": "1", "SEEDS": "0",
                                         "MAX_EPOCHS": "1"})
    runs = sorted(os.path.basename(os.path.dirname(os.path.dirname(p)))
                  for p in glob.glob(os.path.join(out, "IMP", "*", "seed0", "results.json")))
    self.assertEqual(runs, ["baseline_baseline", "mt_task1", "mt_task1plus2", "onehot_task1",
                            "onehot_task1plus2"])
    # The CSV is long-format: one row per (model, metric), each from the one seed run here.
    rows = _csv_rows(os.path.join(out, "table1.csv"))
    self.assertEqual(len(rows), 5 * 4)
    self.assertEqual({r["n"] for r in rows}, {"1"})
    table = open(os.path.join(out, "table1.md"), encoding="utf-8").read()
    for row in ("Baseline", "MT (Task 1)", "MT (Task 1+2)", "One-hot (Task 1)",
                "One-hot (Task 1+2)"):
      self.assertIn(f"| {row} |", table)
    for column in ("TVD", "JSD", "Activation CCC", "Valence CCC"):
      self.assertIn(column, table)

  def test_annotators_table2_script(self):
    out = os.path.join(self.root, "annotators_table2")
    _run_script("annotators_table2.sh", {"OUT": out, "QUICK": "1", "SEEDS": "0",
                                         "MAX_EPOCHS": "1"})
    table = open(os.path.join(out, "table2.md"), encoding="utf-8").read()
    self.assertIn("| Metric | Dataset | Baseline | MT-1 | MT-12 |", table)
    # Zero-shot on the other demo corpora, each named with its test set (tfser.data.test_sets):
    # every metric row for each of them.
    for dataset in ("IEM (IEMOCAP, whole corpus)", "POD (MSP-Podcast Test1)"):
      for metric in ("TVD", "JSD", "Act. CCC", "Val. CCC"):
        self.assertIn(f"| {metric} ↑ | {dataset} |" if "CCC" in metric
                      else f"| {metric} ↓ | {dataset} |", table)

  def test_annotators_multi_table_script(self):
    # Issue 16: single-corpus, merged and weighted training on the demo (holdout IEM; IMP and
    # POD train), two seeds of the baseline row, one epoch of two steps; then the project report.
    import numpy as np  # pylint: disable=g-import-not-at-top
    from scipy import stats  # pylint: disable=g-import-not-at-top
    out = os.path.join(self.root, "annotators_multi")
    _run_script("annotators_multi_table.sh", {
        "OUT": out, "QUICK": "1", "SEEDS": "0 1", "MAX_EPOCHS": "1", "ROWS": "baseline",
        "MODES": "single merged weighted", "SINGLE_CORPORA": "IMP",
        "EXTRA_FLAGS": "--max_steps_per_epoch=2"})
    runs = {}
    for setting in ("single_baseline_IMP", "merged_baseline", "weighted_baseline"):
      for seed in (0, 1):
        with open(os.path.join(out, "IEM", setting, f"seed{seed}", "results.json")) as f:
          runs[setting, seed] = json.load(f)
    merged = runs["merged_baseline", 0]
    self.assertEqual((merged["mode"], merged["weighting"]), ("merged", "merged"))
    self.assertEqual(merged["training_corpora"], ["IMP", "POD"])
    self.assertEqual(merged["corpus_weights"], {"merged": 1.0})  # one pooled stream
    sizes = merged["train_utterances"]
    self.assertEqual(sorted(sizes), ["IMP", "POD"])
    self.assertEqual(merged["steps_per_epoch"], min(2, sum(sizes.values()) // 32))
    weighted = runs["weighted_baseline", 0]
    self.assertEqual(sorted(weighted["corpus_weights"]), ["IMP", "POD"])
    self.assertAlmostEqual(sum(weighted["corpus_weights"].values()), 2.0, places=5)
    self.assertEqual(runs["single_baseline_IMP", 1]["training_corpora"], ["IMP"])
    for results in runs.values():  # the demo's preset (standardised IS10, float32 DiffKDE)
      self.assertEqual(results["paper_settings"],
                       {"preset": "synthetic_demo", "standardize_features": True,
                        "diffkde_train_dtype": "float32", "gt_std_ddof": 1})

    report = os.path.join(out, "report")
    self.assertGreater(os.path.getsize(os.path.join(report, "figure.png")), 1000)
    table = open(os.path.join(report, "annotators_multi", "zero_shot_IEM.md"),
                 encoding="utf-8").read()
    self.assertIn("paired t-test vs single: IMP", table)
    for setting in ("single: IMP", "merged", "weighted"):
      self.assertIn(f"| {setting} | Baseline | 2 |", table)
    self.assertTrue(os.path.exists(os.path.join(report, "annotators_multi", "in_corpus_IEM.md")))
    # The CSV's p-values are scipy's paired t-test of the runs' zero-shot TVD against single.
    rows = _csv_rows(os.path.join(report, "annotators_multi", "zero_shot_IEM.csv"))
    single = [runs["single_baseline_IMP", s]["zero_shot"]["IEM"]["tvd"] for s in (0, 1)]
    for setting, name in (("merged", "merged_baseline"), ("weighted", "weighted_baseline")):
      row, = [r for r in rows if r["Training"] == setting and r["column"] == "TVD"]
      tvd = [runs[name, s]["zero_shot"]["IEM"]["tvd"] for s in (0, 1)]
      self.assertAlmostEqual(float(row["mean"]), np.mean(tvd), places=12)
      expected = stats.ttest_rel(tvd, single).pvalue
      if np.isfinite(expected):
        self.assertAlmostEqual(float(row["p_value"]), expected, places=9)
      else:
        self.assertEqual(row["p_value"], "nan")


if __name__ == "__main__":
  unittest.main()
