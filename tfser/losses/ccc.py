"""Task 1 of the annotators paper: CCC loss on individual annotator predictions (Eq. in 3.3)."""

import tfser  # noqa: F401  (Keras flavour before TensorFlow)
import tensorflow as tf

from tfser.metrics import ConcordanceCorrelation
from tfser.metrics import concordance_correlation_coefficient


def annotator_ccc_loss(ratings, predictions, mask=None):
  """2 - CCC(m_act, act) - CCC(m_val, val) over every valid rating in the batch.

  ratings, predictions: ``[batch, annotators, 2]`` (activation, valence in [-1, 1]); mask:
  ``[batch, annotators]`` bool, the ratings that exist (None = all). The CCC pools all
  annotators' ratings of the batch per dimension, as the paper's sets act/val do. Computed in
  float32 at least (a float16 CCC of 32x10 ratings loses the variance terms).
  """
  dtype = tf.float64 if predictions.dtype == tf.float64 else tf.float32
  ratings = tf.cast(ratings, dtype)
  predictions = tf.cast(predictions, dtype)
  if mask is None:
    mask = tf.ones(tf.shape(ratings)[:-1], tf.bool)
  ccc_act = concordance_correlation_coefficient(ratings[..., 0], predictions[..., 0], mask)
  ccc_val = concordance_correlation_coefficient(ratings[..., 1], predictions[..., 1], mask)
  return 2.0 - ccc_act - ccc_val


@tf.keras.utils.register_keras_serializable(package="tfser")
class CCCLoss(tf.keras.losses.Loss):
  """Keras form of :func:`annotator_ccc_loss`: y_true ``[batch, annotators, 2]`` with NaN where an
  annotator did not rate the utterance (the mask is ``isfinite``), y_pred the same shape."""

  def __init__(self, name: str = "ccc_loss", **kwargs):
    kwargs["reduction"] = tf.keras.losses.Reduction.NONE
    super().__init__(name=name, **kwargs)

  def call(self, y_true, y_pred):
    mask = tf.reduce_all(tf.math.is_finite(y_true), axis=-1)
    y_true = tf.where(tf.math.is_finite(y_true), y_true, tf.zeros_like(y_true))
    return annotator_ccc_loss(y_true, y_pred, mask)


class Task1LossMetric(tf.keras.metrics.Metric):
  """Streaming :func:`annotator_ccc_loss`: 2 - CCC_act - CCC_val over every rating seen this epoch."""

  def __init__(self, name="loss_task1", **kwargs):
    super().__init__(name=name, **kwargs)
    self.activation = ConcordanceCorrelation(name="ccc_act")
    self.valence = ConcordanceCorrelation(name="ccc_val")

  def update_state(self, ratings, predictions, mask):
    self.activation.update_state(ratings[..., 0], predictions[..., 0], sample_weight=mask)
    self.valence.update_state(ratings[..., 1], predictions[..., 1], sample_weight=mask)

  def result(self):
    return 2.0 - self.activation.result() - self.valence.result()

  def reset_state(self):
    self.activation.reset_state()
    self.valence.reset_state()
