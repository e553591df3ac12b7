"""One chunk of ``tfser.ops.kde``'s KDE: its settings, the sparse grid's stages and the smoothing.

``tfser.ops.kde`` documents the algorithm and drives the batch. This module holds what a chunk
needs on its sparse-grid path (grids above 128, at most n / 2 points per row): the hard
histogram grouped by occupied lines (``dct.sparse_grid``), a2 split in two precisions for the
deferring fast solver (``kde_solvers.SplitA2``), its three stages (float32 bracketing, float64
polish, smoothing) and :class:`KDEStages`, which offers them to callers that compile them as
separate programs; and the smoothing both paths end with.
"""

import math
from typing import NamedTuple, Optional, Sequence

import numpy as np

import tfser  # noqa: F401  (Keras flavour before TensorFlow)
import tensorflow as tf

from tfser.ops import dct as dct_lib
from tfser.ops.histogram import hard_bins
from tfser.ops.kde_functional import _grid_constants
from tfser.ops.kde_functional import _heat
from tfser.ops.kde_solvers import _FAST_A2_SCALE
from tfser.ops.kde_solvers import Solved
from tfser.ops.kde_solvers import SplitA2
from tfser.ops.kde_solvers import _split_bracket
from tfser.ops.kde_solvers import _split_polish


class KDEResult(NamedTuple):
  """Output of :func:`diffusion_kde_2d_with_info`."""
  density: tf.Tensor  # [batch, n, n]
  bandwidth: tf.Tensor  # [batch, 2]
  converged: tf.Tensor  # [batch] bool: False where a fallback was used (see module docstring)
  t_star: tf.Tensor  # [batch] the diffusion time t* used
  # [batch] bool: rows left to the caller (exact_rows="defer"; their other fields are
  # placeholders); always False with exact_rows="solve".
  deferred: tf.Tensor


class _Config(NamedTuple):
  n: int
  lo: float
  hi: float
  histogram: str
  sigma: float
  t_gradient: str
  form: str
  solver: str
  defer: bool = False


def _sparse_transforms(config: _Config, points_per_row: Optional[int]) -> bool:
  """Whether :func:`_kde` transforms the hard histogram as a sparse grid (dct.sparse_grid).

  Its m points make the forward and inverse transforms [n, m] x [m, n] products at most (2 n^2 m
  multiply-adds each; fewer for fewer occupied lines), which beat the FFT-based dense transforms on
  grids above ``dct._MATMUL_MAX_SIZE`` for ``m <= n / 2`` (m = 200 at grid 512: ~2x in graph mode,
  about even under XLA, whose FFT is faster); smaller grids already use dense matmuls over all n^2
  cells. The soft histogram fills every cell, so it always takes the dense path. m is the static
  number of point slots (masked-out ones included), so the choice is fixed per traced shape, as XLA
  needs.
  """
  return (config.histogram == "hard" and config.n > dct_lib._MATMUL_MAX_SIZE
          and points_per_row is not None and 0 < points_per_row <= config.n // 2)


def _slot_choices(points_per_row: int):
  """Line slots the sparse transforms may run over: 8, 32, 64, 96, 128 and every point."""
  return [s for s in (8, 32, 64, 96, 128) if s < points_per_row] + [points_per_row]


def _over_line_slots(cells: dct_lib.SparseGrid, transform):
  """``transform(s)`` for the smallest ``s`` of :func:`_slot_choices` that holds every row's
  occupied lines (``cells.lines``); a batch-wide ``tf.switch_case``, so it runs under XLA."""
  slots = _slot_choices(cells.first_cells.shape[1])
  if len(slots) == 1:
    return transform(slots[0])
  most = tf.reduce_max(cells.lines)
  branch = tf.reduce_sum(tf.cast(most > tf.constant(slots[:-1]), tf.int32))
  return tf.switch_case(branch, [lambda s=s: transform(s) for s in slots])


class _Prepared(NamedTuple):
  """A chunk's hard histogram as the sparse stages take it."""
  cells: dct_lib.SparseGrid
  n_points: tf.Tensor  # [b]: kde2d's N (1 for an empty row)
  empty: tf.Tensor  # [b] bool: rows without points (a stand-in point, outputs replaced)


def _sparse_cells(points, valid, n_points, empty, config: _Config) -> dct_lib.SparseGrid:
  """The hard histogram's cells grouped by lines (dct.sparse_grid).

  Its points' cells weigh 1 / N (the stand-in in an empty row's first slot; points outside the
  limits and masked-out slots weigh 0); the transforms run over the fewest line slots that hold
  every row's lines (:func:`_over_line_slots`).
  """
  n = config.n
  rows, cols, inside = hard_bins(points, valid, bins=n, limits=(config.lo, config.hi))
  first = tf.range(tf.shape(rows)[1])[None, :] == 0
  stand_in = empty[:, None] & first
  rows = tf.where(stand_in, n // 2, rows)
  cols = tf.where(stand_in, n // 2, cols)
  weights = tf.where(stand_in | inside, 1.0 / n_points[:, None], tf.zeros_like(n_points[:, None]))
  return dct_lib.sparse_grid(rows, cols, weights)


def _point_counts(valid, dtype):
  """kde2d's N per row and the rows without points. Those get a stand-in (one point in the
  centre bin, N = 1) so every intermediate stays finite (also their gradients); their outputs
  are replaced at the end."""
  n_points = tf.reduce_sum(tf.cast(valid, dtype), axis=1)  # kde2d's N = len(x)
  empty = tf.math.equal(n_points, 0.0)
  return tf.where(empty, tf.ones_like(n_points), n_points), empty


def _prepare_sparse(points, valid, config: _Config) -> _Prepared:
  n_points, empty = _point_counts(valid, points.dtype)
  return _Prepared(cells=_sparse_cells(points, valid, n_points, empty, config),
                   n_points=n_points, empty=empty)


def _split_of(prepared: _Prepared, config: _Config) -> SplitA2:
  return _split_a2(prepared.cells, config.n)


def _bracket_stage(prepared: _Prepared, config: _Config):
  """Stage 1 of the split path: ``(t0, f_hi)`` (kde_solvers._split_bracket)."""
  grid = _grid_constants(config.n, tf.float64)
  return _split_bracket(_split_of(prepared, config), grid, prepared.n_points, config.form)


def _polish_stage(prepared: _Prepared, t0, f_hi, config: _Config) -> Solved:
  """Stage 2: the float64 polish (kde_solvers._split_polish)."""
  grid = _grid_constants(config.n, tf.float64)
  return _split_polish(_split_of(prepared, config), grid, prepared.n_points, config.form, t0,
                       f_hi)


def _finish_stage(prepared: _Prepared, solved: Solved, config: _Config) -> KDEResult:
  """Stage 3: bandwidths and the smoothed density."""
  grid = _grid_constants(config.n, tf.float64)
  t_star = tf.stop_gradient(solved.t_star)  # a hard histogram has no gradient to its points
  return _smooth(config, t_star, solved, solved.psi, prepared.n_points, prepared.empty, grid,
                 cells=prepared.cells)


class KDEStages:
  """:func:`diffusion_kde_2d_with_info` of one chunk of float64 points with a hard histogram,
  ``t_gradient="stop"`` and ``exact_rows="defer"``, as three functions of tensors that a caller
  may compile as separate programs, concurrently: :meth:`prepare` + :meth:`bracket` (float32
  bracketing), :meth:`polish` (float64), :meth:`finish` (bandwidths, density). Under XLA at grid
  512 one program took ~10 s to trace and compile on one core; the three, compiled at once on two
  cores, ~7 s.

  For grids above 128 with at most ``grid / 2`` points per row (:meth:`supports`; the KDE's
  sparse transforms); the stages are those the one-program KDE runs.
  """

  def __init__(self, *, grid_size: int = 64, limits: Sequence[float] = (-1.0, 1.0)):
    n = int(2 ** math.ceil(math.log2(grid_size)))
    self.config = _Config(n=n, lo=float(limits[0]), hi=float(limits[1]), histogram="hard",
                          sigma=8.0, t_gradient="stop", form="kde_diffusion", solver="fast",
                          defer=True)

  def supports(self, points_per_row: int) -> bool:
    return _sparse_transforms(self.config, points_per_row)

  def prepare(self, points: tf.Tensor) -> _Prepared:
    """``points [b, m, 2]`` float64, all valid (finite, unchecked)."""
    valid = tf.ones(tf.shape(points)[:2], tf.bool)
    return _prepare_sparse(points, valid, self.config)

  def bracket(self, prepared: _Prepared):
    """``(t0, f_hi)``, each ``[b]``."""
    return _bracket_stage(prepared, self.config)

  def polish(self, prepared: _Prepared, t0, f_hi) -> Solved:
    return _polish_stage(prepared, t0, f_hi, self.config)

  def finish(self, prepared: _Prepared, solved: Solved) -> KDEResult:
    return _finish_stage(prepared, solved, self.config)


def _halving(n: int) -> np.ndarray:
  """kde2d's halving of the transform's first row and column (``a2`` is built from it)."""
  halve = np.ones(n)
  halve[0] = 0.5
  return halve


def _split_a2(cells: dct_lib.SparseGrid, n: int) -> SplitA2:
  """The hard histogram's a2 as the deferring fast solver takes it (:class:`SplitA2`): the whole
  grid in float32 (a float32 transform, ~4x faster than float64 on CPU), and float64 blocks of
  the lowest frequencies on demand (a [size, size] transform)."""
  cells32 = cells._replace(first_weights=tf.cast(cells.first_weights, tf.float32),
                           second_weights=tf.cast(cells.second_weights, tf.float32))
  halve = _halving(n)

  def whole32():
    t32 = _over_line_slots(cells32, lambda s: dct_lib.dct2_2d_grid(cells32, n, s))
    h = tf.constant(halve, tf.float32)
    return (t32 * h[:, None] * h[None, :]) ** 2 * _FAST_A2_SCALE

  def block(size):
    if size < n:
      t64 = dct_lib.dct2_2d_grid(cells, n, frequencies=size)
    else:
      t64 = _over_line_slots(cells, lambda s: dct_lib.dct2_2d_grid(cells, n, s))
    h = tf.constant(halve[:size], tf.float64)
    return (t64 * h[:, None] * h[None, :]) ** 2

  return SplitA2(whole32=whole32, block=block)


def _smooth(config: _Config, t_star, solved, psi, n_points, empty, grid, *, cells=None,
            transformed=None) -> KDEResult:
  """Bandwidths from the psi sums at t*, the smoothed density (from the sparse grid ``cells`` or
  the dense transform ``transformed``) and the chunk's result."""
  n, span = config.n, config.hi - config.lo
  dtype = n_points.dtype
  psi02, psi20, psi11 = psi
  root = tf.sqrt(psi02 * psi20)
  tx1 = (psi02 ** 0.75 / (4 * np.pi * n_points * psi20 ** 0.75 * (psi11 + root))) ** (1 / 3)
  tx2 = (psi20 ** 0.75 / (4 * np.pi * n_points * psi02 ** 0.75 * (psi11 + root))) ** (1 / 3)
  # kde2d halves row/column 0 before and doubles them after; the unhalved transform is the same.
  decay_rows, decay_cols = _heat(grid, tx2 / 2), _heat(grid, tx1 / 2)
  if cells is not None:
    density = _over_line_slots(
        cells, lambda s: dct_lib.idct2_2d_grid(cells, decay_rows, decay_cols, s))
  else:
    density = dct_lib.idct2_2d(transformed * (decay_rows[:, :, None] * decay_cols[:, None, :]))
  density *= n / span * n / span
  bandwidth = tf.stack([tf.sqrt(tx2) * span, tf.sqrt(tx1) * span], axis=1)

  uniform = tf.fill(tf.shape(density), tf.constant(1.0 / (span * span), dtype))
  density = tf.where(empty[:, None, None], uniform, density)
  bandwidth = tf.where(empty[:, None], tf.zeros_like(bandwidth), bandwidth)
  converged = solved.converged & ~empty
  return KDEResult(density=density, bandwidth=bandwidth, converged=converged, t_star=t_star,
                   deferred=solved.deferred & ~empty)
