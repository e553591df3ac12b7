"""Every public release layout of each corpus reads; a wrong copy says why (issue 12).

The fixtures (tests/data/fixtures/<corpus>_<variant>/, see its README) follow the layouts as the
public loaders cited in each reader's docstring read them, not tfser's own earlier assumptions.
"""

import ast
import csv
import os
import shutil

import tfser  # noqa: F401
import tensorflow as tf

from data_prep import corpora
from data_prep import errors
from data_prep import prepare
from data_prep import write_tfrecords
from data_prep.corpora import crema_d
from data_prep.corpora import iemocap
from data_prep.corpora import librispeech
from data_prep.corpora import msp_improv
from data_prep.corpora import msp_podcast
from data_prep.corpora import muse
from tests import testing
from tests.write_tfrecords_fixtures import FakeExtractor

FIXTURES = testing.FIXTURES


def _fixture(name):
  return os.path.join(FIXTURES, name)


def _by_id(utterances):
  return {u.utterance_id: u for u in utterances}


def _unit(x, lo, hi):
  """The min-max map of the annotators paper's authors' loaders: scale(lo, hi, -1, 1, x)."""
  return -1 + (x - lo) * 2 / (hi - lo)


class _LayoutTest(testing.FixtureTrees, tf.test.TestCase):

  def assertAudioResolves(self, utterances):
    for u in utterances:
      self.assertTrue(os.path.isfile(u.audio_path), f"{u.utterance_id}: {u.audio_path}")

  def prepare_with_audio(self, utterances, corpus):
    """Writes the records with an extractor that decodes every clip (data_prep.audio)."""
    extractor = FakeExtractor(needs_audio=True)
    manifest = write_tfrecords.prepare_corpus(
        utterances, corpus=corpus, out_dir=self.tempdir(), extractors=[extractor],
        gt_config=None, progress=False)
    return manifest, extractor


# ---------------------------------------------------------------------------------------------

class MspPodcastReleasesTest(_LayoutTest):

  def read(self, name, dropped=None):
    return list(msp_podcast.read(_fixture(name), dropped=dropped))

  def test_release_1_6_label_folder_and_workers_columns(self):
    dropped = errors.DropLog()
    utts = _by_id(self.read("msp_podcast_1_6", dropped))
    self.assertEqual(sorted(utts), ["MSP-PODCAST_0023_0043", "MSP-PODCAST_0023_0044",
                                    "MSP-PODCAST_0031_0001"])
    u = utts["MSP-PODCAST_0023_0044"]
    self.assertEqual((u.split, u.cww_split, u.label), ("validation", "validation", "sad"))
    rating = {r.annotator: r for r in u.ratings}["WORKER00000101"]  # A 2, V 2, D 3 of 1-7
    self.assertAllClose([rating.activation, rating.valence, rating.dominance],
                        [_unit(2, 1, 7), _unit(2, 1, 7), _unit(3, 1, 7)])
    self.assertEqual(rating.category, "sad")
    self.assertEqual({r.category for r in utts["MSP-PODCAST_0031_0001"].ratings}, {"neutral"})
    self.assertAudioResolves(utts.values())
    self.assertEqual(dropped.layout, {
        "release": "1.6", "labels": "label/labels_concensus.csv",
        "detailed": "columns (Workers)", "audio": "Audios/",
        "split_sets": "Test1,Train,Validation"})

  def test_release_1_9_lower_case_labels_folder(self):
    dropped = errors.DropLog()
    utts = _by_id(self.read("msp_podcast_1_9", dropped))
    self.assertLen(utts, 3)
    u = utts["MSP-PODCAST_0100_0011"]
    self.assertEqual((u.split, u.transcript), ("validation", "well I guess that is fine"))
    self.assertEqual(sorted(r.annotator for r in u.ratings), ["WORKER00000201", "WORKER00000203"])
    self.assertEqual((utts["MSP-PODCAST_0200_0003"].split,
                      utts["MSP-PODCAST_0200_0003"].cww_split), ("all", "test"))
    self.assertEqual((dropped.layout["release"], dropped.layout["labels"],
                      dropped.layout["detailed"]),
                     ("1.9", "labels/labels_concensus.csv", "FileName,EmoDetail"))

  def test_release_2_0_worker_id_columns_and_test3(self):
    dropped = errors.DropLog()
    utts = _by_id(self.read("msp_podcast_2_0", dropped))
    self.assertLen(utts, 5)
    self.assertEqual({k: (u.split, u.cww_split) for k, u in utts.items()}, {
        "MSP-PODCAST_1000_0001": ("train", "train"),
        "MSP-PODCAST_1000_0002": ("validation", "validation"),
        "MSP-PODCAST_1001_0007": ("test", "test"), "MSP-PODCAST_1002_0003": ("all", "test"),
        "MSP-PODCAST_1003_0009": ("all", "all")})  # Test3: in neither paper's partitions
    u = utts["MSP-PODCAST_1001_0007"]
    self.assertEqual(sorted(r.annotator for r in u.ratings), ["WORKER00000302", "WORKER00000303"])
    self.assertAllClose(sorted(r.valence for r in u.ratings), [_unit(1, 1, 7), _unit(2, 1, 7)])
    self.assertEqual(utts["MSP-PODCAST_1003_0009"].raw_label, "F")
    self.assertEqual((dropped.layout["release"], dropped.layout["labels"],
                      dropped.layout["detailed"], dropped.layout["split_sets"]),
                     ("2.0+", "Labels/labels_consensus.csv", "columns (WorkerID)",
                      "Development,Test1,Test2,Test3,Train"))

  def test_no_labels_lists_every_place_looked(self):
    root = self.copy_fixture("msp_podcast_1_6")
    os.rename(os.path.join(root, "label"), os.path.join(root, "Label_files"))
    with self.assertRaisesRegex(errors.CorpusError, "missing MSP-Podcast consensus labels") as cm:
      self.read_root(root)
    for place in ("Labels/labels_consensus.csv", "labels/labels_concensus.csv",
                  "label/labels_concensus.csv"):
      self.assertIn(place, str(cm.exception))

  def read_root(self, root):
    return list(msp_podcast.read(root))

  def test_prepare_records_the_layout_in_the_manifest(self):
    manifests = prepare.prepare("msp_podcast", _fixture("msp_podcast_1_6"), self.tempdir(),
                                features=(), gt_config=None, progress=False)
    manifest = manifests["POD"]
    self.assertEqual(manifest["utterances"], 3)
    self.assertEqual(manifest["layout"]["release"], "1.6")
    self.assertEqual(manifest["layout"]["labels"], "label/labels_concensus.csv")


# ---------------------------------------------------------------------------------------------

class MspImprovAudioTest(_LayoutTest):

  def test_original_archive_sessions_under_the_root(self):
    dropped = errors.DropLog()
    utts = list(msp_improv.read(_fixture("msp_improv_archive"), dropped=dropped))
    self.assertLen(utts, 3)
    self.assertAudioResolves(utts)
    u = _by_id(utts)["MSP-IMPROV-S01A-F01-P-FM01"]
    self.assertEqual(u.audio_path, os.path.join(
        _fixture("msp_improv_archive"), "session1", "S01A", "P", "MSP-IMPROV-S01A-F01-P-FM01.wav"))
    self.assertEqual(dropped.layout, {"labels": "Evaluation.txt",
                                      "audio": "session*/ (original archive)"})
    manifest, extractor = self.prepare_with_audio(utts, "IMP")
    self.assertEqual((manifest["utterances"], extractor.calls), (3, 3))

  def test_audio_folder(self):
    dropped = errors.DropLog()
    utts = list(msp_improv.read(_fixture("msp_improv_audio_dir"), dropped=dropped))
    self.assertAudioResolves(utts)
    self.assertEqual(dropped.layout["audio"], "Audio/session*/")
    # The same labels either way; only the audio folder differs.
    archive = _by_id(msp_improv.read(_fixture("msp_improv_archive")))
    for u in utts:
      other = archive[u.utterance_id]
      self.assertEqual((u.activation, u.valence, [r.annotator for r in u.ratings]),
                       (other.activation, other.valence, [r.annotator for r in other.ratings]))

  def test_without_audio_paths_point_under_audio(self):
    root = self.copy_fixture("msp_improv_archive")
    for n in (1, 2, 6):
      shutil.rmtree(os.path.join(root, f"session{n}"))
    dropped = errors.DropLog()
    utts = list(msp_improv.read(root, dropped=dropped))
    self.assertTrue(all(os.sep + os.path.join("Audio", "session") in u.audio_path for u in utts))
    self.assertEqual(dropped.layout["audio"], "none found (labels only)")
    with self.assertRaisesRegex(errors.CorpusError, "audio file not found"):
      self.prepare_with_audio(utts, "IMP")


# ---------------------------------------------------------------------------------------------

def _authors_table(path):
  """muse_annotators.csv parsed as the authors' add_muse_helper does (split on ',' and strip
  ' []' and quotes), with the self-report (the last entry) left out."""
  out = {}
  with open(path, newline="") as f:
    for row in csv.DictReader(f):
      acts = [float(x.strip(" []")) for x in row["soft_act_labels"].split(",")]
      vals = [float(x.strip(" []")) for x in row["soft_val_labels"].split(",")]
      names = [x.strip(" []'") for x in row["annotators"].split(",")]
      out[row["FileName"][:-len(".wav")]] = list(zip(names, acts, vals))[:-1]
  return out


class MuseCopiesTest(_LayoutTest):

  def check_against_authors_table(self, utts, table_path):
    table = _authors_table(table_path)
    self.assertEqual(sorted(table), sorted(utts))
    for utt_id, entries in table.items():
      got = [(r.annotator, r.activation, r.valence) for r in utts[utt_id].ratings]
      want = [(n, _unit(a, 1, 9), _unit(v, 1, 9)) for n, a, v in entries]
      self.assertEqual([g[0] for g in got], [w[0] for w in want])
      self.assertAllClose([g[1:] for g in got], [w[1:] for w in want])

  def test_older_copy_folder_names_and_table_at_the_root(self):
    root = _fixture("muse_older_copy")
    dropped = errors.DropLog()
    utts = _by_id(muse.read(root, dropped=dropped))
    self.assertLen(utts, 4)
    self.assertAudioResolves(utts.values())
    ns = utts["01_DR-100_0097_1_sentence_1"].audio_path
    self.assertIn(os.path.join("Non Stressed", "Audio",
                               "Non Stressed Question Monologue Audio [Sentence Split]"), ns)
    self.check_against_authors_table(utts, os.path.join(root, "muse_annotators.csv"))
    self.assertFalse(any(r.annotator.startswith("self") for u in utts.values()
                         for r in u.ratings))
    # Stable ids: the same rater across utterances (positional ids would not be).
    self.assertLen([u for u in utts.values()
                    if "ABS83QIWSMZ9" in {r.annotator for r in u.ratings}], 4)
    self.assertEqual(dropped.layout["survey"], "SurveyInformation")
    self.assertEqual(dropped.layout["annotator_ids"], "muse_annotators.csv")
    self.assertIn("[Sentence Split]", dropped.layout["audio"])
    manifest, extractor = self.prepare_with_audio(list(utts.values()), "MuSE")
    self.assertEqual((manifest["utterances"], extractor.calls), (4, 4))

  def test_current_copy_table_beside_the_annotation_csv(self):
    root = _fixture("muse_current_copy")
    utts = _by_id(muse.read(root))
    self.assertAudioResolves(utts.values())
    self.assertIn(os.path.join("NotStressed", "Audio"),
                  utts["01_DR-100_0097_1_sentence_2"].audio_path)
    self.check_against_authors_table(
        utts, os.path.join(root, muse.SURVEY_DIRS[0], "muse_annotators.csv"))

  def test_table_given_with_the_flag(self):
    root = self.copy_fixture("muse_older_copy")
    table = os.path.join(self.tempdir(), "elsewhere.csv")
    os.rename(os.path.join(root, "muse_annotators.csv"), table)
    with self.assertLogs(level="WARNING") as logs:
      self.assertEqual({r.annotator for r in list(muse.read(root))[0].ratings},
                       {"pos1", "pos2", "pos3", "pos4"})
    self.assertIn("muse_annotators.csv", "\n".join(logs.output))
    utts = _by_id(corpora.read("muse", root, muse_annotators=table))
    self.check_against_authors_table(utts, table)
    with self.assertRaisesRegex(errors.CorpusError, "missing MuSE annotator table"):
      list(corpora.read("muse", root, muse_annotators=table + ".gone"))
    with self.assertRaisesRegex(errors.CorpusError, "for --corpus=muse only"):
      corpora.read("msp_podcast", root, muse_annotators=table)

  def test_malformed_table_row_names_file_and_line(self):
    root = self.copy_fixture("muse_older_copy")
    path = os.path.join(root, "muse_annotators.csv")
    with open(path) as f:
      lines = f.read().splitlines()
    lines[2] = lines[2].replace('"[5, 5, 1, 4]"', '"[5, 5, 1]"')
    with open(path, "w") as f:
      f.write("\n".join(lines) + "\n")
    with self.assertRaisesRegex(errors.CorpusError,
                                f"{path}:3.*01_DR-100_0097_1_sentence_2.*3 activation"):
      list(muse.read(root))

  def test_table_and_csv_disagreeing_on_rater_count_warns(self):
    root = self.copy_fixture("muse_older_copy")
    path = os.path.join(root, "muse_annotators.csv")
    with open(path) as f:
      lines = f.read().splitlines()
    # One crowd rater fewer in the table than in the CSV for the second utterance.
    lines[2] = (lines[2].replace('"[5, 5, 1, 4]"', '"[5, 5, 4]"')
                .replace('"[6, 7, 6, 6]"', '"[6, 7, 6]"')
                .replace("'A3KCUB6P3IE8NL', ", ""))
    with open(path, "w") as f:
      f.write("\n".join(lines) + "\n")
    with self.assertLogs(level="WARNING") as logs:
      utts = _by_id(muse.read(root))
    self.assertIn("1 utterance(s) (e.g. 01_DR-100_0097_1_sentence_2)", "\n".join(logs.output))
    self.assertEqual([r.annotator for r in utts["01_DR-100_0097_1_sentence_2"].ratings],
                     ["ABS83QIWSMZ9", "A2JP9IKRHNLRPI"])

  def test_list_literals_are_not_evaluated_as_code(self):
    self.assertEqual(muse._list_literal("['a', 'b']"), ast.literal_eval("['a', 'b']"))
    with self.assertRaises(ValueError):
      muse._list_literal("__import__('os').getcwd()")


# ---------------------------------------------------------------------------------------------

class CremaDWrongCopyTest(_LayoutTest):

  def test_clone_without_git_lfs_says_run_git_lfs_pull(self):
    root = _fixture("crema_d_lfs_pointers")
    size = os.path.getsize(os.path.join(root, "AudioWAV", "1001_DFA_ANG_XX.wav"))
    self.assertLess(size, crema_d.LFS_POINTER_MAX_BYTES)
    self.assertGreater(size, crema_d.EMPTY_WAV_BYTES)  # passes the empty-file check
    with self.assertRaisesRegex(
        errors.CorpusError, r"AudioWAV/ holds git-lfs pointers; run git lfs pull.*8 of 8"):
      list(crema_d.read(root))
    dropped = errors.DropLog()
    with self.assertRaisesRegex(errors.CorpusError,
                                "empty corpus: no utterances read; 8 dropped: 8 git-lfs pointer"):
      list(crema_d.read(root, skip_bad=True, dropped=dropped))
    self.assertEqual(dropped.layout["audio"], "AudioWAV/ (8 git-lfs pointers)")

  def test_prepare_stops_with_the_reason(self):
    with self.assertRaisesRegex(errors.CorpusError, "run git lfs pull"):
      prepare.prepare("crema_d", _fixture("crema_d_lfs_pointers"), self.tempdir(),
                      features=(), gt_config=None, progress=False)

  def test_one_pointer_among_real_audio_is_dropped_with_skip_bad(self):
    root = self.copy_fixture("crema_d")
    shutil.copy(os.path.join(FIXTURES, "crema_d_lfs_pointers", "AudioWAV", "1001_IEO_NEU_XX.wav"),
                os.path.join(root, "AudioWAV", "1001_IEO_NEU_XX.wav"))
    with self.assertRaisesRegex(errors.CorpusError, "1 of 7 .wav files"):
      list(crema_d.read(root))
    dropped = errors.DropLog()
    utts = _by_id(crema_d.read(root, skip_bad=True, dropped=dropped))
    self.assertNotIn("1001_IEO_NEU_XX", utts)
    self.assertLen(utts, 5)
    self.assertEqual(dropped.as_manifest()[crema_d.LFS_POINTER]["ids"], ["1001_IEO_NEU_XX"])

  def test_empty_audio_folder_says_how_many_dropped_and_why(self):
    root = self.copy_fixture("crema_d")
    shutil.rmtree(os.path.join(root, "AudioWAV"))
    os.mkdir(os.path.join(root, "AudioWAV"))
    with self.assertRaisesRegex(
        errors.CorpusError,
        f"empty corpus: no utterances read; 8 dropped: 8 {crema_d.MISSING_AUDIO}"):
      list(crema_d.read(root))


# ---------------------------------------------------------------------------------------------

class UnpackedFolderTest(_LayoutTest):
  """IEMOCAP and LibriSpeech read from the folder their archive was unpacked in, too."""

  def test_iemocap_full_release_folder(self):
    root = self.tempdir()
    os.symlink(_fixture("iemocap"), os.path.join(root, iemocap.RELEASE_DIR))
    got = [u.utterance_id for u in iemocap.read(root)]
    self.assertEqual(got, [u.utterance_id for u in iemocap.read(_fixture("iemocap"))])
    self.assertNotEmpty(got)

  def test_librispeech_tarball_folder(self):
    root = self.tempdir()
    os.symlink(os.path.join(_fixture("librispeech"), "LibriSpeech"),
               os.path.join(root, "LibriSpeech"))
    got = list(librispeech.read(root))
    want = list(librispeech.read(os.path.join(_fixture("librispeech"), "LibriSpeech")))
    self.assertEqual([(u.utterance_id, u.gender) for u in got],
                     [(u.utterance_id, u.gender) for u in want])
    self.assertNotEmpty(got)


if __name__ == "__main__":
  tf.test.main()
