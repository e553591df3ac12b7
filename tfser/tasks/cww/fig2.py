"""Fig. 2 of the CWW paper: the held-out corpus's UA against lambda_W (Eq. 3) and lambda_L (Eq. 4).

Paper 3.3 and 5: lambda_W was tested over [1, 2, 3, 4, 5] and lambda_L over
[1, 0.1, 0.01, 0.001, 0.0001] (4 and 0.001 best); Fig. 2 plots the UA of each of the four
out-of-corpus systems (one line per holdout) against lambda_W, with the merged-corpora system as
a dashed line. tfser draws both parameters: lambda_W with method ``cww`` and lambda_L with
``cww_pel_al`` (the paper's best system, lambda_W at its default 4); each point is the mean
over the seeds of the holdout UA (%, the paper's reported quantity; the runs choose their epoch
by validation UA as always).

Outputs under ``out_dir``: ``fig2.png`` (two panels), ``fig2_lambda_w.csv`` and
``fig2_lambda_l.csv`` (one row per holdout and value: ``holdout, <param>, ua_mean, ua_std,
n_seeds``, UA in %), ``fig2_merged.csv`` (the dashed lines), and every run under
``runs/<param>/<holdout>/<value>/seed<k>/`` (``merged/<holdout>/seed<k>``); a killed command
started again resumes each run from its checkpoint.

Run: ``python -m tfser.launchers.cww_fig2 --out_dir=runs/fig2`` (demo; ``--data_dir`` for
prepared corpora; ``--helpfull`` for every setting).
"""

import csv
import dataclasses
import io
import os
from typing import Dict, List, Sequence, Tuple

import numpy as np

import tfser  # noqa: F401  (Keras flavour before TensorFlow)

from tfser.core.flags import setting
from tfser.tasks.cww import config as cww_config
from tfser.core import atomic

PARAMETERS = ("lambda_w", "lambda_l")
LABELS = {"lambda_w": r"$\lambda_W$", "lambda_l": r"$\lambda_L$"}


def _floats(values) -> Tuple[float, ...]:
  return tuple(float(v) for v in values)


@dataclasses.dataclass(frozen=True)
class Fig2Config:
  """The sweep of Fig. 2; the launcher (``tfser/launchers/cww_fig2.py``) generates its flags."""
  holdouts: Tuple[str, ...] = setting(cww_config.CORPORA, "Holdouts: one line each.")
  lambda_w_values: Tuple[float, ...] = setting((1.0, 2.0, 3.0, 4.0, 5.0), "lambda_W values "
                                               "(paper 3.3: 1..5); empty: no lambda_W panel.",
                                               flag="fig2_lambda_w", from_flag=_floats)
  lambda_l_values: Tuple[float, ...] = setting((1.0, 0.1, 0.01, 0.001, 0.0001), "lambda_L values "
                                               "(paper 3.3); empty: no lambda_L panel.",
                                               flag="fig2_lambda_l", from_flag=_floats)
  seeds: Tuple[int, ...] = setting((0, 1, 2, 3, 4), "Seeds per point (paper: 5).",
                                   from_flag=lambda v: tuple(int(s) for s in v))
  lambda_w_method: str = setting("cww", "The Table 2 method whose lambda_W varies.",
                                 choices=tuple(cww_config.METHODS))
  lambda_l_method: str = setting("cww_pel_al", "The Table 2 method whose lambda_L varies "
                                 "(needs --pel).", choices=tuple(cww_config.METHODS))
  merged_reference: bool = setting(True, "Also train the merged-corpora system per holdout (the "
                                   "paper's dashed line).")

  def validate(self) -> None:
    unknown = [h for h in self.holdouts if h not in cww_config.CORPORA]
    if unknown or not self.holdouts:
      raise ValueError(f"--holdouts: {', '.join(unknown) or 'none given'}; choose from "
                       f"{', '.join(cww_config.CORPORA)}")
    if not self.seeds:
      raise ValueError("--seeds: give at least one seed")
    if not self.lambda_w_values and not self.lambda_l_values:
      raise ValueError("--fig2_lambda_w and --fig2_lambda_l are both empty: nothing to draw")
    if any(v < 0 for v in self.lambda_w_values + self.lambda_l_values):
      raise ValueError("lambda values must be >= 0")
    if not cww_config.METHODS[self.lambda_w_method].get("cww"):
      raise ValueError(f"--lambda_w_method={self.lambda_w_method} has no corpus-wise weights, "
                       "so lambda_W changes nothing")
    if cww_config.METHODS[self.lambda_l_method].get("pel", "none") == "none":
      raise ValueError(f"--lambda_l_method={self.lambda_l_method} has no pseudo-emotion labels, "
                       "so lambda_L changes nothing")


_PRESET_FIELDS = {k for preset in cww_config.METHODS.values() for k in preset} | {"mode",
                                                                                   "method"}


def method_run(base: cww_config.CwwConfig, method: str, **overrides) -> cww_config.CwwConfig:
  """``base``'s settings under another Table 2 method (its preset fields reset to the method's)."""
  kept = {f.name: getattr(base, f.name) for f in dataclasses.fields(base)
          if f.name not in _PRESET_FIELDS}
  kept.update(overrides)
  return cww_config.method_config(method, **kept)


def _value_dir(value: float) -> str:
  return f"{value:g}"


def _ua(config: cww_config.CwwConfig, source) -> float:
  # Imported here: the launcher defines Fig2Config's flags before TensorFlow is imported.
  from tfser.tasks.cww import train as cww_train  # pylint: disable=g-import-not-at-top
  return 100.0 * cww_train.train(config, source=source)["holdout_ua"]


def run(fig2: Fig2Config, base: cww_config.CwwConfig, out_dir: str, source=None) -> Dict:
  """Trains every point of Fig. 2 and writes the PNG and CSVs; returns {name: rows, paths}.

  base: the runs' other settings (data, epochs, model; its method, holdout, seed and out_dir
  are replaced). source: a ``tfser.tasks.cww.data`` source (None: ``base.data_dir``).
  """
  fig2.validate()
  out_dir = os.path.abspath(out_dir)
  runs = os.path.join(out_dir, "runs")
  curves = {}
  for param, values, method in (("lambda_w", fig2.lambda_w_values, fig2.lambda_w_method),
                                ("lambda_l", fig2.lambda_l_values, fig2.lambda_l_method)):
    rows = []
    for holdout in fig2.holdouts:
      for value in values:
        uas = [_ua(method_run(base, method, **{param: float(value)}, holdout=holdout, seed=seed,
                              export=False, out_dir=os.path.join(
                                  runs, param, holdout, _value_dir(value), f"seed{seed}")),
                   source) for seed in fig2.seeds]
        rows.append({"holdout": holdout, param: float(value), "ua_mean": float(np.mean(uas)),
                     "ua_std": float(np.std(uas)), "n_seeds": len(uas)})
    curves[param] = rows
  merged = []
  if fig2.merged_reference:
    for holdout in fig2.holdouts:
      uas = [_ua(method_run(base, "merged", holdout=holdout, seed=seed, export=False,
                            out_dir=os.path.join(runs, "merged", holdout, f"seed{seed}")), source)
             for seed in fig2.seeds]
      merged.append({"holdout": holdout, "ua_mean": float(np.mean(uas)),
                     "ua_std": float(np.std(uas)), "n_seeds": len(uas)})
  os.makedirs(out_dir, exist_ok=True)
  paths = [write_csv(os.path.join(out_dir, f"fig2_{p}.csv"), rows)
           for p, rows in curves.items() if rows]
  if merged:
    paths.append(write_csv(os.path.join(out_dir, "fig2_merged.csv"), merged))
  paths.append(plot(os.path.join(out_dir, "fig2.png"), curves, merged, fig2))
  return {**curves, "merged": merged, "paths": paths}


def write_csv(path: str, rows: Sequence[Dict]) -> str:
  """rows (dicts with the same keys) as CSV, atomically; returns the path."""
  buffer = io.StringIO()
  writer = csv.DictWriter(buffer, fieldnames=list(rows[0]))
  writer.writeheader()
  writer.writerows(rows)
  return atomic.write_text(path, buffer.getvalue())


def plot(path: str, curves: Dict[str, List[Dict]], merged: Sequence[Dict],
         fig2: Fig2Config) -> str:
  """The figure: one panel per parameter, one line per holdout, merged runs dashed (Agg)."""
  import matplotlib  # pylint: disable=g-import-not-at-top
  matplotlib.use("Agg")
  from matplotlib import pyplot as plt  # pylint: disable=g-import-not-at-top
  panels = [(p, rows) for p, rows in curves.items() if rows]
  fig, axes = plt.subplots(1, len(panels), figsize=(5.5 * len(panels), 4), squeeze=False)
  colours = {h: f"C{i}" for i, h in enumerate(fig2.holdouts)}
  methods = {"lambda_w": fig2.lambda_w_method, "lambda_l": fig2.lambda_l_method}
  for ax, (param, rows) in zip(axes[0], panels):
    for holdout in fig2.holdouts:
      points = sorted((r[param], r["ua_mean"]) for r in rows if r["holdout"] == holdout)
      ax.plot([x for x, _ in points], [y for _, y in points], marker="o",
              color=colours[holdout], label=holdout)
    for m in merged:
      ax.axhline(m["ua_mean"], color=colours[m["holdout"]], linestyle="--", linewidth=1)
    if param == "lambda_l" and min(r[param] for r in rows) > 0:
      ax.set_xscale("log")
    ax.set_xlabel(LABELS[param])
    ax.set_ylabel("UA on the held-out corpus (%)")
    ax.set_title(f"{methods[param]}: UA vs {LABELS[param]}"
                 + (" (dashed: merged corpora)" if merged else ""))
    ax.grid(alpha=0.3)
    ax.legend(title="holdout")
  fig.tight_layout()
  with atomic.replacing(path, suffix=".png") as tmp:
    fig.savefig(tmp, dpi=120)
  plt.close(fig)
  return path
