"""Tables 1 and 2 of the annotators paper from the runs' results.json files.

    python -m tfser.tasks.annotators.report --table=1 --runs=runs/annotators_table1 --out=runs/table1
    python -m tfser.tasks.annotators.report --table=2 --runs=runs/annotators_table2 --out=runs/table2

Every ``results.json`` under ``--runs`` (any depth) is one run: (training corpus, model,
objective, seed). Cells are mean +- std over seeds with a paired two-sided t-test
(``scipy.stats.ttest_rel``, via ``tfser.core.report``) against the baseline's runs of the same seeds:
``*`` a significant improvement, ``†`` a significant decline (alpha 0.05), as in the paper.

Table 1 (within corpus, the test split): a row per method (Baseline, MT and One-hot with Task 1
and Task 1+2), columns TVD, JSD, activation CCC, valence CCC of the paper's consensus (from the
distribution, section 3.4). A second table holds what section 4 reports beside it: the
individual-annotator CCC (pooled over ratings) and the Task 1 ablation (distribution by the
hard-histogram KDE instead of DiffKDE).

Table 2 (zero-shot, every head): rows (metric, test corpus), columns Baseline, MT-1 (Task 1),
MT-12 (Task 1+2); one table per training corpus.
"""

import argparse
import math
import sys
from typing import Dict, List, Sequence, Tuple

from tfser.core import report
# The tables' rows: the named experiments' (model, objective, title).
from tfser.tasks.annotators.experiments import TABLE1_ROWS
from tfser.tasks.annotators.experiments import TABLE2_COLUMNS

# (metric key, column title, higher is better)
DISTRIBUTION_METRICS = (("tvd", "TVD \u2193", False), ("jsd", "JSD \u2193", False),
                        ("consensus_ccc_act", "Activation CCC \u2191", True),
                        ("consensus_ccc_val", "Valence CCC \u2191", True))
EXTRA_METRICS = (("individual_ccc_act", "Individual act. CCC \u2191", True),
                 ("individual_ccc_val", "Individual val. CCC \u2191", True),
                 ("kde_tvd", "TVD, KDE \u2193", False), ("kde_jsd", "JSD, KDE \u2193", False))
TABLE2_METRICS = (("tvd", "TVD \u2193", False), ("jsd", "JSD \u2193", False),
                  ("consensus_ccc_act", "Act. CCC \u2191", True),
                  ("consensus_ccc_val", "Val. CCC \u2191", True))

RunKey = Tuple[str, str, str]  # (training corpus, model, objective)


def load_runs(root: str) -> Dict[RunKey, Dict[int, dict]]:
  """{(corpus, model, objective): {seed: results}} from every results.json under ``root``.

  Raises ValueError when none is found or two runs claim the same key and seed (naming both).
  """
  if not report.results_files(root):
    raise ValueError(f"no results.json under {root}")
  runs = report.load_task_runs(root, "annotators", lambda r: (
      r["config"]["corpus"], r["config"]["model"], r["config"]["objective"]))
  if not runs:
    raise ValueError(f"no annotators-task results.json under {root}")
  return runs


def _values(by_seed: Dict[int, dict], seeds: Sequence[int], section: Sequence[str],
            metric: str) -> List[float]:
  out = []
  for seed in seeds:
    node = by_seed[seed]
    for key in section:
      node = node.get(key, {}) if isinstance(node, dict) else {}
    value = node.get(metric) if isinstance(node, dict) else None
    out.append(float("nan") if value is None else float(value))
  return out


def _cell(runs, key, baseline_key, section, metric, higher):
  """A Cell over the seeds where ``metric`` exists, tested on the seeds both runs have."""
  by_seed = runs.get(key)
  if not by_seed:
    return "n/a"
  seeds = [s for s, v in zip(sorted(by_seed), _values(by_seed, sorted(by_seed), section, metric))
           if math.isfinite(v)]
  if not seeds:  # the metric does not apply to this model (e.g. individual CCC of the baseline)
    return "n/a"
  base = runs.get(baseline_key) or {}
  paired = [s for s in seeds if s in base
            and math.isfinite(_values(base, [s], section, metric)[0])]
  if key == baseline_key or len(paired) < 2:
    return report.compare(_values(by_seed, seeds, section, metric), higher_is_better=higher)
  return report.compare(_values(by_seed, paired, section, metric),
                        _values(base, paired, section, metric), higher_is_better=higher)


def table1(runs, corpus: str, out_prefix: str, split: str = "test") -> List[str]:
  """Writes ``<out_prefix>.md/.csv`` (Table 1) and ``<out_prefix>_individual.md/.csv``."""
  baseline_key = (corpus, "baseline", "baseline")
  written = []
  for suffix, metrics, title in (
      ("", DISTRIBUTION_METRICS,
       f"Table 1: {corpus} {split} distributions and consensus CCC (mean \u00b1 std over seeds; "
       f"* significant improvement, \u2020 decline vs the baseline, paired t-test, p < 0.05)"),
      ("_individual", EXTRA_METRICS,
       f"{corpus} {split}: individual-annotator CCC and the Task 1 ablation (hard KDE instead "
       "of DiffKDE)")):
    header = ["Model", "Seeds"] + [name for _, name, _ in metrics]
    rows = []
    for model, objective, label in TABLE1_ROWS:
      key = (corpus, model, objective)
      if key not in runs:
        continue
      rows.append([label, str(len(runs[key]))] + [
          _cell(runs, key, baseline_key, [split], metric, higher)
          for metric, _, higher in metrics])
    written += report.write_table(out_prefix + suffix, header, rows, title=title)
  return written


def table2(runs, corpus: str, out_prefix: str) -> List[str]:
  """Writes the zero-shot table of the models trained on ``corpus``."""
  baseline_key = (corpus, "baseline", "baseline")
  tested = sorted({c for key, by_seed in runs.items() if key[0] == corpus
                   for r in by_seed.values() for c in (r.get("zero_shot") or {})})
  if not tested:
    raise ValueError(f"runs trained on {corpus} have no zero-shot results (--zero_shot)")
  # Each corpus's test set as the runs name it (results.json "test_sets", tfser.data.test_sets).
  set_names = {c: test_set["name"] for key, by_seed in runs.items() if key[0] == corpus
               for r in by_seed.values()
               for c, test_set in ((r.get("test_sets") or {}).get("zero_shot") or {}).items()}
  header = ["Metric", "Dataset"] + [label for _, _, label in TABLE2_COLUMNS]
  rows = []
  for metric, name, higher in TABLE2_METRICS:
    for other in tested:
      dataset = f"{other} ({set_names[other]})" if other in set_names else other
      rows.append([name, dataset] + [
          _cell(runs, (corpus, model, objective), baseline_key, ["zero_shot", other], metric,
                higher) for model, objective, _ in TABLE2_COLUMNS])
  title = (f"Table 2: zero-shot cross-corpus results of models trained on {corpus} (every head; "
           "mean \u00b1 std over seeds; * improvement, \u2020 decline vs the baseline, paired "
           "t-test, p < 0.05)")
  return report.write_table(out_prefix, header, rows, title=title)


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  parser.add_argument("--table", choices=("1", "2"), required=True)
  parser.add_argument("--runs", required=True, help="directory holding the runs' results.json")
  parser.add_argument("--out", required=True, help="output prefix (.md and .csv are added)")
  parser.add_argument("--corpus", default="", help="training corpus (default: every one found)")
  parser.add_argument("--split", default="test", help="Table 1's split (test or validation)")
  args = parser.parse_args(argv)
  try:
    runs = load_runs(args.runs)
  except ValueError as e:
    print(f"report_annotators: {e}", file=sys.stderr)
    return 2
  corpora = [args.corpus] if args.corpus else sorted({key[0] for key in runs})
  for corpus in corpora:
    prefix = args.out if len(corpora) == 1 else f"{args.out}_{corpus}"
    try:
      paths = (table1(runs, corpus, prefix, args.split) if args.table == "1"
               else table2(runs, corpus, prefix))
    except ValueError as e:
      print(f"report_annotators: {e}", file=sys.stderr)
      return 2
    for path in paths:
      print(path)
    with open(paths[0]) as f:
      print(f.read())
  return 0


if __name__ == "__main__":
  sys.exit(main())
