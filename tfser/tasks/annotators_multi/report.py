"""The annotators_multi comparison from the runs' results.json files.

    python -m tfser.tasks.annotators_multi.report --runs_dir=runs/annotators_multi --out_dir=...

Every ``results.json`` with ``task == "annotators_multi"`` under ``--runs_dir`` is one run:
(holdout, training setting, model, objective, seed). The training setting is ``single: <corpus>``
(one training corpus, the annotators paper's), ``merged`` (every corpus merged into one shuffled
stream, no weights), ``equal weights`` (one minibatch per corpus per step, every weight 1; also
runs recorded with the former ``--weighting=none``, which was this) or ``weighted`` /
``weighted (ccc)`` (CWW Eq. 3 from 1 - TVD / the consensus CCC). Cells are mean +-
std over seeds with a paired two-sided t-test (``tfser.core.report``) against the single-corpus
runs of the same holdout, model and objective on the same seeds (the baseline corpus: the first
single-corpus training corpus found, or ``--baseline_corpus``): ``*`` significantly better,
``†`` worse (alpha 0.05).

Tables per holdout: ``zero_shot_<holdout>`` (TVD, JSD, activation / valence consensus CCC of the
holdout, every head) and ``in_corpus_<holdout>`` (the same on each training corpus's test split,
for the settings that trained on it).
"""

import argparse
import math
import os
import sys
from typing import Dict, Optional, Tuple

from tfser.core import report
from tfser.tasks.annotators.experiments import TABLE2_COLUMNS

METRICS = (("tvd", "TVD", False), ("jsd", "JSD", False),
           ("consensus_ccc_act", "CCC act", True), ("consensus_ccc_val", "CCC val", True))
RunKey = Tuple[str, str, str, str]  # (holdout, setting, model, objective)


def setting_of(results: dict) -> str:
  """``single: <corpus>``, ``merged``, ``equal weights``, ``weighted`` or ``weighted (ccc)``."""
  corpora = results["training_corpora"]
  if len(corpora) == 1:
    return f"single: {corpora[0]}"
  if results["weighting"] == "merged":
    return "merged"
  if results["weighting"] in ("equal", "none"):  # "none": the zipped stream, weights 1
    return "equal weights"
  return "weighted" if results["fit_metric"] == "tvd" else f"weighted ({results['fit_metric']})"


def load_runs(root: str) -> Dict[RunKey, Dict[int, dict]]:
  """{(holdout, setting, model, objective): {seed: results}} under ``root`` (any depth); empty
  when none. ValueError names both files when two runs claim the same key and seed."""
  return report.load_task_runs(root, "annotators_multi", lambda r: (
      r["holdout"], setting_of(r), r["model"], r["objective"]))


def _value(results: dict, section: Tuple[str, ...], metric: str) -> float:
  node = results
  for key in section:
    node = node.get(key) or {} if isinstance(node, dict) else {}
  value = node.get(metric) if isinstance(node, dict) else None
  return math.nan if value is None else float(value)


def _cell(by_seed, baseline, section, metric, higher):
  seeds = [s for s in sorted(by_seed) if math.isfinite(_value(by_seed[s], section, metric))]
  if not seeds:
    return "n/a"
  values = [_value(by_seed[s], section, metric) for s in seeds]
  paired = [s for s in seeds if baseline and s in baseline
            and math.isfinite(_value(baseline[s], section, metric))]
  if baseline is None or baseline is by_seed or len(paired) < 2:
    return report.compare(values, higher_is_better=higher)
  return report.compare([_value(by_seed[s], section, metric) for s in paired],
                        [_value(baseline[s], section, metric) for s in paired],
                        higher_is_better=higher)


def _settings(runs, holdout):
  found = {key[1] for key in runs if key[0] == holdout}
  order = {"merged": 1, "equal weights": 2, "weighted": 3}
  return sorted(found, key=lambda s: (order.get(s, 4 if s.startswith("weighted") else 0), s))


def write_report(runs_dir: str, out_dir: str,
                 baseline_corpus: Optional[str] = None) -> Dict[str, str]:
  """Writes the tables (Markdown and CSV) under out_dir; returns {table: markdown path}.
  FileNotFoundError when runs_dir holds no annotators_multi run."""
  runs = load_runs(runs_dir)
  if not runs:
    raise FileNotFoundError(f"no annotators_multi results.json under {runs_dir}")
  written = {}
  for holdout in sorted({key[0] for key in runs}):
    settings = _settings(runs, holdout)
    singles = [s for s in settings if s.startswith("single: ")]
    base_setting = (f"single: {baseline_corpus}" if baseline_corpus
                    else (singles[0] if singles else None))
    rows, in_rows = [], []
    for setting in settings:
      for model, objective, label in TABLE2_COLUMNS:
        by_seed = runs.get((holdout, setting, model, objective))
        if not by_seed:
          continue
        baseline = runs.get((holdout, base_setting, model, objective))
        rows.append([setting, label, str(len(by_seed))] + [
            _cell(by_seed, baseline, ("zero_shot", holdout), metric, higher)
            for metric, _, higher in METRICS])
        trained = sorted({c for r in by_seed.values() for c in r["in_corpus"]})
        for corpus in trained:
          in_rows.append([setting, label, corpus] + [
              _cell(by_seed, baseline, ("in_corpus", corpus, "test"), metric, higher)
              for metric, _, higher in METRICS])
    names = [name for _, name, _ in METRICS]
    mark = (f"paired t-test vs {base_setting}, p < 0.05" if base_setting
            else "no single-corpus runs: no test")
    for name, header, table_rows, title in (
        (f"zero_shot_{holdout}", ["Training", "Model", "Seeds"] + names, rows,
         f"annotators_multi: zero-shot on {holdout} (every head; mean \u00b1 std over seeds; "
         f"* better, \u2020 worse, {mark})"),
        (f"in_corpus_{holdout}", ["Training", "Model", "Test corpus"] + names, in_rows,
         f"annotators_multi (holdout {holdout}): each training corpus's test split ({mark})")):
      if table_rows:
        written[name] = report.write_table(os.path.join(out_dir, name), header, table_rows,
                                           title=title)[0]
  return written


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  parser.add_argument("--runs_dir", required=True, help="directory holding the runs")
  parser.add_argument("--out_dir", default="", help="default: <runs_dir>/report")
  parser.add_argument("--baseline_corpus", default="", help="single-corpus baseline's corpus")
  args = parser.parse_args(argv)
  try:
    written = write_report(args.runs_dir, args.out_dir or os.path.join(args.runs_dir, "report"),
                           args.baseline_corpus or None)
  except (ValueError, FileNotFoundError) as e:
    print(f"annotators_multi report: {e}", file=sys.stderr)
    return 2
  for path in written.values():
    print(path)
  return 0


if __name__ == "__main__":
  sys.exit(main())
