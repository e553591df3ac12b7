"""Tests for tfser.ops.upsample: Zhang et al.'s upsampling of ratings (annotators paper, sec. 2).

The statistical checks compare against closed forms nobody here wrote: the variance of the mean of
a uniformly random size-k subset drawn without replacement, sigma^2 / k * (n - k) / (n - 1)
(finite-population correction), and the variance of U(-h, h), h^2 / 3.
"""

from absl.testing import parameterized
import hypothesis
from hypothesis import strategies as st
import numpy as np
import scipy.stats

import tfser  # noqa: F401  (Keras flavour before TensorFlow)
import tensorflow as tf

from tfser.ops import upsample

DTYPES = (tf.float16, tf.float32, tf.float64)
ATOL = {tf.float16: 2e-3, tf.float32: 1e-6, tf.float64: 1e-12}


def _ragged_batch(rng, rows=5, raters=7, lo=-1.0, hi=1.0):
  """[rows, raters, 2] ratings with NaN in masked slots, and a mask with 1..raters valid each."""
  points = rng.uniform(lo, hi, size=(rows, raters, 2))
  counts = rng.integers(1, raters + 1, size=rows)
  mask = np.arange(raters)[None, :] < counts[:, None]
  mask = np.stack([rng.permutation(m) for m in mask])
  points[~mask] = np.nan
  return points, mask


class UpsampleRatingsTest(tf.test.TestCase, parameterized.TestCase):

  @parameterized.parameters(*DTYPES)
  def test_points_within_limits_and_rating_range(self, dtype):
    rng = np.random.default_rng(0)
    points, mask = _ragged_batch(rng, rows=6, raters=9)
    points[0, mask[0]] = 1.0  # raters on the limit: the noise must be clamped away
    out = upsample.upsample_ratings(tf.constant(points, dtype), mask, samples=300, seed=[3, 4])
    self.assertEqual(out.dtype, dtype)
    self.assertEqual(out.shape, (6, 300, 2))
    out = out.numpy().astype(np.float64)
    self.assertTrue(np.all(np.isfinite(out)))
    self.assertTrue(np.all(out >= -1.0) and np.all(out <= 1.0))
    for row in range(6):
      valid = points[row, mask[row]]
      half_width = valid.std(axis=0) / 2 + upsample.STD_EPSILON
      lower = np.maximum(valid.min(axis=0) - half_width, -1.0) - ATOL[dtype]
      upper = np.minimum(valid.max(axis=0) + half_width, 1.0) + ATOL[dtype]
      self.assertTrue(np.all(out[row] >= lower) and np.all(out[row] <= upper), f"row {row}")

  def test_mean_and_variance_match_closed_form(self):
    # Ratings inside [-0.5, 0.5] so nothing is clamped; many samples per row.
    rng = np.random.default_rng(1)
    samples = 20000
    for n in (2, 5, 9):
      ratings = rng.uniform(-0.5, 0.5, size=(1, n, 2))
      out = upsample.upsample_ratings(tf.constant(ratings), None, samples=samples,
                                      seed=[n, 7]).numpy()[0]
      sigma2 = ratings[0].var(axis=0)  # population variance, ddof=0
      k = np.arange(1, n + 1)
      subset_var = sigma2 * np.mean((n - k) / (k * (n - 1)))
      noise_var = (np.sqrt(sigma2) / 2) ** 2 / 3
      expected_var = subset_var + noise_var
      self.assertAllClose(out.mean(axis=0), ratings[0].mean(axis=0),
                          atol=5 * np.sqrt(expected_var / samples).max())
      self.assertAllClose(out.var(axis=0), expected_var, rtol=0.06)

  def test_sample_std_option(self):
    ratings = np.array([[[0.1, -0.2], [0.3, 0.4], [-0.1, 0.0]]])
    std0 = upsample.rating_std(tf.constant(ratings), tf.ones([1, 3], tf.bool), ddof=0)
    std1 = upsample.rating_std(tf.constant(ratings), tf.ones([1, 3], tf.bool), ddof=1)
    self.assertAllClose(std0[0], ratings[0].std(axis=0, ddof=0))
    self.assertAllClose(std1[0], ratings[0].std(axis=0, ddof=1))
    one = upsample.rating_std(tf.constant(ratings), [[True, False, False]], ddof=1)
    self.assertAllEqual(one, [[0.0, 0.0]])

  @parameterized.parameters(*DTYPES)
  def test_deterministic_for_a_seed_and_under_xla(self, dtype):
    rng = np.random.default_rng(2)
    points, mask = _ragged_batch(rng)
    points = tf.constant(points, dtype)
    first = upsample.upsample_ratings(points, mask, samples=50, seed=[5, 6])
    again = upsample.upsample_ratings(points, mask, samples=50, seed=tf.constant([5, 6]))
    other = upsample.upsample_ratings(points, mask, samples=50, seed=[5, 7])
    compiled = tf.function(
        lambda p, s: upsample.upsample_ratings(p, mask, samples=50, seed=s),
        jit_compile=True)(points, tf.constant([5, 6], tf.int64))
    self.assertAllEqual(first, again)
    self.assertGreater(np.abs(first.numpy() - other.numpy()).max(), 0.01)
    self.assertAllClose(first, compiled, atol=ATOL[dtype], rtol=0)

  def test_same_draws_in_every_dtype(self):
    points, mask = _ragged_batch(np.random.default_rng(3))
    outs = [upsample.upsample_ratings(tf.constant(points, d), mask, samples=40, seed=[1, 1])
            for d in DTYPES]
    self.assertAllClose(outs[2], tf.cast(outs[1], tf.float64), atol=1e-6)
    self.assertAllClose(outs[2], tf.cast(outs[0], tf.float64), atol=5e-3)

  def test_generator_seed_advances(self):
    gen = tf.random.Generator.from_seed(11)
    points = tf.constant(np.random.default_rng(4).uniform(-1, 1, (2, 4, 2)))
    first = upsample.upsample_ratings(points, None, samples=20, seed=gen)
    second = upsample.upsample_ratings(points, None, samples=20, seed=gen)
    self.assertGreater(np.abs(first.numpy() - second.numpy()).max(), 0.0)

  @parameterized.parameters(*DTYPES)
  def test_one_rater_and_empty_rows(self, dtype):
    points = np.full((3, 4, 2), np.nan)
    points[0, 2] = [0.25, -0.75]
    points[1, 0] = [1.0, -1.0]  # on the limits
    mask = np.zeros((3, 4), bool)
    mask[0, 2] = mask[1, 0] = True  # row 2: no valid rater
    out = upsample.upsample_ratings(tf.constant(points, dtype), mask, samples=30, seed=[0, 0])
    out = out.numpy().astype(np.float64)
    self.assertAllClose(out[0], np.broadcast_to([0.25, -0.75], (30, 2)), atol=ATOL[dtype], rtol=0)
    # Zero std leaves only the footnote's 1e-12 half-width of noise, clamped at the limits.
    self.assertAllClose(out[1], np.broadcast_to([1.0, -1.0], (30, 2)), atol=ATOL[dtype], rtol=0)
    self.assertAllEqual(out[2], np.zeros((30, 2)))  # documented: the centre of the limits
    centre = upsample.upsample_ratings(tf.constant(points, dtype), mask, samples=3, seed=[0, 0],
                                       limits=(0.0, 4.0))
    self.assertAllEqual(centre[2], np.full((3, 2), 2.0))

  def test_masked_slots_never_matter(self):
    points, mask = _ragged_batch(np.random.default_rng(5))
    filled = np.where(mask[..., None], points, 123.0)
    out_nan = upsample.upsample_ratings(tf.constant(points), mask, samples=25, seed=[9, 9])
    out_filled = upsample.upsample_ratings(tf.constant(filled), mask, samples=25, seed=[9, 9])
    self.assertAllEqual(out_nan, out_filled)

  def test_nan_in_valid_rating_names_the_row(self):
    points = np.zeros((3, 2, 2))
    points[2, 1, 0] = np.nan
    with self.assertRaisesRegex(ValueError, r"row 2 \(rater slot 1\)"):
      upsample.upsample_ratings(tf.constant(points), None, samples=5, seed=[0, 0])

  def test_gradient_finite_and_zero_for_masked_raters(self):
    rng = np.random.default_rng(6)
    _, mask = _ragged_batch(rng)
    mask[0] = [True] + [False] * 6  # a one-rater row: std 0, sqrt must not give NaN
    points = tf.constant(rng.uniform(-1, 1, size=mask.shape + (2,)))
    with tf.GradientTape() as tape:
      tape.watch(points)
      out = upsample.upsample_ratings(points, mask, samples=40, seed=[2, 2])
      loss = tf.reduce_sum(tf.sin(3 * out))
    grad = tape.gradient(loss, points).numpy()
    self.assertTrue(np.all(np.isfinite(grad)))
    self.assertAllEqual(grad[~mask], np.zeros_like(grad[~mask]))
    self.assertGreater(np.abs(grad[mask]).max(), 0.0)

  def test_gradient_matches_numeric(self):
    # With a fixed seed the op is a smooth function of the ratings (away from the clamp).
    ratings = tf.constant(np.random.default_rng(7).uniform(-0.5, 0.5, (2, 4, 2)))
    mask = tf.constant([[True, True, True, False], [True, True, False, True]])
    fn = lambda r: upsample.upsample_ratings(r, mask, samples=8, seed=[4, 4])
    theoretical, numerical = tf.test.compute_gradient(fn, [ratings], delta=1e-6)
    self.assertAllClose(theoretical[0], numerical[0], atol=1e-6)


class PerRowSeedsTest(tf.test.TestCase, parameterized.TestCase):
  """Per-row seeds [batch, 2]: each row is the batch-1 call with its own seed, bit for bit."""

  @parameterized.product(dtype=DTYPES, jit=(False, True))
  def test_rows_equal_batch_one_calls(self, dtype, jit):
    rng = np.random.default_rng(8)
    points, mask = _ragged_batch(rng, rows=7, raters=6)
    mask[3] = False  # a row with no valid rater
    seeds = np.stack([rng.integers(-2**62, 2**62, 7), rng.integers(-2**62, 2**62, 7)], 1)
    seeds[5] = seeds[4]  # equal seeds in different rows give equal draws
    run = lambda p, m, s: upsample.upsample_ratings(p, m, samples=37, seed=s, std_ddof=1)
    if jit:
      run = tf.function(run, jit_compile=True)
    points = tf.constant(points, dtype)
    together = run(points, tf.constant(mask), tf.constant(seeds)).numpy()
    for row in range(7):
      alone = run(points[row:row + 1], tf.constant(mask[row:row + 1]), tf.constant(seeds[row]))
      self.assertAllEqual(together[row], alone.numpy()[0], msg=f"row {row}")
    # Reordering the rows (and their seeds) reorders the output and changes nothing else.
    order = rng.permutation(7)
    shuffled = run(tf.gather(points, order), tf.constant(mask[order]), tf.constant(seeds[order]))
    self.assertAllEqual(shuffled.numpy(), together[order])
    self.assertGreater(np.abs(together[0] - together[1]).max(), 0.0)

  def test_bits_same_eagerly_and_under_xla(self):
    seeds = tf.constant([[1, 2], [-3, 2**40], [1, 2]], tf.int64)
    eager = upsample.stateless_bits([3, 4, 5], seeds, stream=2)
    jit = tf.function(lambda s: upsample.stateless_bits([3, 4, 5], s, stream=2),
                      jit_compile=True)(seeds)
    self.assertAllEqual(eager, jit)
    for row in range(3):
      self.assertAllEqual(eager[row], upsample.stateless_bits([1, 4, 5], seeds[row], 2)[0])

  def test_single_seed_numbers_unchanged(self):
    # Computed with the single-seed code before per-row seeds existed (commit 244733f): the
    # DiffKDE layer and training use this path, so its draws must never move.
    bits = upsample.stateless_bits([2, 3], tf.constant([5, -6], tf.int64), 2)
    self.assertAllEqual(bits, np.array([[455079211, 1603448515, 1434919582],
                                        [3971500896, 1924252043, 2140341972]], np.uint32))
    points = np.array([[[0.1, -0.2], [0.3, 0.4], [-0.5, 0.0]],
                       [[0.9, 0.8], [-0.7, 0.6], [0.2, -0.9]]])
    mask = np.array([[True, True, False], [True, True, True]])
    expected = np.array([
        0.07879077016898124, -0.18491900623639113, 0.08945002847358577, -0.2554211417489463,
        0.18685190285583436, 0.09079333282943078, 0.3503087335124995, -0.13520977950405427,
        0.15304120985583206, 0.4895054970576659, 0.05101619451769643, -0.7336403914110332,
    ]).reshape(2, 3, 2)
    out = upsample.upsample_ratings(tf.constant(points), mask, samples=3, seed=[7, 8],
                                    std_ddof=1)
    self.assertAllEqual(out, expected)
    graph = tf.function(lambda p, s: upsample.upsample_ratings(p, mask, samples=3, seed=s,
                                                               std_ddof=1))
    self.assertAllEqual(graph(tf.constant(points), tf.constant([7, 8], tf.int64)), expected)

  def test_seed_count_must_match_rows(self):
    with self.assertRaisesRegex(ValueError, "per-row seeds"):
      upsample.upsample_ratings(tf.zeros([3, 2, 2]), None, samples=4, seed=[[1, 2], [3, 4]])


class RandomSubsetsTest(tf.test.TestCase):

  def test_sizes_uniform_and_inclusion_probability(self):
    mask = np.array([[True] * 5 + [False] * 3, [False, True, False, True] + [False] * 4])
    samples = 6000
    chosen = upsample.random_subsets(tf.constant(mask), samples=samples,
                                     seed=tf.constant([1, 2], tf.int64)).numpy()
    self.assertFalse(np.any(chosen & ~mask[:, None, :]))
    for row in range(2):
      n = int(mask[row].sum())
      sizes = chosen[row].sum(axis=-1)
      self.assertTrue(np.all((sizes >= 1) & (sizes <= n)))
      counts = np.bincount(sizes, minlength=n + 1)[1:]
      self.assertGreater(scipy.stats.chisquare(counts).pvalue, 1e-3)
      # P(rater in subset) = E[k] / n = (n + 1) / (2n) for every valid rater.
      inclusion = chosen[row][:, mask[row]].mean(axis=0)
      self.assertAllClose(inclusion, np.full(n, (n + 1) / (2 * n)), atol=0.03)

  def test_rank_and_sort_paths_choose_the_same_subsets(self):
    # Up to _RANK_MAX_RATERS slots the subsets come from pairwise key ranks, beyond it from a
    # sort of the keys: both must pick exactly the same raters, eagerly and under XLA.
    rng = np.random.default_rng(3)
    _, mask = _ragged_batch(rng, rows=6, raters=9)
    mask[2] = False  # an empty row
    mask = tf.constant(mask)
    seed = tf.constant([4, 5], tf.int64)
    ranked = upsample.random_subsets(mask, samples=300, seed=seed)
    jit = tf.function(lambda m: upsample.random_subsets(m, samples=300, seed=seed),
                      jit_compile=True)(mask)
    limit = upsample._RANK_MAX_RATERS
    try:
      upsample._RANK_MAX_RATERS = 0
      sorted_ = upsample.random_subsets(mask, samples=300, seed=seed)
    finally:
      upsample._RANK_MAX_RATERS = limit
    self.assertAllEqual(ranked, sorted_)
    self.assertAllEqual(jit, sorted_)
    self.assertTrue(np.any(ranked.numpy()))

  def test_empty_row_gives_empty_subsets(self):
    chosen = upsample.random_subsets(tf.zeros([1, 3], tf.bool), samples=4,
                                     seed=tf.constant([0, 0], tf.int64))
    self.assertFalse(np.any(chosen.numpy()))


@hypothesis.settings(max_examples=25, deadline=None)
@hypothesis.given(
    ratings=st.lists(st.tuples(st.sampled_from([-1.0, -0.5, 0.0, 0.25, 1.0]),
                               st.floats(-1, 1, allow_nan=False)),
                     min_size=1, max_size=8),
    seed=st.integers(0, 2**31 - 1))
def test_property_limits_and_range(ratings, seed):
  points = np.array(ratings, np.float64)[None]
  out = upsample.upsample_ratings(tf.constant(points), None, samples=64,
                                  seed=[seed, 1]).numpy()[0]
  half_width = points[0].std(axis=0) / 2 + upsample.STD_EPSILON
  assert np.all(out >= np.maximum(points[0].min(axis=0) - half_width, -1.0) - 1e-12)
  assert np.all(out <= np.minimum(points[0].max(axis=0) + half_width, 1.0) + 1e-12)
  if len(ratings) == 1:
    np.testing.assert_allclose(out, np.broadcast_to(points[0, 0], out.shape), rtol=0, atol=1e-12)


if __name__ == "__main__":
  tf.test.main()
