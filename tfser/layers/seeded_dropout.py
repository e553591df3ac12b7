"""Dropout whose random state is saved in checkpoints (exact resume of a killed run)."""

import tfser  # noqa: F401  (Keras flavour before TensorFlow)
import tensorflow as tf


@tf.keras.utils.register_keras_serializable(package="tfser")
class SeededDropout(tf.keras.layers.Layer):
  """Inverted dropout whose random state is a tracked ``tf.random.Generator``.

  Keras' own Dropout keeps its generator out of checkpoints; this one is saved with the model,
  so a run resumed from a checkpoint draws the same masks as an uninterrupted run. The masks come
  from stateless ops seeded by ``generator.make_seeds()``, which compile under XLA.
  """

  def __init__(self, rate: float, seed: int = 0, **kwargs):
    super().__init__(**kwargs)
    if not 0.0 <= rate < 1.0:
      raise ValueError(f"dropout rate must lie in [0, 1); got {rate}")
    self.rate = float(rate)
    self.seed = int(seed)

  def build(self, input_shape):
    self.generator = tf.random.Generator.from_seed(self.seed)
    super().build(input_shape)

  def call(self, inputs, training=None):
    if not training or self.rate == 0.0:
      return inputs
    seed = self.generator.make_seeds(1)[:, 0]
    keep = tf.random.stateless_uniform(tf.shape(inputs), seed=seed) >= self.rate
    scale = tf.cast(1.0 / (1.0 - self.rate), inputs.dtype)
    return tf.where(keep, inputs * scale, tf.zeros_like(inputs))

  def get_config(self):
    return {**super().get_config(), "rate": self.rate, "seed": self.seed}
