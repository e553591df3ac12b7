"""Evaluation metrics of both papers, as plain functions and as streaming Keras metrics.

* Distribution metrics (annotators paper, 3.4): total variation distance and Jensen-Shannon
  divergence (natural log; zeros replaced by 1e-8 as the authors do) between predicted and
  ground-truth label distributions ``[batch, bins]``.
* Lin's concordance correlation coefficient with population moments, for consensus and
  per-annotator activation/valence.
* Unweighted accuracy (mean per-class recall), the corpus-wise-weights paper's UA.
* The annotators paper's consensus (3.4) of a predicted ``[batch, bins*bins]`` distribution.
"""

from typing import Optional, Sequence

import tfser  # noqa: F401  (Keras flavour before TensorFlow)
import tensorflow as tf

JSD_EPSILON = 1e-8


def total_variation_distance(p, q):
  """0.5 * sum |p - q| over the last axis. p, q: ``[..., bins]`` probabilities. Returns ``[...]``."""
  p = tf.convert_to_tensor(p)
  q = tf.cast(q, p.dtype)
  return 0.5 * tf.reduce_sum(tf.abs(p - q), axis=-1)


def jensen_shannon_divergence(p, q, eps: float = JSD_EPSILON):
  """JSD(p, q) = KL(p||m)/2 + KL(q||m)/2, m = (p + q)/2, natural log, over the last axis.

  Exact zeros in p and q are replaced by ``eps`` first (as the paper's code does, so log(0) never
  occurs); the distributions are not renormalised afterwards. Returns ``[...]`` in nats.
  """
  p = tf.convert_to_tensor(p)
  q = tf.cast(q, p.dtype)
  p = tf.where(p == 0, tf.cast(eps, p.dtype), p)
  q = tf.where(q == 0, tf.cast(eps, q.dtype), q)
  m = 0.5 * (p + q)
  kl_pm = tf.reduce_sum(p * (tf.math.log(p) - tf.math.log(m)), axis=-1)
  kl_qm = tf.reduce_sum(q * (tf.math.log(q) - tf.math.log(m)), axis=-1)
  return 0.5 * (kl_pm + kl_qm)


def _masked_moments(x, y, mask):
  """Count, means, population variances and covariance of x, y over ``mask`` (all axes)."""
  x = tf.convert_to_tensor(x)
  y = tf.cast(y, x.dtype)
  w = tf.ones_like(x) if mask is None else tf.cast(mask, x.dtype)
  # Zero out masked entries first so NaN placeholders there cannot leak into the sums.
  x = tf.where(w > 0, x, tf.zeros_like(x))
  y = tf.where(w > 0, y, tf.zeros_like(y))
  n = tf.reduce_sum(w)
  safe_n = tf.maximum(n, 1.0)
  mean_x = tf.reduce_sum(w * x) / safe_n
  mean_y = tf.reduce_sum(w * y) / safe_n
  dx, dy = (x - mean_x) * w, (y - mean_y) * w
  var_x = tf.reduce_sum(dx * dx) / safe_n
  var_y = tf.reduce_sum(dy * dy) / safe_n
  cov = tf.reduce_sum(dx * dy) / safe_n
  return n, mean_x, mean_y, var_x, var_y, cov


def ccc_from_moments(mean_x, mean_y, var_x, var_y, cov):
  """Lin's CCC from population moments (tensors or arrays, any matching shape); 0 for 0/0."""
  denominator = var_x + var_y + tf.square(mean_x - mean_y)
  # Both series constant and equal: perfect agreement by the formula's limit is undefined; 0/0 is
  # reported as 0 (no evidence of concordance) rather than NaN, so a loss stays finite.
  return tf.math.divide_no_nan(2.0 * cov, denominator)


def concordance_correlation_coefficient(x, y, mask=None):
  """Lin's CCC = 2 cov(x, y) / (var x + var y + (mean x - mean y)^2), population moments.

  x, y: tensors of equal shape (any rank; all entries pooled); mask: same shape, bool/0-1, entries
  to include (None = all). Returns a scalar; 0 when the denominator is 0.
  """
  _, mean_x, mean_y, var_x, var_y, cov = _masked_moments(x, y, mask)
  return ccc_from_moments(mean_x, mean_y, var_x, var_y, cov)


def per_class_recall(labels, predictions, num_classes: int = 4):
  """Recall of each class ``[num_classes]`` and whether the class occurs in labels ``[num_classes]``.

  labels, predictions: int class indices ``[n]``.
  """
  confusion = tf.math.confusion_matrix(tf.reshape(labels, [-1]), tf.reshape(predictions, [-1]),
                                       num_classes=num_classes, dtype=tf.float64)
  support = tf.reduce_sum(confusion, axis=1)
  recall = tf.math.divide_no_nan(tf.linalg.diag_part(confusion), support)
  return recall, support > 0


def unweighted_accuracy(labels, predictions, num_classes: int = 4):
  """Mean per-class recall over the classes present in ``labels`` (UA; NaN-safe).

  A class absent from ``labels`` is left out of the mean rather than counted as recall 0 (a corpus
  lacking a class keeps a meaningful UA); no labels at all gives 0. predictions may be class
  indices ``[n]`` or scores ``[n, num_classes]`` (argmax is taken).
  """
  predictions = tf.convert_to_tensor(predictions)
  if predictions.shape.rank == 2:
    predictions = tf.argmax(predictions, axis=-1)
  recall, present = per_class_recall(labels, predictions, num_classes)
  return tf.math.divide_no_nan(tf.reduce_sum(tf.where(present, recall, 0.0)),
                               tf.reduce_sum(tf.cast(present, tf.float64)))


# ---------------------------------------------------------------------------------------------
# Streaming Keras metrics (what training logs).

@tf.keras.utils.register_keras_serializable(package="tfser")
class ConcordanceCorrelation(tf.keras.metrics.Metric):
  """Streaming CCC over all entries seen: accumulates n, sums, squares and cross products.

  ``update_state(y_true, y_pred, sample_weight=None)``; sample_weight acts as a 0/1 mask (entries
  with NaN in y_true are also skipped, so padded ratings can carry NaN). Accumulates in float64.
  """

  def __init__(self, name: str = "ccc", **kwargs):
    super().__init__(name=name, **kwargs)
    self._sums = self.add_weight(name="sums", shape=[6], initializer="zeros", dtype=tf.float64)

  def update_state(self, y_true, y_pred, sample_weight: Optional[tf.Tensor] = None):
    y_true = tf.cast(y_true, tf.float64)
    y_pred = tf.cast(y_pred, tf.float64)
    w = tf.cast(tf.math.is_finite(y_true) & tf.math.is_finite(y_pred), tf.float64)
    if sample_weight is not None:
      w *= tf.cast(tf.broadcast_to(sample_weight, tf.shape(y_true)), tf.float64)
    x = tf.where(w > 0, y_true, 0.0)
    y = tf.where(w > 0, y_pred, 0.0)
    self._sums.assign_add(tf.stack([
        tf.reduce_sum(w), tf.reduce_sum(w * x), tf.reduce_sum(w * y),
        tf.reduce_sum(w * x * x), tf.reduce_sum(w * y * y), tf.reduce_sum(w * x * y)]))

  def result(self):
    n, sx, sy, sxx, syy, sxy = tf.unstack(self._sums)
    n = tf.maximum(n, 1.0)
    mean_x, mean_y = sx / n, sy / n
    var_x = sxx / n - mean_x * mean_x
    var_y = syy / n - mean_y * mean_y
    cov = sxy / n - mean_x * mean_y
    return tf.cast(ccc_from_moments(mean_x, mean_y, var_x, var_y, cov), self.dtype)

  def reset_state(self):
    self._sums.assign(tf.zeros([6], tf.float64))


@tf.keras.utils.register_keras_serializable(package="tfser")
class UnweightedAccuracy(tf.keras.metrics.Metric):
  """Streaming UA (mean per-class recall over classes seen) from a running confusion matrix.

  ``update_state(y_true, y_pred)``: y_true int labels ``[n]``; y_pred scores ``[n, classes]``
  (argmax taken) or labels ``[n]``.
  """

  def __init__(self, num_classes: int = 4, name: str = "ua", **kwargs):
    super().__init__(name=name, **kwargs)
    self.num_classes = num_classes
    self._confusion = self.add_weight(name="confusion", shape=[num_classes, num_classes],
                                      initializer="zeros", dtype=tf.float64)

  def update_state(self, y_true, y_pred, sample_weight=None):
    y_pred = tf.convert_to_tensor(y_pred)
    if y_pred.shape.rank == 2:
      y_pred = tf.argmax(y_pred, axis=-1)
    y_true = tf.reshape(tf.cast(y_true, tf.int64), [-1])
    weights = None if sample_weight is None else tf.reshape(sample_weight, [-1])
    self._confusion.assign_add(tf.math.confusion_matrix(
        y_true, tf.reshape(tf.cast(y_pred, tf.int64), [-1]), num_classes=self.num_classes,
        weights=weights, dtype=tf.float64))

  def result(self):
    support = tf.reduce_sum(self._confusion, axis=1)
    recall = tf.math.divide_no_nan(tf.linalg.diag_part(self._confusion), support)
    present = tf.cast(support > 0, tf.float64)
    return tf.cast(tf.math.divide_no_nan(tf.reduce_sum(recall * present),
                                         tf.reduce_sum(present)), self.dtype)

  def reset_state(self):
    self._confusion.assign(tf.zeros([self.num_classes, self.num_classes], tf.float64))

  def get_config(self):
    return {**super().get_config(), "num_classes": self.num_classes}


@tf.keras.utils.register_keras_serializable(package="tfser")
class TotalVariationDistance(tf.keras.metrics.MeanMetricWrapper):
  """Mean TVD between target and predicted distributions ``[batch, bins]``."""

  def __init__(self, name: str = "tvd", **kwargs):
    kwargs.pop("fn", None)
    super().__init__(total_variation_distance, name=name, **kwargs)

  def get_config(self):
    return {"name": self.name, "dtype": self.dtype}


@tf.keras.utils.register_keras_serializable(package="tfser")
class JensenShannonDivergence(tf.keras.metrics.MeanMetricWrapper):
  """Mean JSD (nats) between target and predicted distributions ``[batch, bins]``."""

  def __init__(self, name: str = "jsd", **kwargs):
    kwargs.pop("fn", None)
    super().__init__(jensen_shannon_divergence, name=name, **kwargs)

  def get_config(self):
    return {"name": self.name, "dtype": self.dtype}


PAPER_CONSENSUS_WEIGHTS = {4: (-1.0, -0.5, 0.5, 1.0), 2: (-1.0, 1.0)}


def consensus_from_distribution(distribution, bins: int, weights: Optional[Sequence[float]] = None):
  """``[batch, bins*bins]`` (activation on the first axis) -> ``[batch, 2]`` (act, val).

  The paper's consensus (3.4): sum the distribution along each dimension and multiply the
  marginal with ``[-1, -0.5, 0.5, 1]`` (4 bins; tfser uses ``[-1, 1]`` for 2 bins and the bin
  centres for other sizes).
  """
  if weights is None:
    weights = PAPER_CONSENSUS_WEIGHTS.get(
        bins, [-1 + (2 * i + 1) / bins for i in range(bins)])
  grid = tf.reshape(distribution, [-1, bins, bins])
  w = tf.constant(weights, grid.dtype)
  activation = tf.linalg.matvec(tf.reduce_sum(grid, axis=2), w)
  valence = tf.linalg.matvec(tf.reduce_sum(grid, axis=1), w)
  return tf.stack([activation, valence], axis=-1)
