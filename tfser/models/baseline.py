"""The annotators paper's baseline: features -> a 4x4 (or 2x2) distribution, Zhang et al. style.

Input dropout 0.2, then shared_layers + branch_layers (1 + 2) Dense(256)+ReLU layers and a linear
layer to ``out_bins**2`` logits (the authors' ``GenericModel`` with ``predict_dist``). Trained with
cross-entropy against the KDE ground-truth distribution; the softmax of the logits is the
predicted distribution (flattened with activation on the first axis, like the ground truth).
"""


import tfser  # noqa: F401  (Keras flavour before TensorFlow)
import tensorflow as tf

from tfser.layers.seeded_dropout import SeededDropout
from tfser.models.annotator_base import AnnotatorModelBase
from tfser.models.annotator_config import AnnotatorModelConfig


@tf.keras.utils.register_keras_serializable(package="tfser")
class BaselineDistributionModel(AnnotatorModelBase):
  """``call({"features": [batch, input_dim]})`` -> ``{"distribution_logits": [batch, bins**2]}``.

  The logits are float32 under mixed precision (the last layer computes in float32).
  """

  def __init__(self, config: AnnotatorModelConfig, **kwargs):
    super().__init__(**kwargs)
    self.config = config
    self.input_dropout = SeededDropout(config.dropout, seed=config.seed, name="input_dropout")
    self.hidden = [tf.keras.layers.Dense(config.hidden_units, activation="relu", name=f"dense_{i}")
                   for i in range(config.shared_layers + config.branch_layers)]
    self.logits = tf.keras.layers.Dense(config.out_bins * config.out_bins, dtype="float32",
                                        name="distribution_logits")

  def call(self, inputs, training=False):
    x = self.input_dropout(inputs["features"], training=training)
    for layer in self.hidden:
      x = layer(x)
    return {"distribution_logits": self.logits(x)}


def build_baseline(config: AnnotatorModelConfig) -> BaselineDistributionModel:
  """Builds (and creates the variables of) the baseline for ``config``."""
  return BaselineDistributionModel.build_from_config(config, "baseline")
