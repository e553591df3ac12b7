"""Paper-style result tables: mean +- std over seeds, paired t-tests against a baseline.

Both papers report five seeds per method as ``mean +- std`` and mark a statistically significant
change against the baseline (annotators paper: ``*`` improvement, ``†`` decline; paired t-test).
A task's report step collects per-seed values, turns each table cell into a :class:`Cell` with
:func:`compare`, and writes Markdown and CSV with :func:`write_table`.

The std is the sample standard deviation (ddof=1) over seeds; the t-test is
``scipy.stats.ttest_rel`` (two-sided) on seed-paired values, significant at ``alpha``.
"""

import collections
import csv
import dataclasses
import glob
import json
import math
import os
from typing import Callable, Dict, Hashable, List, Optional, Sequence, Union

import numpy as np
from scipy import stats
from tfser.core import atomic

IMPROVED, DECLINED = "*", "\u2020"  # the annotators paper's marks


@dataclasses.dataclass(frozen=True)
class Cell:
  """One table cell: a metric over seeds, with its test against the baseline (if any)."""
  mean: float
  std: float
  n: int
  p_value: Optional[float] = None
  mark: str = ""

  def format(self, digits: int = 3) -> str:
    if self.n == 0:
      return "n/a"
    return f"{_number(self.mean, digits)} \u00b1 {_number(self.std, digits)}{self.mark}"


def _number(x: float, digits: int) -> str:
  if x is None or not math.isfinite(x):
    return "nan"
  text = f"{x:.{digits}f}"
  # The papers print .515, not 0.515.
  return text.replace("0.", ".", 1) if text.startswith(("0.", "-0.")) else text


def compare(values: Sequence[float], baseline: Optional[Sequence[float]] = None, *,
            higher_is_better: bool = True, alpha: float = 0.05) -> Cell:
  """Summarises per-seed ``values`` and tests them against seed-paired ``baseline`` values.

  The mark is IMPROVED ("*") for a significant change in the good direction, DECLINED ("†")
  for a significant change in the bad direction, "" otherwise or without a baseline. Seeds must be
  paired: ``values[i]`` and ``baseline[i]`` come from the same seed.
  """
  x = np.asarray(values, np.float64)
  n = int(x.size)
  if n == 0:
    return Cell(math.nan, math.nan, 0)
  mean = float(x.mean())
  std = float(x.std(ddof=1)) if n > 1 else 0.0
  if baseline is None:
    return Cell(mean, std, n)
  b = np.asarray(baseline, np.float64)
  if b.shape != x.shape:
    raise ValueError(f"paired t-test needs seed-paired values: got {n} values and {b.size} "
                     "baseline values")
  if n < 2:
    return Cell(mean, std, n, None, "")
  with np.errstate(divide="ignore", invalid="ignore"):
    # Identical pairs give p = NaN (no evidence either way): no mark.
    p_value = float(stats.ttest_rel(x, b).pvalue)
  mark = ""
  if math.isfinite(p_value) and p_value < alpha:
    better = mean > b.mean() if higher_is_better else mean < b.mean()
    mark = IMPROVED if better else DECLINED
  return Cell(mean, std, n, p_value, mark)


Entry = Union[str, Cell]


def markdown(header: Sequence[str], rows: Sequence[Sequence[Entry]], digits: int = 3) -> str:
  """A Markdown table; Cells print as ``mean ± std`` plus their mark."""
  def text(entry):
    return entry.format(digits) if isinstance(entry, Cell) else str(entry)
  lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
  lines += ["| " + " | ".join(text(e) for e in row) + " |" for row in rows]
  return "\n".join(lines) + "\n"


def csv_rows(header: Sequence[str], rows: Sequence[Sequence[Entry]]) -> List[List[str]]:
  """Long-format CSV: one line per Cell with its row labels, column, mean, std, n, p, mark."""
  label_columns = [i for i, e in enumerate(rows[0]) if not isinstance(e, Cell)] if rows else []
  out = [[header[i] for i in label_columns] + ["column", "mean", "std", "n", "p_value", "mark"]]
  for row in rows:
    labels = [str(row[i]) for i in label_columns]
    for i, entry in enumerate(row):
      if isinstance(entry, Cell):
        out.append(labels + [header[i], repr(entry.mean), repr(entry.std), str(entry.n),
                             "" if entry.p_value is None else repr(entry.p_value), entry.mark])
  return out


def write_table(path_prefix: str, header: Sequence[str], rows: Sequence[Sequence[Entry]], *,
                title: str = "", digits: int = 3) -> List[str]:
  """Writes ``<path_prefix>.md`` and ``<path_prefix>.csv`` atomically; returns both paths."""
  directory = os.path.dirname(os.path.abspath(path_prefix))
  os.makedirs(directory, exist_ok=True)
  md = (f"{title}\n\n" if title else "") + markdown(header, rows, digits)
  paths = []
  for suffix, write in ((".md", lambda f: f.write(md)),
                        (".csv", lambda f: csv.writer(f).writerows(csv_rows(header, rows)))):
    with atomic.replacing(path_prefix + suffix) as tmp:
      with open(tmp, "w", newline="") as f:
        write(f)
    paths.append(path_prefix + suffix)
  return paths


def results_files(root: str) -> List[str]:
  """Every ``results.json`` under ``root`` (any depth), sorted."""
  return sorted(glob.glob(os.path.join(root, "**", "results.json"), recursive=True))


def load_task_runs(root: str, task: str,
                   key_of: Callable[[dict], Hashable]) -> Dict[Hashable, Dict[int, dict]]:
  """{key_of(results): {seed: results}} of the ``task``'s results.json files under ``root``.

  Files of other tasks are skipped. ValueError names the file that is not JSON, or both files
  when two runs claim the same key and seed.
  """
  runs: Dict[Hashable, Dict[int, dict]] = collections.defaultdict(dict)
  origin = {}
  for path in results_files(root):
    with open(path) as f:
      try:
        results = json.load(f)
      except ValueError as e:
        raise ValueError(f"{path}: not valid JSON: {e}") from None
    if results.get("task") != task:
      continue
    key, seed = key_of(results), int(results["seed"])
    if seed in runs[key]:
      raise ValueError(f"two runs of {key} with seed {seed}: {origin[(key, seed)]} and {path}")
    runs[key][seed] = results
    origin[(key, seed)] = path
  return dict(runs)
