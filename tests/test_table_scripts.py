"""The paper-table scripts in launch/ run end to end on the embedded demo and write their tables.

Each script runs as a user would run it (bash, one ``python -m tfser.launch`` per run, then the
report step), cut down to one seed / one epoch / a few rows so the three together take about two
minutes on 2 cores. The numbers are not checked here (tests/test_*_report.py test the report
arithmetic on hand-made runs); what is checked is that every run the script names finished, and
that the tables list the rows and columns the paper lays out.
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


if __name__ == "__main__":
  unittest.main()
