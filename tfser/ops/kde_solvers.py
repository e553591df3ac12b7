"""The t* solvers of kde-diffusion's bandwidth selection and t*'s implicit gradient (part of
``tfser.ops.kde``).

:func:`_solve_t`: batched brentq (``solver="brentq"``) or the float32 bracket + float64 secant
polish (``"fast"``), with Botev's fallback (minimise |f| on [0, 0.1]) for rows without a root.
:func:`_attach_implicit_gradient`: the implicit-function gradient of t* w.r.t. ``a2``.
``tfser.ops.kde`` documents the algorithm; ``tfser.ops.kde_functional`` is f.
"""

from typing import Callable, NamedTuple, Optional, Tuple

import numpy as np

import tfser  # noqa: F401  (Keras flavour before TensorFlow)
import tensorflow as tf

from tfser.ops import root_finding
from tfser.ops.kde_functional import _Truncated
from tfser.ops.kde_functional import _grid_constants
from tfser.ops.kde_functional import _fixed_point

# kde2d's bracket for the diffusion time t*.
T_BRACKET = (0.0, 0.1)
# Fallback search for rows without a root: |f| on this many log-spaced times in [1e-8, 0.1].
_SCAN_POINTS = 48
_SCAN_RANGE = (1e-8, 0.1)


class Solved(NamedTuple):
  """Output of :func:`_solve_t`, each ``[batch]``."""
  t_star: tf.Tensor
  converged: tf.Tensor  # kde2d's brentq would have found a root
  deferred: tf.Tensor  # left to the caller (defer=True)
  # (psi02, psi20, psi11) at t_star where the solver evaluated them there (the fast solver with
  # defer=True), else None.
  psi: Optional[Tuple[tf.Tensor, tf.Tensor, tf.Tensor]] = None


class SplitA2(NamedTuple):
  """a2 as the caller makes it for the fast solver with defer (instead of one float64 grid), on
  demand: ``whole32()``, the whole ``[batch, n, n]`` grid in float32, scaled by
  ``_FAST_A2_SCALE``, for the float32 bracketing; ``block(size)``, the float64
  ``a2[:, :size, :size]`` (static size) for the float64 steps, which only need the frequencies
  their times do not make negligible (at grid 512 from 200 points the float64 transform of every
  frequency was a third of the KDE's time)."""
  whole32: Callable[[], tf.Tensor]
  block: Callable[[int], tf.Tensor]


def _solve_t(a2, grid, n_points, form, solver="brentq", defer=False,
             split: Optional[SplitA2] = None) -> Solved:
  """t* per row (no gradient), whether kde2d's brentq would have found a root, and which rows
  were deferred.

  ``solver="brentq"``: a batched copy of scipy's brentq in the compute dtype (agrees with kde2d
  to ~1e-15). ``solver="fast"``: :func:`_solve_t_fast` for float64 on grids of at least 64
  (float32, and smaller grids where the solve is cheap and the smaller graph compiles faster,
  use brentq).
  In float32 brentq's relative tolerance is float32's 4 eps (``batched_brentq`` raises scipy's
  float64 rtol to the dtype's): with float64's, float32 iterates stall, every row ran all 100
  iterations, came out unconverged and took the fallback scan (DiffKDE batch of 32 at grid 64:
  ~200 evaluations of f instead of 7, t* the same to ~3e-7, but ``converged`` False and hence
  no implicit t* gradient).
  Rows without a sign change on [0, 0.1] get Botev's fallback in both.
  ``defer=True``: rows that need Botev's fallback or (fast solver) the exact brentq are not
  solved here but returned with ``deferred`` True (t* = 0.1 for them, a finite placeholder): a
  compiled program then holds neither the fallback scan nor the exact brentq (at grid 512 under
  XLA they were 12 of its 18.6 s of compiling), and the caller solves those rare rows apart.

  Returns:
    :class:`Solved`.
  """
  if split is not None:  # the fast solver with defer, float64, from the caller's two forms
    return _split_polish(split, grid, n_points, form, *_split_bracket(split, grid, n_points, form))
  a2 = tf.stop_gradient(a2)
  dtype = a2.dtype
  full = a2
  if dtype == tf.float64:
    a2 = _Truncated(a2)
  f = lambda t: _fixed_point(a2, grid, n_points, t, form)  # noqa: E731
  lo, hi = _bracket_ends(n_points)
  # kde-diffusion's f(0) = 0 - (0 - g) / g = 1 exactly for any finite g > 0 (saves a grid pass
  # with k^10 weights that would overflow float32); the textbook form has f(0) = -g(0).
  f_lo = tf.ones_like(lo) if form == "kde_diffusion" else f(lo)
  psi = None
  if solver == "fast" and dtype == tf.float64 and grid.w.shape[0] >= _FAST_MIN_GRID:
    f_parts = lambda t: _fixed_point(a2, grid, n_points, t, form, with_psi=True)  # noqa: E731
    root, converged, redo, psi = _solve_t_fast(full, f_parts, grid.w.shape[0], n_points, form,
                                               lo, hi, f_lo, defer)
  else:
    result = root_finding.batched_brentq(f, lo, hi, f_a=f_lo)
    root, converged = result.root, result.converged
    redo = tf.zeros_like(converged)
  if defer:
    return _deferring(root, converged, redo, psi, hi)

  def fallback():
    # Botev's MATLAB kde2d: if no root is bracketed, minimise |f| on [0, 0.1]. |f| need not be
    # unimodal, so scan a log-spaced grid first and refine around its best point.
    scan = tf.constant(np.geomspace(_SCAN_RANGE[0], T_BRACKET[1], _SCAN_POINTS), dtype)
    values = tf.TensorArray(dtype, size=_SCAN_POINTS)
    values = tf.while_loop(
        lambda k, _: k < _SCAN_POINTS,
        lambda k, acc: (k + 1, acc.write(k, tf.abs(f(tf.fill(tf.shape(lo), scan[k]))))),
        (0, values))[1]
    best = tf.argmin(tf.transpose(values.stack()), axis=1, output_type=tf.int32)
    left = tf.where(best > 0, tf.gather(scan, tf.maximum(best - 1, 0)), lo)
    right = tf.gather(scan, tf.minimum(best + 1, _SCAN_POINTS - 1))
    t_min = root_finding.batched_golden_min(lambda t: tf.abs(f(t)), left, right)
    return tf.where(converged, root, t_min)

  t_star = tf.cond(tf.reduce_all(converged), lambda: root, fallback)
  return Solved(tf.cast(t_star, dtype), converged, tf.zeros_like(converged))


# Fast solver: smallest grid that uses it, smallest t* it accepts, float32 brentq's relative
# tolerance, float32 truncation cut, relative offset of the second polish point, accepted change
# in the last polish step (relative).
_FAST_MIN_GRID = 64
_FAST_T_MIN = 1e-13
_FAST_RTOL = 2e-5
_FAST_LOG_CUT = 40.0
_FAST_SECANT_OFFSET = 1e-3
# With defer: the second polish point's offset, and the last step below which a row's root is
# settled at the polish's third point (kde2d's brentq stops at 2e-12 absolute: 1e-9 relative at
# t* = 2e-3, 2e-8 at 1e-4).
_FAST_DEFER_OFFSET = 1e-7
_FAST_SETTLED = 1e-9
_FAST_ACCEPT = 1e-6
# Scale for a2 in float32 (N is divided by it: psi * N, hence every tau and g, is unchanged):
# keeps order-5 sums (up to ~(pi n)^10 a2) far from float32's overflow at grid 512.
_FAST_A2_SCALE = 2.0 ** -20


# The split form's float64 blocks: f(0.1) from the lowest 64 frequencies; the polish from the
# smallest block that covers its times down to _SPLIT_T_MARGIN times the chunk's smallest t0
# (the polish stays within [0.5, 2] t0, and near the root the lower psi levels' times were >= 0.77
# t, measured); rows whose sums need more come out NaN and are deferred.
_SPLIT_HI_BLOCK = 64
_SPLIT_BLOCKS = (64, 96, 128, 192, 256, 384)
_SPLIT_T_MARGIN = 0.6


def _bracket_ends(n_points):
  """kde2d's bracket [0, 0.1] for every row: ``(lo, hi)``, each ``[batch]``."""
  zeros = tf.zeros_like(n_points)
  return zeros + T_BRACKET[0], zeros + T_BRACKET[1]


def _deferring(root, converged, redo, psi, hi) -> Solved:
  """:class:`Solved` with ``defer``: rows to redo or without a bracket are left to the caller
  (t* = 0.1 for them, a finite placeholder)."""
  deferred = redo | ~converged
  return Solved(tf.where(deferred, hi, root), converged & ~deferred, deferred, psi)


def _split_bracket(split: SplitA2, grid, n_points, form):
  """The split form's bracketing (float32): ``(t0, f(0.1))`` per row, for :func:`_split_polish`
  (two stages a caller may compile as two programs)."""
  lo, hi = _bracket_ends(n_points)
  return _fast_bracket(None, None, grid.w.shape[0], n_points, form, lo, hi, tf.ones_like(lo),
                       split, grid)


def _split_polish(split: SplitA2, grid, n_points, form, t0, f_hi) -> Solved:
  """The split form's float64 polish from :func:`_split_bracket`'s ``(t0, f_hi)``."""
  lo, hi = _bracket_ends(n_points)
  root, converged, redo, psi = _fast_polish(None, grid.w.shape[0], n_points, form, lo, hi,
                                            tf.ones_like(lo), t0, f_hi, True, split, grid)
  return _deferring(root, converged, redo, psi, hi)


def _split_parts(split: SplitA2, grid, n, n_points, form, t0):
  """The polish's float64 ``f_parts`` from the smallest block of ``split`` its times need."""
  sizes = [s for s in _SPLIT_BLOCKS if s < n] + [n]
  k_need = tf.sqrt(_Truncated.LOG_CUT / (np.pi ** 2 * _SPLIT_T_MARGIN * tf.reduce_min(t0)))
  branch = tf.reduce_sum(tf.cast(k_need > tf.constant(sizes[:-1], k_need.dtype), tf.int32))

  def padded(size):
    block = split.block(size)
    return tf.pad(block, [[0, 0], [0, n - size], [0, n - size]]) if size < n else block

  a2 = tf.switch_case(branch, [lambda size=size: padded(size) for size in sizes])
  # The whole grid is every frequency there is: nothing is missing however small the times.
  available = tf.gather(tf.constant(sizes[:-1] + [np.inf], n_points.dtype), branch)
  a2 = _Truncated(a2, available=available)
  return lambda t: _fixed_point(a2, grid, n_points, t, form, with_psi=True)  # noqa: E731


def _solve_t_fast(a2, f64_parts, n, n_points, form, lo, hi, f_lo, defer=False,
                  split: Optional[SplitA2] = None, grid=None):
  """Float32 bracketing + float64 secant polish of f's root; falls back to exact brentq.

  1. f64(0.1): its sign decides, exactly as in kde2d, whether [0, 0.1] brackets a root.
  2. brentq in float32 on [0, 0.1] to 2e-5 relative, with the a2 grid in float32 (half the
     memory traffic; scaled by 2^-20, N by 2^20, which leaves every tau and g unchanged but keeps
     order-5 sums from overflowing) and truncated at ``exp(-40)``. (Brent on log t took as many
     steps, all at small t where nothing can be truncated: measured slower.)
  3. Two secant steps in float64 from ``t0`` and ``t0 (1 + 1e-3)``: the error contracts as
     ``e_{k+1} ~ e_k e_{k-1} / t``, so t* is within ~1e-12 relative after 3 float64 evaluations
     (kde2d's own brentq stops at 2e-12 absolute: the two agree to its tolerance).
  4. Rows where the last polish step moved t by more than 1e-6 relative, left (1e-13, 0.1] or
     went non-finite (not seen in the tests or the benchmark) run the exact batched brentq (the
     whole chunk, only then).

  Measured (2 cores): the solve takes ~0.45x (grid 64) and ~0.65x (grid 512) of the brentq
  copy's time; densities agree with kde2d to ~3e-8 relative (brentq's own stopping tolerance).

  ``f64_parts(t)`` is ``(f(t), (psi02, psi20, psi11) at t)`` in float64.

  Returns ``(root, converged, redo, psi)``: ``converged`` is the bracket test (as the brentq
  path); with ``defer`` the rows of step 4 are not solved but returned with ``redo`` True and the
  root 0.1, and ``psi`` holds the psi sums at the returned root (one more pass of the polish
  loop: the caller's final psi sums without another copy of f to compile); else ``psi`` is None.
  """
  t0, f_hi = _fast_bracket(a2, f64_parts, n, n_points, form, lo, hi, f_lo, split, grid)
  return _fast_polish(f64_parts, n, n_points, form, lo, hi, f_lo, t0, f_hi, defer, split, grid)


def _fast_bracket(a2, f64_parts, n, n_points, form, lo, hi, f_lo, split=None, grid=None):
  """Steps 1-2 of :func:`_solve_t_fast`: ``(t0, f(0.1))``, t0 = 0.1 where [0, 0.1] brackets no
  root (or, split, f(0.1) needed more than its block: NaN)."""
  if split is None:
    dtype = a2.dtype
    f_hi = f64_parts(hi)[0]
    a2_32 = tf.cast(a2 * _FAST_A2_SCALE, tf.float32)
  else:
    dtype = n_points.dtype
    low = _Truncated(split.block(_SPLIT_HI_BLOCK), available=_SPLIT_HI_BLOCK)
    f_hi = _fixed_point(low, grid, n_points, hi, form)  # NaN: needs more than the block
    a2_32 = split.whole32()
  bracketed = _bracketed(f_lo, f_hi)
  grid32 = _grid_constants(n, tf.float32)
  a2_32 = _Truncated(a2_32, log_cut=_FAST_LOG_CUT)
  n32 = tf.cast(n_points / _FAST_A2_SCALE, tf.float32)
  f32 = lambda t: _fixed_point(a2_32, grid32, n32, t, form)  # noqa: E731
  first = root_finding.batched_brentq(
      f32, tf.cast(lo, tf.float32), tf.cast(hi, tf.float32), f_a=tf.cast(f_lo, tf.float32),
      f_b=tf.where(bracketed, tf.cast(f_hi, tf.float32), tf.ones_like(lo, tf.float32)),
      xtol=0.0, rtol=_FAST_RTOL)
  t0 = tf.cast(first.root, dtype)
  return tf.where(bracketed, tf.clip_by_value(t0, _FAST_T_MIN, T_BRACKET[1]), hi), f_hi


def _bracketed(f_lo, f_hi):
  # brentq: f(a) f(b) > 0 raises; f(b) == 0 returns b (f(0) = 1 in kde-diffusion's form).
  return (f_lo * f_hi <= 0) & tf.math.is_finite(f_hi)


def _fast_polish(f64_parts, n, n_points, form, lo, hi, f_lo, t0, f_hi, defer=False, split=None,
                 grid=None):
  """Steps 3-4 of :func:`_solve_t_fast` from :func:`_fast_bracket`'s ``(t0, f_hi)``: its
  ``(root, converged, redo, psi)``."""
  dtype = t0.dtype
  bracketed = _bracketed(f_lo, f_hi)
  if split is not None:
    f64_parts = _split_parts(split, grid, n, n_points, form, t0)

  def secant(ta, fa, tb, fb):
    step = fb * (tb - ta) / (fb - fa)
    return tb - tf.where(tf.math.is_finite(step), step, tf.zeros_like(step))

  # The float64 evaluations as one loop (one copy of f in the graph: faster tracing and
  # compiling). Step 0 evaluates t0, step 1 t0 (1 + offset), step 2 the secant of the two; the
  # secant through step 2 and the better earlier point gives t3. With defer the offset is 1e-7
  # (the secant is then a Newton step: t0's error e ~1e-5 becomes ~e^2), step 2 also yields the
  # psi sums, and rows whose t3 moved less than 1e-9 relative are settled at step 2's point;
  # step 3, only while a row of the chunk is not, evaluates the psi sums at its t3 (or 0.1 where
  # not accepted).
  offset = _FAST_DEFER_OFFSET if defer else _FAST_SECANT_OFFSET

  def accepted(ta, fa, t2, f2):
    t3 = secant(ta, fa, t2, f2)
    ok = (tf.abs(t3 - t2) <= _FAST_ACCEPT * t2) & (t3 > _FAST_T_MIN) & (t3 <= hi)
    ok &= tf.math.is_finite(t3) & tf.math.is_finite(f2)
    return tf.where(ok & bracketed, t3, hi), ok

  def polish(k, ta, fa, tb, fb, psi, settled):
    x = tf.where(tf.equal(k, 0), t0,
                 tf.where(tf.equal(k, 1), t0 * (1 + offset),
                          tf.where(bracketed, tf.clip_by_value(secant(ta, fa, tb, fb),
                                                               0.5 * t0, 2 * t0), hi)))
    if defer:
      x = tf.where(tf.equal(k, 3), accepted(ta, fa, tb, fb)[0], x)
    fx, psi_x = f64_parts(x)
    last = tf.equal(k, 3)
    # Keep the point with the smaller |f| as the older one (step 2's partner); step 3 (the
    # root's psi sums) leaves the points as they are.
    older_better = tf.abs(fa) <= tf.abs(fb)
    new_a = (tf.where(tf.equal(k, 0), x, tf.where(older_better, ta, tb)),
             tf.where(tf.equal(k, 0), fx, tf.where(older_better, fa, fb)))
    ta, fa = (tf.where(last, ta, new_a[0]), tf.where(last, fa, new_a[1]))
    tb, fb = tf.where(last, tb, x), tf.where(last, fb, fx)
    if defer:
      at_two = tf.equal(k, 2)
      t3 = secant(ta, fa, tb, fb)
      settles = (tf.abs(t3 - tb) <= _FAST_SETTLED * tb) & tf.math.is_finite(t3)
      settles &= tf.reduce_all(tf.math.is_finite(tf.stack(psi_x)), axis=0)
      settled = tf.where(at_two, settles & bracketed, settled)
      keep = tf.logical_not(at_two) & (settled | tf.logical_not(last))
      psi = tuple(tf.where(keep, old, new) for new, old in zip(psi_x, psi))
    return k + 1, ta, fa, tb, fb, psi, settled

  nan = tf.fill(tf.shape(t0), tf.constant(np.nan, dtype))
  if defer:
    def more(k, *state):
      return (k < 3) | ((k < 4) & tf.reduce_any(bracketed & ~state[-1]))
  else:
    def more(k, *_):
      return k < 3
  _, ta, fa, t2, f2, psi, settled = tf.while_loop(
      more, polish, (0, nan, nan, nan, nan, (nan, nan, nan), tf.zeros_like(bracketed)),
      maximum_iterations=4 if defer else 3)
  t3, ok = accepted(ta, fa, t2, f2)
  t3 = tf.where(settled, t2, t3)
  ok |= settled
  if split is not None:
    ok &= tf.reduce_all(tf.math.is_finite(tf.stack(psi)), axis=0)  # a block too small: NaN
  # (Split: a row whose f(0.1) needed more than its block is NaN there, hence not bracketed, and
  # deferred with the rows to redo.)
  redo = bracketed & ~ok

  if defer:
    return t3, bracketed, redo, psi

  def exact():
    result = root_finding.batched_brentq(lambda t: f64_parts(t)[0], lo, hi, f_a=f_lo, f_b=f_hi)
    return tf.where(redo, result.root, t3), tf.where(redo, result.converged, bracketed)

  root, converged = tf.cond(tf.reduce_any(redo), exact, lambda: (t3, bracketed))
  return root, converged, tf.zeros_like(redo), None


def _attach_implicit_gradient(t_star, converged, a2, grid, n_points, form):
  """Identity on t*, with the implicit-function gradient ``-(df/da2) / (df/dt)`` w.r.t. ``a2``."""

  @tf.custom_gradient
  def identity(a2_in):
    def grad(upstream):
      t = tf.stop_gradient(t_star)
      with tf.GradientTape() as tape:
        tape.watch([a2_in, t])
        f = _fixed_point(a2_in, grid, n_points, t, form)
      df_da2, df_dt = tape.gradient(f, [a2_in, t])
      usable = converged & tf.math.not_equal(df_dt, 0.0) & tf.math.is_finite(df_dt)
      scale = tf.where(usable, -upstream / tf.where(usable, df_dt, tf.ones_like(df_dt)),
                       tf.zeros_like(df_dt))
      return scale[:, None, None] * df_da2
    return tf.identity(t_star), grad

  return identity(a2)
