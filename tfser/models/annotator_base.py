"""Base class of the annotators paper's three models: built from, and serialised as, a config."""

import dataclasses

import tfser  # noqa: F401  (Keras flavour before TensorFlow)
import tensorflow as tf

from tfser.models.annotator_config import AnnotatorModelConfig


class AnnotatorModelBase(tf.keras.Model):
  """A Keras model whose whole configuration is one :class:`AnnotatorModelConfig`."""

  def get_config(self):
    return {"config": dataclasses.asdict(self.config)}

  @classmethod
  def from_config(cls, config):
    return cls(AnnotatorModelConfig(**config["config"]))

  @classmethod
  def build_from_config(cls, config: AnnotatorModelConfig, name: str):
    """Constructs the model and creates its variables with a one-utterance example batch."""
    model = cls(config, name=name)
    model({"features": tf.zeros([1, config.input_dim]),
           "annotator_ids": tf.zeros([1, 1], tf.int32), "rating_mask": tf.ones([1, 1], tf.bool)})
    return model

  def _activation_valence_branches(self, x):
    """``x`` through the shared layers, then each branch: (activation, valence) features."""
    for layer in self.shared:
      x = layer(x)
    act, val = x, x
    for layer in self.activation_branch:
      act = layer(act)
    for layer in self.valence_branch:
      val = layer(val)
    return act, val
