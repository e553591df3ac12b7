"""Batched 2-D histograms of (activation, valence) points on a square grid.

Layout (both functions): ``hist[b, i, j]`` counts points of row ``b`` whose first coordinate
(activation, x) falls in bin ``i`` and whose second (valence, y) falls in bin ``j``, the layout of
``numpy.histogram2d(x, y)`` and of ``kde_diffusion.kde2d``. Bins split ``[lo, hi]`` into ``bins``
equal parts.
"""

from typing import Optional, Sequence

import numpy as np

import tfser  # noqa: F401  (Keras flavour before TensorFlow)
import tensorflow as tf


def valid_mask(points: tf.Tensor, mask: Optional[tf.Tensor]) -> tf.Tensor:
  """``[batch, n]`` bool: ``mask``, or all True when ``mask`` is None."""
  if mask is None:
    return tf.ones(tf.shape(points)[:2], tf.bool)
  return tf.cast(mask, tf.bool)


def bin_index(values: tf.Tensor, bins: int, limits: Sequence[float]) -> tf.Tensor:
  """numpy.histogram's bin of each value, as int32; -1 below ``lo``, ``bins`` above ``hi``.

  numpy finds the bin with ``searchsorted(linspace(lo, hi, bins + 1), v, side="right") - 1`` and
  moves ``v == hi`` into the last bin. ``floor((v - lo) / width)`` can be off by one where rounding
  puts ``v`` onto an edge, so the guess is checked against the very same linspace edges.
  NaN gets ``bins`` (outside, dropped).
  """
  lo, hi = float(limits[0]), float(limits[1])
  dtype = values.dtype
  edges = tf.constant(np.linspace(lo, hi, bins + 1), dtype)
  guess = tf.math.floor((values - lo) * (bins / (hi - lo)))
  guess = tf.cast(tf.clip_by_value(tf.where(tf.math.is_nan(guess), tf.zeros_like(guess), guess), 0, bins - 1),
                  tf.int32)
  lower = tf.gather(edges, guess)
  upper = tf.gather(edges, guess + 1)
  index = guess - tf.cast(values < lower, tf.int32) + tf.cast(values >= upper, tf.int32)
  index = tf.where(tf.math.equal(values, hi), bins - 1, index)
  return tf.where(tf.math.is_nan(values), bins, index)


def hard_histogram_2d(points: tf.Tensor, mask: Optional[tf.Tensor] = None, *, bins: int = 64,
                      limits: Sequence[float] = (-1.0, 1.0)) -> tf.Tensor:
  """Counts per bin, exactly as ``numpy.histogram2d(x, y, bins, range=(limits, limits))``.

  Args:
    points: ``[batch, n, 2]`` float, (activation, valence).
    mask: ``[batch, n]`` bool, True for real points; None means all.
    bins: bins per axis.
    limits: ``(lo, hi)`` for both axes. Points outside are dropped, as numpy does; a point
      exactly on ``hi`` counts in the last bin.

  Returns:
    ``[batch, bins, bins]`` counts in ``points.dtype``.
  """
  points = tf.convert_to_tensor(points)
  ix, iy, inside = hard_bins(points, mask, bins=bins, limits=limits)
  batch = tf.shape(points)[0]
  rows = tf.broadcast_to(tf.range(batch)[:, None], tf.shape(ix))
  flat = (rows * bins + ix) * bins + iy
  counts = tf.math.unsorted_segment_sum(
      tf.reshape(tf.cast(inside, points.dtype), [-1]), tf.reshape(flat, [-1]),
      batch * bins * bins)
  return tf.reshape(counts, [batch, bins, bins])


def hard_bins(points: tf.Tensor, mask: Optional[tf.Tensor] = None, *, bins: int = 64,
              limits: Sequence[float] = (-1.0, 1.0)):
  """Each point's cell in :func:`hard_histogram_2d` (which is built from these).

  Args:
    points: ``[batch, n, 2]`` float, (activation, valence).
    mask: ``[batch, n]`` bool, True for real points; None means all.
    bins: bins per axis.
    limits: ``(lo, hi)`` for both axes.

  Returns:
    ``(ix, iy, inside)``: ``[batch, n]`` int32 activation and valence bins, clipped to
    ``[0, bins)``, and ``[batch, n]`` bool, True where the point is valid and inside the limits
    (the points numpy.histogram2d counts, in cell ``(ix, iy)``).
  """
  points = tf.convert_to_tensor(points)
  valid = valid_mask(points, mask)
  ix = bin_index(points[..., 0], bins, limits)
  iy = bin_index(points[..., 1], bins, limits)
  inside = valid & (ix >= 0) & (ix < bins) & (iy >= 0) & (iy < bins)
  return tf.clip_by_value(ix, 0, bins - 1), tf.clip_by_value(iy, 0, bins - 1), inside


def soft_bin_membership(values: tf.Tensor, *, bins: int, sigma: float,
                        limits: Sequence[float]) -> tf.Tensor:
  """``[..., bins]`` soft membership of each value in each bin (the annotators paper's sigmoid window).

  ``sigmoid(sigma * (x + delta / 2)) - sigmoid(sigma * (x - delta / 2))`` with ``x`` the value
  minus the bin centre and ``delta`` the bin width. Summed over bins it telescopes to
  ``sigmoid(sigma * (v - lo)) - sigmoid(sigma * (v - hi))``, so a point on a limit keeps only
  half its mass.
  """
  lo, hi = float(limits[0]), float(limits[1])
  # Bin k's window is sigmoid(sigma (v - e_k)) - sigmoid(sigma (v - e_{k+1})) with e_k the bin
  # edges (x + delta / 2 = v - e_k): neighbouring bins share a sigmoid, so bins + 1 sigmoids per
  # value instead of 2 bins (measured under XLA: the DiffKDE batch's soft histogram, forward +
  # backward, ~20% faster).
  edges = tf.constant(np.linspace(lo, hi, bins + 1), values.dtype)
  s = tf.math.sigmoid(sigma * (values[..., None] - edges))
  # tf.split, not s[..., :-1]: outside XLA the strided slices' gradient kernel cost 4x the
  # rest of the histogram (measured); split's gradient is a concat, fast with and without XLA.
  return tf.split(s, [bins, 1], axis=-1)[0] - tf.split(s, [1, bins], axis=-1)[1]


def soft_histogram_2d(points: tf.Tensor, mask: Optional[tf.Tensor] = None, *, bins: int = 64,
                      sigma: float = 8.0, limits: Sequence[float] = (-1.0, 1.0)) -> tf.Tensor:
  """Differentiable 2-D histogram: per-axis sigmoid windows, outer product, summed over points.

  Args:
    points: ``[batch, n, 2]`` float, (activation, valence).
    mask: ``[batch, n]`` bool, True for real points (others are ignored, even NaN); None = all.
    bins: bins per axis.
    sigma: sigmoid slope (the annotators paper uses 8).
    limits: ``(lo, hi)`` for both axes. Points outside still contribute their sigmoid tails.

  Returns:
    ``[batch, bins, bins]`` soft counts in ``points.dtype``; ``[b, i, j]`` is activation bin i,
    valence bin j (numpy.histogram2d's layout).
  """
  points = tf.convert_to_tensor(points)
  valid = valid_mask(points, mask)
  # Masked-out slots may hold NaN padding; 0 * NaN would leak into the sum.
  points = tf.where(valid[..., None], points, tf.zeros_like(points))
  valid = tf.cast(valid, points.dtype)
  mx = soft_bin_membership(points[..., 0], bins=bins, sigma=sigma, limits=limits)
  my = soft_bin_membership(points[..., 1], bins=bins, sigma=sigma, limits=limits)
  # sum_p mx[b, p, i] * my[b, p, j] over valid points, as one batched matmul.
  return tf.linalg.matmul(mx * valid[..., None], my, transpose_a=True)
