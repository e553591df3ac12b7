"""data_prep.prepare and the reader registry: names, CLI errors, a CSV corpus end to end, demo."""

import glob
import json
import os
import subprocess
import sys
import time

from absl import flags
from absl.testing import parameterized
import tensorflow as tf

from data_prep import corpora
from data_prep import prepare
from data_prep.errors import CorpusError
from tests import write_tfrecords_fixtures as fx

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

CSV_HEADER = ("utterance,audio_path,speaker,split,annotator,activation,valence,dominance,category,"
              "scale_min,scale_max\n")
CSV_ROWS = [
    "u1,wav/u1.wav,s1,train,r1,4,2,3,happy,1,5",
    "u1,wav/u1.wav,s1,train,r2,5,3,,happy,1,5",
    "u2,wav/u2.wav,s2,train,r1,1,1,1,sad,1,5",
    "u2,wav/u2.wav,s2,train,r3,2,2,2,sad,1,5",
    "u3,wav/u3.wav,s1,validation,r2,3,3,3,neutral,1,5",
    "u4,wav/u4.wav,s2,test,r3,3,5,3,angry,1,5",
    "u4,wav/u4.wav,s2,test,r1,5,4,3,angry,1,5",
]


def _csv(directory, rows):
  os.makedirs(directory, exist_ok=True)
  with open(os.path.join(directory, "manifest.csv"), "w") as f:
    f.write(CSV_HEADER + "\n".join(rows) + "\n")
  return directory


class RegistryTest(parameterized.TestCase):

  @parameterized.parameters(
      ("msp_improv", "IMP"), ("IMP", "IMP"), ("imp", "IMP"), ("iemocap", "IEM"),
      ("msp_podcast", "POD"), ("MSP-Podcast", "POD"), ("muse", "MuSE"), ("MuSE", "MuSE"),
      ("crema_d", "CRE"), ("CREMA-D", "CRE"), ("librispeech", "LIBRI"), ("csv", "CSV"),
      ("csv_manifest", "CSV"), ("Demo", "demo"))
  def test_aliases(self, name, code):
    self.assertEqual(corpora.resolve(name), code)

  def test_unknown_lists_valid_names(self):
    with self.assertRaisesRegex(CorpusError, r"unknown corpus 'msp_impro'; valid names: "
                                r"msp_improv \(IMP\), iemocap \(IEM\).*crema_d \(CRE\).*demo"):
      corpora.resolve("msp_impro")

  def test_every_registered_module_has_its_code(self):
    for code, module in corpora.MODULES.items():
      try:
        reader = corpora.load(code)
      except CorpusError:
        continue  # a reader not (yet) there breaks only its own corpus; checked below
      self.assertEqual(reader.NAME, code, module)
      self.assertTrue(callable(reader.read))

  def test_missing_module_breaks_only_itself(self):
    corpora.MODULES["ZZZ"] = "no_such_reader"
    try:
      with self.assertRaisesRegex(CorpusError, r"ZZZ \(data_prep.corpora.no_such_reader\) cannot"):
        corpora.load("zzz")
    finally:
      del corpora.MODULES["ZZZ"]
    self.assertEqual(corpora.load("csv").NAME, "CSV")

  def test_missing_root(self):
    with self.assertRaisesRegex(CorpusError, "/no/such/dir.*does not exist"):
      corpora.read("csv", "/no/such/dir")
    with self.assertRaisesRegex(CorpusError, "--root=/no/such/dir does not exist"):
      prepare.prepare("iemocap", "/no/such/dir", "/tmp/unused")


class PrepareCsvTest(tf.test.TestCase):

  def test_csv_corpus_end_to_end(self):
    root = _csv(self.get_temp_dir() + "/csv_ok", CSV_ROWS)
    out = self.get_temp_dir() + "/csv_out"
    manifests = prepare.prepare("csv", root, out, csv_name="LAB", gt_config=None, shard_size=2,
                                progress=False)
    manifest = manifests["LAB"]
    self.assertEqual(manifest["corpus"], "LAB")
    self.assertEqual(manifest["utterances"], 4)
    self.assertEqual(manifest["annotators"], ["r1", "r2", "r3"])
    self.assertEqual(manifest["class_counts"], {"neutral": 1, "happy": 1, "sad": 1, "angry": 1})
    self.assertEqual(manifest["split_counts"], {"test": 1, "train": 2, "validation": 1})
    self.assertEqual(manifest["dropped"], {})
    self.assertEqual(manifest["kept_without_ground_truth"]["ids"], ["u3"])  # one rater: kept
    self.assertEqual(sorted(os.listdir(out + "/LAB")),
                     ["manifest.json", "test-00000-of-00001.tfrecord",
                      "train-00000-of-00001.tfrecord", "validation-00000-of-00001.tfrecord"])

  def test_bad_rating_names_file_and_line_or_is_counted(self):
    rows = list(CSV_ROWS)
    rows[4] = "u3,wav/u3.wav,s1,validation,r2,9,3,3,neutral,1,5"  # 9 on a 1-5 scale, line 6
    root = _csv(self.get_temp_dir() + "/csv_bad", rows)
    out = self.get_temp_dir() + "/csv_bad_out"
    with self.assertRaisesRegex(CorpusError, r"manifest.csv:6"):
      prepare.prepare("csv", root, out, gt_config=None, progress=False)
    self.assertFalse(os.path.exists(out + "/CSV/manifest.json"))
    manifest = prepare.prepare("csv", root, out, gt_config=None, progress=False,
                               skip_bad=True)["CSV"]
    self.assertEqual(manifest["utterances"], 3)
    reasons = [r for r, d in manifest["dropped"].items() if "u3" in d["ids"]]
    self.assertLen(reasons, 1)
    self.assertIn("outside the corpus scale", reasons[0])


class CommandLineTest(tf.test.TestCase):

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    prepare._define_flags()  # pylint: disable=protected-access

  def _main(self, *args):
    flags.FLAGS.unparse_flags()
    argv = flags.FLAGS(["prepare"] + list(args))
    try:
      return prepare.main(argv)
    finally:
      flags.FLAGS.unparse_flags()

  def test_flags_reach_the_writer(self):
    root = _csv(self.get_temp_dir() + "/cli", CSV_ROWS)
    out = self.get_temp_dir() + "/cli_out"
    rc = self._main("--corpus=CSV", f"--root={root}/manifest.csv", f"--out_dir={out}",
                    "--features=none", "--noground_truth", "--shard_size=1", "--seed=3",
                    "--noprogress")
    self.assertEqual(rc, 0)
    with open(out + "/CSV/manifest.json") as f:
      manifest = json.load(f)
    self.assertEqual((manifest["seed"], manifest["shard_size"]), (3, 1))
    self.assertIsNone(manifest["ground_truth"])
    self.assertLen(manifest["shards"], 4)

  def test_usage_errors(self):
    from absl import app  # pylint: disable=g-import-not-at-top
    with self.assertRaisesRegex(app.UsageError, r"--corpus: unknown corpus 'nope'.*iemocap"):
      self._main("--corpus=nope", "--out_dir=/tmp/x")
    with self.assertRaisesRegex(app.UsageError, r"--features='mfcc'"):
      self._main("--corpus=csv", "--out_dir=/tmp/x", "--features=mfcc")
    with self.assertRaisesRegex(app.UsageError, "--out_dir is required"):
      self._main("--corpus=csv")
    self.assertEqual(self._main("--corpus=iemocap", "--root=/no/such", "--out_dir=/tmp/x",
                                "--features=none"), 1)

  def test_module_entry_point(self):
    proc = subprocess.run([sys.executable, "-m", "data_prep.prepare", "--corpus=bogus",
                           "--out_dir=/tmp/x"], cwd=ROOT, capture_output=True, text=True,
                          timeout=300, check=False)
    self.assertNotEqual(proc.returncode, 0)
    self.assertIn("valid names", proc.stderr)
    self.assertIn("msp_podcast", proc.stderr)


class DemoTest(tf.test.TestCase):

  def test_ensure_demo_data_prepares_once(self):
    demo_dir = self.get_temp_dir() + "/demo"
    data_dir = prepare.ensure_demo_data(demo_dir, features=(), gt_config=None, progress=False)
    self.assertEqual(data_dir, demo_dir + "/data")
    demo = corpora.load("demo")
    for code in demo.CORPORA:
      with open(os.path.join(data_dir, code, "manifest.json")) as f:
        manifest = json.load(f)
      self.assertTrue(manifest["demo"])
      self.assertEqual(manifest["corpus"], code)
      self.assertGreater(manifest["utterances"], 0)
      for name in manifest["shards"]:
        self.assertTrue(os.path.exists(os.path.join(data_dir, code, name)))
    stamps = {p: os.stat(p).st_mtime_ns for p in glob.glob(data_dir + "/*/*")}
    start = time.monotonic()
    self.assertEqual(prepare.ensure_demo_data(demo_dir, features=(), gt_config=None,
                                              progress=False), data_dir)
    self.assertLess(time.monotonic() - start, 5)
    self.assertEqual({p: os.stat(p).st_mtime_ns for p in glob.glob(data_dir + "/*/*")}, stamps)

    # Asking for a feature set the manifests lack re-prepares them (with a stand-in extractor).
    original = prepare.make_extractors
    prepare.make_extractors = lambda names, model_dir=None: [
        fx.FakeExtractor(name, dim=2) for name in names]
    try:
      prepare.ensure_demo_data(demo_dir, features=("is10",), gt_config=None, progress=False)
    finally:
      prepare.make_extractors = original
    for code in demo.CORPORA:
      with open(os.path.join(data_dir, code, "manifest.json")) as f:
        self.assertEqual(list(json.load(f)["features"]), ["is10"])
    # ... and a request for less is then already satisfied.
    self.assertEqual(prepare.ensure_demo_data(demo_dir, features=(), gt_config=None), data_dir)


if __name__ == "__main__":
  tf.test.main()
