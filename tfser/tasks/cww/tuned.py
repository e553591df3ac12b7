"""Tuned configurations: a sweep's best values as named experiments ``cww/tuned/<method>``.

``tfser.tasks.cww.tuning`` ends a sweep by writing ``<tuned_dir>/cww/<method>.json``; the
registry (``tfser.tasks.experiments()``) lists each such file as the experiment
``cww/tuned/<method>``: the Table 2 row's ``--method`` plus the tuned values as flags, so

    python -m tfser.launch --experiment=cww/tuned/focal_loss --holdout=IEM

trains that row with its tuned values, and ``launch/cww_table2.sh`` uses ``cww/tuned/<method>``
instead of ``cww/table2/<method>`` for every method that has one (``TUNED=0``: the paper's /
tfser's fixed values). ``tuned_dir`` is ``$TFSER_TUNED_DIR``, else ``tuned`` under the current
directory (like ``runs/``). Pure Python (no TensorFlow): listing experiments stays fast.

File (JSON): ``{"name", "method", "values": {CwwConfig field: value}, "flags": [...],
"objective": "val_ua", "best_val_ua", "best_trial", "algorithm", "holdouts", "seeds",
"sweep_dir"}``.
"""

import glob
import json
import os
from typing import Dict, List, Mapping, Optional, Sequence

from tfser.core.registry import Experiment
from tfser.core import atomic

ENV = "TFSER_TUNED_DIR"
TABLE = "cww/tuned"


def tuned_dir(path: Optional[str] = None) -> str:
  """The directory of tuned configurations: ``path``, else $TFSER_TUNED_DIR, else ./tuned."""
  return os.path.expanduser(path or os.environ.get(ENV) or "tuned")


def path_of(method: str, directory: Optional[str] = None) -> str:
  return os.path.join(tuned_dir(directory), "cww", f"{method}.json")


def value_flags(values: Mapping[str, float], flag_names: Mapping[str, str]) -> List[str]:
  """``--flag=value`` per tuned field (flag_names: {field: "--flag"} where they differ)."""
  return [f"{flag_names.get(field, '--' + field)}={value!r}"
          for field, value in sorted(values.items())]


def write(method: str, record: Dict, directory: Optional[str] = None) -> str:
  """Writes ``record`` (see the module docstring) atomically; returns the file's path."""
  path = path_of(method, directory)
  return atomic.write_json(path, record, indent=2, sort_keys=True)


def read(path: str) -> Dict:
  """A tuned file, checked; ValueError naming the file when it is not one."""
  try:
    with open(path) as f:
      record = json.load(f)
  except json.JSONDecodeError as e:
    raise ValueError(f"{path}: not a tuned configuration (bad JSON: {e})") from None
  missing = [k for k in ("method", "values", "flags") if k not in record]
  if missing:
    raise ValueError(f"{path}: not a tuned configuration (no {', '.join(missing)})")
  return record


def experiments(labels: Mapping[str, str], directory: Optional[str] = None) -> Sequence[Experiment]:
  """``cww/tuned/<method>`` for each tuned file, in ``labels``' (the table's) order.

  labels: {method: Table 2 title}; a file for a method not in it is an error naming the file.
  """
  found = {}
  for path in sorted(glob.glob(os.path.join(tuned_dir(directory), "cww", "*.json"))):
    record = read(path)
    if record["method"] not in labels:
      raise ValueError(f"{path}: unknown method {record['method']!r}")
    found[record["method"]] = Experiment(
        f"{TABLE}/{record['method']}", (f"--method={record['method']}", *record["flags"]),
        f"{labels[record['method']]} (tuned)")
  return tuple(found[m] for m in labels if m in found)
