"""data_prep.ground_truth against kde-diffusion's kde2d on the same upsampled points."""

import dataclasses
import hashlib
import math

from absl.testing import parameterized
import kde_diffusion
import numpy as np
import tensorflow as tf

from data_prep import ground_truth as gtm
from tests import write_tfrecords_fixtures as fx
from tfser.data.schema import Rating, Utterance
from tfser.ops import kde_solvers
from tfser.ops import upsample

CONFIG = fx.GT_CONFIG


def reference(utt, seed, config=CONFIG):
  """Zhang et al. for one row, by hand: kde2d on the upsampled points, numpy block means."""
  points = gtm.rating_points(utt.ratings)
  cloud = upsample.upsample_ratings(points[None], samples=config.samples,
                                    seed=gtm.utterance_seed(utt.corpus, utt.utterance_id, seed),
                                    std_ddof=config.std_ddof)
  cloud = cloud.numpy()[0]
  n = config.grid_size
  density, _, _ = kde_diffusion.kde2d(cloud[:, 0], cloud[:, 1], n=n, limits=((-1, 1), (-1, 1)))
  density = np.maximum(density, 1e-12)
  out = {}
  for b in config.bins:
    block = density.reshape(b, n // b, b, n // b).mean(axis=(1, 3)).ravel()
    out[b] = block / block.sum()
  return out


class GroundTruthTest(tf.test.TestCase, parameterized.TestCase):

  def test_matches_kde2d_per_row(self):
    utts = fx.make_utterances(2, raters=(2, 7), seed=5)
    dists, has_gt = gtm.get_ground_truth(CONFIG).compute(utts)
    self.assertTrue(np.all(has_gt))
    for i, utt in enumerate(utts):
      for seed in range(CONFIG.seeds):
        ref = reference(utt, seed)
        for b in CONFIG.bins:
          self.assertEqual(dists[b].shape, (len(utts), 5, b * b))
          np.testing.assert_allclose(dists[b][i, seed], ref[b], atol=1e-9, rtol=1e-6)
    # Different seeds give different distributions.
    self.assertGreater(np.abs(dists[4][:, 0] - dists[4][:, 1]).max(), 1e-4)

  def test_three_stage_kde_matches_kde2d(self):
    # Above grid 128 a traced KDE runs as three programs (tfser.ops.kde.KDEStages), compiled
    # concurrently by the warm-up.
    config = dataclasses.replace(CONFIG, kde_batch=4, eager=False, jit=False, threads=2)
    gt = gtm.GroundTruth(config)
    self.assertIsNotNone(gt._stage_calls)
    gt.start_warm_up()
    utts = fx.make_utterances(2, raters=(2, 7), seed=11)
    dists, _ = gt.compute(utts)
    for i, utt in enumerate(utts):
      for seed in (0, 4):
        ref = reference(utt, seed, config)
        for b in config.bins:
          np.testing.assert_allclose(dists[b][i, seed], ref[b], atol=1e-9, rtol=1e-6)

  @parameterized.parameters((64, 200), (256, 100))  # one program; three stages (KDEStages)
  def test_rows_the_compiled_kde_defers_come_from_the_exact_graph(self, grid, samples):
    # A traced (not eager) KDE defers rows whose polish it does not accept; forcing every polish
    # to fail sends every row through the exact graph, which must still give kde2d's numbers.
    config = dataclasses.replace(CONFIG, grid_size=grid, samples=samples, kde_batch=4,
                                 eager=False, jit=False, threads=1)
    self.assertEqual(gtm.GroundTruth(config)._stage_calls is not None, grid > 128)
    utts = fx.make_utterances(2, raters=(2, 7), seed=9)
    normal, _ = gtm.GroundTruth(config).compute(utts)
    accept, settled = kde_solvers._FAST_ACCEPT, kde_solvers._FAST_SETTLED
    try:
      kde_solvers._FAST_ACCEPT = kde_solvers._FAST_SETTLED = -1.0  # read when traced, below
      gt = gtm.GroundTruth(config)
      exact_calls = []
      traced_exact = gt._kde_bins_exact
      gt._kde_bins_exact = lambda p: exact_calls.append(1) or traced_exact(p)
      forced, _ = gt.compute(utts)
    finally:
      kde_solvers._FAST_ACCEPT, kde_solvers._FAST_SETTLED = accept, settled
    self.assertEqual(len(exact_calls), 3)  # 10 rows in chunks of 4
    for b in config.bins:
      np.testing.assert_allclose(forced[b], normal[b], rtol=1e-7, atol=1e-10)
    for i, utt in enumerate(utts):
      ref = reference(utt, 0, config)
      for b in config.bins:
        np.testing.assert_allclose(forced[b][i, 0], ref[b], atol=1e-9, rtol=1e-6)

  def test_independent_of_batch_and_order(self):
    gt = gtm.get_ground_truth(CONFIG)
    utts = fx.make_utterances(3, raters=(2, 6), seed=1)
    together, _ = gt.compute(utts)
    alone, _ = gt.compute(utts[2:3])
    np.testing.assert_allclose(alone[4][0], together[4][2], rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(alone[2][0], together[2][2], rtol=1e-12, atol=1e-15)

  def test_upsample_mixed_rater_counts_equals_per_row_calls(self):
    # Rows of one rater count go through one call with per-row seeds; each must still be the
    # points of a call on that row alone (in the input order), bit for bit.
    rng = np.random.default_rng(4)
    counts = [2, 12, 5, 2, 7, 3, 12, 9, 5, 4, 6, 8, 10, 11, 2]
    points = [rng.uniform(-1, 1, (n, 2)) for n in counts]
    seeds = np.stack([gtm.utterance_seed("T", f"u{i}", i % 5) for i in range(len(counts))])
    out = gtm.get_ground_truth(CONFIG).upsample(points, seeds)
    self.assertEqual(out.shape, (len(counts), CONFIG.samples, 2))
    for i, (p, seed) in enumerate(zip(points, seeds)):
      alone = upsample.upsample_ratings(p[None], samples=CONFIG.samples, seed=seed,
                                        limits=CONFIG.limits, std_ddof=CONFIG.std_ddof)
      self.assertTrue(np.array_equal(out[i], alone.numpy()[0]), f"row {i} ({counts[i]} raters)")

  def test_fewer_than_two_annotators_get_nan(self):
    utts = [Utterance("T", "one", ratings=[Rating("a", 0.5, 0.5), Rating("a", 0.0, 0.0)]),
            Utterance("T", "halves", ratings=[Rating("a", 0.5, math.nan),
                                              Rating("b", math.nan, 0.5)]),
            Utterance("T", "none"),
            Utterance("T", "two", ratings=[Rating("a", 0.5, 0.5), Rating("b", -0.5, 0.0)])]
    dists, has_gt = gtm.get_ground_truth(CONFIG).compute(utts)
    self.assertEqual(has_gt.tolist(), [False, False, False, True])
    self.assertTrue(np.all(np.isnan(dists[4][:3])))
    self.assertTrue(np.all(np.isnan(dists[2][:3])))
    np.testing.assert_allclose(dists[4][3].sum(axis=-1), np.ones(5))
    np.testing.assert_allclose(dists[2][3].sum(axis=-1), np.ones(5))

  def test_seed_is_stable_hash(self):
    seed = gtm.utterance_seed("IMP", "UTD-IMPROV-S01A-F01-S-FM01", 3)
    self.assertEqual(seed.dtype, np.int64)
    self.assertEqual(seed[0], 3)
    digest = hashlib.sha256(b"IMP\x00UTD-IMPROV-S01A-F01-S-FM01").digest()
    self.assertEqual(int(seed[1]), int.from_bytes(digest[:8], "little") & (2 ** 63 - 1))
    self.assertNotEqual(gtm.utterance_hash("IMP", "a"), gtm.utterance_hash("IEM", "a"))


if __name__ == "__main__":
  tf.test.main()
