"""Evaluation of the annotators paper (section 3.4) over a whole split.

For one dataset (a split of the training corpus, or another corpus's test set zero-shot,
``tfser.data.test_sets``) it returns:

* ``tvd``, ``jsd``: mean total variation distance and Jensen-Shannon divergence (natural log)
  between the predicted and the ground-truth 4x4 distributions. Predicted distribution: the
  baseline's softmax; MT / one-hot: float64 DiffKDE of the utterance's own annotators'
  predictions (within corpus), or of every head (``all_heads=True``, zero-shot).
* ``consensus_ccc_act``, ``consensus_ccc_val``: CCC of the paper's consensus (the distribution's
  marginals times [-1, -0.5, 0.5, 1]) against the consensus labels; the same for every model,
  the numbers of Tables 1 and 2.
* MT / one-hot also: ``mean_own_ccc_*`` (consensus = mean prediction of the utterance's own
  annotators), ``mean_all_ccc_*`` (mean of all heads; what zero-shot can use),
  ``individual_ccc_*`` (CCC over every (utterance, annotator) rating pooled, as Task 1 computes
  it; section 4.1's annotator-specific numbers) and ``per_annotator_ccc_*_mean`` (each annotator's
  own CCC, averaged over annotators with at least ``per_annotator_min_ratings`` ratings, with the
  count in ``per_annotator_count``). Within corpus only: a zero-shot corpus's annotators have no
  heads.
* ``kde_tvd``, ``kde_jsd`` (MT / one-hot, with ``hard_kde``): the ablation of 4.2, the
  distribution built as Zhang et al. build the ground truth (hard histogram, 512 grid, float64)
  from the predictions instead of DiffKDE.

Upsampling seeds are fixed per batch (``[seed, batch index]``), so an evaluation is repeatable.
"""

import collections
from typing import Any, Dict, Optional

import numpy as np

import tfser  # noqa: F401  (Keras flavour before TensorFlow)
import tensorflow as tf

from tfser import metrics as metrics_lib
from tfser.layers.diffkde import DiffKDE
from tfser.metrics import consensus_from_distribution
from tfser.tasks.annotators.config import AnnotatorsConfig
from tfser.tasks.annotators.data import AnnotatorData
from tfser.tasks.annotators.model import AnnotatorTaskModel


def _ccc(x, y) -> float:
  return float(metrics_lib.concordance_correlation_coefficient(
      np.asarray(x, np.float64), np.asarray(y, np.float64)))


def per_annotator_ccc(annotator_ids, truth, predictions):
  """Each annotator's own CCC (population moments, 0 for 0/0), vectorised with bincount.

  Args: flat ``[n]`` arrays of annotator ids, true ratings and predictions.
  Returns: (ccc ``[annotators]``, rating count ``[annotators]``) over the distinct ids, sorted.
  """
  _, group = np.unique(annotator_ids, return_inverse=True)
  x = np.asarray(truth, np.float64)
  y = np.asarray(predictions, np.float64)
  n = np.bincount(group).astype(np.float64)
  mean_x = np.bincount(group, x) / n
  mean_y = np.bincount(group, y) / n
  dx, dy = x - mean_x[group], y - mean_y[group]
  var_x = np.bincount(group, dx * dx) / n
  var_y = np.bincount(group, dy * dy) / n
  cov = np.bincount(group, dx * dy) / n
  ccc = metrics_lib.ccc_from_moments(*(tf.constant(v, tf.float64)
                                        for v in (mean_x, mean_y, var_x, var_y, cov)))
  return ccc.numpy(), n.astype(np.int64)


def make_predict_fn(task_model: AnnotatorTaskModel, element_spec, *, all_heads: bool = False,
                    hard_kde: Optional[DiffKDE] = None):
  """A tf.function (one trace for every batch shape) from a batch and a seed [2] to the arrays
  :func:`evaluate_dataset` needs. element_spec: the dataset's ``element_spec``."""
  is_baseline = task_model.objective == "baseline"
  network = task_model.network
  spec = {k: tf.TensorSpec([None] * len(v.shape), v.dtype) for k, v in element_spec.items()
          if v.dtype != tf.string}

  @tf.function(input_signature=[spec, tf.TensorSpec([2], tf.int64)])
  def predict(batch, batch_seed):
    out = {"distribution": tf.cast(task_model.predicted_distribution(
        batch, seed=batch_seed, all_heads=all_heads), tf.float64)}
    if not is_baseline:
      out["mean_all"] = network.mean_of_all_annotators(batch["features"])
    if not is_baseline and not all_heads:
      # Zero-shot batches carry another corpus's annotator ids: no heads for them.
      out["annotator_predictions"] = task_model.annotator_predictions(batch)
      if hard_kde is not None:
        out["kde_distribution"] = tf.cast(hard_kde(
            tf.cast(out["annotator_predictions"], tf.float64), mask=batch["rating_mask"],
            seed=batch_seed), tf.float64)
    return out
  return predict


def evaluate_dataset(task_model: AnnotatorTaskModel, dataset: tf.data.Dataset, *,
                     all_heads: bool = False, seed: int = 0,
                     hard_kde: Optional[DiffKDE] = None,
                     per_annotator_min_ratings: int = 5,
                     description: str = "dataset", predict_fn=None) -> Dict[str, float]:
  """Every metric of section 3.4 over ``dataset`` (see the module docstring).

  predict_fn: from :func:`make_predict_fn` with the same all_heads / hard_kde (reuse it across
  datasets to trace once); None makes one.
  Raises ValueError naming ``description`` when the dataset yields no utterance.
  """
  bins = task_model.out_bins
  is_baseline = task_model.objective == "baseline"
  predict = predict_fn or make_predict_fn(task_model, dataset.element_spec,
                                          all_heads=all_heads, hard_kde=hard_kde)

  columns = collections.defaultdict(list)
  for index, batch in enumerate(dataset):
    batch = {k: v for k, v in batch.items() if v.dtype != tf.string}
    out = predict(batch, tf.constant([seed, index], tf.int64))
    for key, value in out.items():
      columns[key].append(value.numpy())
    for key in ("ground_truth", "consensus", "rating_mask", "ratings", "annotator_ids"):
      columns["true_" + key].append(batch[key].numpy())
  if not columns:
    raise ValueError(f"{description}: no utterances to evaluate (an empty split, or no utterance "
                     "with at least min_ratings activation/valence ratings)")

  def cat(key):
    return np.concatenate(columns[key], axis=0)

  def pad_cat(key):
    """Concatenates [batch, annotators, ...] arrays whose annotator axis differs per batch."""
    width = max(a.shape[1] for a in columns[key])
    padded = [np.pad(a, [(0, 0), (0, width - a.shape[1])] + [(0, 0)] * (a.ndim - 2))
              for a in columns[key]]
    return np.concatenate(padded, axis=0)

  truth = cat("true_ground_truth").astype(np.float64)
  consensus_true = cat("true_consensus").astype(np.float64)
  distribution = cat("distribution")
  results = {"utterances": int(truth.shape[0])}
  results["tvd"] = float(np.mean(metrics_lib.total_variation_distance(truth, distribution)))
  results["jsd"] = float(np.mean(metrics_lib.jensen_shannon_divergence(truth, distribution)))
  consensus = consensus_from_distribution(distribution, bins).numpy()
  for d, name in enumerate(("act", "val")):
    results[f"consensus_ccc_{name}"] = _ccc(consensus_true[:, d], consensus[:, d])
  if is_baseline:
    return results

  mean_all = cat("mean_all")
  for d, name in enumerate(("act", "val")):
    results[f"mean_all_ccc_{name}"] = _ccc(consensus_true[:, d], mean_all[:, d])
  if "kde_distribution" in columns:
    kde = cat("kde_distribution")
    results["kde_tvd"] = float(np.mean(metrics_lib.total_variation_distance(truth, kde)))
    results["kde_jsd"] = float(np.mean(metrics_lib.jensen_shannon_divergence(truth, kde)))
  if all_heads:
    return results

  predictions = pad_cat("annotator_predictions").astype(np.float64)
  ratings = pad_cat("true_ratings").astype(np.float64)
  mask = pad_cat("true_rating_mask").astype(bool)
  ids = pad_cat("true_annotator_ids")
  count = np.maximum(mask.sum(axis=1), 1)[:, None]
  mean_own = (predictions * mask[..., None]).sum(axis=1) / count
  for d, name in enumerate(("act", "val")):
    results[f"mean_own_ccc_{name}"] = _ccc(consensus_true[:, d], mean_own[:, d])
    results[f"individual_ccc_{name}"] = _ccc(ratings[..., d][mask], predictions[..., d][mask])
  flat_ids = ids[mask]
  for d, name in enumerate(("act", "val")):
    values, counts = per_annotator_ccc(flat_ids, ratings[..., d][mask], predictions[..., d][mask])
    enough = counts >= per_annotator_min_ratings
    results[f"per_annotator_ccc_{name}_mean"] = (
        float(np.mean(values[enough])) if enough.any() else float("nan"))
    results["per_annotator_count"] = int(enough.sum())
  return results


def evaluate(task_model: AnnotatorTaskModel, config: AnnotatorsConfig,
             data: AnnotatorData) -> Dict[str, Any]:
  """Validation, test and zero-shot metrics (``tfser.tasks.annotators.evaluate``)."""
  hard_kde = None
  # Section 4.2's ablation concerns Task 1 alone (no distribution seen in training).
  if config.objective == "task1" and config.hard_kde_grid_size:
    hard_kde = DiffKDE(grid_size=config.hard_kde_grid_size, out_bins=config.out_bins,
                       samples=config.diffkde_samples, histogram="hard", dtype="float64",
                       seed=config.seed, name="kde_hard")
  kwargs = dict(seed=config.seed, per_annotator_min_ratings=config.per_annotator_min_ratings)
  # One traced prediction function per kind of evaluation, shared by the datasets.
  within = make_predict_fn(task_model, data.validation.element_spec, hard_kde=hard_kde)
  results = {}
  for split, dataset in (("validation", data.validation), ("test", data.test)):
    results[split] = evaluate_dataset(task_model, dataset, hard_kde=hard_kde, predict_fn=within,
                                      description=f"{config.corpus} {split}", **kwargs)
  results["zero_shot"] = {}
  if data.zero_shot:
    first = next(iter(data.zero_shot.values()))
    every_head = make_predict_fn(task_model, first.element_spec, all_heads=True)
    for corpus, dataset in data.zero_shot.items():
      results["zero_shot"][corpus] = evaluate_dataset(
          task_model, dataset, all_heads=True, predict_fn=every_head,
          description=f"zero-shot corpus {corpus}", **kwargs)
  return results
