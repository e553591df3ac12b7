"""Feature standardisation with training statistics: the one implementation every path uses.

The tf.data pipelines (``tfser.data.pipeline``, the annotators task's data), the CWW model's
``FeatureNormalization`` layer and the annotators SavedModel all compute
``(features - mean) / std`` in float32 with :func:`safe_std`'s floor: a standard deviation at or
below :data:`MIN_STD` (a constant feature) is replaced by 1, so that feature is centred, not
scaled.
"""

import numpy as np

import tfser  # noqa: F401  (Keras flavour before TensorFlow)
import tensorflow as tf

MIN_STD = 1e-8


def safe_std(std, min_std: float = MIN_STD) -> np.ndarray:
  """``std`` ``[D]`` with every entry <= ``min_std`` replaced by 1 (same dtype as given)."""
  std = np.asarray(std)
  return np.where(std > min_std, std, 1.0).astype(std.dtype)


def standardize(features, mean, std) -> tf.Tensor:
  """``(features - mean) / std`` in float32. features ``[..., D]``; mean, std ``[D]`` (std floored
  by :func:`safe_std` already)."""
  return (tf.cast(features, tf.float32) - mean) / std
