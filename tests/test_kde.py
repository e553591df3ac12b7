"""diffusion_kde_2d against kde_diffusion.kde2d 1.0.5, its fallbacks, dtypes, XLA and bin_distribution."""

import functools

from absl.testing import parameterized
import hypothesis
from hypothesis import strategies as st
import kde_diffusion
import numpy as np

import tfser  # noqa: F401
import tensorflow as tf

from tests.kde_cases import KINDS
from tests.kde_cases import make_points
from tfser.ops import dct as dct_lib
from tfser.ops import kde as kde_lib
from tfser.ops import kde_functional
from tfser.ops import kde_solvers
from tfser.ops.kde import bin_distribution
from tfser.ops.kde import diffusion_kde_2d
from tfser.ops.kde import diffusion_kde_2d_with_info

LIMITS = (-1.0, 1.0)
# Every float64 hard-histogram call at a grid uses one batch shape (padded rows, masks), so the
# library's cached graph is traced once per grid and reused by all reference cases (tracing, not
# arithmetic, is what costs time here). Grid 512 runs in chunks of 4 rows (the library default).
SHAPE = {64: (8, 500), 512: (4, 500)}


def reference(points, grid_size, limits=LIMITS):
  """kde2d on one row; None where it raises "did not converge"."""
  try:
    density, _, bandwidth = kde_diffusion.kde2d(points[:, 0], points[:, 1], n=grid_size,
                                                limits=(tuple(limits), tuple(limits)))
  except ValueError as error:
    assert "did not converge" in str(error)
    return None
  return density, bandwidth


def padded_batch(rows, shape=None):
  """Rows of different lengths -> points [b, m, 2] (NaN padding) and mask [b, m].

  A fixed ``shape`` (b, m) keeps hypothesis examples from retracing the graph.
  """
  b, m = shape or (len(rows), max(len(r) for r in rows))
  points = np.full((b, m, 2), np.nan)
  mask = np.zeros((b, m), bool)
  for b, row in enumerate(rows):
    points[b, :len(row)] = row
    mask[b, :len(row)] = True
  return points, mask


class ReferenceEqualityTest(tf.test.TestCase, parameterized.TestCase):
  """float64, hard histogram: max|density - ref| <= 1e-6 max|ref|, bandwidth rel. err <= 1e-6."""

  def assert_matches_reference(self, rows, grid_size, result):
    for b, row in enumerate(rows):
      ref = reference(row, grid_size)
      density = result.density[b].numpy()
      self.assertTrue(np.isfinite(density).all())
      if ref is None:
        self.assertFalse(result.converged[b])
        continue
      self.assertTrue(result.converged[b], msg=f"row {b}")
      ref_density, ref_bandwidth = ref
      self.assertLessEqual(np.abs(density - ref_density).max(), 1e-6 * np.abs(ref_density).max(),
                           msg=f"row {b}")
      self.assertAllClose(result.bandwidth[b].numpy(), ref_bandwidth, rtol=1e-6, atol=0)

  @hypothesis.settings(max_examples=12, deadline=None)
  @hypothesis.given(kinds=st.lists(st.sampled_from(KINDS), min_size=1, max_size=4),
                    n=st.integers(2, 500), seed=st.integers(0, 2**16))
  def test_grid_64_property(self, kinds, n, seed):
    rows = [make_points(kind, n, seed + i) for i, kind in enumerate(kinds)]
    points, mask = padded_batch(rows, shape=SHAPE[64])
    result = diffusion_kde_2d_with_info(tf.constant(points), tf.constant(mask), grid_size=64)
    self.assert_matches_reference(rows, 64, result)

  @hypothesis.settings(max_examples=3, deadline=None)
  @hypothesis.given(kinds=st.lists(st.sampled_from(KINDS), min_size=2, max_size=4),
                    n=st.integers(2, 500), seed=st.integers(0, 2**16))
  def test_grid_512_property(self, kinds, n, seed):
    rows = [make_points(kind, n, seed + i) for i, kind in enumerate(kinds)]
    points, mask = padded_batch(rows, shape=SHAPE[512])
    result = diffusion_kde_2d_with_info(tf.constant(points), tf.constant(mask), grid_size=512)
    self.assert_matches_reference(rows, 512, result)

  @parameterized.parameters(64, 512)
  def test_listed_awkward_cases(self, grid_size):
    # n = 2, duplicates, all identical, points on the limits, Likert values, n = 500, outside.
    rows = [make_points("two", 2, 1), make_points("duplicates", 40, 2),
            make_points("identical", 7, 3), make_points("on_limits", 120, 4),
            make_points("likert", 9, 5), make_points("cluster", 500, 6),
            make_points("outside", 60, 7)]
    points, mask = padded_batch(rows, shape=(8, 500))  # grid 512: two chunks of SHAPE[512]
    result = diffusion_kde_2d_with_info(tf.constant(points), tf.constant(mask),
                                        grid_size=grid_size)
    self.assert_matches_reference(rows, grid_size, result)

  def test_run_eagerly_matches_reference(self):
    # Op by op (no traced graph; data_prep's small corpora), including rows without a root (the
    # fallback's scan and golden-section loops then step through Python).
    rng = np.random.default_rng(11)
    rows = [make_points("two", 2, 1), make_points("likert", 9, 5), make_points("cluster", 300, 6)]
    rows += [rng.uniform(-1, 1, size=(30, 2)) for _ in range(3)]
    points, mask = padded_batch(rows)
    eager = diffusion_kde_2d_with_info(tf.constant(points), tf.constant(mask), grid_size=64,
                                       chunk_size=len(rows), run_eagerly=True)
    self.assertFalse(np.all(eager.converged.numpy()))  # the fallback ran
    self.assert_matches_reference(rows, 64, eager)
    graph = diffusion_kde_2d_with_info(tf.constant(points), tf.constant(mask), grid_size=64,
                                       chunk_size=len(rows))
    self.assertAllEqual(eager.converged, graph.converged)
    # Rows with a root agree to rounding; fallback rows to the golden-section search's
    # resolution (|f| is flat near its minimum, so rounding moves the argmin by ~1e-9).
    ok = graph.converged.numpy()
    self.assertAllClose(eager.t_star.numpy()[ok], graph.t_star.numpy()[ok], rtol=1e-12, atol=0)
    self.assertAllClose(eager.t_star.numpy()[~ok], graph.t_star.numpy()[~ok], rtol=1e-6, atol=0)

  def test_contract_signature_other_limits_and_grid_rounding(self):
    rng = np.random.default_rng(0)
    points = rng.normal(3.0, 0.6, size=(2, 80, 2))
    # kde2d rounds n up to a power of two: 24 -> 32.
    density, bandwidth = diffusion_kde_2d(tf.constant(points), grid_size=24, limits=(1.0, 5.0))
    self.assertEqual(density.shape, (2, 32, 32))
    self.assertEqual(bandwidth.shape, (2, 2))
    for b in range(2):
      ref_density, ref_bandwidth = reference(points[b], 24, limits=(1.0, 5.0))
      self.assertAllClose(density[b], ref_density, atol=1e-6 * np.abs(ref_density).max())
      self.assertAllClose(bandwidth[b], ref_bandwidth, rtol=1e-6)

  def test_chunks_give_the_same_rows_in_the_same_order(self):
    rows = [make_points(k, 40, i) for i, k in enumerate(KINDS)]
    points, mask = padded_batch(rows, shape=SHAPE[64])
    points, mask = tf.constant(points[:7]), tf.constant(mask[:7])
    whole = diffusion_kde_2d_with_info(points, mask, grid_size=64)
    # 7 rows in chunks of at most 3: three chunks of 3 rows, the last padded by a repeated row.
    chunked = diffusion_kde_2d_with_info(points, mask, grid_size=64, chunk_size=3)
    self.assertAllClose(chunked.density, whole.density, atol=1e-12 * whole.density.numpy().max())
    self.assertAllClose(chunked.bandwidth, whole.bandwidth, rtol=1e-10)
    self.assertAllEqual(chunked.converged, whole.converged)

  def test_textbook_form_has_its_own_root(self):
    points = tf.constant(make_points("cluster", 200, 0)[None])
    ours = diffusion_kde_2d_with_info(points, grid_size=64, form="textbook")
    peculiar = diffusion_kde_2d_with_info(points, grid_size=64)
    self.assertTrue(ours.converged[0])
    # Botev's t = g(t) and kde-diffusion's t = (t - g) / g, i.e. g = t / (1 + t), have nearby
    # but different roots.
    self.assertNotAllClose(ours.t_star, peculiar.t_star, rtol=1e-6, atol=0)
    a2, grid, n_points = _internals(points, 64)
    g = kde_functional._fixed_point(a2, grid, n_points, ours.t_star, "textbook")
    self.assertAllClose(g, [0.0], atol=1e-12)


class SolverTest(tf.test.TestCase):
  """The fast solver (float32 brentq + float64 secant polish) and the exact brentq copy."""

  def _awkward(self):
    rows = [make_points("two", 2, 1), make_points("duplicates", 40, 2),
            make_points("identical", 7, 3), make_points("on_limits", 120, 4),
            make_points("likert", 9, 5), make_points("cluster", 500, 6),
            make_points("outside", 60, 7), make_points("on_limits", 300, 8)]
    return rows, padded_batch(rows, shape=SHAPE[64])

  def test_brentq_solver_equals_reference_to_rounding(self):
    rows, (points, mask) = self._awkward()
    result = diffusion_kde_2d_with_info(tf.constant(points), tf.constant(mask), grid_size=64,
                                        solver="brentq")
    for b, row in enumerate(rows):
      ref = reference(row, 64)
      self.assertEqual(bool(result.converged[b]), ref is not None)
      if ref is not None:
        self.assertLessEqual(np.abs(result.density[b].numpy() - ref[0]).max(),
                             1e-12 * np.abs(ref[0]).max(), msg=f"row {b}")
        self.assertAllClose(result.bandwidth[b], ref[1], rtol=1e-12, atol=0)

  def test_fast_roots_and_their_exact_safety_net(self):
    # Eagerly (no graph to trace): the fast solve's roots are brentq's to its tolerance (2e-12
    # absolute), and rows whose polish is not accepted get brentq's roots exactly.
    rows, (points, mask) = self._awkward()
    # Rows that converge (a fallback row would only repeat the same scan in all three solves).
    points = tf.constant(np.nan_to_num(points[:4]))
    valid = tf.constant(mask[:4])
    a2, grid, _ = _internals(points, 512, valid)
    n_points = tf.reduce_sum(tf.cast(valid, tf.float64), axis=1)
    exact, exact_ok = kde_solvers._solve_t(a2, grid, n_points, "kde_diffusion", "brentq")[:2]
    fast, fast_ok = kde_solvers._solve_t(a2, grid, n_points, "kde_diffusion", "fast")[:2]
    self.assertAllEqual(fast_ok, exact_ok)
    self.assertAllClose(fast, exact, rtol=1e-6, atol=4e-12)
    self.assertLess(exact.numpy()[3], 1e-5)  # points on the limits: tiny t*
    accept = kde_solvers._FAST_ACCEPT
    try:
      kde_solvers._FAST_ACCEPT = -1.0  # reject every polish
      redone, redone_ok = kde_solvers._solve_t(a2, grid, n_points, "kde_diffusion", "fast")[:2]
    finally:
      kde_solvers._FAST_ACCEPT = accept
    self.assertAllEqual(redone_ok, exact_ok)
    self.assertAllEqual(redone, exact)


class DeferredRowsTest(tf.test.TestCase):
  """exact_rows="defer" leaves the fallback / exact-brentq rows to the caller, nothing else."""

  def test_deferred_rows_are_the_rows_the_inline_solve_takes_apart(self):
    rows = [make_points("two", 2, 1), make_points("likert", 9, 5), make_points("cluster", 200, 6),
            make_points("on_limits", 120, 4)]
    points, mask = padded_batch(rows, shape=(4, 200))
    run = functools.partial(diffusion_kde_2d_with_info, tf.constant(points), tf.constant(mask),
                            grid_size=512, t_gradient="stop", run_eagerly=True)
    inline, deferred = run(exact_rows="solve"), run(exact_rows="defer")
    fallback = ~inline.converged.numpy()
    self.assertTrue(fallback.any() and not fallback.all())  # both kinds of row are here
    self.assertAllEqual(deferred.deferred, fallback)
    self.assertFalse(inline.deferred.numpy().any())
    kept = ~fallback
    # The deferring solve takes a2 in two precisions (kde_solvers.SplitA2): the same roots to
    # the polish's ~1e-12, the same densities to rounding.
    self.assertAllClose(deferred.t_star.numpy()[kept], inline.t_star.numpy()[kept],
                        rtol=1e-10, atol=0)
    for b in np.flatnonzero(kept):
      self.assertAllClose(deferred.density[b], inline.density[b], rtol=0,
                          atol=1e-10 * np.abs(inline.density[b]).max())
    accept, settled = kde_solvers._FAST_ACCEPT, kde_solvers._FAST_SETTLED
    try:
      # Reject every polish: every row is left to the caller.
      kde_solvers._FAST_ACCEPT = kde_solvers._FAST_SETTLED = -1.0
      rejected = run(exact_rows="defer")
    finally:
      kde_solvers._FAST_ACCEPT, kde_solvers._FAST_SETTLED = accept, settled
    self.assertTrue(rejected.deferred.numpy().all())
    self.assertAllEqual(rejected.t_star, np.full(4, kde_lib.T_BRACKET[1]))
    self.assertFalse(rejected.converged.numpy().any())


class TruncationTest(tf.test.TestCase, parameterized.TestCase):
  """The root solve skips frequencies whose weight exp(-pi^2 k^2 tau) is negligible."""

  @parameterized.parameters(1e-2, 1e-3, 1e-5)
  def test_a_block_too_small_for_a_row_gives_nan_for_that_row_only(self, tau):
    # A block of the lowest 64 frequencies answers for rows whose cut (sqrt(60 / (pi^2 tau)))
    # is inside it, exactly as the whole grid; the other rows get NaN, not a wrong sum.
    points = tf.constant([[[0.1234, -0.987]], [[0.5, 0.5]]], tf.float64)
    a2, grid, _ = _internals(points, 512)
    taus = tf.constant([[tau] * 6, [1e-2] * 6], tf.float64)
    nodes = kde_functional._LEVEL5
    full = kde_functional._contract(a2, grid, taus, nodes).numpy()
    block = kde_functional._Truncated(a2[:, :64, :64], available=64)
    got = block.contract(grid, taus, nodes).numpy()
    fits = np.sqrt(kde_functional._Truncated.LOG_CUT / (np.pi ** 2 * tau)) <= 64
    self.assertEqual(bool(np.isnan(got[0]).all()), not fits)
    if fits:
      self.assertAllClose(got[0], full[0], rtol=1e-13, atol=0)
    self.assertAllClose(got[1], full[1], rtol=1e-13, atol=0)

  @parameterized.parameters(1e-2, 1e-3, 1e-4, 1e-6)
  def test_truncated_psi_sums_equal_full_sums(self, tau):
    # Worst case for truncation: a2 flat over all frequencies (one point: |cos|^2 terms).
    points = tf.constant([[[0.1234, -0.987]], [[0.5, 0.5]]], tf.float64)
    a2, grid, _ = _internals(points, 512)
    taus = tf.constant([[tau] * 6, [2 * tau] * 6], tf.float64)
    nodes = kde_functional._LEVEL5
    full = kde_functional._contract(a2, grid, taus, nodes).numpy()
    truncated = kde_functional._Truncated(a2).contract(grid, taus, nodes).numpy()
    self.assertAllClose(truncated, full, rtol=1e-13, atol=0)


def _internals(points, grid_size, mask=None):
  """a2, grid constants and N as diffusion_kde_2d builds them (hard histogram, float64)."""
  hist = kde_lib.hard_histogram_2d(points, mask, bins=grid_size)
  if mask is None:
    n_points = tf.cast(tf.fill([points.shape[0]], points.shape[1]), points.dtype)
  else:
    n_points = tf.reduce_sum(tf.cast(mask, points.dtype), axis=1)
  transformed = kde_lib.dct_lib.dct2_2d(hist / n_points[:, None, None]).numpy()
  transformed[:, 0, :] /= 2
  transformed[:, :, 0] /= 2
  return tf.constant(transformed ** 2), kde_functional._grid_constants(grid_size, points.dtype), n_points


class FallbackAndBadInputTest(tf.test.TestCase, parameterized.TestCase):

  def test_no_root_rows_fall_back_to_argmin_abs_f(self):
    # Uniform points: kde2d raises "did not converge" for most such sets.
    rng = np.random.default_rng(11)
    rows = [rng.uniform(-1, 1, size=(30, 2)) for _ in range(6)] + [make_points("cluster", 30, 1)]
    points = tf.constant(np.stack(rows))
    result = diffusion_kde_2d_with_info(points, grid_size=64)
    failing = [b for b, row in enumerate(rows) if reference(row, 64) is None]
    self.assertNotEmpty(failing)
    self.assertAllEqual(np.flatnonzero(~result.converged.numpy()), failing)
    self.assertTrue(np.isfinite(result.density.numpy()).all())
    self.assertTrue(np.isfinite(result.bandwidth.numpy()).all())
    # The fallback t* minimises |f| on [0, 0.1] (up to golden-section resolution).
    a2, grid, n_points = _internals(points, 64)
    t = tf.constant(np.linspace(1e-4, 0.1, 400))
    for b in failing:
      tiled = lambda x, b=b: tf.tile(x[b:b + 1], [400] + [1] * (x.shape.rank - 1))  # noqa: E731
      f_grid = np.abs(kde_functional._fixed_point(tiled(a2), grid, tiled(n_points), t,
                                           "kde_diffusion").numpy())
      f_star = abs(kde_functional._fixed_point(a2[b:b + 1], grid, n_points[b:b + 1],
                                        result.t_star[b:b + 1], "kde_diffusion").numpy()[0])
      self.assertLessEqual(f_star, f_grid.min() + 1e-9)
      self.assertTrue(0.0 <= result.t_star[b] <= 0.1)
    # The converged row is unaffected by its neighbours' fallback.
    ref_density, _ = reference(rows[-1], 64)
    self.assertAllClose(result.density[-1], ref_density, atol=1e-6 * ref_density.max())

  def test_row_without_points_is_uniform_and_finite(self):
    points, mask = padded_batch([make_points("cluster", 20, 0), make_points("cluster", 5, 1)])
    mask[1] = False
    result = diffusion_kde_2d_with_info(tf.constant(points), tf.constant(mask), grid_size=16,
                                        histogram="soft")
    self.assertAllClose(result.density[1], np.full((16, 16), 0.25))
    self.assertAllEqual(result.bandwidth[1], [0.0, 0.0])
    self.assertAllEqual(result.converged, [True, False])

  def test_nan_points_name_the_row(self):
    points = np.stack([make_points("cluster", 10, s) for s in range(4)])
    points[2, 3, 1] = np.nan
    points[3, 0, 0] = np.inf
    with self.assertRaisesRegex(ValueError, r"row\(s\) \[2, 3\]"):
      diffusion_kde_2d(tf.constant(points))
    mask = np.ones(points.shape[:2], bool)
    mask[2, 3] = mask[3, 0] = False  # masked-out NaN/Inf is padding, not an error
    density, _ = diffusion_kde_2d(tf.constant(points), tf.constant(mask))
    self.assertTrue(np.isfinite(density.numpy()).all())

  def test_nan_points_fail_in_graph_mode(self):
    points = np.stack([make_points("cluster", 10, s) for s in range(2)])
    points[1, 0, 0] = np.nan
    graph = tf.function(lambda p: diffusion_kde_2d(p, grid_size=16)[0])
    with self.assertRaisesRegex(tf.errors.InvalidArgumentError, "NaN or infinite"):
      graph(tf.constant(points))

  def test_bad_arguments(self):
    points = tf.zeros([1, 3, 2], tf.float64)
    with self.assertRaisesRegex(ValueError, "histogram"):
      diffusion_kde_2d(points, histogram="fuzzy")
    with self.assertRaisesRegex(ValueError, "t_gradient"):
      diffusion_kde_2d(points, t_gradient="none")
    with self.assertRaisesRegex(ValueError, "solver"):
      diffusion_kde_2d(points, solver="newton")
    with self.assertRaisesRegex(ValueError, r"\[batch, n, 2\]"):
      diffusion_kde_2d(tf.zeros([3, 2], tf.float64))


class DtypeAndXlaTest(tf.test.TestCase, parameterized.TestCase):

  def _batch(self):
    rows = [make_points(k, 150, i) for i, k in enumerate(("cluster", "on_limits", "duplicates"))]
    rows.append(make_points("likert", 12, 9))
    return padded_batch(rows)

  @parameterized.product(histogram=("soft",), grid_size=(64,))
  def test_jit_equals_eager_float64(self, histogram, grid_size):
    points, mask = self._batch()
    points, mask = tf.constant(points), tf.constant(mask)
    kwargs = dict(grid_size=grid_size, histogram=histogram)
    eager = diffusion_kde_2d_with_info(points, mask, **kwargs)
    jit = tf.function(lambda p, m: diffusion_kde_2d_with_info(p, m, **kwargs),
                      jit_compile=True)(points, mask)
    self.assertAllEqual(jit.converged, eager.converged)
    scale = np.abs(eager.density.numpy()).max()
    self.assertAllClose(jit.density, eager.density, atol=1e-9 * scale, rtol=0)
    self.assertAllClose(jit.bandwidth, eager.bandwidth, rtol=1e-9)

  @parameterized.parameters((64, True), (512, False))
  def test_float32_close_to_reference(self, grid_size, jit):
    rows = [make_points("cluster", 200, 0), make_points("likert", 30, 1)]
    points = tf.constant(np.stack([r[:30] for r in rows]), tf.float32)
    fn = lambda p: diffusion_kde_2d(p, grid_size=grid_size)  # noqa: E731
    density, bandwidth = (tf.function(fn, jit_compile=True) if jit else fn)(points)
    self.assertEqual(density.dtype, tf.float32)
    for b, row in enumerate(rows):
      ref_density, ref_bandwidth = reference(row[:30], grid_size)
      self.assertLessEqual(np.abs(density[b].numpy() - ref_density).max(),
                           2e-3 * ref_density.max())
      self.assertAllClose(bandwidth[b], ref_bandwidth, rtol=2e-3)

  def test_float32_root_solve_converges_like_float64(self):
    # float32 (and float16 input, computed in float32) uses the batched brentq at float32's own
    # tolerance: rows converge (no fallback) to float64's t* at float32 accuracy.
    rows = [make_points("cluster", 200, 0), make_points("on_limits", 120, 4),
            make_points("duplicates", 40, 2), make_points("likert", 30, 1)]
    rng = np.random.default_rng(11)
    rows.append(rng.uniform(-1, 1, size=(30, 2)))  # a row kde2d rejects (no root)
    points, mask = padded_batch(rows)
    points = np.nan_to_num(points)
    exact = diffusion_kde_2d_with_info(tf.constant(points), tf.constant(mask), histogram="soft")
    ok = exact.converged.numpy()
    self.assertTrue(ok[0] and ok[2] and not ok[4])
    fn = tf.function(lambda p, m: diffusion_kde_2d_with_info(p, m, histogram="soft"),
                     jit_compile=True)
    for dtype, rtol in ((tf.float32, 1e-5), (tf.float16, 2e-2)):
      got = fn(tf.constant(points, dtype), tf.constant(mask))
      self.assertAllEqual(got.converged, exact.converged)
      self.assertAllClose(tf.cast(got.t_star, tf.float64)[ok], exact.t_star[ok], rtol=rtol,
                          atol=0)

  def test_float16_input_soft_histogram_under_jit(self):
    points, mask = self._batch()
    points = tf.constant(np.nan_to_num(points), tf.float16)
    fn = tf.function(lambda p, m: diffusion_kde_2d(p, m, histogram="soft"), jit_compile=True)
    density, bandwidth = fn(points, tf.constant(mask))
    self.assertEqual(density.dtype, tf.float16)
    self.assertTrue(np.isfinite(density.numpy()).all())
    ref, _ = diffusion_kde_2d(tf.cast(points, tf.float64), tf.constant(mask), histogram="soft")
    self.assertAllClose(tf.cast(density, tf.float64), ref, atol=2e-2 * ref.numpy().max(), rtol=0)


class SparseTransformTest(tf.test.TestCase, parameterized.TestCase):
  """The hard histogram's sparse transforms (m <= n / 2 points at grids above 128) equal the dense path."""

  @parameterized.product(n=(512, 384, 2), jit=(False, True))
  def test_sparse_transforms_equal_dense(self, n, jit):
    rng = np.random.default_rng(n)
    m = 60
    rows = rng.integers(0, n, size=(5, m)).astype(np.int32)
    cols = rng.integers(0, n, size=(5, m)).astype(np.int32)
    rows[:, :4], cols[:, :4] = [0, n - 1, 0, n - 1], [0, n - 1, n - 1, 0]  # corners
    rows[0, 10:30], cols[0, 10:30] = rows[0, 30:50], cols[0, 30:50]  # repeated cells
    rows[3] = rows[3, 7]  # every point on one row (raters who agree on activation)
    cols[4, :40] = cols[4, 0]  # most points on one column, the rest on a few
    cols[4, 40:] = rng.integers(0, 3, size=20) % n
    weights = rng.uniform(0.1, 1.0, size=(5, m))
    weights[1, ::3] = 0.0  # slots without mass
    weights[2] = 0.0  # an all-zero grid
    weights[2, 5] = 1.0 / m
    weights[4, 45] = 0.0  # a weightless point on a line of its own is no line
    cols[4, 45] = n - 2
    decay = np.exp(-np.pi ** 2 * np.arange(n) ** 2 * rng.uniform(1e-7, 1e-3, size=(2, 5, 1)))
    hist = np.zeros((5, n, n))
    lines = []
    for b in range(5):
      np.add.at(hist[b], (rows[b], cols[b]), weights[b])
      held = weights[b] != 0
      lines.append(min(np.unique(rows[b][held]).size, np.unique(cols[b][held]).size))
    self.assertEqual(lines[3], 1)
    self.assertLessEqual(lines[4], 4)
    dense_forward = dct_lib.dct2_2d(tf.constant(hist)).numpy()
    dense_inverse = dct_lib.idct2_2d(
        dense_forward * decay[0][:, :, None] * decay[1][:, None, :]).numpy()

    def sparse(r, c, w, d0, d1):
      # All m slots, and (a row at a time) as few slots as the row has lines.
      grid = dct_lib.sparse_grid(r, c, w)
      few = [(dct_lib.dct2_2d_grid(dct_lib.sparse_grid(r[b:b + 1], c[b:b + 1], w[b:b + 1]), n,
                                   lines[b] or 1),
              dct_lib.idct2_2d_grid(dct_lib.sparse_grid(r[b:b + 1], c[b:b + 1], w[b:b + 1]),
                                    d0[b:b + 1], d1[b:b + 1], lines[b] or 1)) for b in range(5)]
      return (dct_lib.dct2_2d_sparse(r, c, w, n), dct_lib.idct2_2d_sparse(r, c, w, d0, d1),
              grid.lines, few)

    fn = tf.function(sparse, jit_compile=True) if jit else sparse
    forward, inverse, found, few = fn(tf.constant(rows), tf.constant(cols), tf.constant(weights),
                                      tf.constant(decay[0]), tf.constant(decay[1]))
    self.assertAllEqual(found, lines)
    for b in range(5):
      pairs = ((forward[b], inverse[b]), (few[b][0][0], few[b][1][0]))
      for sparse_forward, sparse_inverse in pairs:
        self.assertAllClose(sparse_forward, dense_forward[b], rtol=0,
                            atol=1e-12 * np.abs(dense_forward[b]).max())
        self.assertAllClose(sparse_inverse, dense_inverse[b], rtol=0,
                            atol=1e-12 * np.abs(dense_inverse[b]).max())

  def test_path_choice(self):
    config = kde_lib._Config(n=512, lo=-1.0, hi=1.0, histogram="hard", sigma=8.0,
                             t_gradient="stop", form="kde_diffusion", solver="fast")
    self.assertTrue(kde_lib._sparse_transforms(config, 200))
    self.assertTrue(kde_lib._sparse_transforms(config, 256))
    self.assertFalse(kde_lib._sparse_transforms(config, 257))
    self.assertFalse(kde_lib._sparse_transforms(config, None))
    self.assertFalse(kde_lib._sparse_transforms(config, 0))
    self.assertFalse(kde_lib._sparse_transforms(config._replace(histogram="soft"), 200))
    self.assertFalse(kde_lib._sparse_transforms(config._replace(n=128), 20))

  # XLA at grid 256 (still the sparse path): compiling both paths at 512 took ~2 min on 2 cores.
  @parameterized.parameters((512, False), (256, True), (256, False))
  def test_sparse_path_equals_dense_path_and_reference(self, grid_size, jit):
    m = grid_size // 2  # the most points per row that take the sparse path
    rows = [make_points("two", 2, 1), make_points("duplicates", 40, 2),
            make_points("identical", 7, 3), make_points("on_limits", m, 4),
            make_points("likert", 9, 5), make_points("cluster", m, 6),
            make_points("outside", 60, 7), np.zeros((0, 2))]  # the last row has no points
    points, mask = padded_batch(rows, shape=(8, m))
    # The same rows with more (masked) slots than grid_size / 2 take the dense transforms.
    padded, padded_mask = padded_batch(rows, shape=(8, m + 1))
    fn = lambda p, k: diffusion_kde_2d_with_info(p, k, grid_size=grid_size)  # noqa: E731
    if jit:
      fn = tf.function(fn, jit_compile=True)
    sparse = fn(tf.constant(points), tf.constant(mask))
    dense = fn(tf.constant(padded), tf.constant(padded_mask))
    self.assertAllEqual(sparse.converged, dense.converged)
    self.assertFalse(sparse.converged[7])
    for b in range(8):
      scale = np.abs(dense.density[b].numpy()).max()
      self.assertAllClose(sparse.density[b], dense.density[b], rtol=0, atol=1e-12 * scale)
    self.assertAllClose(sparse.bandwidth, dense.bandwidth, rtol=1e-12, atol=0)
    # (Row 7's t* is the fallback's for a stand-in point; its outputs are replaced.)
    self.assertAllClose(sparse.t_star[:7], dense.t_star[:7], rtol=1e-12, atol=0)
    for b, row in enumerate(rows[:7]):
      ref = reference(row, grid_size)
      if ref is None:
        self.assertFalse(sparse.converged[b])
        continue
      self.assertLessEqual(np.abs(sparse.density[b].numpy() - ref[0]).max(),
                           1e-6 * np.abs(ref[0]).max(), msg=f"row {b}")
      self.assertAllClose(sparse.bandwidth[b], ref[1], rtol=1e-6, atol=0)


def _directional_check(test, fn, points, directions=3, step=1e-5, rtol=2e-4):
  """Central finite differences of fn along random directions vs the tape's gradient.

  (tf.test.compute_gradient gives the same verdict but spends about a minute building its
  graphs on a busy 2-core machine; directional derivatives check the same Jacobian-vector
  products in a few calls.)
  """
  with tf.GradientTape() as tape:
    tape.watch(points)
    value = tf.reduce_sum(fn(points))
  grad = tape.gradient(value, points).numpy()
  test.assertTrue(np.isfinite(grad).all())
  rng = np.random.default_rng(0)
  for _ in range(directions):
    v = rng.normal(size=points.shape)
    plus = tf.reduce_sum(fn(points + step * v)).numpy()
    minus = tf.reduce_sum(fn(points - step * v)).numpy()
    numeric = (plus - minus) / (2 * step)
    test.assertAllClose(np.sum(grad * v), numeric, rtol=rtol, atol=1e-9)
  return grad


class GradientTest(tf.test.TestCase, parameterized.TestCase):

  def _points(self):
    return tf.constant(np.stack([make_points("cluster", 12, 3), make_points("cluster", 12, 4)]))

  def test_implicit_t_star_gradient_matches_finite_differences(self):
    points = self._points()
    fn = lambda p: diffusion_kde_2d_with_info(p, grid_size=16, histogram="soft").t_star  # noqa
    self.assertTrue(all(diffusion_kde_2d_with_info(points, grid_size=16,
                                                   histogram="soft").converged))
    grad = _directional_check(self, fn, points)
    self.assertGreater(np.abs(grad).max(), 0.0)

  def test_density_gradient_matches_finite_differences(self):
    points = self._points()
    weights = tf.constant(np.random.default_rng(0).normal(size=(16, 16)))

    def loss(p):
      density, bandwidth = diffusion_kde_2d(p, grid_size=16, histogram="soft")
      return tf.reduce_sum(density * weights, axis=[1, 2]) + tf.reduce_sum(bandwidth, axis=1)

    _directional_check(self, loss, points)

  def test_both_t_gradient_modes_under_jit(self):
    points = self._points()

    def grads(mode):
      def fn(p):
        with tf.GradientTape(persistent=True) as tape:
          tape.watch(p)
          result = diffusion_kde_2d_with_info(p, grid_size=16, histogram="soft",
                                              t_gradient=mode)
          loss = tf.reduce_sum(result.density[:, 4:10, 4:10] ** 2)
        t_grad = tape.gradient(result.t_star, p, unconnected_gradients="zero")
        return tape.gradient(loss, p), t_grad
      return tf.function(fn, jit_compile=True)

    implicit = grads("implicit")(points)
    stop = grads("stop")(points)
    for g in implicit + stop:
      self.assertTrue(np.isfinite(g.numpy()).all())
    self.assertFalse(np.any(stop[1].numpy()))
    self.assertGreater(np.abs(implicit[1].numpy()).max(), 0.0)
    # The two differ exactly by the path through t*.
    self.assertGreater(np.linalg.norm(implicit[0] - stop[0]), 0.0)
    # XLA's gradient equals the eager one (checked against finite differences above).
    with tf.GradientTape() as tape:
      tape.watch(points)
      density = diffusion_kde_2d(points, grid_size=16, histogram="soft")[0]
      loss = tf.reduce_sum(density[:, 4:10, 4:10] ** 2)
    eager = tape.gradient(loss, points)
    self.assertAllClose(implicit[0], eager, rtol=1e-6, atol=1e-9 * np.abs(eager.numpy()).max())


class BinDistributionTest(tf.test.TestCase, parameterized.TestCase):

  @parameterized.parameters((4, np.float64), (2, np.float64), (4, np.float32), (4, np.float16))
  def test_equals_numpy_block_mean(self, bins, dtype):
    rng = np.random.default_rng(bins)
    density = rng.normal(1.0, 1.0, size=(3, 64, 64))
    clipped = np.maximum(density, 1e-12)
    means = clipped.reshape(3, bins, 64 // bins, bins, 64 // bins).mean(axis=(2, 4))
    expected = (means / means.sum(axis=(1, 2), keepdims=True)).reshape(3, bins * bins)
    got = bin_distribution(tf.constant(density.astype(dtype)), bins=bins)
    self.assertEqual(got.dtype, dtype)
    tol = {np.float64: 1e-12, np.float32: 1e-5, np.float16: 2e-3}[dtype]
    self.assertAllClose(got, expected, atol=tol, rtol=tol)

  def test_flatten_order_is_activation_major(self):
    density = np.zeros((1, 8, 8))
    density[0, 6, 1] = 1.0  # activation block 3 (high), valence block 0 (low)
    got = bin_distribution(tf.constant(density), bins=4).numpy()[0]
    self.assertEqual(got.argmax(), 3 * 4 + 0)
    self.assertAllClose(got.sum(), 1.0)

  def test_all_negative_grid_is_uniform(self):
    got = bin_distribution(tf.fill([1, 8, 8], -1.0), bins=2).numpy()
    self.assertAllClose(got, np.full((1, 4), 0.25))


if __name__ == "__main__":
  tf.test.main()
