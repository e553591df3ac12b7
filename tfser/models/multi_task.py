"""The annotators paper's multi-task (MT) model: one linear head per annotator and dimension.

Input dropout 0.2 -> shared Dense(256)+ReLU -> an activation branch and a valence branch (two
Dense(256)+ReLU each) -> per-annotator linear heads (:class:`AnnotatorHeads`, a sparse table: a
batch gathers only the heads of its annotators). Predictions are unbounded reals on the [-1, 1]
rating scale (the paper's heads are linear).
"""


import tfser  # noqa: F401  (Keras flavour before TensorFlow)
import tensorflow as tf

from tfser.layers.seeded_dropout import SeededDropout
from tfser.layers.annotator_heads import AnnotatorHeads
from tfser.models.annotator_base import AnnotatorModelBase
from tfser.models.annotator_config import AnnotatorModelConfig


def _branch(config: AnnotatorModelConfig, name: str):
  return [tf.keras.layers.Dense(config.hidden_units, activation="relu", name=f"{name}_{i}")
          for i in range(config.branch_layers)]


@tf.keras.utils.register_keras_serializable(package="tfser")
class MultiTaskAnnotatorModel(AnnotatorModelBase):
  """Per-annotator activation/valence predictions.

  ``call({"features": [batch, input_dim], "annotator_ids": [batch, annotators] int,
  "rating_mask": [batch, annotators] bool})`` -> ``{"annotator_predictions":
  [batch, annotators, 2]}`` (activation, valence; 0 where masked).
  ``all_annotators(features)`` -> ``[batch, num_annotators, 2]``: every head (zero-shot).
  ``mean_of_all_annotators(features)`` -> ``[batch, 2]``: their mean, cheaply.
  Outputs are float32 whatever the precision policy.
  """

  def __init__(self, config: AnnotatorModelConfig, **kwargs):
    super().__init__(**kwargs)
    self.config = config
    self.input_dropout = SeededDropout(config.dropout, seed=config.seed, name="input_dropout")
    self.shared = [tf.keras.layers.Dense(config.hidden_units, activation="relu",
                                         name=f"shared_{i}") for i in range(config.shared_layers)]
    self.activation_branch = _branch(config, "activation")
    self.valence_branch = _branch(config, "valence")
    # Heads in float32: 1,434+ tiny dot products, and the CCC/KDE after them want float32.
    self.heads = AnnotatorHeads(config.num_annotators, dtype="float32", name="annotator_heads")

  def branch_features(self, features, training=False):
    """``[batch, 2, hidden_units]``: the activation and valence branches' last features."""
    act, val = self._activation_valence_branches(
        self.input_dropout(features, training=training))
    return tf.cast(tf.stack([act, val], axis=1), tf.float32)

  def call(self, inputs, training=False):
    branches = self.branch_features(inputs["features"], training=training)
    ids = inputs["annotator_ids"]
    mask = inputs.get("rating_mask")
    return {"annotator_predictions": self.heads(branches, ids, mask)}

  def all_annotators(self, features, training=False):
    return self.heads.all_heads(self.branch_features(features, training=training))

  def mean_of_all_annotators(self, features, training=False):
    return self.heads.mean_of_all_heads(self.branch_features(features, training=training))


def build_multi_task(config: AnnotatorModelConfig) -> MultiTaskAnnotatorModel:
  """Builds (and creates the variables of) the MT model for ``config``."""
  return MultiTaskAnnotatorModel.build_from_config(config, "multi_task")
