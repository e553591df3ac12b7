"""Corpus readers against fixture trees in each corpus's distributed format (tests/data/fixtures)
and, for CREMA-D, the real rating CSVs (tests/data/crema-d).

Expected values are computed by hand from the fixture files: a rating r on [lo, hi] becomes
2 (r - lo) / (hi - lo) - 1 (negated where a corpus's scale runs the other way).
"""

import collections
import math
import os
import re

from absl.testing import parameterized
import hypothesis
from hypothesis import strategies as st
import tfser  # noqa: F401
import tensorflow as tf

from data_prep import errors
from data_prep.corpora import common
from data_prep.corpora import crema_d
from data_prep.corpora import csv_manifest
from data_prep.corpora import iemocap
from data_prep.corpora import librispeech
from data_prep.corpora import msp_improv
from data_prep.corpora import msp_podcast
from data_prep.corpora import muse
from tests import testing
from tfser.data import schema

FIXTURES = testing.FIXTURES
CREMA_REAL = os.path.join(testing.DATA_DIR, "crema-d")


def _by_id(utterances):
  return {u.utterance_id: u for u in utterances}


def _ratings(utt):
  return {r.annotator: r for r in utt.ratings}


class _CorpusTest(testing.FixtureTrees, tf.test.TestCase, parameterized.TestCase):

  def replace_line(self, path, old, new):
    with open(path) as f:
      text = f.read()
    self.assertIn(old, text)
    with open(path, "w") as f:
      f.write(text.replace(old, new, 1))
    return text[:text.index(old)].count("\n") + 1  # the 1-based line number replaced

  def assertRating(self, rating, activation, valence, dominance, category):
    for got, want in ((rating.activation, activation), (rating.valence, valence),
                      (rating.dominance, dominance)):
      if math.isnan(want):
        self.assertTrue(math.isnan(got), rating)
      else:
        self.assertAlmostEqual(got, want, places=6, msg=str(rating))
    self.assertEqual(rating.category, category)

  def assertConsensus(self, utt, activation, valence, dominance):
    consensus = schema.Rating("consensus", utt.activation, utt.valence, utt.dominance)
    self.assertRating(consensus, activation, valence, dominance, "")


# ---------------------------------------------------------------------------------------------

class CommonTest(_CorpusTest):

  def test_msp_entry_with_semicolons_in_the_secondary_field(self):
    r = common.parse_msp_entry("W7; Other-annoyed; Annoyed; Frustrated; A:3.0; V:1.5; D:NaN; N:3;",
                               1, 5, reverse_activation=True)
    self.assertEqual(r.annotator, "W7")
    self.assertRating(r, 0.0, -0.75, math.nan, "other")

  def test_msp_entry_reverse_flips_only_activation(self):
    r = common.parse_msp_entry("W1; Happy; ; A:1.0; V:5.0; D:1.0;", 1, 5, reverse_activation=True)
    self.assertRating(r, 1.0, 1.0, -1.0, "happy")

  @parameterized.parameters(
      ("W1; Happy; ; A:3.0; V:4.0;", "malformed"),
      ("W1; Happy; ; A:3.0; V:NaN; D:2.0;", "NaN"),
      ("W1; Happy; ; A:8.0; V:4.0; D:2.0;", "outside the corpus scale"),
      ("W1; Bored; ; A:3.0; V:4.0; D:2.0;", "unknown emotion label"),
      ("; Happy; ; A:3.0; V:4.0; D:2.0;", "malformed rater entry"))
  def test_msp_entry_errors(self, text, message):
    with self.assertRaisesRegex(ValueError, message):
      common.parse_msp_entry(text, 1, 7, reverse_activation=False)

  def test_skip_without_a_log_still_records(self):
    problems = common.Problems(skip_bad=True, dropped=None)
    problems.bad("broken", "/x/file.txt", 3)
    self.assertEqual(problems.dropped.as_manifest(),
                     {"broken": {"count": 1, "ids": ["/x/file.txt:3"],
                                 "details": {"/x/file.txt:3": "/x/file.txt:3: broken"}}})


# ---------------------------------------------------------------------------------------------

class ScalingPropertyTest(_CorpusTest):

  @hypothesis.settings(max_examples=40, deadline=None)
  @hypothesis.given(st.integers(1, 7), st.integers(1, 7), st.integers(1, 7), st.booleans())
  def test_msp_entry_matches_min_max_formula(self, act, val, dom, reverse):
    r = common.parse_msp_entry(f"W; Neutral; ; A:{act:.6f}; V:{val:.6f}; D:{dom:.6f};", 1, 7,
                               reverse_activation=reverse)
    def unit(x):
      return (x - 1) / 3 - 1  # 2 (x - 1) / (7 - 1) - 1
    self.assertAlmostEqual(r.activation, -unit(act) if reverse else unit(act), places=12)
    self.assertAlmostEqual(r.valence, unit(val), places=12)
    self.assertAlmostEqual(r.dominance, unit(dom), places=12)


class MspImprovTest(_CorpusTest):

  def read(self, root=None, **kwargs):
    return list(msp_improv.read(root or os.path.join(FIXTURES, "msp_improv"), **kwargs))

  def test_fields_and_scaling(self):
    utts = _by_id(self.read())
    self.assertLen(utts, 5)
    u = utts["MSP-IMPROV-S01A-F01-S-FM01"]
    self.assertEqual((u.corpus, u.speaker, u.gender, u.split, u.cww_split),
                     ("IMP", "F01", "F", "train", "train"))
    self.assertEqual((u.label, u.raw_label, u.label_source), ("angry", "A", "majority"))
    self.assertEqual(u.transcript, "I am so angry with you.")
    self.assertEqual(u.audio_path, os.path.join(
        FIXTURES, "msp_improv", "Audio", "session1", "S01A", "S",
        "MSP-IMPROV-S01A-F01-S-FM01.wav"))
    # Header A:2 (activation reversed: 1 = high) -> +0.5; V:1.5 -> -0.75; D:4 -> +0.5.
    self.assertConsensus(u, 0.5, -0.75, 0.5)
    self.assertEqual([r.annotator for r in u.ratings],
                     ["A3KBQJ36JL7G7C-p1", "c3rguqctj3qv57avvd1auph3g3-p3b", "AAE9H4ZIKQS37-p1"])
    r = u.ratings
    self.assertRating(r[0], 0.5, -1.0, 0.5, "angry")
    self.assertRating(r[1], 1.0, -0.5, 0.5, "angry")
    self.assertRating(r[2], 0.0, -0.75, math.nan, "other")  # "Other-annoyed", D:NaN

  def test_duplicate_rater_averaged_and_consensus_adjusted(self):
    log = errors.DropLog()
    u = _by_id(self.read(dropped=log))["MSP-IMPROV-S02H-M02-R-MF02"]
    self.assertEqual(log.merged, ["MSP-IMPROV-S02H-M02-R-MF02"])  # reported for the manifest
    self.assertLen(u.ratings, 2)
    ratings = _ratings(u)
    # A3KB... rated twice: A 2 and 4 (reversed +0.5, -0.5), V 5 and 4 (1, 0.5), D 3 and 3.
    self.assertRating(ratings["A3KBQJ36JL7G7C-p1"], 0.0, 0.75, 0.0, "happy")
    self.assertRating(ratings["A2AMH6PII3Z5JA-p1"], 0.0, 0.5, 0.0, "happy")
    # Consensus now the mean of the merged ratings, not the header's A:2.5 V:4.5.
    self.assertConsensus(u, 0.0, 0.625, 0.0)

  def test_splits(self):
    utts = self.read()
    self.assertEqual({u.speaker: u.split for u in utts},
                     {"F01": "train", "M02": "train", "F02": "validation", "M05": "test",
                      "F06": "train"})
    self.assertEqual({u.speaker: u.cww_split for u in utts},
                     {"F01": "train", "M02": "train", "F02": "train", "M05": "train",
                      "F06": "validation"})
    self.assertEqual({u.speaker: u.cww_split for u in self.read(cww_validation_session=2)}["F02"],
                     "validation")

  def test_other_emotion_keeps_raw_label(self):
    u = _by_id(self.read())["MSP-IMPROV-S05A-F06-S-FM05"]
    self.assertEqual((u.label, u.raw_label), ("", "O"))
    self.assertTrue(math.isnan(u.dominance))

  def test_both_spellings(self):
    root = self.copy_fixture("msp_improv")
    os.rename(os.path.join(root, "Evalution.txt"), os.path.join(root, "Evaluation.txt"))
    self.assertEqual([u.utterance_id for u in self.read(root)],
                     [u.utterance_id for u in self.read()])

  @parameterized.named_parameters(
      ("malformed", "A2AMH6PII3Z5JA-p1; Sad; Depressed; A:4.0; V:2.0; D:2.0; N:5.0;",
       "A2AMH6PII3Z5JA-p1; Sad; Depressed; A:4.0 V:2.0", "malformed"),
      ("unknown_emotion", "A2AMH6PII3Z5JA-p1; Sad; Depressed;",
       "A2AMH6PII3Z5JA-p1; Bored; Depressed;", "unknown emotion label 'Bored'"),
      ("out_of_scale", "A2AMH6PII3Z5JA-p1; Sad; Depressed; A:4.0;",
       "A2AMH6PII3Z5JA-p1; Sad; Depressed; A:6.0;", "outside the corpus scale"),
      ("nan", "A2AMH6PII3Z5JA-p1; Sad; Depressed; A:4.0; V:2.0;",
       "A2AMH6PII3Z5JA-p1; Sad; Depressed; A:4.0; V:NaN;", "NaN rating"))
  def test_bad_rater_line(self, old, new, message):
    root = self.copy_fixture("msp_improv")
    path = os.path.join(root, "Evalution.txt")
    line = self.replace_line(path, old, new)
    with self.assertRaisesRegex(errors.CorpusError, message) as cm:
      self.read(root)
    self.assertIn(f"{path}:{line}", str(cm.exception))
    self.assertIn("MSP-IMPROV-S03S-F02-P-FM03", str(cm.exception))
    dropped = errors.DropLog()
    ids = [u.utterance_id for u in self.read(root, skip_bad=True, dropped=dropped)]
    self.assertLen(ids, 4)
    self.assertNotIn("MSP-IMPROV-S03S-F02-P-FM03", ids)
    [(reason, entry)] = dropped.as_manifest().items()
    # Keyed by the reason class (values taken out, so items group); the message per item.
    self.assertRegex(reason, errors.reason_class(message))
    self.assertEqual(reason, errors.reason_class(reason))
    self.assertEqual((entry["count"], entry["ids"]), (1, ["MSP-IMPROV-S03S-F02-P-FM03"]))
    self.assertRegex(entry["details"]["MSP-IMPROV-S03S-F02-P-FM03"],
                     f"{re.escape(path)}:{line}, utterance MSP-IMPROV-S03S-F02-P-FM03: .*{message}")

  def test_bad_header_skips_its_rater_lines(self):
    root = self.copy_fixture("msp_improv")
    path = os.path.join(root, "Evalution.txt")
    line = self.replace_line(path, "UTD-IMPROV-S04N-M05-T-MF04.avi; N;",
                             "UTD-IMPROV-S04N-M05-T-MF04.avi; Q;")
    with self.assertRaisesRegex(errors.CorpusError, f"Evalution.txt:{line}.*unknown emotion"):
      self.read(root)
    dropped = errors.DropLog()
    self.assertLen(self.read(root, skip_bad=True, dropped=dropped), 4)
    self.assertEqual(sum(v["count"] for v in dropped.as_manifest().values()), 1)

  def test_missing_and_empty(self):
    with self.assertRaisesRegex(errors.CorpusError, "missing MSP-Improv evaluation file"):
      self.read(self.tempdir())
    root = self.tempdir()
    with open(os.path.join(root, "Evaluation.txt"), "w") as f:
      f.write("\n")
    with self.assertRaisesRegex(errors.CorpusError, "empty corpus"):
      self.read(root)


# ---------------------------------------------------------------------------------------------

class IemocapTest(_CorpusTest):

  def read(self, root=None, **kwargs):
    return list(iemocap.read(root or os.path.join(FIXTURES, "iemocap"), **kwargs))

  def test_fields_and_scaling(self):
    utts = _by_id(self.read())
    u = utts["Ses01F_impro01_F000"]
    self.assertEqual((u.corpus, u.speaker, u.gender, u.split, u.cww_split),
                     ("IEM", "Ses01F", "F", "test", "train"))
    self.assertEqual((u.label, u.raw_label, u.label_source), ("neutral", "neu", "majority"))
    self.assertEqual(u.transcript, "Excuse me.")
    self.assertEqual(u.audio_path, os.path.join(FIXTURES, "iemocap", "Session1", "sentences",
                                                "wav", "Ses01F_impro01",
                                                "Ses01F_impro01_F000.wav"))
    self.assertConsensus(u, -0.25, -0.25, -0.25)  # [2.5, 2.5, 2.5] on 1-5
    ratings = _ratings(u)
    self.assertEqual(sorted(ratings), ["E2", "E3", "E4"])  # no F1 (self-assessment)
    self.assertRating(ratings["E2"], math.nan, math.nan, math.nan, "neutral")  # C line only
    self.assertRating(ratings["E3"], -0.5, 0.0, -0.5, "neutral")  # val 3; act 2; dom 2
    self.assertRating(ratings["E4"], 0.0, -0.5, 0.0, "neutral")  # val 2; act 3; dom 3

  def test_male_speaker_and_other_emotion(self):
    u = _by_id(self.read())["Ses01F_impro01_M000"]
    self.assertEqual((u.speaker, u.gender, u.label, u.raw_label), ("Ses01M", "M", "", "fru"))
    ratings = _ratings(u)
    self.assertEqual(sorted(ratings), ["E1", "E2", "E3"])  # no M1 (self-assessment)
    self.assertRating(ratings["E1"], 0.5, -0.5, 0.5, "frustrated")  # first of "Frustration; Anger"
    self.assertRating(ratings["E3"], math.nan, math.nan, math.nan, "angry")

  def test_excited_merges_into_happy(self):
    u = _by_id(self.read())["Ses01F_impro01_F001"]
    self.assertEqual((u.label, u.raw_label), ("happy", "exc"))
    self.assertEqual(_ratings(u)["E2"].category, "happy")  # "Excited; Happiness"
    u = _by_id(self.read(merge_excited=False))["Ses01F_impro01_F001"]
    self.assertEqual((u.label, u.raw_label), ("", "exc"))
    self.assertEqual(_ratings(u)["E2"].category, "excited")

  def test_out_of_range_and_partially_missing_are_kept_and_marked(self):
    # The annotators paper's filter (3.1) marks them for the annotators task only (issue 15):
    # the CWW task keeps their consensus class and votes.
    dropped = errors.DropLog()
    utts = self.read(dropped=dropped)
    self.assertEqual(dropped.as_manifest(), {})
    marked = {u.utterance_id for u in utts if u.annotator_excluded}
    # M001: an evaluator's act 6; F002: "act ;"; Ses05 F001: the self-assessment's val 0.
    self.assertEqual(marked, {"Ses01F_impro01_F002", "Ses01F_impro01_M001",
                              "Ses05M_script01_1_F001"})
    self.assertEqual({u.annotator_excluded for u in utts if u.annotator_excluded},
                     {iemocap.OUT_OF_RANGE})
    self.assertLen(utts, 8)
    u = _by_id(utts)["Ses01F_impro01_M001"]
    self.assertEqual((u.label, u.raw_label), ("angry", "ang"))
    ratings = _ratings(u)
    self.assertRating(ratings["E1"], 0.5, -1.0, 0.5, "angry")  # val 1; act 4; dom 4
    self.assertRating(ratings["E2"], math.nan, math.nan, math.nan, "")  # act 6: no values
    self.assertEqual(_ratings(_by_id(utts)["Ses05M_script01_1_F001"])["E5"].activation, 0.0)

  def test_sessions_and_duplicate_evaluator(self):
    log = errors.DropLog()
    utts = _by_id(self.read(dropped=log))
    self.assertEqual(log.merged, ["Ses05M_script01_1_M000"])  # reported for the manifest
    self.assertEqual(utts["Ses05M_script01_1_F000"].cww_split, "validation")
    self.assertEqual(utts["Ses05M_script01_1_F000"].speaker, "Ses05F")
    u = utts["Ses05M_script01_1_M000"]
    ratings = _ratings(u)
    self.assertLen(u.ratings, 2)
    # E5 answered twice: val 4 and 5 (0.5, 1), act 3 and 4 (0, 0.5), dom 3 and 3.
    self.assertRating(ratings["E5"], 0.25, 0.75, 0.0, "")
    self.assertRating(ratings["E1"], 0.0, 1.0, 0.0, "happy")
    self.assertConsensus(u, 0.125, 0.875, 0.0)  # recomputed over the merged ratings
    self.assertEqual({k: v.cww_split for k, v in _by_id(
        self.read(cww_validation_sessions=(1,))).items()}["Ses05M_script01_1_F000"], "train")

  @parameterized.named_parameters(
      ("malformed_evaluator", "A-E4:\tval 2; act 3; dom  3;\t(curious)", "A-E4 val 2 act 3",
       "malformed evaluation line"),
      ("malformed_value", "A-E4:\tval 2; act 3; dom  3;", "A-E4:\tval 2; act x; dom  3;",
       "malformed attribute value act 'x'"),
      ("unknown_code", "Ses01F_impro01_F000\tneu", "Ses01F_impro01_F000\tzzz",
       "unknown emotion label 'zzz'"),
      ("unknown_word", "C-E3:\tNeutral state;", "C-E3:\tBored;", "unknown emotion label 'Bored'"))
  def test_bad_lines(self, old, new, message):
    root = self.copy_fixture("iemocap")
    path = os.path.join(root, "Session1", "dialog", "EmoEvaluation", "Ses01F_impro01.txt")
    line = self.replace_line(path, old, new)
    with self.assertRaisesRegex(errors.CorpusError, message) as cm:
      self.read(root)
    self.assertIn(f"{path}:{line}", str(cm.exception))
    dropped = errors.DropLog()
    ids = [u.utterance_id for u in self.read(root, skip_bad=True, dropped=dropped)]
    self.assertNotIn("Ses01F_impro01_F000", ids)
    self.assertLen(ids, 7)
    bad = dropped.as_manifest()
    self.assertLen(bad, 1)
    self.assertEqual(list(bad.values())[0]["count"], 1)

  def test_no_sessions(self):
    with self.assertRaisesRegex(errors.CorpusError, "EmoEvaluation"):
      self.read(self.tempdir())


# ---------------------------------------------------------------------------------------------

class MspPodcastTest(_CorpusTest):

  def read(self, root=None, **kwargs):
    return list(msp_podcast.read(root or os.path.join(FIXTURES, "msp_podcast"), **kwargs))

  def test_fields_and_scaling(self):
    utts = _by_id(self.read())
    self.assertLen(utts, 5)
    u = utts["MSP-PODCAST_0001_0008"]
    self.assertEqual((u.corpus, u.speaker, u.gender, u.split, u.cww_split),
                     ("POD", "127", "F", "test", "test"))
    self.assertEqual((u.label, u.raw_label, u.label_source), ("neutral", "N", "majority"))
    self.assertEqual(u.transcript, "I think the weather will change tomorrow.")
    self.assertEqual(u.audio_path, os.path.join(FIXTURES, "msp_podcast", "Audios",
                                                "MSP-PODCAST_0001_0008.wav"))
    # 1-7 scale: 2.333333 -> 2 * 1.333333 / 6 - 1; 4.0 -> 0; 2.666667 -> -0.444444.
    self.assertConsensus(u, 2 * 1.333333 / 6 - 1, 0.0, 2 * 1.666667 / 6 - 1)
    ratings = _ratings(u)
    self.assertRating(ratings["WORKER00000001"], -2 / 3, 0.0, -2 / 3, "neutral")
    self.assertRating(ratings["WORKER00000002"], -2 / 3, 0.0, -1 / 3, "neutral")
    self.assertRating(ratings["WORKER00000003"], -1 / 3, 0.0, -1 / 3, "other")  # Other-bored

  def test_duplicate_worker_averaged_and_consensus_adjusted(self):
    log = errors.DropLog()
    u = _by_id(self.read(dropped=log))["MSP-PODCAST_0001_0019"]
    self.assertEqual(log.merged, ["MSP-PODCAST_0001_0019"])  # reported for the manifest
    ratings = _ratings(u)
    self.assertLen(u.ratings, 2)
    # WORKER4: A 5 and 7 -> 6, V 2 and 3 -> 2.5, D 5 and 6 -> 5.5; votes angry, contempt (tie:
    # the first).
    self.assertRating(ratings["WORKER00000004"], 2 / 3, -0.5, 0.5, "angry")
    self.assertConsensus(u, 2 / 3, (-2 / 3 - 0.5) / 2, (1 / 3 + 0.5) / 2)

  def test_splits_and_unknowns(self):
    utts = _by_id(self.read())
    self.assertEqual({k: (u.split, u.cww_split) for k, u in utts.items()}, {
        "MSP-PODCAST_0001_0008": ("test", "test"), "MSP-PODCAST_0001_0019": ("train", "train"),
        "MSP-PODCAST_0002_0033": ("validation", "validation"),
        "MSP-PODCAST_0003_0100": ("all", "test"), "MSP-PODCAST_0004_0101": ("train", "train")})
    u = utts["MSP-PODCAST_0002_0033"]
    self.assertEqual((u.speaker, u.gender), ("", ""))
    self.assertEqual((utts["MSP-PODCAST_0003_0100"].label,
                      utts["MSP-PODCAST_0003_0100"].raw_label), ("", "C"))
    self.assertEqual(_ratings(utts["MSP-PODCAST_0004_0101"])["WORKER00000002"].category,
                     "fearful")
    self.assertEqual(
        _by_id(self.read(annotators_test_sets=("Test1", "Test2")))["MSP-PODCAST_0003_0100"].split,
        "test")

  def test_release_1_9_spelling(self):
    root = self.copy_fixture("msp_podcast")
    os.rename(os.path.join(root, "Labels", "labels_concensus.csv"),
              os.path.join(root, "Labels", "labels_consensus.csv"))
    self.assertLen(self.read(root), 5)

  @parameterized.named_parameters(
      ("unknown_class", "labels_concensus.csv", "0004_0101.wav,X,", "0004_0101.wav,Z,",
       "MSP-PODCAST_0004_0101", "unknown emotion label 'Z'"),
      ("out_of_scale", "labels_detailed.csv", "WORKER00000003; Surprise; ; A:4.0",
       "WORKER00000003; Surprise; ; A:8.0", "MSP-PODCAST_0004_0101", "outside the corpus scale"),
      ("malformed", "labels_detailed.csv", "WORKER00000002; Fear; ; A:4.0; V:4.0; D:4.0;",
       "WORKER00000002; Fear", "MSP-PODCAST_0004_0101", "malformed"),
      ("unknown_utterance", "labels_detailed.csv", "MSP-PODCAST_0004_0101.wav,\"WORKER00000002",
       "MSP-PODCAST_9999_0101.wav,\"WORKER00000002", "MSP-PODCAST_9999_0101",
       "missing from the consensus"))
  def test_bad_rows(self, name, old, new, utterance, message):
    root = self.copy_fixture("msp_podcast")
    path = os.path.join(root, "Labels", name)
    line = self.replace_line(path, old, new)
    with self.assertRaisesRegex(errors.CorpusError, message) as cm:
      self.read(root)
    self.assertIn(f"{path}:{line}", str(cm.exception))
    self.assertIn(utterance, str(cm.exception))
    dropped = errors.DropLog()
    utts = self.read(root, skip_bad=True, dropped=dropped)
    self.assertEqual(sum(v["count"] for v in dropped.as_manifest().values()), 1)
    self.assertEqual(list(dropped.as_manifest().values())[0]["ids"], [utterance])
    self.assertLen(utts, 4 if utterance == "MSP-PODCAST_0004_0101" else 5)

  def test_entry_without_secondary_field(self):
    u = _by_id(self.read())["MSP-PODCAST_0002_0033"]
    self.assertRating(_ratings(u)["WORKER00000005"], 0.0, 1 / 3, 0.0, "happy")  # A4 V5 D4

  def test_columnar_detailed_layout(self):
    root = self.copy_fixture("msp_podcast")
    path = os.path.join(root, "Labels", "labels_detailed.csv")
    with open(path, "w") as f:
      f.write("FileName,Workers,EmoClass_Major,EmoClass_Second,EmoAct,EmoVal,EmoDom\n")
      for name in ("0001_0008", "0001_0019", "0002_0033", "0003_0100", "0004_0101"):
        f.write(f"MSP-PODCAST_{name}.wav,WORKER00000009,Sad,\"Sad, Tired\",1.0,7.0,4.0\n")
      f.write("MSP-PODCAST_0001_0008.wav,WORKER00000010,Other-Curious,,7.0,1.0,\n")
    with self.assertRaisesRegex(errors.CorpusError, "labels_detailed.csv:7.*empty rating"):
      self.read(root)  # an empty dominance cell is not a rating
    self.replace_line(path, "Other-Curious,,7.0,1.0,", "Other-Curious,,7.0,1.0,NaN")
    ratings = _ratings(_by_id(self.read(root))["MSP-PODCAST_0001_0008"])
    self.assertEqual(sorted(ratings), ["WORKER00000009", "WORKER00000010"])
    self.assertRating(ratings["WORKER00000009"], -1.0, 1.0, 0.0, "sad")
    self.assertRating(ratings["WORKER00000010"], 1.0, -1.0, math.nan, "other")
    with open(path, "w") as f:
      f.write("FileName,Rater,EmoClass_Major,EmoAct,EmoVal,EmoDom\n")
    with self.assertRaisesRegex(errors.CorpusError, "labels_detailed.csv:1: expected header"):
      self.read(root)

  def test_missing_detailed(self):
    root = self.copy_fixture("msp_podcast")
    os.remove(os.path.join(root, "Labels", "labels_detailed.csv"))
    with self.assertRaisesRegex(errors.CorpusError, "labels_detailed.csv: missing"):
      self.read(root)


# ---------------------------------------------------------------------------------------------

class MuseTest(_CorpusTest):

  def read(self, root=None, **kwargs):
    return list(muse.read(root or os.path.join(FIXTURES, "muse"), **kwargs))

  def test_fields_with_annotator_table(self):
    utts = _by_id(self.read())
    self.assertLen(utts, 3)
    u = utts["01_S_q1_u01"]
    self.assertEqual((u.corpus, u.speaker, u.gender, u.split, u.cww_split, u.label_source),
                     ("MuSE", "01", "F", "test", "all", "none"))
    self.assertTrue(u.audio_path.endswith(
        os.path.join("Stressed", "Audio", "Stressed Question Monologue Audio", "01_S_q1_u01.wav")))
    self.assertConsensus(u, 0.0, -0.5, math.nan)  # means 5 and 3 on 1-9
    self.assertEqual([r.annotator for r in u.ratings], ["A17", "A03", "A42"])
    self.assertRating(u.ratings[0], -0.25, -0.75, math.nan, "")  # 4, 2
    self.assertRating(u.ratings[2], 0.25, -0.25, math.nan, "")  # 6, 4
    self.assertIn("NotStressed", utts["01_NS_q2_u02"].audio_path)
    self.assertEqual(utts["02_S_q1_u01"].gender, "M")

  def test_duplicate_rater_averaged(self):
    log = errors.DropLog()
    u = _by_id(self.read(dropped=log))["01_NS_q2_u02"]
    self.assertEqual(log.merged, ["01_NS_q2_u02"])  # reported for the manifest
    ratings = _ratings(u)
    self.assertLen(u.ratings, 3)
    self.assertRating(ratings["A03"], -0.625, 0.375, math.nan, "")  # (2+3)/2, (6+7)/2 on 1-9
    self.assertConsensus(u, (-0.625 - 0.5 - 0.25) / 3, (0.375 + 0.5 + 0.75) / 3, math.nan)

  def test_positional_ids_with_warning(self):
    root = self.copy_fixture("muse")
    os.remove(os.path.join(root, muse.SURVEY_DIRS[0], muse.ANNOTATOR_TABLE))
    with self.assertLogs(level="WARNING") as logs:
      utts = _by_id(self.read(root))
    self.assertIn("positional ids", "\n".join(logs.output))
    self.assertEqual([r.annotator for r in utts["01_NS_q2_u02"].ratings],
                     ["pos1", "pos2", "pos3", "pos4"])

  @parameterized.named_parameters(
      ("out_of_scale", "4;5;6,2;3;4", "4;5;10,2;3;4", "outside the corpus scale"),
      ("count_mismatch", "4;5;6,2;3;4", "4;5;6,2;3", "3 activation ratings but 2 valence"),
      ("not_a_number", "4;5;6,2;3;4", "4;x;6,2;3;4", "could not convert"))
  def test_bad_rows(self, old, new, message):
    root = self.copy_fixture("muse")
    path = os.path.join(root, muse.SURVEY_DIRS[0], muse.LABEL_FILE)
    line = self.replace_line(path, old, new)
    with self.assertRaisesRegex(errors.CorpusError, message) as cm:
      self.read(root)
    self.assertIn(f"{path}:{line}", str(cm.exception))
    dropped = errors.DropLog()
    self.assertLen(self.read(root, skip_bad=True, dropped=dropped), 2)
    self.assertEqual(list(dropped.as_manifest().values())[0]["ids"], ["01_S_q1_u01"])


# ---------------------------------------------------------------------------------------------

class CremaDTest(_CorpusTest):

  def test_real_csvs_reproduce_the_cww_table(self):
    utts = list(crema_d.read(CREMA_REAL))
    self.assertLen(utts, 7442)
    counts = collections.Counter(u.label for u in utts if u.label)
    self.assertEqual(counts, {"neutral": 1087, "happy": 1271, "sad": 1271, "angry": 1271})
    speakers = {u.speaker: u.gender for u in utts}
    self.assertLen(speakers, 91)
    self.assertEqual(collections.Counter(speakers.values()), {"M": 48, "F": 43})
    cww = {u.speaker: u.cww_split for u in utts}
    self.assertEqual(collections.Counter(cww.values()), {"train": 58, "validation": 33})
    self.assertEqual({u.split for u in utts}, {"all"})
    self.assertEqual({u.label_source for u in utts}, {"intended"})
    # The README's example clip: voice row 100062 has A=6 D=2 N=1 of 9.
    u = _by_id(utts)["1001_DFA_ANG_XX"]
    self.assertEqual(collections.Counter(r.category for r in u.ratings),
                     {"angry": 6, "disgusted": 2, "neutral": 1})
    self.assertEqual([r.annotator for r in u.ratings], [f"vote{k}" for k in range(1, 10)])
    self.assertEqual((u.raw_label, u.gender, u.transcript), ("ANG", "M", "Don't forget a jacket."))
    self.assertTrue(all(math.isnan(r.activation) for r in u.ratings))

  def test_cww_split_is_seeded(self):
    a = crema_d.cww_speaker_split([str(1001 + i) for i in range(91)], seed=0)
    self.assertEqual(a, crema_d.cww_speaker_split([str(1001 + i) for i in range(91)][::-1], seed=0))
    self.assertNotEqual(a, crema_d.cww_speaker_split([str(1001 + i) for i in range(91)], seed=1))
    self.assertEqual(collections.Counter(a.values()), {"train": 58, "validation": 33})

  def test_empty_distributed_clip_skipped_with_audio_present(self):
    root = self.tempdir()
    for name in ("summaryTable.csv", "tabulatedVotes.csv", "VideoDemographics.csv"):
      os.symlink(os.path.join(CREMA_REAL, name), os.path.join(root, name))
    audio = os.path.join(root, "AudioWAV")
    os.mkdir(audio)
    clips = [u.utterance_id for u in crema_d.read(CREMA_REAL)]
    body = b"RIFF" + b"\0" * 60  # any file longer than a bare header
    for clip in clips:
      with open(os.path.join(audio, clip + ".wav"), "wb") as f:
        f.write(b"" if clip == "1076_MTI_SAD_XX" else body)
    dropped = errors.DropLog()
    utts = list(crema_d.read(root, dropped=dropped))
    counts = collections.Counter(u.label for u in utts if u.label)
    self.assertEqual(counts, {"neutral": 1087, "happy": 1271, "sad": 1270, "angry": 1271})
    self.assertEqual(dropped.as_manifest(),
                     {crema_d.EMPTY_AUDIO: {"count": 1, "ids": ["1076_MTI_SAD_XX"]}})

  def test_fixture_audio_rules(self):
    dropped = errors.DropLog()
    utts = _by_id(crema_d.read(os.path.join(FIXTURES, "crema_d"), dropped=dropped))
    self.assertEqual(sorted(utts), ["1001_DFA_ANG_XX", "1001_DFA_DIS_XX", "1001_IEO_HAP_LO",
                                    "1001_IEO_NEU_XX", "1002_DFA_SAD_XX", "1076_MTI_HAP_XX"])
    self.assertEqual(dropped.as_manifest(), {
        crema_d.EMPTY_AUDIO: {"count": 1, "ids": ["1076_MTI_SAD_XX"]},
        crema_d.MISSING_AUDIO: {"count": 1, "ids": ["1002_ITH_NEU_XX"]}})
    u = utts["1001_DFA_DIS_XX"]
    self.assertEqual((u.label, u.raw_label), ("", "DIS"))
    self.assertEqual(u.audio_path, os.path.join(FIXTURES, "crema_d", "AudioWAV",
                                                "1001_DFA_DIS_XX.wav"))

  @parameterized.named_parameters(
      ("bad_votes", "tabulatedVotes.csv", '"100062",6,2,0,0,1,0', '"100062",6,2,0,0,5,0',
       "do not sum to numResponses"),
      ("unknown_emotion", "summaryTable.csv", '"1076_MTI_HAP_XX"', '"1076_MTI_BOR_XX"',
       "unknown emotion label 'BOR'"))
  def test_bad_rows(self, name, old, new, message):
    root = self.copy_fixture("crema_d")
    path = os.path.join(root, "processedResults", name)
    line = self.replace_line(path, old, new)
    with self.assertRaisesRegex(errors.CorpusError, message) as cm:
      list(crema_d.read(root))
    self.assertIn(f"{path}:{line}", str(cm.exception))
    dropped = errors.DropLog()
    self.assertLen(list(crema_d.read(root, skip_bad=True, dropped=dropped)), 5)
    self.assertEqual(sum(v["count"] for v in dropped.as_manifest().values()), 3)

  def test_empty_corpus(self):
    root = self.copy_fixture("crema_d")
    path = os.path.join(root, "processedResults", "summaryTable.csv")
    with open(path) as f:
      header = f.readline()
    with open(path, "w") as f:
      f.write(header)
    with self.assertRaisesRegex(errors.CorpusError, "empty corpus"):
      list(crema_d.read(root))


# ---------------------------------------------------------------------------------------------

class LibriSpeechTest(_CorpusTest):

  def test_fields(self):
    root = os.path.join(FIXTURES, "librispeech", "LibriSpeech")
    utts = list(librispeech.read(root))
    self.assertEqual([u.utterance_id for u in utts],
                     ["103-1240-0000", "19-198-0000", "19-198-0001"])
    u = utts[2]
    self.assertEqual((u.corpus, u.speaker, u.gender, u.split, u.cww_split, u.label,
                      u.label_source, u.ratings),
                     ("LIBRI", "19", "F", "all", "all", "", "none", []))
    self.assertEqual(u.transcript, "THIS LITTLE WORK WAS FINISHED IN THE YEAR EIGHTEEN O THREE")
    self.assertEqual(u.audio_path, os.path.join(root, "train-clean-100", "19", "198",
                                                "19-198-0001.flac"))
    # The subset directory itself works too, finding SPEAKERS.TXT one level up.
    same = list(librispeech.read(os.path.join(root, "train-clean-100")))
    self.assertEqual([(u.utterance_id, u.gender) for u in same],
                     [(u.utterance_id, u.gender) for u in utts])

  def test_malformed_line_and_empty(self):
    root = self.copy_fixture("librispeech")
    path = os.path.join(root, "LibriSpeech", "train-clean-100", "19", "198", "19-198.trans.txt")
    line = self.replace_line(path, "19-198-0001 THIS", "19_198_0001 THIS")
    with self.assertRaisesRegex(errors.CorpusError, f"{path}:{line}: malformed"):
      list(librispeech.read(os.path.join(root, "LibriSpeech")))
    dropped = errors.DropLog()
    self.assertLen(list(librispeech.read(os.path.join(root, "LibriSpeech"), skip_bad=True,
                                         dropped=dropped)), 2)
    with self.assertRaisesRegex(errors.CorpusError, "empty corpus"):
      list(librispeech.read(self.tempdir()))


# ---------------------------------------------------------------------------------------------

class CsvManifestTest(_CorpusTest):

  def read(self, root=None, **kwargs):
    return list(csv_manifest.read(root or os.path.join(FIXTURES, "csv_manifest"), **kwargs))

  def test_fields_and_scaling(self):
    utts = _by_id(self.read())
    u = utts["lab_0001"]
    self.assertEqual((u.corpus, u.speaker, u.gender, u.split, u.cww_split),
                     ("CSV", "spk1", "F", "train", "validation"))
    self.assertEqual(u.audio_path, os.path.join(FIXTURES, "csv_manifest", "wav", "lab_0001.wav"))
    self.assertEqual((u.label, u.raw_label, u.label_source), ("angry", "angry", "majority"))
    ratings = _ratings(u)
    self.assertRating(ratings["r1"], 0.5, -0.5, 0.0, "angry")  # 4, 2, 3 on 1-5
    self.assertRating(ratings["r2"], 1.0, -1.0, math.nan, "angry")  # empty dominance
    self.assertConsensus(u, 0.5, (-0.5 - 1.0 - 0.5) / 3, 0.0)
    u = utts["lab_0002"]
    self.assertEqual(u.audio_path, "/data/other/lab_0002.wav")
    self.assertLen(u.ratings, 1)  # r1 twice: averaged
    self.assertRating(u.ratings[0], 0.5, 0.5, 0.0, "neutral")
    u = utts["lab_0003"]
    self.assertEqual((u.ratings, u.label_source, u.split), ([], "none", "all"))

  def test_name_and_manifest_path(self):
    path = os.path.join(FIXTURES, "csv_manifest", "manifest.csv")
    self.assertEqual({u.corpus for u in self.read(path, name="LAB")}, {"LAB"})
    self.assertLen(self.read("/nonexistent", manifest=path), 3)

  @parameterized.named_parameters(
      ("different_speaker", "lab_0001,wav/lab_0001.wav,spk1,train,r3",
       "lab_0001,wav/lab_0001.wav,spk9,train,r3", "lab_0001", "column 'speaker' differs"),
      ("bad_split", "lab_0003,wav/lab_0003.wav,spk2,all", "lab_0003,wav/lab_0003.wav,spk2,dev",
       "lab_0003", "split 'dev'"),
      ("out_of_scale", "spk1,train,r3,3,2,3", "spk1,train,r3,3,7,3", "lab_0001",
       "outside the corpus scale"),
      ("one_scale_bound", "spk1,train,r3,3,2,3,sad,F,I told you already.,validation,1,5",
       "spk1,train,r3,3,2,3,sad,F,I told you already.,validation,1,", "lab_0001",
       "both scale_min and scale_max"))
  def test_bad_rows(self, old, new, utterance, message):
    root = self.copy_fixture("csv_manifest")
    path = os.path.join(root, "manifest.csv")
    line = self.replace_line(path, old, new)
    with self.assertRaisesRegex(errors.CorpusError, message) as cm:
      self.read(root)
    self.assertIn(f"{path}:{line}", str(cm.exception))
    self.assertIn(f"utterance {utterance}", str(cm.exception))
    dropped = errors.DropLog()
    self.assertLen(self.read(root, skip_bad=True, dropped=dropped), 2)
    self.assertEqual(list(dropped.as_manifest().values())[0]["ids"], [utterance])

  def test_missing_column(self):
    root = self.tempdir()
    with open(os.path.join(root, "manifest.csv"), "w") as f:
      f.write("utterance,audio_path\nu1,a.wav\n")
    with self.assertRaisesRegex(errors.CorpusError, "manifest.csv:1: missing columns"):
      self.read(root)


if __name__ == "__main__":
  tf.test.main()
