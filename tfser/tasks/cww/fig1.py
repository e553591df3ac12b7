"""Fig. 1 of the CWW paper as a statistical check: CWW makes the training corpora's UAs more equal.

For each seed, trains plain CE and CWW on the same data and measures the spread (standard
deviation over the training corpora) of the final training-set UAs; the claim holds when CWW's
spread is smaller on average over the seeds, and a one-sided paired t-test over the seeds gives
its p-value.

Run on the demo (or --data_dir): ``python -m tfser.launchers.cww_fig1 --seeds=3`` (a few
minutes on 2 cores); ``--synthetic`` uses in-memory corpora of graded difficulty instead.
"""

import dataclasses
import tempfile
from typing import Dict, Sequence

import numpy as np
from scipy import stats

import tfser  # noqa: F401  (Keras flavour before TensorFlow)

from tfser.tasks.cww import train as cww_train
from tfser.tasks.cww.config import CwwConfig


def compare_spread(base: CwwConfig, seeds: Sequence[int], source=None) -> Dict:
  """Trains CE and CWW for each seed; returns spreads, their means and the paired t-test.

  base: every setting except ``cww`` and ``seed`` (out_dir is replaced by temporary folders).
  """
  spreads = {"ce": [], "cww": []}
  uas = {"ce": [], "cww": []}
  for seed in seeds:
    for name, cww in (("ce", False), ("cww", True)):
      config = dataclasses.replace(base, cww=cww, seed=seed, out_dir=tempfile.mkdtemp(),
                                   export=False, method=name)
      results = cww_train.train(config, source=source)
      final = results["final_train_ua"]
      uas[name].append(final)
      spreads[name].append(float(np.std(list(final.values()))))
  ce, cww = np.array(spreads["ce"]), np.array(spreads["cww"])
  p_value = (float(stats.ttest_rel(cww, ce, alternative="less").pvalue)
             if len(seeds) > 1 and np.any(ce != cww) else float("nan"))
  return {"seeds": list(seeds), "spread_ce": ce.tolist(), "spread_cww": cww.tolist(),
          "mean_spread_ce": float(ce.mean()), "mean_spread_cww": float(cww.mean()),
          "p_value_cww_less": p_value, "train_ua": uas}
