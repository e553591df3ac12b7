"""One report for the whole project: every task's tables and a joint figure from one runs dir.

    python -m tfser.tasks.report --runs_dir=runs --out_dir=runs/report

Reads every ``results.json`` under ``--runs_dir`` (any depth; each names its ``task``) and, for
each task found, writes its paper-style tables through the task's own report module (Markdown +
CSV, mean +- std over seeds with the paired-t-test marks of ``tfser.core.report``) under
``<out_dir>/<task>/``:

* cww: Table 2 (UA on the unseen corpus), Table 3 (corpus weights), the training-UA spread.
* annotators: Table 1 per training corpus (test split) and, where runs have zero-shot results,
  Table 2.
* annotators_multi: the zero-shot and in-corpus tables per holdout.

``<out_dir>/figure.png``: one panel per task, the first metric column of its main table (CWW:
the holdout UA per method and holdout; annotators: test TVD per model; annotators_multi:
zero-shot TVD per training setting and model) as bars of mean +- std with the marks, read back
from the CSVs just written. Exit status 2 when no task's run is found.
"""

import argparse
import csv
import glob
import json
import os
import sys
from typing import Dict, List, Optional, Tuple
from tfser.core import atomic

FIGURE_COLUMNS = {"cww": None, "annotators": "TVD", "annotators_multi": "TVD"}


def tasks_found(runs_dir: str) -> List[str]:
  """The tasks with at least one results.json under runs_dir (unreadable files skipped)."""
  found = set()
  for path in glob.glob(os.path.join(runs_dir, "**", "results.json"), recursive=True):
    try:
      with open(path) as f:
        found.add(json.load(f).get("task"))
    except (OSError, ValueError):
      continue
  return sorted(t for t in found if t)


def _annotators_tables(runs_dir: str, out_dir: str) -> Dict[str, str]:
  from tfser.tasks.annotators import report as annotators_report  # pylint: disable=g-import-not-at-top
  runs = annotators_report.load_runs(runs_dir)
  written = {}
  for corpus in sorted({key[0] for key in runs}):
    written[f"table1_{corpus}"] = annotators_report.table1(
        runs, corpus, os.path.join(out_dir, f"table1_{corpus}"))[0]
    if any(r.get("zero_shot") for key, s in runs.items() if key[0] == corpus
           for r in s.values()):
      written[f"table2_{corpus}"] = annotators_report.table2(
          runs, corpus, os.path.join(out_dir, f"table2_{corpus}"))[0]
  return written


def write_task_tables(task: str, runs_dir: str, out_dir: str,
                      baseline_corpus: Optional[str] = None) -> Dict[str, str]:
  """The task's tables under out_dir; {table: markdown path}. baseline_corpus: annotators_multi's
  single-corpus baseline of the t-tests (default: the first single-corpus setting found)."""
  if task == "cww":
    from tfser.tasks.cww import report as cww_report  # pylint: disable=g-import-not-at-top
    return cww_report.write_report(runs_dir, out_dir)
  if task == "annotators":
    return _annotators_tables(runs_dir, out_dir)
  if task == "annotators_multi":
    from tfser.tasks.annotators_multi import report as multi_report  # pylint: disable=g-import-not-at-top
    return multi_report.write_report(runs_dir, out_dir, baseline_corpus)
  raise ValueError(f"unknown task {task!r} in the runs")


def _bars(csv_path: str, column) -> List[Tuple[str, float, float, str]]:
  """(label, mean, std, mark) of one column of a core.report long-format CSV (None: first)."""
  with open(csv_path, newline="") as f:
    rows = list(csv.DictReader(f))
  if not rows:
    return []
  column = column or rows[0]["column"]
  labels = [k for k in rows[0]
            if k not in ("column", "mean", "std", "n", "p_value", "mark", "Seeds")]
  return [(" / ".join(r[k] for k in labels), float(r["mean"]), float(r["std"]), r["mark"])
          for r in rows if r["column"] == column and r["n"] != "0"]


def write_figure(tables: Dict[str, Dict[str, str]], path: str) -> str:
  """One panel per task: the first table's figure column as bars (mean +- std, marks)."""
  import matplotlib  # pylint: disable=g-import-not-at-top
  matplotlib.use("Agg")
  from matplotlib import pyplot as plt  # pylint: disable=g-import-not-at-top
  panels = [(task, next(iter(written.values()))) for task, written in tables.items() if written]
  fig, axes = plt.subplots(1, len(panels), figsize=(6 * len(panels), 4.5), squeeze=False)
  for ax, (task, markdown_path) in zip(axes[0], panels):
    column = FIGURE_COLUMNS.get(task)
    bars = _bars(os.path.splitext(markdown_path)[0] + ".csv", column)
    ax.bar(range(len(bars)), [b[1] for b in bars], yerr=[b[2] for b in bars], capsize=3)
    for i, (_, mean, std, mark) in enumerate(bars):
      if mark:
        ax.text(i, mean + std, mark, ha="center", va="bottom")
    ax.set_xticks(range(len(bars)))
    ax.set_xticklabels([b[0] for b in bars], rotation=60, ha="right", fontsize=7)
    ax.set_title(f"{task}: {os.path.basename(os.path.splitext(markdown_path)[0])}"
                 f" ({column or 'first column'})", fontsize=9)
  fig.tight_layout()
  with atomic.replacing(path, suffix=".png") as tmp:
    fig.savefig(tmp, dpi=120)
  plt.close(fig)
  return path


def write_project_report(runs_dir: str, out_dir: str,
                         baseline_corpus: Optional[str] = None) -> Dict[str, Dict[str, str]]:
  """Every task's tables under ``<out_dir>/<task>/`` and ``<out_dir>/figure.png``; returns
  {task: {table: markdown path}} plus {"figure": {"png": path}}. FileNotFoundError if no run.
  baseline_corpus: as :func:`write_task_tables`."""
  tasks = tasks_found(runs_dir)
  if not tasks:
    raise FileNotFoundError(f"no results.json of any task under {runs_dir}")
  tables = {task: write_task_tables(task, runs_dir, os.path.join(out_dir, task),
                                    baseline_corpus)
            for task in tasks}
  tables["figure"] = {"png": write_figure(tables, os.path.join(out_dir, "figure.png"))}
  return tables


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  parser.add_argument("--runs_dir", required=True, help="directory holding any tasks' runs")
  parser.add_argument("--out_dir", default="", help="default: <runs_dir>/report")
  parser.add_argument("--baseline_corpus", default="",
                      help="annotators_multi: the single-corpus runs' corpus the paired t-tests "
                      "compare with (default: the first found)")
  args = parser.parse_args(argv)
  try:
    written = write_project_report(args.runs_dir,
                                   args.out_dir or os.path.join(args.runs_dir, "report"),
                                   args.baseline_corpus or None)
  except (ValueError, FileNotFoundError) as e:
    print(f"tfser.tasks.report: {e}", file=sys.stderr)
    return 2
  for task, paths in written.items():
    for path in paths.values():
      print(f"{task}: {path}")
  return 0


if __name__ == "__main__":
  sys.exit(main())
