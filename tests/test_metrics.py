"""Metrics and losses against scipy/numpy formulas and hand-computed cases."""

import math

import numpy as np
from absl.testing import parameterized
from hypothesis import given, settings, strategies as st
from hypothesis.extra import numpy as hnp
from scipy.spatial import distance

import tfser  # noqa: F401
import tensorflow as tf

from tfser import metrics
from tfser.losses import ccc as ccc_losses
from tfser.losses import distribution

_PROBS = hnp.arrays(np.float64, (3, 16), elements=st.floats(1e-3, 1.0))


def _lin_ccc(x, y):
  """Lin (1989) from numpy population moments."""
  x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
  cov = np.mean((x - x.mean()) * (y - y.mean()))
  return 2 * cov / (x.var() + y.var() + (x.mean() - y.mean()) ** 2)


class DistributionMetricsTest(tf.test.TestCase, parameterized.TestCase):

  @settings(max_examples=25, deadline=None)
  @given(_PROBS, _PROBS)
  def test_jsd_is_scipy_jensenshannon_squared(self, p, q):
    p /= p.sum(-1, keepdims=True)
    q /= q.sum(-1, keepdims=True)
    want = [distance.jensenshannon(a, b, base=math.e) ** 2 for a, b in zip(p, q)]
    self.assertAllClose(metrics.jensen_shannon_divergence(p, q), want, rtol=1e-9, atol=1e-12)

  @settings(max_examples=25, deadline=None)
  @given(_PROBS, _PROBS)
  def test_tvd_is_half_l1(self, p, q):
    p /= p.sum(-1, keepdims=True)
    q /= q.sum(-1, keepdims=True)
    self.assertAllClose(metrics.total_variation_distance(p, q),
                        0.5 * np.abs(p - q).sum(-1), rtol=1e-12)

  def test_jsd_replaces_zeros_by_epsilon(self):
    p = np.array([[0.5, 0.5, 0.0, 0.0]])
    q = np.array([[0.0, 0.0, 0.5, 0.5]])
    pe = np.where(p == 0, 1e-8, p)
    qe = np.where(q == 0, 1e-8, q)
    m = (pe + qe) / 2
    want = 0.5 * np.sum(pe * np.log(pe / m)) + 0.5 * np.sum(qe * np.log(qe / m))
    got = metrics.jensen_shannon_divergence(p, q)
    self.assertAllClose(got, [want], rtol=1e-12)
    self.assertLess(abs(got[0] - math.log(2)), 1e-6)  # disjoint supports: ln 2 in the limit

  def test_identical_distributions_have_zero_distance(self):
    p = np.full([2, 16], 1 / 16)
    self.assertAllClose(metrics.total_variation_distance(p, p), [0, 0])
    self.assertAllClose(metrics.jensen_shannon_divergence(p, p), [0, 0], atol=1e-15)

  def test_keras_distribution_metrics_average_over_batches(self):
    rng = np.random.default_rng(0)
    p, q = rng.dirichlet(np.ones(16), 6), rng.dirichlet(np.ones(16), 6)
    tvd, jsd = metrics.TotalVariationDistance(), metrics.JensenShannonDivergence()
    for sl in (slice(0, 2), slice(2, 6)):
      tvd.update_state(p[sl], q[sl])
      jsd.update_state(p[sl], q[sl])
    self.assertAllClose(tvd.result(), 0.5 * np.abs(p - q).sum(-1).mean(), rtol=1e-5)
    self.assertAllClose(
        jsd.result(), np.mean([distance.jensenshannon(a, b) ** 2 for a, b in zip(p, q)]),
        rtol=1e-5)
    self.assertEqual(type(tvd).from_config(tvd.get_config()).name, "tvd")


class ConcordanceTest(tf.test.TestCase, parameterized.TestCase):

  def test_hand_computed_case(self):
    # x = [1, 2, 3], y = [2, 2, 4]: means 2, 8/3; var_x = 2/3, var_y = 8/9; cov = 2/3.
    # CCC = (4/3) / (2/3 + 8/9 + 4/9) = (4/3) / 2 = 2/3.
    self.assertAllClose(metrics.concordance_correlation_coefficient([1., 2., 3.], [2., 2., 4.]),
                        2 / 3)

  @settings(max_examples=25, deadline=None)
  @given(hnp.arrays(np.float64, 20, elements=st.floats(-1, 1)),
         hnp.arrays(np.float64, 20, elements=st.floats(-1, 1)))
  def test_matches_numpy_population_moments(self, x, y):
    want = _lin_ccc(x, y)
    got = float(metrics.concordance_correlation_coefficient(x, y))
    denominator = x.var() + y.var() + (x.mean() - y.mean()) ** 2
    if denominator > 1e-10:
      self.assertAllClose(got, want, rtol=1e-9, atol=1e-12)
    else:
      # Spread at rounding level (e.g. x == y == a constant): the moments are rounding noise, so
      # CCC is undefined and two summation orders disagree; it must stay finite and in [-1, 1]
      # (exactly 0 when the denominator is exactly 0).
      self.assertTrue(np.isfinite(got))
      self.assertLessEqual(abs(got), 1.0 + 1e-9)
      if not np.isfinite(want):
        self.assertEqual(got, 0.0)

  def test_constant_inputs_give_zero(self):
    # Lin's CCC has a zero denominator for two equal constant series; tfser defines it as 0.
    for value in (0.0, 0.31285305, -1.0):
      x = np.full(20, value)
      self.assertEqual(float(metrics.concordance_correlation_coefficient(x, x)), 0.0)

  def test_mask_ignores_entries_even_if_nan(self):
    x = np.array([[1., 2., np.nan], [3., 0., 0.]])
    y = np.array([[2., 2., np.nan], [4., 9., 9.]])
    mask = np.array([[True, True, False], [True, False, False]])
    self.assertAllClose(metrics.concordance_correlation_coefficient(x, y, mask), 2 / 3)

  def test_streaming_metric_equals_batch_formula(self):
    rng = np.random.default_rng(1)
    x, y = rng.normal(size=50), 0.5 * rng.normal(size=50) + 0.3
    m = metrics.ConcordanceCorrelation()
    m.update_state(x[:13], y[:13])
    m.update_state(x[13:], y[13:])
    self.assertAllClose(m.result(), _lin_ccc(x, y), rtol=1e-5)
    m.reset_state()
    m.update_state(np.array([1., np.nan, 3.]), np.array([2., 5., 4.]),
                   sample_weight=np.array([1., 1., 1.]))
    self.assertAllClose(m.result(), _lin_ccc([1., 3.], [2., 4.]), rtol=1e-5)


class UnweightedAccuracyTest(tf.test.TestCase):

  def test_hand_computed_case(self):
    labels = [0, 0, 0, 0, 1, 1, 2, 3]
    preds = [0, 0, 0, 1, 1, 0, 2, 2]  # recalls 3/4, 1/2, 1, 0 -> UA 0.5625
    self.assertAllClose(metrics.unweighted_accuracy(labels, preds), 0.5625)

  def test_absent_class_is_left_out_not_nan(self):
    labels = [0, 0, 1, 1]  # classes 2, 3 absent
    preds = [0, 1, 1, 1]
    self.assertAllClose(metrics.unweighted_accuracy(labels, preds), 0.75)
    self.assertAllClose(metrics.unweighted_accuracy([], []), 0.0)

  def test_streaming_metric_takes_scores(self):
    rng = np.random.default_rng(2)
    labels = rng.integers(0, 4, 40)
    scores = rng.normal(size=(40, 4))
    m = metrics.UnweightedAccuracy(num_classes=4)
    m.update_state(labels[:25], scores[:25])
    m.update_state(labels[25:], scores[25:])
    preds = scores.argmax(-1)
    want = np.mean([np.mean(preds[labels == c] == c) for c in range(4) if np.any(labels == c)])
    self.assertAllClose(m.result(), want, rtol=1e-6)
    self.assertEqual(metrics.UnweightedAccuracy.from_config(m.get_config()).num_classes, 4)


class LossesTest(tf.test.TestCase):

  def test_ccc_loss_is_two_minus_both_cccs(self):
    rng = np.random.default_rng(3)
    ratings = rng.uniform(-1, 1, (4, 5, 2))
    preds = ratings + rng.normal(0, 0.3, ratings.shape)
    mask = rng.random((4, 5)) > 0.3
    want = 2 - _lin_ccc(ratings[..., 0][mask], preds[..., 0][mask]) - _lin_ccc(
        ratings[..., 1][mask], preds[..., 1][mask])
    self.assertAllClose(ccc_losses.annotator_ccc_loss(ratings, preds, mask), want, rtol=1e-9)
    keras_true = np.where(mask[..., None], ratings, np.nan).astype(np.float32)
    self.assertAllClose(ccc_losses.CCCLoss()(keras_true, preds.astype(np.float32)), want,
                        rtol=1e-4)

  def test_ccc_loss_gradient_is_finite_in_float16_predictions(self):
    preds = tf.Variable(tf.random.uniform([8, 3, 2], -1, 1, seed=1), dtype=tf.float32)
    with tf.GradientTape() as tape:
      loss = ccc_losses.annotator_ccc_loss(tf.zeros([8, 3, 2]) + 0.1, tf.cast(preds, tf.float16))
    self.assertTrue(np.all(np.isfinite(tape.gradient(loss, preds))))

  def test_distribution_cross_entropy_hand_computed(self):
    target = np.array([[0.25, 0.75]])
    predicted = np.array([[2.0, 6.0]])  # normalised: 0.25, 0.75
    want = -(0.25 * np.log(0.25 + 1e-8) + 0.75 * np.log(0.75 + 1e-8))
    self.assertAllClose(distribution.distribution_cross_entropy(target, predicted), [want])
    zero = np.array([[0.0, 1.0]])
    self.assertAllClose(distribution.distribution_cross_entropy(np.array([[1.0, 0.0]]), zero),
                        [-np.log(1e-8)])
    loss = distribution.DistributionCrossEntropy()
    self.assertAllClose(loss(target, predicted), want)
    self.assertEqual(distribution.DistributionCrossEntropy.from_config(loss.get_config()).eps,
                     1e-8)


if __name__ == "__main__":
  tf.test.main()
