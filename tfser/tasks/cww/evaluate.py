"""Per-corpus evaluation of the CWW classifier: predicted labels, UA per corpus, validation UA.

``CorpusValidation`` adds each training corpus's validation UA and their mean (``val_ua_mean``,
the paper's stopping criterion) to the epoch logs; ``corpus_uas`` is the same measurement the
trainer makes after training and Eq. 3's callback makes on the training data.

Order of the CWW callbacks at an epoch end (each adds to the shared ``logs`` dict for the ones
after it; ``tfser.tasks.cww.train``):

  CorpusValidation      -> logs val_ua_<corpus>, val_ua_mean
  CorpusWeightsCallback -> logs train_ua_<corpus>, cww_<corpus>; assigns the Eq. 3 weights
  BestCheckpoint        -> saves the network when val_ua_mean improves
  ResumableEarlyStopping, ResumableReduceLROnPlateau (patience 5 and 2 on val_ua_mean)
  TensorBoard           -> writes all of the above per epoch
  ResumableCheckpoint   -> saves model, optimizer, counters and the callbacks' state
"""

import math
from typing import Callable, Dict, Mapping, Tuple

import numpy as np

import tfser  # noqa: F401  (Keras flavour before TensorFlow)
import tensorflow as tf

from tfser import metrics as tfser_metrics


def predict_labels(predict_fn: Callable, dataset: tf.data.Dataset) -> Tuple[np.ndarray, np.ndarray]:
  """Runs ``predict_fn(features) -> scores [B, C]`` over a finite dataset of dicts.

  Returns (labels ``[n]`` int, predicted classes ``[n]`` int).
  """
  labels, predictions = [], []
  for batch in dataset:
    scores = predict_fn(batch["features"])
    labels.append(np.asarray(batch["label"]).reshape(-1))
    predictions.append(np.argmax(np.asarray(scores), axis=-1))
  if not labels:
    return np.zeros([0], np.int64), np.zeros([0], np.int64)
  return np.concatenate(labels).astype(np.int64), np.concatenate(predictions).astype(np.int64)


def unweighted_accuracy(labels: np.ndarray, predictions: np.ndarray, num_classes: int = 4) -> float:
  """UA via tfser.metrics (classes absent from labels are left out); NaN for no labels at all."""
  if len(labels) == 0:
    return math.nan
  return float(tfser_metrics.unweighted_accuracy(labels, predictions, num_classes))


def corpus_uas(predict_fn: Callable, datasets: Mapping[str, tf.data.Dataset],
               num_classes: int = 4) -> Dict[str, float]:
  """UA of each corpus's dataset: {corpus: UA} (NaN where a dataset is empty)."""
  return {c: unweighted_accuracy(*predict_labels(predict_fn, ds), num_classes)
          for c, ds in datasets.items()}


def _finite_mean(values) -> float:
  values = [v for v in values if v is not None and math.isfinite(v)]
  return float(np.mean(values)) if values else math.nan


class CorpusValidation(tf.keras.callbacks.Callback):
  """Adds each training corpus's validation UA and their mean (``val_ua_mean``) to the logs."""

  def __init__(self, predict_fn: Callable, datasets: Mapping[str, tf.data.Dataset],
               num_classes: int = 4):
    super().__init__()
    self.predict_fn = predict_fn
    self.datasets = dict(datasets)
    self.num_classes = num_classes

  def on_epoch_end(self, epoch, logs=None):
    logs = logs if logs is not None else {}
    uas = corpus_uas(self.predict_fn, self.datasets, self.num_classes)
    for corpus, ua in uas.items():
      logs[f"val_ua_{corpus}"] = ua
    logs["val_ua_mean"] = _finite_mean(uas.values())




