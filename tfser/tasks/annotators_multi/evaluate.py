"""Evaluation of an annotators_multi run, and the per-corpus fit that drives its corpus weights.

Every number is the annotators task's (``tfser.tasks.annotators.evaluate.evaluate_dataset``,
section 3.4 of the annotators paper): TVD, JSD and consensus CCC of the predicted distributions,
and for MT / one-hot the annotator-level CCCs.

* ``in_corpus[<corpus>]``: each training corpus's validation and test split, with the
  utterance's own annotators' heads (the namespaced rows of that corpus).
* ``zero_shot[<holdout>]``: the holdout's annotators test set (``tfser.data.test_sets``: POD
  Test1, IEM and MuSE whole), with every head of every training corpus.
* :class:`CorpusFit`: U_d of Eq. 3 on a corpus's training split (or its fixed subset of
  ``--fit_max_utterances``): 1 - mean TVD, or the mean of the
  activation and valence consensus CCCs clipped to [0, 1] (so Eq. 3's (1 - U_d) stays in [0, 1];
  a negative CCC fits as badly as no agreement).
"""

from typing import Any, Dict

import numpy as np

import tfser  # noqa: F401  (Keras flavour before TensorFlow)

from tfser.tasks.annotators.evaluate import evaluate_dataset
from tfser.tasks.annotators.evaluate import make_predict_fn
from tfser.tasks.annotators_multi.config import AnnotatorsMultiConfig
from tfser.tasks.annotators_multi.data import MultiCorpusData


def fit_from_metrics(metrics: Dict[str, float], fit_metric: str) -> float:
  """U_d in [0, 1] from ``evaluate_dataset``'s metrics: 1 - tvd, or the clipped consensus CCC."""
  if fit_metric == "tvd":
    return float(1.0 - metrics["tvd"])
  if fit_metric == "ccc":
    ccc = 0.5 * (metrics["consensus_ccc_act"] + metrics["consensus_ccc_val"])
    return float(np.clip(ccc, 0.0, 1.0)) if np.isfinite(ccc) else float("nan")
  raise ValueError(f"unknown fit metric {fit_metric!r}; choose tvd or ccc")


class CorpusFit:
  """Callable ``() -> {corpus: U_d}`` over the training splits, or their fixed subsets
  (``data.train_eval``; the corpus-weight callback's measure). Upsampling seeds are fixed per
  batch, so a resumed run measures the same fits. ``predict_fn``: the traced prediction of the
  utterances' own heads, shared with :func:`evaluate` (tracing the float64 DiffKDE once per
  run instead of twice)."""

  def __init__(self, task_model, data: MultiCorpusData, config: AnnotatorsMultiConfig):
    self.task_model, self.data, self.config = task_model, data, config
    self._predict = None

  @property
  def predict_fn(self):
    if self._predict is None:
      self._predict = make_predict_fn(self.task_model, self.data.validation.element_spec)
    return self._predict

  def __call__(self) -> Dict[str, float]:
    return {c: fit_from_metrics(evaluate_dataset(
        self.task_model, ds, seed=self.config.seed, predict_fn=self.predict_fn,
        description=f"{c} train"), self.config.fit_metric)
            for c, ds in self.data.train_eval.items()}


def evaluate(task_model, config: AnnotatorsMultiConfig, data: MultiCorpusData, *,
             within_predict_fn=None) -> Dict[str, Any]:
  """{"in_corpus": {corpus: {"validation": ..., "test": ...}}, "zero_shot": {holdout: ...}}.

  within_predict_fn: ``make_predict_fn`` of the own heads to reuse (``CorpusFit.predict_fn``).
  """
  kwargs = dict(seed=config.seed, per_annotator_min_ratings=config.per_annotator_min_ratings)
  within = within_predict_fn or make_predict_fn(task_model, data.validation.element_spec)
  in_corpus = {}
  for corpus in data.corpora:
    in_corpus[corpus] = {
        split: evaluate_dataset(task_model, ds, predict_fn=within,
                                description=f"{corpus} {split}", **kwargs)
        for split, ds in (("validation", data.validation_by_corpus[corpus]),
                          ("test", data.test[corpus]))}
  every_head = make_predict_fn(task_model, data.holdout.element_spec, all_heads=True)
  zero_shot = {config.holdout: evaluate_dataset(
      task_model, data.holdout, all_heads=True, predict_fn=every_head,
      description=f"holdout {config.holdout}", **kwargs)}
  return {"in_corpus": in_corpus, "zero_shot": zero_shot}
