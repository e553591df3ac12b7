"""Tables 2 and 3 of the corpus-wise-weights paper from a directory of CWW runs.

Reads every ``results.json`` under ``runs_dir`` (as launch/cww_table2.sh lays them out:
``<runs_dir>/<method>/<holdout>/seed<k>/results.json``, and for the within-corpus folds
``<runs_dir>/within/<holdout>/fold<f>/seed<k>/results.json``; only the files' contents matter)
and writes, under ``out_dir``:

* ``table2.md/.csv``: UA (%) on the unseen corpus, rows = methods in the paper's order (the
  within-single-corpus baseline first), columns CRE IEM IMP POD and Avg; mean +- std over seeds,
  with a paired t-test against "Out-of-corpus (CE)" (``*`` better, ``†`` worse, p < 0.05).
  Avg is the per-seed mean over the four holdouts (seeds with all four only). A run with
  several folds (the within-corpus cross-validation, results' ``fold``) first averages a seed's
  UA over the folds it has, then mean +- std over seeds: the mean is the paper's average over
  folds and seeds (equal to the mean over all runs when every fold has every seed), the std the
  spread of the seeds' cross-validated UAs.
* ``table3.md/.csv``: the corpus-wise weights of the last epoch (method "cww" by default), rows =
  training corpus, columns = testing corpus and Avg (mean over seeds, then over test corpora).
* ``train_ua_spread.md/.csv``: Fig. 1 in numbers: the std over the training corpora of their
  final training-set UAs, per method and holdout (CWW should make it smaller than CE).

Run: ``python -m tfser.tasks.cww.report --runs_dir=runs/table2 --out_dir=runs/table2/report``.
"""

import argparse
import collections
import glob
import json
import os
from typing import Dict, List, Sequence

import numpy as np

from tfser.core import report
from tfser.tasks.cww import config as cww_experiment
from tfser.tasks.cww import experiments as cww_experiments

CORPORA = cww_experiment.CORPORA
ROW_ORDER = list(cww_experiments.METHODS)  # the registry's Table 2 rows, in order


def load_runs(runs_dir: str) -> List[dict]:
  """Every results.json below runs_dir (recursively), parsed."""
  paths = sorted(glob.glob(os.path.join(runs_dir, "**", "results.json"), recursive=True))
  runs = []
  for path in paths:
    with open(path) as f:
      run = json.load(f)
    if run.get("task") == "cww":
      run["_path"] = path
      runs.append(run)
  return runs


def _by(runs, *keys) -> Dict[tuple, Dict[int, dict]]:
  """{(key values): {seed: run}} (a later file for the same seed wins)."""
  out = collections.defaultdict(dict)
  for run in runs:
    out[tuple(run[k] for k in keys)][int(run["seed"])] = run
  return out


def fold_means(runs: Sequence[dict]) -> List[dict]:
  """One run per (method, holdout, seed): a seed's folds collapsed to their mean holdout UA.

  Runs without a fold (out of corpus) pass through. For the same fold and seed a later file
  wins, as in ``_by``. A collapsed run has method, mode, holdout, seed, holdout_ua and
  ``folds`` (the fold indices averaged).
  """
  plain, folds = [], collections.defaultdict(dict)
  for run in runs:
    fold = run.get("fold")
    if not fold:
      plain.append(run)
      continue
    folds[(run["method"], run["holdout"], int(run["seed"]))][int(fold["index"])] = run
  for (method, holdout, seed), by_fold in sorted(folds.items()):
    first = next(iter(by_fold.values()))
    plain.append({"task": "cww", "method": method, "mode": first.get("mode"),
                  "holdout": holdout, "seed": seed, "folds": sorted(by_fold),
                  "holdout_ua": float(np.mean([r["holdout_ua"] for r in by_fold.values()]))})
  return plain


def table2(runs: Sequence[dict], corpora: Sequence[str] = CORPORA, baseline: str = "ce"):
  """(header, rows) of Table 2: UA (%) per holdout and the average; Cells over seeds."""
  grouped = _by(fold_means(runs), "method", "holdout")
  methods = [m for m in ROW_ORDER if any(k[0] == m for k in grouped)]
  methods += sorted({k[0] for k in grouped} - set(methods))
  header = ["Method"] + list(corpora) + ["Avg"]
  rows = []
  for method in methods:
    row = [cww_experiments.LABELS.get(method, method)]
    for corpus in list(corpora) + ["Avg"]:
      values, base = _paired(grouped, method, baseline, corpus, corpora)
      # The within-corpus row is an upper bound, not a competitor: no test against CE.
      use_base = (base if method not in (baseline, "within") and base is not None
                  and len(base) == len(values) else None)
      row.append(report.compare(values, use_base))
    rows.append(row)
  return header, rows


def _ua_by_seed(grouped, method, corpus, corpora) -> Dict[int, float]:
  if corpus != "Avg":
    return {s: 100.0 * r["holdout_ua"] for s, r in grouped.get((method, corpus), {}).items()}
  per = [_ua_by_seed(grouped, method, c, corpora) for c in corpora]
  seeds = set.intersection(*(set(p) for p in per)) if per else set()
  return {s: float(np.mean([p[s] for p in per])) for s in seeds}


def _paired(grouped, method, baseline, corpus, corpora):
  values = _ua_by_seed(grouped, method, corpus, corpora)
  base = _ua_by_seed(grouped, baseline, corpus, corpora)
  seeds = sorted(values)
  if base and set(seeds) <= set(base):
    return [values[s] for s in seeds], [base[s] for s in seeds]
  return [values[s] for s in seeds], None


def table3(runs: Sequence[dict], method: str = "cww", corpora: Sequence[str] = CORPORA):
  """(header, rows) of Table 3: final corpus weights, training corpus x testing corpus."""
  grouped = _by([r for r in runs if r["method"] == method], "holdout")
  header = ["training \\ testing"] + list(corpora) + ["Avg"]
  rows = []
  for train_corpus in corpora:
    row, means = [train_corpus], []
    for test_corpus in corpora:
      weights = [r["corpus_weights"][train_corpus]
                 for r in grouped.get((test_corpus,), {}).values()
                 if train_corpus in r.get("corpus_weights", {})]
      if test_corpus == train_corpus or not weights:
        row.append("-")
        continue
      cell = report.compare(weights)
      means.append(cell.mean)
      row.append(cell)
    # The average over the testing corpora is one number (the paper's Avg column).
    row.append(_two_digits(float(np.mean(means))) if means else "-")
    rows.append(row)
  return header, rows


def _two_digits(x: float) -> str:
  text = f"{x:.2f}"
  return text[1:] if text.startswith("0.") else text


def train_ua_spread(runs: Sequence[dict], corpora: Sequence[str] = CORPORA):
  """(header, rows): std over the training corpora of their final training UAs (%), per holdout."""
  grouped = _by([r for r in runs if r.get("mode") == "out_of_corpus"], "method", "holdout")
  methods = [m for m in ROW_ORDER if any(k[0] == m for k in grouped)]
  header = ["Method"] + list(corpora)
  rows = []
  for method in methods:
    row = [cww_experiments.LABELS.get(method, method)]
    for corpus in corpora:
      spreads = [100.0 * float(np.std(list(r["final_train_ua"].values())))
                 for r in grouped.get((method, corpus), {}).values() if r.get("final_train_ua")]
      row.append(report.compare(spreads) if spreads else "-")
    rows.append(row)
  return header, rows


def write_report(runs_dir: str, out_dir: str, weights_method: str = "cww") -> Dict[str, str]:
  """Writes the three tables (Markdown and CSV) and returns {table: markdown path}."""
  runs = load_runs(runs_dir)
  if not runs:
    raise FileNotFoundError(f"no CWW results.json under {runs_dir}")
  os.makedirs(out_dir, exist_ok=True)
  written = {}
  for name, (header, rows), title, digits in (
      ("table2", table2(runs), "Table 2: UA (%) on the unseen corpus (mean ± std over seeds; "
       "within-single-corpus: each seed's mean over its folds)", 1),
      ("table3", table3(runs, weights_method),
       f"Table 3: corpus-wise weights of the last epoch ({weights_method})", 2),
      ("train_ua_spread", train_ua_spread(runs),
       "Std (%) over the training corpora of their final training-set UAs", 1)):
    if rows:
      paths = report.write_table(os.path.join(out_dir, name), header, rows, title=title,
                                 digits=digits)
      written[name] = paths[0]
  return written


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--runs_dir", default="runs/table2", help="Root of the CWW run folders.")
  parser.add_argument("--out_dir", default="", help="Where the tables go (default runs_dir/report).")
  parser.add_argument("--weights_method", default="cww", help="Method whose weights Table 3 shows.")
  args = parser.parse_args(argv)
  written = write_report(args.runs_dir, args.out_dir or os.path.join(args.runs_dir, "report"),
                         args.weights_method)
  for path in written.values():
    with open(path) as f:
      print(f.read())


if __name__ == "__main__":
  main()
