"""The within-single-corpus speaker folds (CWW paper 3.2) against the paper's numbers."""

import collections

from absl.testing import absltest

from tfser.tasks.cww import folds as cww_folds
from tfser.tasks.cww.config import CwwConfig

CRE = [str(1001 + i) for i in range(91)]  # CREMA-D's 91 actors
IEM = [f"Ses{s:02d}{g}" for s in range(1, 6) for g in "FM"]
IMP = [f"{g}{s:02d}" for s in range(1, 7) for g in "FM"]


def _check_partition(test_case, folds, speakers):
  """Every fold's parts are disjoint and cover the speakers; each speaker is tested once."""
  tested = collections.Counter(s for f in folds for s in f.test)
  test_case.assertEqual(tested, collections.Counter(speakers))
  for f in folds:
    parts = [set(f.train), set(f.validation), set(f.test)]
    test_case.assertEqual(sum(len(p) for p in parts), len(speakers), f)
    test_case.assertEqual(set().union(*parts), set(speakers), f)
    test_case.assertTrue(all(parts), f)


class SpeakerRuleTest(absltest.TestCase):

  def test_crema_d_ten_folds_of_the_papers_sizes(self):
    utterance_speakers = [s for s in CRE for _ in range(3)] + [""]  # ids repeat; "" ignored
    folds = cww_folds.all_folds("CRE", utterance_speakers)
    self.assertLen(folds, 10)
    self.assertEqual(cww_folds.num_folds("CRE", CRE), cww_folds.NUM_FOLDS["CRE"])
    sizes = [(len(f.train), len(f.validation), len(f.test)) for f in folds]
    # 91 = 10 + 9 x 9: fold 0 is the paper's 72 / 9 / 10, the others test 9 and train 73.
    self.assertEqual(sizes[0], (72, 9, 10))
    self.assertEqual(sizes[1:], [(73, 9, 9)] * 9)
    _check_partition(self, folds, CRE)
    # The validation speakers differ from fold to fold (each validates at most once).
    validators = [s for f in folds for s in f.validation]
    self.assertEqual(len(validators), len(set(validators)))

  def test_shuffle_is_seeded_not_sorted(self):
    first = cww_folds.make_fold("CRE", CRE, 0)
    self.assertEqual(first, cww_folds.make_fold("CRE", list(reversed(CRE)), 0))  # order-free
    self.assertNotEqual(first.test, tuple(CRE[:10]))
    self.assertNotEqual(first.test, cww_folds.make_fold("CRE", CRE, 0, seed=1).test)

  def test_scaled_to_the_demo_and_to_tiny_corpora(self):
    demo = [str(1001 + i) for i in range(24)]  # the demo's CRE
    folds = cww_folds.all_folds("CRE", demo)
    self.assertLen(folds, 10)
    self.assertEqual([(len(f.train), len(f.validation), len(f.test)) for f in folds],
                     [(19, 2, 3)] * 4 + [(20, 2, 2)] * 6)
    _check_partition(self, folds, demo)
    five = ["a", "b", "c", "d", "e"]  # fewer speakers than folds: leave-one-speaker-out
    folds = cww_folds.all_folds("CRE", five)
    self.assertEqual([(len(f.train), len(f.validation), len(f.test)) for f in folds],
                     [(3, 1, 1)] * 5)
    _check_partition(self, folds, five)
    with self.assertRaisesRegex(ValueError, "at least 3 speakers"):
      cww_folds.make_fold("CRE", ["a", "b"], 0)

  def test_unknown_corpus_uses_the_speaker_rule(self):
    self.assertEqual(cww_folds.rule("EMODB"), "speakers")
    self.assertLen(cww_folds.all_folds("EMODB", [f"s{i}" for i in range(10)]), 10)


class SessionRuleTest(absltest.TestCase):

  def test_iemocap_ten_leave_one_speaker_out_folds(self):
    folds = cww_folds.all_folds("IEM", IEM)
    self.assertLen(folds, 10)
    _check_partition(self, folds, IEM)
    for f in folds:
      self.assertEqual((len(f.train), len(f.validation), len(f.test)), (8, 1, 1))
      session = cww_folds.session_of("IEM", f.test[0])
      self.assertEqual(cww_folds.session_of("IEM", f.validation[0]), session)
      self.assertEqual({cww_folds.session_of("IEM", s) for s in f.train},
                       set(range(1, 6)) - {session})  # 8 speakers of the other 4 sessions
    self.assertEqual((folds[0].test, folds[0].validation), (("Ses01F",), ("Ses01M",)))
    self.assertEqual((folds[9].test, folds[9].validation), (("Ses05M",), ("Ses05F",)))

  def test_msp_improv_twelve_folds(self):
    folds = cww_folds.all_folds("IMP", IMP)
    self.assertLen(folds, 12)
    _check_partition(self, folds, IMP)
    for f in folds:
      self.assertEqual((len(f.train), len(f.validation), len(f.test)), (10, 1, 1))
      self.assertEqual(f.test[0][1:], f.validation[0][1:])  # F03 and M03: session 3
    self.assertEqual(cww_folds.session_of("IMP", "M06"), 6)

  def test_bad_speaker_ids_and_sessions(self):
    with self.assertRaisesRegex(ValueError, "session of IEM speaker '1001'"):
      cww_folds.make_fold("IEM", ["1001", "1002"], 0)
    with self.assertRaisesRegex(ValueError, "at least 2 speakers each"):
      cww_folds.make_fold("IMP", ["F01", "M01", "F02"], 0)
    # Sessions given explicitly instead of parsed from the ids.
    fold = cww_folds.make_fold("IEM", ["a", "b", "c", "d"], 3,
                               sessions={"a": 1, "b": 1, "c": 2, "d": 2})
    self.assertEqual((fold.train, fold.validation, fold.test), (("a", "b"), ("c",), ("d",)))


class SplitsRuleAndRangeTest(absltest.TestCase):

  def test_podcast_uses_its_fixed_splits(self):
    fold = cww_folds.make_fold("POD", ["0001", "", "0002"], 0)
    self.assertFalse(fold.by_speaker)
    self.assertEqual((fold.num_folds, fold.train, fold.test), (1, (), ()))
    self.assertEqual(fold.as_dict()["rule"], "splits")

  def test_out_of_range_fold_names_the_flag(self):
    with self.assertRaisesRegex(ValueError, r"--fold=10 .* IEM.* 10 fold\(s\), 0\.\.9"):
      cww_folds.make_fold("IEM", IEM, 10)
    with self.assertRaisesRegex(ValueError, r"--fold=1 .* POD"):
      cww_folds.make_fold("POD", [], 1)
    with self.assertRaisesRegex(ValueError, "--fold=-1"):
      cww_folds.make_fold("CRE", CRE, -1)

  def test_config_validates_the_fold(self):
    CwwConfig(holdout="IMP", mode="within_corpus", fold=11).validate()
    with self.assertRaisesRegex(ValueError, r"--fold=12 .*--holdout=IMP.* 12 fold"):
      CwwConfig(holdout="IMP", mode="within_corpus", fold=12).validate()
    with self.assertRaisesRegex(ValueError, r"--fold=1 .*--holdout=POD"):
      CwwConfig(holdout="POD", mode="within_corpus", fold=1).validate()
    with self.assertRaisesRegex(ValueError, "--fold=2 applies to the within-corpus"):
      CwwConfig(holdout="IEM", fold=2).validate()


if __name__ == "__main__":
  absltest.main()
