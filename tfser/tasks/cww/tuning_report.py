"""A tuning sweep's results: TensorBoard's HParams dashboard, the trials table, the tuned file.

* HParams (``tensorboard.plugins.hparams.api``): ``<sweep>/tensorboard/`` holds the experiment's
  ``hparams_config`` (the method's hyper-parameters with their grid or range, metrics ``val_ua``
  and ``holdout_ua``); ``<sweep>/tensorboard/<trial>/`` the trial's ``hparams`` summary and the
  two metrics as scalars (``tensorboard --logdir <sweep>/tensorboard``, tab HPARAMS).
* ``<sweep>/trials.md`` and ``trials.csv``: one row per trial, best validation UA first.
* ``<sweep>/best.json`` and ``<tuned_dir>/cww/<method>.json`` (``tfser.tasks.cww.tuned``).
"""

import csv
import io
import os
from typing import Dict, List, Sequence

import tfser  # noqa: F401  (Keras flavour before TensorFlow)
import tensorflow as tf
from tensorboard.plugins.hparams import api as hparams_api

from tfser.core import flags as config_flags
from tfser.core import report
from tfser.core import run as run_files
from tfser.tasks.cww import tuned
from tfser.tasks.cww.config import CwwConfig
from tfser.core import atomic

METRICS = (("val_ua", "Validation UA (mean over training corpora and runs)"),
           ("holdout_ua", "Held-out corpus UA (mean over runs; not used to choose)"))


def _tensorboard_dir(sweep_dir: str) -> str:
  return os.path.join(sweep_dir, "tensorboard")


def _hparam(param, algorithm: str) -> hparams_api.HParam:
  if algorithm == "grid":
    return hparams_api.HParam(param.field, hparams_api.Discrete(sorted(param.values)))
  return hparams_api.HParam(param.field, hparams_api.RealInterval(min(param.values),
                                                                  max(param.values)))


def write_hparams_config(sweep_dir: str, space: Sequence, algorithm: str) -> None:
  """The dashboard's experiment: the hyper-parameters' domains and the two metrics."""
  with tf.summary.create_file_writer(_tensorboard_dir(sweep_dir)).as_default():
    hparams_api.hparams_config(
        hparams=[_hparam(p, algorithm) for p in space],
        metrics=[hparams_api.Metric(tag, display_name=text) for tag, text in METRICS])


def write_trial_hparams(sweep_dir: str, trial_id: str, values: Dict[str, float],
                        metrics: Dict[str, float]) -> None:
  """One trial's hyper-parameter values and metrics (its own run in the dashboard)."""
  with tf.summary.create_file_writer(
      os.path.join(_tensorboard_dir(sweep_dir), str(trial_id))).as_default():
    hparams_api.hparams(dict(values), trial_id=str(trial_id))
    for tag, _ in METRICS:
      tf.summary.scalar(tag, metrics[tag], step=0)


def trial_rows(oracle, space: Sequence) -> List[Dict]:
  """One dict per trial (trial, status, each field's value, val_ua, holdout_ua), completed trials
  by validation UA descending (ties: the earlier trial first), then the others."""
  rows = []
  for trial_id, trial in oracle.trials.items():
    row = {"trial": str(trial_id), "status": str(trial.status)}
    for p in space:
      row[p.field] = trial.hyperparameters.values.get(p.field)
    for tag, _ in METRICS:
      row[tag] = (trial.metrics.get_last_value(tag) if trial.metrics.exists(tag) else None)
    rows.append(row)
  done = [r for r in rows if r["status"] == "COMPLETED" and r["val_ua"] is not None]
  done.sort(key=lambda r: -r["val_ua"])  # stable: trial order among ties
  return done + [r for r in rows if r not in done]


def write_table(sweep_dir: str, rows: Sequence[Dict], space: Sequence) -> List[str]:
  """``trials.md`` (UA in %) and ``trials.csv`` (UA as fractions, full precision)."""
  columns = ["trial", "status", *[p.field for p in space], "val_ua", "holdout_ua"]
  def pct(x):
    return "" if x is None else f"{100 * x:.2f}"
  md_rows = [[r["trial"], r["status"], *[repr(r[p.field]) for p in space], pct(r["val_ua"]),
              pct(r["holdout_ua"])] for r in rows]
  header = ["trial", "status", *[p.field for p in space], "val UA (%)", "holdout UA (%)"]
  md = ("Trials, best validation UA first (the first row is the tuned configuration)\n\n"
        + report.markdown(header, md_rows))
  buffer = io.StringIO()
  writer = csv.writer(buffer)
  writer.writerow(columns)
  for r in rows:
    writer.writerow(["" if r[c] is None else (repr(r[c]) if isinstance(r[c], float) else r[c])
                     for c in columns])
  paths = [os.path.join(sweep_dir, "trials.md"), os.path.join(sweep_dir, "trials.csv")]
  atomic.write_text(paths[0], md)
  atomic.write_text(paths[1], buffer.getvalue())
  return paths


def write_tuned(sweep_dir: str, method: str, best: Dict, space: Sequence, tuning) -> Dict:
  """The best trial as ``best.json`` and as the registry's ``cww/tuned/<method>``; returns it."""
  values = {p.field: float(best[p.field]) for p in space}
  record = {
      "name": f"{tuned.TABLE}/{method}", "method": method, "values": values,
      "flags": tuned.value_flags(values, config_flags.flag_names(CwwConfig)),
      "objective": "val_ua", "best_val_ua": best["val_ua"], "best_holdout_ua": best["holdout_ua"],
      "best_trial": best["trial"], "algorithm": tuning.algorithm,
      "holdouts": list(tuning.holdouts), "seeds": list(tuning.seeds), "sweep_dir": sweep_dir}
  run_files.write_json_atomic(os.path.join(sweep_dir, "best.json"), record)
  record["tuned_file"] = tuned.write(method, record, tuning.tuned_dir or None)
  return record
