"""The fixed-point functional of kde-diffusion's bandwidth selection (part of ``tfser.ops.kde``).

``a2 = T ** 2`` (the squared, halved DCT of the histogram, ``[b, n, n]``) -> kde2d's ``psi(i, j,
t)`` sums (one batched matmul per tree level, each node at its own time, high frequencies skipped
where negligible: :class:`_Truncated`) -> ``f(t)``, whose root is t* (:func:`_fixed_point`).
``tfser.ops.kde`` documents the algorithm; ``tfser.ops.kde_solvers`` finds the root.
"""

from typing import NamedTuple

import numpy as np

import tfser  # noqa: F401  (Keras flavour before TensorFlow)
import tensorflow as tf


class _Grid(NamedTuple):
  """Per-grid constants in the compute dtype."""
  w: tf.Tensor  # [n]: 1 at k = 0, else 1/2 (kde2d's w)
  k2_pow: tf.Tensor  # [6, n]: (k^2)^p, p = 0..5 (0^0 = 1 as numpy)
  neg_pi2_k2: tf.Tensor  # [n - 1]: -pi^2 k^2 for k >= 1 (k = 0 is handled apart: t = inf safe)


def _grid_constants(n: int, dtype) -> _Grid:
  k2 = np.arange(n, dtype=np.float64) ** 2
  w = np.full(n, 0.5)
  w[0] = 1.0
  k2_pow = np.stack([k2 ** p for p in range(6)])
  return _Grid(w=tf.constant(w, dtype), k2_pow=tf.constant(k2_pow, dtype),
               neg_pi2_k2=tf.constant(-np.pi ** 2 * k2[1:], dtype))


def _heat(grid: _Grid, t: tf.Tensor) -> tf.Tensor:
  """``exp(-pi^2 k^2 t)`` over k for each t: ``[...]`` -> ``[..., n]``; k = 0 gives 1 even at t = inf."""
  decay = tf.exp(grid.neg_pi2_k2 * t[..., None])
  return tf.concat([tf.ones_like(decay[..., :1]), decay], axis=-1)


def _contract(a2: tf.Tensor, grid: _Grid, taus: tf.Tensor, nodes) -> tf.Tensor:
  """kde2d's ``psi`` sums for several (i, j) nodes at once, each at its own time.

  ``value(i, j) = (-1)^(i+j) pi^(2(i+j)) sum_ab u_a a2[a, b] v_b`` with
  ``u = w exp(-pi^2 k^2 tau) k^(2j)`` on the first axis and ``v = (same) k^(2i)`` on the second.

  Args:
    a2: ``[batch, n, n]``.
    taus: ``[batch, m]`` times, one per node.
    nodes: m pairs (i, j).

  Returns:
    ``[batch, m]``.
  """
  size = a2.shape[-1]  # a2 may be a low-frequency block a2[:, :size, :size] (see _Truncated)
  grid = _Grid(w=grid.w[:size], k2_pow=grid.k2_pow[:, :size], neg_pi2_k2=grid.neg_pi2_k2[:size - 1])
  i_pows = tf.gather(grid.k2_pow, [i for i, _ in nodes])  # [m, n]
  j_pows = tf.gather(grid.k2_pow, [j for _, j in nodes])
  scale = tf.constant([(-1) ** (i + j) * np.pi ** (2 * (i + j)) for i, j in nodes], a2.dtype)
  we = grid.w * _heat(grid, taus)  # [batch, m, n]
  right = we * i_pows
  left = we * j_pows
  # One batched matmul reads a2 once for all m nodes: r[b, m, a] = sum_c a2[b, a, c] right[b, m, c].
  r = tf.linalg.matmul(right, a2, transpose_b=True)
  return scale * tf.reduce_sum(left * r, axis=-1)


class _Truncated:
  """a2 with its low-frequency blocks, for sums whose high frequencies are negligible.

  Every psi sum weights a2[a, c] >= 0 by ``a^(2j) c^(2i) exp(-pi^2 tau (a^2 + c^2))``. Past
  ``k_cut = sqrt(L / (pi^2 tau))`` the exponential is below ``exp(-L)``; with ``L = 60`` the
  dropped terms, even with the ``k^10`` weight of order-5 sums, are ~1e-19 of the terms near the
  weight's peak, far below float64 rounding of the sum. Each call picks the smallest block that
  covers ``k_cut`` for the smallest tau of the chunk (a batch-wide ``tf.switch_case``, so it runs
  under XLA). Used only inside the float64 root solve and the fast solver's float32 stage (cut at
  ``exp(-40)``, far below float32 rounding); no gradient flows through it. A plain float32 input
  keeps the full grid.

  ``available`` (a scalar, may be a tensor): a2 holds only the frequencies below it (the rest
  zero, or a2 is that block); rows whose sums need more (their own smallest tau's ``k_cut``)
  come out NaN, for the caller to solve them apart.
  """

  LOG_CUT = 60.0

  def __init__(self, a2: tf.Tensor, log_cut: float = LOG_CUT, available=None):
    n = a2.shape[-1]
    self.log_cut = log_cut
    self.available = available
    self.full = a2
    # Blocks of at least 64 (below that the branch costs more graph than it saves time).
    self.sizes = [s for s in (n // 8, n // 4, n // 2) if s >= 64] + [n]
    self.blocks = [a2[:, :s, :s] for s in self.sizes[:-1]] + [a2]
    self.shape = a2.shape
    self.dtype = a2.dtype

  def contract(self, grid: "_Grid", taus: tf.Tensor, nodes) -> tf.Tensor:
    value = self._contract(grid, taus, nodes)
    if self.available is None:
      return value
    row_cut = tf.sqrt(self.log_cut / (np.pi ** 2 * tf.reduce_min(taus, axis=1)))
    short = ~(row_cut <= tf.cast(self.available, row_cut.dtype))  # NaN taus count as short
    return tf.where(short[:, None], tf.constant(np.nan, value.dtype), value)

  def _contract(self, grid: "_Grid", taus: tf.Tensor, nodes) -> tf.Tensor:
    if len(self.sizes) == 1:
      return _contract(self.full, grid, taus, nodes)
    tau_min = tf.reduce_min(taus)
    k_cut = tf.sqrt(self.log_cut / (np.pi ** 2 * tau_min))
    k_cut = tf.where(tf.math.is_finite(k_cut), k_cut, tf.constant(np.inf, k_cut.dtype))
    sizes = tf.constant(self.sizes[:-1], k_cut.dtype)
    branch = tf.reduce_sum(tf.cast(sizes < k_cut, tf.int32))
    return tf.switch_case(branch, [
        (lambda block=block: _contract(block, grid, taus, nodes)) for block in self.blocks])


def _contract_any(a2, grid, taus, nodes):
  if isinstance(a2, _Truncated):
    return a2.contract(grid, taus, nodes)
  return _contract(a2, grid, taus, nodes)


_LEVEL5 = tuple((i, 5 - i) for i in range(6))
_LEVEL4 = tuple((i, 4 - i) for i in range(5))
_LEVEL3 = tuple((i, 3 - i) for i in range(4))
_LEVEL2 = ((0, 2), (2, 0), (1, 1))


def _odd_product(i: int) -> float:
  return float(np.prod(np.arange(1, 2 * i, 2)))  # numpy's product over an empty range is 1


def _psi_order2(a2: tf.Tensor, grid: _Grid, n_points: tf.Tensor, t: tf.Tensor):
  """kde2d's ``psi(0, 2, t), psi(2, 0, t), psi(1, 1, t)``, each node computed once (memoised).

  kde2d recomputes the recursion tree (45 grid sums per call of its gamma); the distinct nodes
  are the 6 + 5 + 4 + 3 below, each a grid sum at its own time.
  """
  values = {}
  level = _contract_any(a2, grid, tf.tile(t[:, None], [1, len(_LEVEL5)]), _LEVEL5)
  values.update({node: level[:, m] for m, node in enumerate(_LEVEL5)})
  pi_n = np.pi * n_points  # kde2d: (pi * N) * Sigma
  for nodes in (_LEVEL4, _LEVEL3, _LEVEL2):
    taus = []
    for i, j in nodes:
      total = tf.abs(values[(i + 1, j)] + values[(i, j + 1)])
      c = (1 + 1 / 2 ** (i + j + 1)) / 3
      taus.append((c * _odd_product(i) * _odd_product(j) / (pi_n * total)) ** (1 / (2 + i + j)))
    level = _contract_any(a2, grid, tf.stack(taus, axis=1), nodes)
    values.update({node: level[:, m] for m, node in enumerate(nodes)})
  return values[(0, 2)], values[(2, 0)], values[(1, 1)]


def _fixed_point(a2, grid, n_points, t, form, with_psi=False):
  """The function whose root is t*: kde-diffusion's ``t - (t - g) / g`` or textbook ``t - g``;
  ``with_psi``: ``(f, (psi02, psi20, psi11))``, the psi sums at t as well."""
  psi = _psi_order2(a2, grid, n_points, t)
  psi02, psi20, psi11 = psi
  total = psi02 + psi20 + 2 * psi11
  g = (2 * np.pi * n_points * total) ** (-1 / 3)
  f = t - g if form == "textbook" else t - (t - g) / g
  return (f, psi) if with_psi else f
