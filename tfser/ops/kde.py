"""Batched kernel density estimation via diffusion (Botev et al. 2010) on the (activation, valence) plane.

:func:`diffusion_kde_2d` reproduces ``kde_diffusion.kde2d`` 1.0.5 (the reference used for the
ground-truth label distributions) for a whole batch at once, with no Python loop over rows:

1. histogram the points on an ``n x n`` grid over ``limits`` (``histogram="hard"``:
   numpy.histogram2d's bins; ``"soft"``: the annotators paper's sigmoid windows, differentiable);
2. ``T = dctn(hist / N)`` (N = number of valid points, including any outside the limits, as
   kde2d's ``len(x)``), first row and column halved, ``a2 = T ** 2``;
3. solve kde-diffusion's fixed-point equation ``t - xi_gamma(t) = 0`` on ``[0, 0.1]``
   (``solver="brentq"``: a batched copy of scipy's brentq; ``solver="fast"``, the default: float32
   brentq, then a float64 secant polish, same root to brentq's own tolerance), where
   kde-diffusion's peculiar form is
   ``xi_gamma(t) = (t - g(t)) / g(t)``, ``g(t) = (2 pi N (psi02 + psi20 + 2 psi11)) ** (-1/3)``
   and every ``psi(i, j, t)`` with ``i + j <= 4`` is evaluated at its own time from the two
   psi's of order ``i + j + 1`` (``form="textbook"`` solves Botev's ``t = g(t)`` instead);
4. diffusion times ``tx1, tx2`` from psi02, psi20, psi11 at ``t*``, Gaussian smoothing in the
   cosine domain, ``idctn``, scaled by ``n / dx * n / dy``.

Output layout: ``density[b, i, j]`` is the density at activation ``lo + i * dx / n`` (first axis)
and valence ``lo + j * dy / n`` (second axis), kde2d's layout and grid (the lower bin edges);
``bandwidth[b] = (sqrt(tx2) * dx, sqrt(tx1) * dy)``.

Where the reference raises and where tfser departs (documented fallbacks):
  * no sign change of ``f`` on ``[0, 0.1]`` (f(0) = 1 exactly, so ``f(0.1) > 0``): kde2d raises
    "Bandwidth optimization did not converge"; tfser uses Botev's own MATLAB fallback,
    ``t* = argmin_{[0, 0.1]} |f(t)|`` (a scan of 48 log-spaced times in [1e-8, 0.1], then a
    golden-section search between the best scan point's neighbours), and reports the row in
    ``converged`` of :func:`diffusion_kde_2d_with_info`. Rows brentq does not finish in 100
    iterations (kde2d would raise RuntimeError) fall back the same way.
  * a row with no valid point: kde2d divides by zero; tfser returns the uniform density
    ``1 / (dx * dy)`` (the t -> infinity limit of the diffusion), bandwidth 0 and
    ``converged=False``.
  * points outside the limits: as kde2d, they are dropped from the hard histogram but still
    counted in N (so the density integrates to the fraction inside). The soft histogram keeps
    their sigmoid tails.
  * masked-out points are ignored whatever their value (NaN padding is fine).

Bad input: NaN / infinite valid points raise ValueError naming the rows when called eagerly; in
a graph a tf.debugging.Assert fails instead (XLA drops Assert ops, so under jit_compile there is no
check). Masked-out slots are ignored whatever they hold.

Cost: each evaluation of f is 18 grid sums (the memoised psi tree, kde2d does 45), read from
``a2`` with one batched matmul per tree level; inside the float64 root solve high frequencies are
skipped when the chunk's times make them negligible (:class:`_Truncated`). Batches run in chunks
(``chunk_size``) whose a2 stays in cache; in a graph the chunk loop is unrolled. At grid 512 a hard
histogram of at most n / 2 points is transformed as a sparse grid grouped by its occupied lines
(:func:`dct.sparse_grid`: [n, lines] x [lines, n] products; upsampled Likert clouds occupy
~70-130 rows or columns of 512). With ``exact_rows="defer"`` the fast solver takes a2 in two
precisions (``kde_solvers.SplitA2``: a float32 transform of the whole grid for the float32
bracketing, float64 only in the block of low frequencies the polish needs), and
:class:`KDEStages` offers that path as three functions for callers that compile them apart
(data_prep's ground truth: ~6-8 ms per row on one core at grid 512).

Precision: float64 and float32 compute in their own dtype; float16 / bfloat16 input is computed in
float32 (histogram, transforms, psi sums, root solve and smoothing) and the outputs are cast back,
as the annotators paper keeps its DCT, psi sums and smoothing in float32.
"""

import functools
import math
from typing import Optional, Sequence

import numpy as np

import tfser  # noqa: F401  (Keras flavour before TensorFlow)
import tensorflow as tf

from tfser.ops import dct as dct_lib
from tfser.ops.histogram import hard_histogram_2d
from tfser.ops.histogram import soft_histogram_2d
from tfser.ops.histogram import valid_mask
from tfser.ops.kde_functional import _grid_constants
from tfser.ops.kde_functional import _psi_order2
from tfser.ops.kde_functional import _Truncated
from tfser.ops.kde_solvers import T_BRACKET  # noqa: F401  (public: kde2d's bracket for t*)
from tfser.ops.kde_solvers import _attach_implicit_gradient
from tfser.ops.kde_solvers import _solve_t
from tfser.ops.kde_stages import _bracket_stage
from tfser.ops.kde_stages import _Config
from tfser.ops.kde_stages import _finish_stage
from tfser.ops.kde_stages import _halving
from tfser.ops.kde_stages import KDEResult
from tfser.ops.kde_stages import KDEStages
from tfser.ops.kde_stages import _over_line_slots
from tfser.ops.kde_stages import _point_counts
from tfser.ops.kde_stages import _polish_stage
from tfser.ops.kde_stages import _Prepared
from tfser.ops.kde_stages import _smooth
from tfser.ops.kde_stages import _sparse_cells
from tfser.ops.kde_stages import _sparse_transforms

__all__ = ["KDEResult", "KDEStages", "bin_distribution", "diffusion_kde_2d",
           "diffusion_kde_2d_with_info", "hard_histogram_2d", "soft_histogram_2d", "spikiness"]

HISTOGRAMS = ("hard", "soft")
T_GRADIENTS = ("implicit", "stop")
FORMS = ("kde_diffusion", "textbook")
SOLVERS = ("fast", "brentq")
EXACT_ROWS = ("solve", "defer")
# Batch rows per chunk so that one [chunk, n, n] tensor stays near 2**20 elements (8 MiB in
# float64): the root solve streams a2 ~60 times, and a chunk that stays in cache ran 2.3x faster
# at grid 512 than chunks of 2**23 elements (measured, 4 vs 32 rows); at grid 64 it is 256 rows.
_CHUNK_ELEMENTS = 1 << 20


def diffusion_kde_2d(points, mask=None, *, grid_size: int = 64,
                     limits: Sequence[float] = (-1.0, 1.0), histogram: str = "hard",
                     sigma: float = 8.0, t_gradient: str = "implicit",
                     form: str = "kde_diffusion", chunk_size: Optional[int] = None,
                     solver: str = "fast", run_eagerly: bool = False,
                     exact_rows: str = "solve"):
  """Batched kde_diffusion.kde2d: returns ``(density, bandwidth)``.

  Args:
    points: ``[batch, n, 2]`` float (x = activation, y = valence).
    mask: ``[batch, n]`` bool, True for real points (ragged rater counts); None = all valid.
    grid_size: grid points per axis (kde2d's ``n``; rounded up to a power of two as kde2d does).
    limits: ``(lo, hi)`` used for both axes (kde2d's ``limits=((lo, hi), (lo, hi))``).
    histogram: ``"hard"`` (numpy.histogram2d, the reference) or ``"soft"`` (differentiable).
    sigma: slope of the soft histogram's sigmoids.
    t_gradient: ``"implicit"``: t* gets the implicit-function gradient
      ``dt*/dtheta = -(df/dtheta) / (df/dt)`` at the root; ``"stop"``: t* is a constant.
    form: ``"kde_diffusion"`` (the reference's fixed-point form) or ``"textbook"``.
    chunk_size: rows per chunk; the default keeps a chunk's float64 ``a2`` near 2**20 cells
      (8 MiB: it stays in cache across the root solve's passes); 4 rows at grid 512.
    solver: ``"fast"`` (float32 root bracketing, then a float64 secant polish; within ~1e-10 of
      the root) or ``"brentq"`` (a batched copy of scipy's brentq steps in the compute dtype).
      Both decide convergence exactly as kde2d does; see :func:`_solve_t`.
    run_eagerly: called eagerly, run the ops one by one instead of as a traced graph (no
      tracing, ~3 s at grid 512, and graph optimisation, ~4 s, before the first result; ~0.5 s
      of Python op dispatch per chunk instead: for a few chunks of a small job). Ignored inside
      a tf.function.
    exact_rows: ``"solve"``: every row is solved in this call. ``"defer"``: rows that need
      Botev's fallback (no sign change on [0, 0.1]) or the fast solver's exact brentq (its
      polish not accepted) are returned with ``deferred`` True and placeholder outputs, for the
      caller to rerun with ``"solve"``: the program then holds neither path (under XLA at grid
      512: ~7 s of compiling instead of ~19 s). Only :func:`diffusion_kde_2d_with_info` reports
      ``deferred``.

  Returns:
    ``density [batch, grid_size, grid_size]`` and ``bandwidth [batch, 2]`` in ``points.dtype``.

  Raises:
    ValueError: bad arguments, or (eagerly) a valid point that is NaN or infinite, naming rows.
    tf.errors.InvalidArgumentError: the same check in graph mode.
  """
  result = diffusion_kde_2d_with_info(
      points, mask, grid_size=grid_size, limits=limits, histogram=histogram, sigma=sigma,
      t_gradient=t_gradient, form=form, chunk_size=chunk_size, solver=solver,
      run_eagerly=run_eagerly, exact_rows=exact_rows)
  return result.density, result.bandwidth


def diffusion_kde_2d_with_info(points, mask=None, *, grid_size: int = 64,
                               limits: Sequence[float] = (-1.0, 1.0), histogram: str = "hard",
                               sigma: float = 8.0, t_gradient: str = "implicit",
                               form: str = "kde_diffusion",
                               chunk_size: Optional[int] = None,
                               solver: str = "fast", run_eagerly: bool = False,
                               exact_rows: str = "solve") -> KDEResult:
  """As :func:`diffusion_kde_2d`, also returning which rows converged and t*."""
  if histogram not in HISTOGRAMS:
    raise ValueError(f"histogram must be one of {HISTOGRAMS}, got {histogram!r}")
  if t_gradient not in T_GRADIENTS:
    raise ValueError(f"t_gradient must be one of {T_GRADIENTS}, got {t_gradient!r}")
  if form not in FORMS:
    raise ValueError(f"form must be one of {FORMS}, got {form!r}")
  if solver not in SOLVERS:
    raise ValueError(f"solver must be one of {SOLVERS}, got {solver!r}")
  if exact_rows not in EXACT_ROWS:
    raise ValueError(f"exact_rows must be one of {EXACT_ROWS}, got {exact_rows!r}")
  lo, hi = float(limits[0]), float(limits[1])
  if not hi > lo:
    raise ValueError(f"limits must satisfy lo < hi, got {limits!r}")
  n = int(2 ** math.ceil(math.log2(grid_size)))  # kde2d rounds up to a power of two
  points = tf.convert_to_tensor(points)
  if not points.dtype.is_floating:
    points = tf.cast(points, tf.float64)
  if points.shape.rank != 3 or points.shape[-1] != 2:
    raise ValueError(f"points must be [batch, n, 2], got shape {points.shape}")
  out_dtype = points.dtype
  dtype = tf.float32 if out_dtype in (tf.float16, tf.bfloat16) else out_dtype
  valid = valid_mask(points, mask)
  points = tf.cast(points, dtype)
  points = _check_finite(points, valid)
  # Masked-out slots may hold anything (NaN padding): zero them so they cannot leak.
  points = tf.where(valid[..., None], points, tf.zeros_like(points))
  config = _Config(n=n, lo=lo, hi=hi, histogram=histogram, sigma=float(sigma),
                   t_gradient=t_gradient, form=form, solver=solver,
                   defer=exact_rows == "defer")
  batch = points.shape[0]
  if chunk_size is None:
    chunk_size = max(1, _CHUNK_ELEMENTS // (n * n))
  # Called eagerly, run the core as a graph (the root solve's while-loop would otherwise step
  # through Python) unless run_eagerly; inside a caller's tf.function / XLA it is simply inlined.
  if tf.executing_eagerly() and not run_eagerly:
    core = _graph_core(config)
  else:
    core = functools.partial(_kde, config=config)
  if batch is not None and batch > chunk_size:
    # A loop over chunks of rows (not over rows) bounds memory and keeps each chunk's a2 in cache
    # at grid 512. Rows are grouped by how spiky their histogram is (largest bin share on a 64
    # grid): spikes mean a tiny t*, which needs every frequency, so grouping lets the other chunks
    # skip high frequencies. Chunks have equal sizes (the last one padded by repeating a row), so
    # one call traces / compiles one shape.
    count = -(-batch // chunk_size)
    size = -(-batch // count)
    order = _spikiness_order(points, valid, lo, hi)
    padded = tf.concat([order, tf.fill([count * size - batch], order[-1])], 0)
    points, valid = tf.gather(points, padded), tf.gather(valid, padded)
    parts = [core(points[s:s + size], valid[s:s + size]) for s in range(0, count * size, size)]
    inverse = tf.math.invert_permutation(order)
    result = KDEResult(*[tf.gather(tf.concat(list(p), 0)[:batch], inverse) for p in zip(*parts)])
  else:
    result = core(points, valid)
  return KDEResult(density=tf.cast(result.density, out_dtype),
                   bandwidth=tf.cast(result.bandwidth, out_dtype),
                   converged=result.converged, t_star=tf.cast(result.t_star, out_dtype),
                   deferred=result.deferred)


def bin_distribution(density, bins: int = 4, *, epsilon: float = 1e-12):
  """Block means of a KDE grid, as a probability vector (Zhang et al. via the annotators paper).

  Negative densities (the cosine-domain smoothing can ring slightly below 0) are clipped to
  ``epsilon``; the ``[n, n]`` grid is split into ``bins x bins`` equal blocks and each block's mean
  taken; the result is normalised to sum 1.

  Args:
    density: ``[batch, n, n]`` with activation on axis 1 and valence on axis 2 (the layout of
      :func:`diffusion_kde_2d`); ``n`` must be a multiple of ``bins``.
    bins: blocks per axis.
    epsilon: lower clip for densities.

  Returns:
    ``[batch, bins * bins]`` in ``density.dtype`` (float16 is computed in float32), flattened
    row-major: entry ``a * bins + v`` is activation block ``a`` (low to high), valence block ``v``.
  """
  density = tf.convert_to_tensor(density)
  n = density.shape[-1]
  if n is None or density.shape[-2] != n or n % bins:
    raise ValueError(f"density must be [batch, n, n] with n a multiple of bins={bins}, "
                     f"got {density.shape}")
  out_dtype = density.dtype
  x = tf.cast(density, tf.float32) if out_dtype in (tf.float16, tf.bfloat16) else density
  x = tf.maximum(x, tf.cast(epsilon, x.dtype))
  block = n // bins
  means = tf.reduce_mean(tf.reshape(x, [-1, bins, block, bins, block]), axis=[2, 4])
  flat = tf.reshape(means, [-1, bins * bins])
  return tf.cast(flat / tf.reduce_sum(flat, axis=-1, keepdims=True), out_dtype)


# --------------------------------------------------------------------------------------------
# Implementation: the batch driver. The fixed-point functional (psi sums, f(t)) is in
# tfser/ops/kde_functional.py; the t* solvers and t*'s implicit gradient in tfser/ops/kde_solvers.py.


def _check_finite(points: tf.Tensor, valid: tf.Tensor) -> tf.Tensor:
  """Rejects NaN/Inf among valid points: eagerly a ValueError naming rows, else a graph assert."""
  finite = tf.reduce_all(tf.math.is_finite(points), axis=-1) | ~valid
  if tf.executing_eagerly():
    bad = np.flatnonzero(~np.all(finite.numpy(), axis=-1))
    if bad.size:
      raise ValueError(
          f"diffusion_kde_2d: NaN or infinite valid points in batch row(s) {bad[:20].tolist()}"
          f"{' ...' if bad.size > 20 else ''} (mask them out or fix the input)")
    return points
  row_ok = tf.reduce_all(finite, axis=-1)
  bad_rows = tf.where(~row_ok)[:, 0]
  check = tf.debugging.Assert(
      tf.reduce_all(row_ok),
      ["diffusion_kde_2d: NaN or infinite valid points in batch rows", bad_rows], summarize=20)
  with tf.control_dependencies([check]):
    return tf.identity(points)


@functools.lru_cache(maxsize=None)
def _graph_core(config: _Config):
  return tf.function(functools.partial(_kde, config=config), autograph=False,
                     reduce_retracing=True)


def spikiness(points, mask=None, *, limits: Sequence[float] = (-1.0, 1.0)) -> tf.Tensor:
  """``[batch]``: the largest cell's share of a row's points on a 64 x 64 grid over ``limits``.

  A cheap proxy for a small t* (a spiky histogram), which makes the root solve need every
  frequency: callers that batch many rows group rows of similar spikiness into the same chunks,
  so that the other chunks can skip high frequencies.
  """
  counts = hard_histogram_2d(points, mask, bins=64, limits=limits)
  total = tf.maximum(tf.reduce_sum(counts, axis=[1, 2]), 1.0)
  return tf.reduce_max(counts, axis=[1, 2]) / total


def _spikiness_order(points, valid, lo, hi) -> tf.Tensor:
  """Row order by decreasing :func:`spikiness`."""
  return tf.argsort(spikiness(points, valid, limits=(lo, hi)), direction="DESCENDING",
                    stable=True)


@tf.autograph.experimental.do_not_convert
def _kde(points: tf.Tensor, valid: tf.Tensor, config: _Config) -> KDEResult:
  """One chunk: points ``[b, m, 2]`` in the compute dtype, valid ``[b, m]``."""
  n, lo, hi = config.n, config.lo, config.hi
  dtype = points.dtype
  grid = _grid_constants(n, dtype)
  n_points, empty = _point_counts(valid, dtype)
  sparse = _sparse_transforms(config, points.shape[1])
  if sparse:
    cells = _sparse_cells(points, valid, n_points, empty, config)
    if config.defer and config.solver == "fast" and dtype == tf.float64:
      # The deferring fast solver takes a2 split: float32 over the whole grid, float64 only in
      # the low-frequency block its float64 steps need (kde_solvers.SplitA2); KDEStages runs the
      # same stages as separate programs.
      prepared = _Prepared(cells=cells, n_points=n_points, empty=empty)
      solved = _polish_stage(prepared, *_bracket_stage(prepared, config), config)
      return _finish_stage(prepared, solved, config)
    transformed = _over_line_slots(cells, lambda s: dct_lib.dct2_2d_grid(cells, n, s))
  else:
    if config.histogram == "hard":
      hist = hard_histogram_2d(points, valid, bins=n, limits=(lo, hi))
    else:
      hist = soft_histogram_2d(points, valid, bins=n, sigma=config.sigma, limits=(lo, hi))
    stand_in = tf.one_hot((n // 2) * n + n // 2, n * n, dtype=dtype)
    stand_in = tf.reshape(stand_in, [n, n])
    hist = tf.where(empty[:, None, None], stand_in, hist)
    transformed = dct_lib.dct2_2d(hist / n_points[:, None, None])
  halve = tf.constant(_halving(n), dtype)
  a2 = (transformed * halve[:, None] * halve[None, :]) ** 2

  solved = _solve_t(a2, grid, n_points, config.form, config.solver, config.defer)
  t_star = solved.t_star
  if config.t_gradient == "implicit":
    t_star = _attach_implicit_gradient(t_star, solved.converged, a2, grid, n_points, config.form)
  else:
    t_star = tf.stop_gradient(t_star)

  # A hard histogram has no gradient to its points: its psi sums at t* may skip negligible high
  # frequencies as the root solve's do (at grid 512 ~0.7 ms per row for smooth clouds), or come
  # from the solver's own last pass (no second copy of the sums to compile: ~4 s under XLA).
  hard64 = config.histogram == "hard" and dtype == tf.float64
  if hard64 and solved.psi is not None:
    psi = solved.psi
  else:
    psi = _psi_order2(_Truncated(a2) if hard64 else a2, grid, n_points, t_star)
  if sparse:
    return _smooth(config, t_star, solved, psi, n_points, empty, grid, cells=cells)
  return _smooth(config, t_star, solved, psi, n_points, empty, grid, transformed=transformed)


