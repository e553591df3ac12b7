"""The corpus-wise-weights paper's equations (Ahn et al.), Eq. 1-4 side by side, and the losses of
the methods it compares against.

Shapes: logits ``[M, C]`` (C = 4 classes), labels int ``[M]``, votes ``[M, C]`` (vote counts or
a distribution; all zero where a corpus has no votes), corpus weights ``[D]``.

* Eq. 1 / Eq. 2: ``corpus_weighted_loss`` = (1/D) sum_d w_d (1/M_d) sum_i alpha_i l_i, with
  alpha from ``class_weights`` (the constant: see Eq. 1 below) and l_i a per-sample loss. With
  all w_d = 1 it is Eq. 1.
* Eq. 3: ``corpus_weights`` (plain numpy, checkable by hand), recomputed at every epoch end by
  ``CorpusWeightsCallback`` (Algorithm 1, line 8) into the variable the train step reads.
* Per-sample losses (``ClassificationLoss``): cross-entropy against targets built by
  ``make_targets`` (one-hot; uniform or unigram label smoothing, Huang et al.; soft labels from
  annotator votes, Steidl et al.), focal loss (Lin et al.), confidence penalty (Pereyra et al.).
* Eq. 4: ``pseudo_emotion_label_loss`` on an unlabelled minibatch, PEL_NL (neutral one-hot) or
  PEL_AL (all-ones vector).
* The unsupervised branch (Neumann and Vu): ``reconstruction_loss``, mean squared error.

The losses compute in float32 whatever the layer policy (mixed precision casts logits up);
Eq. 3 is plain numpy, kept free of Keras so it can be checked by hand. The constants:

* Eq. 1 class weight: alpha_i is inversely proportional to how many samples of sample i's class
  are in the same minibatch. The paper fixes only the proportionality; tfser uses the "balanced"
  constant alpha_i = M / (K * n_{y_i}) (M samples, K classes present in the minibatch), so the
  weights average to 1 over the minibatch and every class present contributes equally.
* Eq. 3 corpus weight: w_d = (1 - U_d)^lambda_W / mean_d (1 - U_d)^lambda_W, U_d the unweighted
  accuracy (UA) of training corpus d on its training data; the weights average to 1 (sum to D).

Degenerate inputs (defined here, documented in the task's results):
* every U_d == 1 (all corpora learnt perfectly): the denominator is 0, all weights are 1.
* a NaN U_d (a corpus with no labelled utterance to score): it is given the mean of the finite
  UAs before Eq. 3, i.e. treated as an average corpus; all NaN: all weights are 1.
A corpus lacking one of the four classes has a finite UA (classes absent from the labels are left
out of the mean recall, see tfser.metrics.unweighted_accuracy), so its weight is finite too.
"""

from typing import Callable, Mapping, Optional, Sequence

import numpy as np

import tfser  # noqa: F401  (Keras flavour before TensorFlow)
import tensorflow as tf

from tfser.core import corpus_weights as corpus_weights_lib
from tfser.tasks.cww import evaluate as cww_evaluate

TARGETS = ("onehot", "uniform", "unigram", "soft")
PEL_KINDS = ("none", "neutral", "all")  # Eq. 4: off, PEL_NL, PEL_AL
NEUTRAL = 0  # tfser.data.schema.CLASS_NAMES[0]


def class_counts(labels: tf.Tensor, num_classes: int = 4) -> tf.Tensor:
  """Count of each class in a minibatch, float32 ``[C]``. labels: int ``[M]``."""
  return tf.reduce_sum(tf.one_hot(labels, num_classes, dtype=tf.float32), axis=0)


def class_weights(labels: tf.Tensor, num_classes: int = 4,
                  counts: Optional[tf.Tensor] = None) -> tf.Tensor:
  """Eq. 1's alpha_i = M / (K n_{y_i}) for one corpus's minibatch. Returns float32 ``[M]``.

  counts: the per-class counts ``[C]`` of the whole minibatch when it is split over replicas
  (all-reduced by the caller); default: counted from ``labels``. M and K follow from counts.
  """
  if counts is None:
    counts = class_counts(labels, num_classes)
  total = tf.reduce_sum(counts)
  present = tf.reduce_sum(tf.cast(counts > 0, tf.float32))
  per_sample_count = tf.gather(counts, labels)
  return tf.math.divide_no_nan(total, present * per_sample_count)


def make_targets(labels: tf.Tensor, *, num_classes: int = 4, target: str = "onehot",
                 smoothing: float = 0.1, prior: Optional[Sequence[float]] = None,
                 votes: Optional[tf.Tensor] = None) -> tf.Tensor:
  """Target distributions ``[M, C]`` (rows sum to 1) for the cross-entropy.

  target: "onehot"; "uniform": (1 - eps) one-hot + eps / C; "unigram": (1 - eps) one-hot +
    eps * prior, prior the class distribution of the training set; "soft": the vote distribution
    (votes normalised per row), one-hot for rows without votes.
  """
  onehot = tf.one_hot(labels, num_classes, dtype=tf.float32)
  if target == "onehot":
    return onehot
  if target == "uniform":
    return (1.0 - smoothing) * onehot + smoothing / num_classes
  if target == "unigram":
    if prior is None:
      raise ValueError("unigram label smoothing needs the training-set class prior")
    p = tf.constant(prior, tf.float32)
    p = p / tf.reduce_sum(p)
    return (1.0 - smoothing) * onehot + smoothing * p[tf.newaxis, :]
  if target == "soft":
    if votes is None:
      raise ValueError("soft labels need the votes")
    votes = tf.cast(votes, tf.float32)
    total = tf.reduce_sum(votes, axis=-1, keepdims=True)
    return tf.where(total > 0, tf.math.divide_no_nan(votes, total), onehot)
  raise ValueError(f"unknown target {target!r}; choose from {TARGETS}")


@tf.keras.utils.register_keras_serializable(package="tfser")
class ClassificationLoss(tf.keras.losses.Loss):
  """Per-sample classification loss ``[M]`` from targets ``[M, C]`` and logits ``[M, C]``.

  l_i = -sum_c t_ic (1 - p_ic)^gamma log p_ic - beta H(p_i)
  gamma = focal_gamma (0: cross-entropy), beta = confidence_penalty (0: none), H the entropy in
  nats. Reduction is NONE: the corpus-wise weighting (Eq. 2) reduces.
  """

  def __init__(self, focal_gamma: float = 0.0, confidence_penalty: float = 0.0,
               name: str = "cww_classification", **kwargs):
    kwargs["reduction"] = tf.keras.losses.Reduction.NONE
    super().__init__(name=name, **kwargs)
    self.focal_gamma = float(focal_gamma)
    self.confidence_penalty = float(confidence_penalty)

  def call(self, y_true, y_pred):
    targets = tf.cast(y_true, tf.float32)
    log_probs = tf.nn.log_softmax(tf.cast(y_pred, tf.float32), axis=-1)
    terms = targets * log_probs
    if self.focal_gamma:
      terms *= tf.pow(1.0 - tf.exp(log_probs), self.focal_gamma)
    loss = -tf.reduce_sum(terms, axis=-1)
    if self.confidence_penalty:
      entropy = -tf.reduce_sum(tf.exp(log_probs) * log_probs, axis=-1)
      loss -= self.confidence_penalty * entropy
    return loss

  def get_config(self):
    return {**super().get_config(), "focal_gamma": self.focal_gamma,
            "confidence_penalty": self.confidence_penalty}


def corpus_term(per_sample_loss: tf.Tensor, alpha: tf.Tensor,
                batch_size: Optional[tf.Tensor] = None) -> tf.Tensor:
  """(1/M) sum_i alpha_i l_i for one corpus. batch_size: the global M (default: local size)."""
  if batch_size is None:
    batch_size = tf.cast(tf.size(per_sample_loss), tf.float32)
  return tf.math.divide_no_nan(tf.reduce_sum(alpha * per_sample_loss), batch_size)


def corpus_weighted_loss(corpus_terms: Sequence[tf.Tensor], corpus_weights: tf.Tensor) -> tf.Tensor:
  """Eq. 2: (1/D) sum_d w_d * corpus_terms[d]. corpus_weights ``[D]`` (ones: Eq. 1)."""
  terms = tf.stack([tf.cast(t, tf.float32) for t in corpus_terms])
  return tf.reduce_mean(tf.cast(corpus_weights, tf.float32) * terms)


def pel_vector(kind: str, num_classes: int = 4) -> tf.Tensor:
  """The pseudo-emotion label vector y-bar of Eq. 4 ``[C]``: PEL_NL or PEL_AL."""
  if kind == "neutral":
    return tf.one_hot(NEUTRAL, num_classes, dtype=tf.float32)
  if kind == "all":
    return tf.ones([num_classes], tf.float32)
  raise ValueError(f"unknown pseudo-emotion label {kind!r}; choose from {PEL_KINDS[1:]}")


def pseudo_emotion_label_loss(logits: tf.Tensor, kind: str, lambda_l: float = 1e-3,
                              batch_size: Optional[tf.Tensor] = None) -> tf.Tensor:
  """Eq. 4: -(lambda_L / M) sum_i y-bar . log F(x_i) over an unlabelled minibatch ``[M, C]``."""
  log_probs = tf.nn.log_softmax(tf.cast(logits, tf.float32), axis=-1)
  y_bar = pel_vector(kind, log_probs.shape[-1])
  if batch_size is None:
    batch_size = tf.cast(tf.shape(log_probs)[0], tf.float32)
  total = -tf.reduce_sum(log_probs * y_bar[tf.newaxis, :])
  return lambda_l * tf.math.divide_no_nan(total, batch_size)


def reconstruction_loss(reconstruction: tf.Tensor, target: tf.Tensor,
                        batch_size: Optional[tf.Tensor] = None) -> tf.Tensor:
  """Mean squared error between reconstructed and (normalised) input features ``[M, F]``.

  Averaged over features, summed over samples and divided by batch_size (the global M).
  """
  err = tf.reduce_mean(tf.square(tf.cast(reconstruction, tf.float32) - tf.cast(target, tf.float32)),
                       axis=-1)
  if batch_size is None:
    batch_size = tf.cast(tf.shape(err)[0], tf.float32)
  return tf.math.divide_no_nan(tf.reduce_sum(err), batch_size)


# Eq. 3 and the callback that recomputes it at every epoch end (Algorithm 1, line 8): the
# metric-agnostic part lives in tfser.core.corpus_weights (shared with annotators_multi).

DEFAULT_LAMBDA_W = corpus_weights_lib.DEFAULT_LAMBDA_W


def corpus_weights(unweighted_accuracies: Sequence[float],
                   lambda_w: float = DEFAULT_LAMBDA_W) -> np.ndarray:
  """Eq. 3 from each training corpus's UA (``tfser.core.corpus_weights.corpus_weights``)."""
  return corpus_weights_lib.corpus_weights(unweighted_accuracies, lambda_w)


class CorpusWeightsCallback(corpus_weights_lib.CorpusWeightsCallback):
  """Algorithm 1, line 8, with U_d the UA of training corpus d's training data (the paper).

  Logs ``train_ua_<corpus>`` and ``cww_<corpus>``; with ``enabled=False`` (plain CE) the UAs are
  still logged, the weights stay 1. See ``tfser.core.corpus_weights.CorpusWeightsCallback``.
  """

  def __init__(self, weights_variable: tf.Variable, predict_fn: Callable,
               datasets: Mapping[str, tf.data.Dataset], corpora: Sequence[str], *,
               lambda_w: float = DEFAULT_LAMBDA_W, enabled: bool = True,
               num_classes: int = 4):
    datasets = dict(datasets)
    super().__init__(
        weights_variable, lambda: cww_evaluate.corpus_uas(predict_fn, datasets, num_classes),
        corpora, lambda_w=lambda_w, enabled=enabled, fit_name="train_ua", weight_name="cww")
