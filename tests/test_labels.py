"""data_prep.labels: scaling, duplicate merging, votes, emotion mapping, annotator counting."""

import math

from absl.testing import parameterized
import hypothesis
from hypothesis import strategies as st
import numpy as np
import tensorflow as tf

from data_prep import labels
from tfser.data.schema import Rating, Utterance

NAN = math.nan


class ScaleTest(parameterized.TestCase):

  @parameterized.parameters(
      (1, 1, 5, False, -1.0), (5, 1, 5, False, 1.0), (3, 1, 5, False, 0.0),
      (2, 1, 5, False, -0.5), (4, 1, 7, False, 0.0), (7, 1, 7, True, -1.0),
      (9, 1, 9, False, 1.0), (2, 1, 9, True, 0.75))
  def test_hand_computed(self, value, lo, hi, reverse, expected):
    self.assertAlmostEqual(labels.scale_to_unit(value, lo, hi, reverse), expected)

  def test_nan_stays_and_out_of_scale_raises(self):
    self.assertTrue(math.isnan(labels.scale_to_unit(NAN, 1, 5)))
    with self.assertRaisesRegex(ValueError, r"6.0 outside the corpus scale \[1, 5\]"):
      labels.scale_to_unit(6, 1, 5)


class MergeTest(parameterized.TestCase):

  def test_duplicates_averaged_hand_computed(self):
    ratings = [Rating("w1", 0.5, -0.5, 0.0, "happy"),
               Rating("w2", 1.0, 1.0, 1.0, "sad"),
               Rating("w1", -0.5, 0.5, NAN, "sad"),
               Rating("w1", 0.3, 0.3, 0.6, "sad")]
    merged = labels.merge_duplicate_ratings(ratings)
    self.assertEqual([r.annotator for r in merged], ["w1", "w2"])
    w1 = merged[0]
    self.assertAlmostEqual(w1.activation, (0.5 - 0.5 + 0.3) / 3)
    self.assertAlmostEqual(w1.valence, (-0.5 + 0.5 + 0.3) / 3)
    self.assertAlmostEqual(w1.dominance, (0.0 + 0.6) / 2)  # NaN ignored
    self.assertEqual(w1.category, "sad")  # 2 of 3 votes
    self.assertEqual(vars(merged[1]), vars(ratings[1]))

  def test_all_nan_dimension_stays_nan(self):
    merged = labels.merge_duplicate_ratings([Rating("a", NAN, 0.2), Rating("a", NAN, 0.4)])
    self.assertTrue(math.isnan(merged[0].activation))
    self.assertAlmostEqual(merged[0].valence, 0.3)

  def test_no_duplicates_unchanged_and_not_aliased(self):
    ratings = [Rating("a", 0.1, 0.2, 0.3, "angry"), Rating("b", 0.0, 0.0)]
    merged = labels.merge_duplicate_ratings(ratings)
    self.assertEqual([vars(r) for r in merged], [vars(r) for r in ratings])
    merged[0].activation = 0.9
    self.assertEqual(ratings[0].activation, 0.1)
    self.assertFalse(labels.has_duplicate_annotators(ratings))
    self.assertTrue(labels.has_duplicate_annotators(ratings + ratings[:1]))

  def test_merge_duplicate_raters_adjusts_the_consensus_only_when_merging(self):
    # The one rule readers and writer share (annotators paper 3.1: averaged, "and adjusted the
    # mean ground truth"): the consensus becomes the numpy mean of the merged ratings.
    utt = Utterance("C", "u", activation=0.9, valence=0.9, dominance=NAN, ratings=[
        Rating("a", 0.5, -0.5, 0.0), Rating("b", -1.0, 1.0, NAN), Rating("a", 0.0, 0.5, 1.0)])
    self.assertTrue(labels.merge_duplicate_raters(utt))
    self.assertEqual([r.annotator for r in utt.ratings], ["a", "b"])
    np.testing.assert_allclose([utt.activation, utt.valence, utt.dominance],
                               [np.mean([0.25, -1.0]), np.mean([0.0, 1.0]), 0.5])
    kept = Utterance("C", "v", activation=0.9, valence=0.9, ratings=[
        Rating("a", 0.5, -0.5), Rating("b", -1.0, 1.0)])
    self.assertFalse(labels.merge_duplicate_raters(kept))
    self.assertEqual((kept.activation, kept.valence, len(kept.ratings)), (0.9, 0.9, 2))

  @hypothesis.settings(max_examples=40, deadline=None)
  @hypothesis.given(st.lists(st.tuples(st.sampled_from("abcd"),
                                       st.floats(-1, 1), st.floats(-1, 1)), min_size=1,
                             max_size=12))
  def test_matches_numpy_group_mean(self, rows):
    merged = labels.merge_duplicate_ratings([Rating(a, x, y) for a, x, y in rows])
    for r in merged:
      xs = np.array([x for a, x, _ in rows if a == r.annotator])
      ys = np.array([y for a, _, y in rows if a == r.annotator])
      np.testing.assert_allclose([r.activation, r.valence], [xs.mean(), ys.mean()], atol=1e-12)
    self.assertEqual(len(merged), len({a for a, _, _ in rows}))


class VoteTest(parameterized.TestCase):

  @parameterized.parameters(
      (["sad", "happy", "happy"], "happy"),
      (["sad", "happy", "happy", "sad"], "sad"),  # tie: first seen
      (["", "angry", ""], "angry"),
      (["", ""], ""), ([], ""),
      (["neutral", "sad", "angry"], "neutral"))
  def test_majority(self, votes, expected):
    self.assertEqual(labels.majority_vote(votes), expected)


class EmotionTest(parameterized.TestCase):

  @parameterized.parameters(
      ("Neutral state", "neutral"), ("NEU", "neutral"), ("N", "neutral"), ("hap", "happy"),
      ("Happiness", "happy"), ("ANG", "angry"), ("A", "angry"), ("Sad", "sad"),
      ("exc", "excited"), ("Frustration", "frustrated"), ("DIS", "disgusted"),
      ("fea", "fearful"), ("xxx", "no agreement"), ("  Other ", "other"), ("C", "contempt"))
  def test_canonical(self, raw, expected):
    self.assertEqual(labels.canonical_emotion(raw), expected)

  @parameterized.parameters(
      ("neu", False, "neutral"), ("exc", False, ""), ("exc", True, "happy"),
      ("fru", True, ""), ("ANG", False, "angry"), ("S", False, "sad"), ("sur", False, ""))
  def test_cww_class(self, raw, merge, expected):
    self.assertEqual(labels.cww_class(raw, merge_excited=merge), expected)

  def test_unknown_raises_and_extra(self):
    with self.assertRaisesRegex(ValueError, "unknown emotion label 'bored'"):
      labels.cww_class("bored")
    self.assertEqual(labels.cww_class("bored", extra={"bored": "neutral"}), "neutral")


class AnnotatorCountTest(tf.test.TestCase):

  def test_counts_distinct_valid_pairs(self):
    ratings = [Rating("a", 0.1, 0.2), Rating("a", 0.3, 0.1), Rating("b", NAN, 0.5),
               Rating("c", 0.2, NAN), Rating("d", 0.0, 0.0, category="sad")]
    self.assertEqual(labels.count_annotators(ratings), 2)  # a (twice) and d
    self.assertTrue(labels.has_min_annotators(ratings))
    self.assertFalse(labels.has_min_annotators(ratings[:4]))
    self.assertFalse(labels.has_min_annotators([]))
    self.assertEqual(labels.MIN_ANNOTATORS, 2)

  def test_consensus(self):
    a, v, d = labels.consensus([Rating("a", 0.2, 0.4, NAN), Rating("b", 0.4, NAN, NAN)])
    self.assertAlmostEqual(a, 0.3)
    self.assertAlmostEqual(v, 0.4)
    self.assertTrue(math.isnan(d))


if __name__ == "__main__":
  tf.test.main()
