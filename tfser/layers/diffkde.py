"""DiffKDE: a differentiable binned KDE-via-diffusion distribution of per-annotator predictions.

The annotators paper (section 3.3, Task 2): the model's (activation, valence) predictions for the
annotators of an utterance are upsampled as Zhang et al. did for the ground truth (200 points:
means of random annotator subsets plus U(-std/2, std/2) noise, clamped), binned with a soft
(sigmoid-window) histogram on a 64 x 64 grid (sigma 8), smoothed by KDE via diffusion (Botev's
bandwidth), and reduced to a 4 x 4 probability distribution (block means, normalised) that the
DiffKDE loss compares with the 512-grid ground truth by cross-entropy.

Gradient through the bandwidth (``t_gradient``): the diffusion time t* is the root of a
fixed-point equation of the histogram. "implicit" differentiates t* by the implicit-function
theorem (dt*/dh = -(df/dh) / (df/dt) at the root, one extra evaluation); "stop" treats t* as a
constant, so the gradient flows only through the histogram and the smoothing at fixed t*.
Measured (``bench/kde_diffkde.py``, 5 batches of 32 x 6 annotators, 200 samples, 64 bins,
float64, same upsampling, d(cross-entropy)/d(predictions)): cosine(implicit, stop) >= 0.99998 and
|g_implicit - g_stop| / |g_implicit| = 0.24-0.68%, i.e. the t* path carries well under 1% of
the gradient, as ANCHORS.md reports (~0.5%) for the paper's unrolled solve. On tiny clouds (12
points, grid 32) the t* path matters more: the stop gradient was 23% off there.
Time: the implicit gradient costs one extra forward + backward pass of the fixed-point function,
~0.8 ms of the ~12 ms float32 batch under XLA (stages timed apart; end to end the two differ by
about the shared 2-core machine's noise). The default is "implicit": it
is the exact derivative of the forward computation (it matches finite differences to 1e-5 in
float64; the paper's code backpropagates through its unrolled bisection, which approximates the
same derivative); "stop" remains available.

Dtypes: the layer computes in its compute dtype. Under the ``mixed_float16`` policy (the paper
trains DiffKDE in float16) the predictions and the upsampled points are float16, and
``diffusion_kde_2d`` computes float16 input in float32 (the paper's code keeps its DCT, psi sums
and smoothing in float32; tfser's KDE also keeps the soft histogram and root solve there; the 4x4
TVD to float64 measured 1.4e-4, the paper's 2e-4); the probabilities come back as float32, so that the loss's ``p + 1e-8`` does not
underflow. A ``dtype="float64"`` layer (the paper's evaluation) computes in float64 throughout.

Randomness: every call draws a fresh upsampling from a stateless seed ``[layer seed, call count]``;
the call count is a non-trainable int64 weight (it is checkpointed, so a resumed run continues the
sequence). The layer seed comes from ``seed`` or, when None, from Python's ``random`` at
construction, which ``tf.keras.utils.set_random_seed`` seeds: reruns are deterministic. A call may
pass ``seed=[a, b]`` to fix the upsampling (tests, evaluation). Rows with no valid annotator get
the KDE's defined output for an empty row (their upsampled points are masked out).
"""

import random
from typing import Optional, Sequence

import tfser  # noqa: F401  (Keras flavour before TensorFlow)
import tensorflow as tf

from tfser.ops import kde
from tfser.ops import upsample

T_GRADIENTS = ("implicit", "stop")
HISTOGRAMS = ("soft", "hard")


@tf.keras.utils.register_keras_serializable(package="tfser")
class DiffKDE(tf.keras.layers.Layer):
  """Binned KDE-via-diffusion distribution of annotator predictions, differentiable.

  Call: ``layer(predictions, mask=mask, training=None, seed=None)``
    predictions: [batch, annotators, 2] float, (activation, valence) per annotator in ``limits``.
    mask: [batch, annotators] bool, True where the annotator rated the utterance; None = all.
    training: accepted for the Keras API; training and evaluation compute the same way (make an
      evaluation layer with ``dtype="float64"`` and, to mirror the ground truth,
      ``histogram="hard", grid_size=512``).
    seed: optional int [2] that fixes the upsampling instead of the layer's own sequence.

  Returns:
    [batch, out_bins * out_bins] probabilities (each row sums to 1); index ``i * out_bins + j``
    is activation bin i, valence bin j. float32 under mixed precision, else the compute dtype.
  """

  def __init__(self,
               grid_size: int = 64,
               out_bins: int = 4,
               sigma: float = 8.0,
               samples: int = 200,
               limits: Sequence[float] = (-1.0, 1.0),
               t_gradient: str = "implicit",
               histogram: str = "soft",
               std_ddof: int = 0,
               seed: Optional[int] = None,
               **kwargs):
    """Args (paper defaults):
      grid_size: KDE grid per axis (64 in training; the ground truth uses 512).
      out_bins: bins per axis of the output distribution (4 -> 16 probabilities).
      sigma: slope of the soft histogram's sigmoid window (8).
      samples: upsampled points per utterance (200).
      limits: (lo, hi) of both rating axes ([-1, 1]).
      t_gradient: "implicit" or "stop": how the gradient treats the diffusion time t*.
      histogram: "soft" (differentiable, the paper's training) or "hard" (numpy's histogram2d;
        no gradient to the predictions; the ground-truth procedure).
      std_ddof: std of the predictions for the upsampling noise: 0 population (default), 1 sample.
      seed: base seed of the upsampling; None draws one from Python's ``random``.
      **kwargs: tf.keras.layers.Layer arguments (name, dtype, ...).
    """
    super().__init__(**kwargs)
    if t_gradient not in T_GRADIENTS:
      raise ValueError(f"DiffKDE: t_gradient must be one of {T_GRADIENTS}, got {t_gradient!r}")
    if histogram not in HISTOGRAMS:
      raise ValueError(f"DiffKDE: histogram must be one of {HISTOGRAMS}, got {histogram!r}")
    if grid_size % out_bins:
      raise ValueError(f"DiffKDE: grid_size {grid_size} is not a multiple of out_bins {out_bins}")
    if len(limits) != 2 or not float(limits[0]) < float(limits[1]):
      raise ValueError(f"DiffKDE: limits must be (lo, hi) with lo < hi, got {limits}")
    self.grid_size = int(grid_size)
    self.out_bins = int(out_bins)
    self.sigma = float(sigma)
    self.samples = int(samples)
    self.limits = (float(limits[0]), float(limits[1]))
    self.t_gradient = t_gradient
    self.histogram = histogram
    self.std_ddof = int(std_ddof)
    self.seed = seed
    self._base_seed = int(seed) if seed is not None else random.randint(0, 2**31 - 1)

  def build(self, input_shape):
    # Call counter for the upsampling seed; int64 and non-trainable, so no policy casts it.
    # Under a strategy every replica calls the layer once per step on the same (gathered) batch:
    # the counter advances once per call (ONLY_FIRST_REPLICA), equal on every replica.
    self.call_count = self.add_weight(
        name="call_count", shape=[], dtype=tf.int64, initializer="zeros", trainable=False,
        aggregation=tf.VariableAggregation.ONLY_FIRST_REPLICA)
    super().build(input_shape)

  @property
  def output_dtype(self) -> tf.DType:
    """float32 when the compute dtype is float16 (mixed precision), else the compute dtype."""
    compute = tf.as_dtype(self.compute_dtype)
    return tf.float32 if compute == tf.float16 else compute

  def next_seed(self) -> tf.Tensor:
    """int64 [2]: this call's upsampling seed; advances the layer's call counter."""
    count = self.call_count.assign_add(1)
    return tf.stack([tf.constant(self._base_seed, tf.int64), count])

  def call(self, predictions, mask=None, training=None, seed=None):
    del training  # same computation in training and evaluation (see the class docstring)
    predictions = tf.cast(predictions, self.compute_dtype)
    if mask is None:
      mask = tf.ones(tf.shape(predictions)[:2], tf.bool)
    mask = tf.cast(mask, tf.bool)
    seed = self.next_seed() if seed is None else upsample.seed_tensor(seed)
    points = upsample.upsample_ratings(predictions, mask, samples=self.samples, seed=seed,
                                       limits=self.limits, std_ddof=self.std_ddof)
    point_mask = tf.broadcast_to(upsample.row_has_ratings(mask)[:, None], tf.shape(points)[:2])
    return self.distribution_from_points(points, point_mask)

  def distribution_from_points(self, points, point_mask=None):
    """The deterministic part: (soft) histogram, KDE via diffusion, block-mean binning.

    Args:
      points: [batch, n, 2] upsampled points (compute dtype).
      point_mask: [batch, n] bool or None.

    Returns:
      [batch, out_bins * out_bins] probabilities in ``output_dtype``.
    """
    points = tf.convert_to_tensor(points)
    if point_mask is None:
      point_mask = tf.ones(tf.shape(points)[:2], tf.bool)
    # Eagerly, run it as a graph function: the root solve's while-loop costs seconds per call
    # when executed op by op. Inside a tf.function it is NOT nested as a function call: under
    # jit_compile the gradient of a nested tf.function holding the KDE came out wrong (1e13
    # instead of 37 for a one-rater row beside an all-masked row; TF 2.17, measured), while the
    # same ops inlined agree with the graph to 1e-3 relative.
    config = dict(grid_size=self.grid_size, out_bins=self.out_bins, limits=self.limits,
                  histogram=self.histogram, sigma=self.sigma, t_gradient=self.t_gradient,
                  output_dtype=self.output_dtype)
    point_mask = tf.cast(point_mask, tf.bool)
    if tf.executing_eagerly():
      return _binned_kde_graph(points.dtype, **config)(points, point_mask)
    return _binned_kde(points, point_mask, **config)

  def compute_output_shape(self, input_shape):
    return tf.TensorShape([input_shape[0], self.out_bins * self.out_bins])

  def compute_mask(self, inputs, mask=None):
    return None  # one distribution per utterance: nothing left to mask

  def get_config(self):
    config = super().get_config()
    config.update(grid_size=self.grid_size, out_bins=self.out_bins, sigma=self.sigma,
                  samples=self.samples, limits=list(self.limits), t_gradient=self.t_gradient,
                  histogram=self.histogram, std_ddof=self.std_ddof, seed=self.seed)
    return config


def _binned_kde(points, point_mask, *, grid_size, out_bins, limits, histogram, sigma, t_gradient,
                output_dtype):
  density, _ = kde.diffusion_kde_2d(points, point_mask, grid_size=grid_size, limits=limits,
                                    histogram=histogram, sigma=sigma, t_gradient=t_gradient)
  probabilities = kde.bin_distribution(tf.cast(density, output_dtype), bins=out_bins)
  return tf.reshape(probabilities, [-1, out_bins * out_bins])


_GRAPH_FUNCTIONS = {}


def _binned_kde_graph(dtype, **config):
  """For eager callers: one graph function per configuration and dtype, traced once for any
  batch and point count (its forward and backward traces are reused across calls and layers)."""
  key = (tf.as_dtype(dtype).name,) + tuple(sorted((k, str(v)) for k, v in config.items()))
  if key not in _GRAPH_FUNCTIONS:

    def binned_kde(points, point_mask):
      return _binned_kde(points, point_mask, **config)

    _GRAPH_FUNCTIONS[key] = tf.function(
        binned_kde, autograph=False,
        input_signature=(tf.TensorSpec([None, None, 2], dtype),
                         tf.TensorSpec([None, None], tf.bool)))
  return _GRAPH_FUNCTIONS[key]
