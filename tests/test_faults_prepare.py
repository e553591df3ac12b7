"""Fault injection for data preparation (issue 11): bad flags, kill points, damaged manifests and
shards, a full or read-only disk, bad audio, --csv_name, manifest counts.

Every case checks the exit status, that the message names the flag / file / utterance, that no
traceback is shown, and that nothing prepared before is lost. The entry point runs in-process
(``prepare._main_with_short_usage``, what ``python -m data_prep.prepare`` calls) except for a
few cases run as ``python -m data_prep.prepare`` in a subprocess. The corpus is a generic CSV of
four utterances over the two real clips in tests/data/audio; features are a stand-in that needs
audio (decoded by the real ``data_prep.audio.load_audio``) or none; ground truth only where it is
the point (grid 64).
"""

import contextlib
import errno
import glob
import io
import json
import os
import shutil
import subprocess
import sys
import tempfile
from unittest import mock

from absl import flags
from absl.testing import parameterized
import numpy as np
import tensorflow as tf

from data_prep import fingerprint as fingerprints
from data_prep import prepare
from data_prep import staging
from data_prep import shard_writer
from data_prep import write_tfrecords as wt
from tfser.data import manifest as manifest_lib

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CLIPS = os.path.join(ROOT, "tests", "data", "audio")

HEADER = "utterance,audio_path,speaker,split,annotator,activation,valence,dominance,category"
ROWS = [  # line 2 on: u1's rater r1 twice (merged), u3 one rater (kept without ground truth)
    "u1,wav/a.wav,s1,train,r1,0.5,-0.5,0,happy",
    "u1,wav/a.wav,s1,train,r2,0.5,0,,happy",
    "u1,wav/a.wav,s1,train,r1,0,-0.5,0,happy",
    "u2,wav/b.wav,s2,train,r1,-0.5,-0.5,0,sad",
    "u2,wav/b.wav,s2,train,r3,-1,-0.5,0,sad",
    "u3,wav/a.wav,s1,validation,r2,0,0,0,neutral",
    "u4,wav/b.wav,s2,test,r3,1,-1,0,angry",
    "u4,wav/b.wav,s2,test,r1,0.5,-1,0,angry",
]


class AudioStub:
  """A feature that needs audio (like is10): mean and length of the decoded waveform."""
  name, dim, needs_audio, fingerprint = "is10", 2, True, "stub"

  def __init__(self):
    self.calls = []

  def __call__(self, utt, waveform):
    self.calls.append(utt.utterance_id)
    return np.float32([np.mean(waveform), len(waveform) / 16000])


def _corpus(directory, rows=ROWS):
  """The CSV corpus under directory (clips copied, so a test may change them); its CSV path."""
  os.makedirs(os.path.join(directory, "wav"), exist_ok=True)
  shutil.copy(os.path.join(CLIPS, "arctic_a0007.wav"), os.path.join(directory, "wav", "a.wav"))
  shutil.copy(os.path.join(CLIPS, "arctic_a0009.wav"), os.path.join(directory, "wav", "b.wav"))
  path = os.path.join(directory, "manifest.csv")
  with open(path, "w") as f:
    f.write(HEADER + "\n" + "\n".join(rows) + "\n")
  return path


def _snapshot(directory):
  """{relative path: bytes} of every file under directory (hidden ones included)."""
  out = {}
  for base, _, names in os.walk(directory):
    for name in names:
      with open(os.path.join(base, name), "rb") as f:
        out[os.path.relpath(os.path.join(base, name), directory)] = f.read()
  return out


class FaultTest(parameterized.TestCase, tf.test.TestCase):

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    prepare._define_flags()  # pylint: disable=protected-access

  def setUp(self):
    super().setUp()
    self.tmp = tempfile.mkdtemp(dir=self.get_temp_dir())
    self.csv = _corpus(os.path.join(self.tmp, "corpus"))
    self.out = os.path.join(self.tmp, "data")
    self.stub = AudioStub()

  def main(self, *args, features="is10", base=True):
    """(exit status, stderr) of the entry point run in-process on the test corpus."""
    argv = ["prepare"]
    if base:
      argv += ["--corpus=csv", f"--root={self.csv}", f"--out_dir={self.out}", "--noprogress",
               "--noground_truth", f"--features={features}"]
    flags.FLAGS.unparse_flags()
    err = io.StringIO()
    with contextlib.redirect_stderr(err), mock.patch.object(
        prepare, "make_extractors", lambda names, model_dir=None: [self.stub] if names else []):
      try:
        rc = prepare._main_with_short_usage(flags.FLAGS(argv + list(args)))  # pylint: disable=protected-access
      finally:
        flags.FLAGS.unparse_flags()
    self.assertNotIn("Traceback", err.getvalue())
    return rc, err.getvalue()

  def assertValidOutput(self, corpus="CSV"):  # pylint: disable=invalid-name
    """The live output is complete: the manifest loads and every shard matches it."""
    manifest = manifest_lib.load_manifest(self.out, corpus)
    for name, info in manifest["shards"].items():
      path = os.path.join(self.out, corpus, name)
      self.assertEqual(wt.file_sha256(path), info["sha256"], name)
      self.assertEqual(os.path.getsize(path), info["bytes"], name)
      self.assertEqual(sum(1 for _ in tf.data.TFRecordDataset(path)), info["records"], name)
    return manifest

  def assertNoLeftovers(self):  # pylint: disable=invalid-name
    self.assertEmpty(glob.glob(os.path.join(self.out, ".*")))
    self.assertEmpty(glob.glob(os.path.join(self.out, "*", ".partial")))
    self.assertEmpty([n for _, _, names in os.walk(self.out) for n in names if n.endswith(".tmp")])

  def first_run(self, *args):
    rc, err = self.main("--shard_size=2", *args)
    self.assertEqual(rc, 0, err)
    return self.assertValidOutput(), _snapshot(os.path.join(self.out, "CSV"))

  # ----- item 7: bad flags, out_dir -----------------------------------------------------------

  @parameterized.parameters("--shard_size=0", "--gt_grid=-4", "--gt_samples=0", "--gt_batch=0",
                            "--gt_grid=0", "--gt_std_ddof=2", "--csv_name=../x", "--csv_name=IEM",
                            "--csv_name=a/b")
  def test_bad_flag_is_a_short_usage_error_and_writes_nothing(self, flag):
    rc, err = self.main(*(["--ground_truth"] if flag.startswith("--gt_") else []), flag)
    self.assertEqual(rc, 2)
    self.assertIn(flag.split("=")[0] + "=", err)
    self.assertIn(flag.split("=")[1], err)
    self.assertLessEqual(len(err.strip().splitlines()), 2, err)
    self.assertFalse(os.path.exists(self.out))
    self.assertFalse(os.path.exists(os.path.join(self.tmp, "x")))

  def test_eager_and_jit_together_are_a_short_usage_error(self):
    rc, err = self.main("--ground_truth", "--gt_eager", "--gt_jit")
    self.assertEqual(rc, 2)
    self.assertIn("--gt_eager and --gt_jit exclude each other", err)
    self.assertLessEqual(len(err.strip().splitlines()), 2, err)
    self.assertFalse(os.path.exists(self.out))

  def test_csv_name_cannot_overwrite_a_real_corpus(self):
    iem = os.path.join(self.out, "IEM")
    os.makedirs(iem)
    with open(os.path.join(iem, "manifest.json"), "w") as f:
      f.write("{}")
    before = _snapshot(self.out)
    rc, err = self.main("--csv_name=iem")
    self.assertEqual(rc, 2)
    self.assertIn("registered corpus IEM", err)
    self.assertEqual(_snapshot(self.out), before)
    rc, err = self.main("--csv_name=MyLab")  # a fine name
    self.assertEqual(rc, 0, err)
    self.assertTrue(os.path.isfile(os.path.join(self.out, "MyLab", "manifest.json")))

  def test_out_dir_that_is_a_file(self):
    with open(self.out, "w") as f:
      f.write("not a directory")
    rc, err = self.main()
    self.assertEqual(rc, 2)
    self.assertIn(f"--out_dir={self.out} is a file", err)
    rc, err = self.main(f"--out_dir={self.out}/sub")  # a file above it
    self.assertEqual(rc, 1)
    self.assertIn(f"cannot write {self.out}", err)

  def test_read_only_out_dir(self):
    # chmod does not stop root: the file system is made to refuse (EROFS) instead.
    _, before = self.first_run()
    real_makedirs = os.makedirs

    def refuse(path, *args, **kwargs):
      if os.path.abspath(path).startswith(self.out):
        raise OSError(errno.EROFS, os.strerror(errno.EROFS), path)
      return real_makedirs(path, *args, **kwargs)
    with mock.patch("os.makedirs", refuse):
      rc, err = self.main("--shard_size=3")
    self.assertEqual(rc, 1)
    self.assertRegex(err, rf"cannot write {self.out}/\.partial\S*: Read-only file system")
    self.assertEqual(_snapshot(os.path.join(self.out, "CSV")), before)
    self.assertValidOutput()

  @parameterized.parameters("fsync", "records")
  def test_disk_full_names_the_path_and_keeps_the_old_output(self, where):
    _, before = self.first_run()

    def full(*args):
      raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))  # no file name, as write() gives

    class FullWriter:
      def __init__(self, path):
        self.path = path

      def __enter__(self):
        return self

      def __exit__(self, *args):
        return False

      def write(self, record):
        raise tf.errors.ResourceExhaustedError(None, None, "No space left on device")
    patch = (mock.patch("os.fsync", full) if where == "fsync" else
             mock.patch.object(shard_writer, "open_records", FullWriter))
    with patch:
      rc, err = self.main("--shard_size=3")
    self.assertEqual(rc, 1)
    self.assertRegex(err, rf"cannot write {self.out}/\.partial/CSV/\S+: .*No space left on device")
    self.assertEqual(_snapshot(os.path.join(self.out, "CSV")), before)
    rc, err = self.main("--shard_size=3")  # space again: it completes
    self.assertEqual(rc, 0, err)
    self.assertEqual(self.assertValidOutput()["shard_size"], 3)
    self.assertNoLeftovers()

  # ----- item 4: a failed or killed re-prepare keeps the previous output -------------------

  @parameterized.parameters("shard_written", "shard_done", "manifest_written", "switched")
  def test_killed_re_prepare_keeps_the_old_output_then_resumes(self, event):
    first, before = self.first_run()

    class Kill(Exception):
      pass

    seen = []

    def kill(name, shard):
      if name == event:
        seen.append(shard)
        if len(seen) == (2 if event.startswith("shard") else 1):
          raise Kill(shard)
    original = wt.prepare_corpus
    with mock.patch.object(wt, "prepare_corpus",
                           lambda *a, **k: original(*a, on_event=kill, **k)):
      with self.assertRaises(Kill):
        self.main("--shard_size=1")
    if event == "switched":  # killed after the switch: the new output is live and complete
      self.assertEqual(self.assertValidOutput()["shard_size"], 1)
    else:
      self.assertEqual(_snapshot(os.path.join(self.out, "CSV")), before)
      self.assertEqual(self.assertValidOutput(), first)
    self.stub.calls.clear()
    rc, err = self.main("--shard_size=1")
    self.assertEqual(rc, 0, err)
    self.assertEqual(self.assertValidOutput()["shard_size"], 1)
    self.assertLess(len(self.stub.calls), 4)  # finished shards were not redone
    self.assertNoLeftovers()

  def test_killed_between_the_fallback_renames(self):
    # Where the file system cannot exchange two directories, the switch is two renames; a kill
    # between them is completed by the next run.
    self.first_run()
    real_rename = os.rename
    renames = []

    def rename(a, b):
      renames.append((a, b))
      if len(renames) == 2:
        raise KeyboardInterrupt
      return real_rename(a, b)
    with mock.patch.object(staging, "exchange", lambda a, b: False), \
        mock.patch.object(staging.os, "rename", rename):
      with self.assertRaises(KeyboardInterrupt):
        self.main("--shard_size=1")
    self.assertFalse(os.path.exists(os.path.join(self.out, "CSV")))
    self.stub.calls.clear()
    rc, err = self.main("--shard_size=1")
    self.assertEqual(rc, 0, err)
    self.assertEqual(self.stub.calls, [])  # the complete build was switched in, not redone
    self.assertEqual(self.assertValidOutput()["shard_size"], 1)
    self.assertNoLeftovers()

  def test_bad_new_audio_keeps_the_old_output(self):
    _, before = self.first_run()
    with open(self.csv, "a") as f:
      f.write("u5,wav/bad.wav,s3,train,r1,0,0,0,sad\n")  # line 10
    with open(os.path.join(os.path.dirname(self.csv), "wav", "bad.wav"), "wb") as f:
      f.write(b"RIFF\x24\x00\x00\x00WAVEfmt ")  # truncated
    rc, err = self.main("--shard_size=2")
    self.assertEqual(rc, 1)
    bad = os.path.join(os.path.dirname(self.csv), "wav", "bad.wav")
    self.assertIn(f"{bad}, utterance CSV/u5 (read from {self.csv}:10): unreadable audio", err)
    self.assertIn("pass --skip_bad", err)
    self.assertNotIn("function_node", err)
    self.assertNotIn("[Op:", err)
    self.assertEqual(_snapshot(os.path.join(self.out, "CSV")), before)
    # With --skip_bad it completes, grouping the reason.
    rc, err = self.main("--shard_size=2", "--skip_bad")
    self.assertEqual(rc, 0, err)
    dropped = self.assertValidOutput()["dropped"]
    self.assertEqual(list(dropped), ["unreadable audio"])
    self.assertEqual(dropped["unreadable audio"]["ids"], ["u5"])
    self.assertIn(bad, dropped["unreadable audio"]["details"]["u5"])

  def test_corpus_skipped_to_empty_writes_nothing(self):
    _, before = self.first_run()
    for name in ("a.wav", "b.wav"):
      with open(os.path.join(os.path.dirname(self.csv), "wav", name), "wb") as f:
        f.write(b"RIFF")
    rc, err = self.main("--shard_size=3", "--skip_bad")
    self.assertEqual(rc, 1)
    self.assertIn("corpus CSV is empty: all 4 utterance(s) were dropped (unreadable audio: 4)", err)
    self.assertIn("unchanged", err)
    self.assertEqual(_snapshot(os.path.join(self.out, "CSV")), before)
    self.assertNoLeftovers()

  # ----- item 5: changed audio is re-extracted, and said so ---------------------------------

  def test_changed_audio_is_re_extracted_and_said_so(self):
    first, _ = self.first_run()
    self.stub.calls.clear()
    rc, err = self.main("--shard_size=2")  # nothing changed: nothing done
    self.assertEqual((rc, self.stub.calls), (0, []))
    b = os.path.join(os.path.dirname(self.csv), "wav", "b.wav")
    shutil.copy(os.path.join(CLIPS, "arctic_a0007.wav"), b)  # same path, other audio
    rc, err = self.main("--shard_size=2")
    self.assertEqual(rc, 0, err)
    self.assertIn(f"1 audio file(s) changed since the last prepare ({b})", err)
    self.assertCountEqual(self.stub.calls, ["u1", "u2", "u3", "u4"])
    second = self.assertValidOutput()
    self.assertNotEqual(second["fingerprint"], first["fingerprint"])
    self.assertNotEqual(second["features"]["is10"]["mean"], first["features"]["is10"]["mean"])
    os.utime(b, ns=(1, 1))  # same bytes, another mtime: also re-extracted
    self.stub.calls.clear()
    rc, err = self.main("--shard_size=2")
    self.assertEqual(len(self.stub.calls), 4)
    self.assertIn("audio file(s) changed", err)

  def test_changed_feature_settings_are_re_extracted_and_said_so(self):
    self.first_run()
    self.stub.fingerprint = "another model"
    self.stub.calls.clear()
    rc, err = self.main("--shard_size=2")
    self.assertEqual(rc, 0, err)
    self.assertIn("settings changed: features", err)
    self.assertEqual(len(self.stub.calls), 4)
    # prepare's extractors carry the model files' sizes and times (or openSMILE's version).
    model = os.path.join(self.tmp, "models", "wav2vec2")
    os.makedirs(model)
    with open(os.path.join(model, "tf_model.h5"), "wb") as f:
      f.write(b"weights")
    before = fingerprints.extractor_fingerprint("wav2vec2", model)
    self.assertEqual(fingerprints.extractor_fingerprint("wav2vec2", model), before)
    with open(os.path.join(model, "tf_model.h5"), "ab") as f:
      f.write(b" retrained")
    self.assertNotEqual(fingerprints.extractor_fingerprint("wav2vec2", model), before)
    self.assertStartsWith(fingerprints.extractor_fingerprint("is10"), "opensmile ")

  def test_labels_only_never_looks_at_audio(self):
    rc, err = self.main(features="none")
    self.assertEqual(rc, 0, err)
    os.remove(os.path.join(os.path.dirname(self.csv), "wav", "b.wav"))
    before = _snapshot(os.path.join(self.out, "CSV"))
    rc, err = self.main(features="none")
    self.assertEqual(rc, 0, err)
    self.assertNotIn("preparing it again", err)
    self.assertEqual(_snapshot(os.path.join(self.out, "CSV")), before)

  # ----- damaged manifests and shards in the live output ------------------------------------

  @parameterized.parameters("truncated", "other_schema", "flipped_shard", "missing_shard")
  def test_damaged_output_is_rebuilt(self, damage):
    first, _ = self.first_run()
    corpus_dir = os.path.join(self.out, "CSV")
    shard = os.path.join(corpus_dir, sorted(first["shards"])[0])
    if damage == "truncated":
      with open(os.path.join(corpus_dir, "manifest.json"), "r+") as f:
        f.truncate(100)
    elif damage == "other_schema":
      with open(os.path.join(corpus_dir, "manifest.json"), "w") as f:
        json.dump(dict(first, schema_version=-1, fingerprint="old"), f)
    elif damage == "flipped_shard":
      with open(shard, "r+b") as f:
        f.seek(20)
        f.write(b"\xff\xff")
    else:
      os.remove(shard)
    rc, err = self.main("--shard_size=2")
    self.assertEqual(rc, 0, err)
    self.assertIn("preparing it again", err)
    self.assertEqual(self.assertValidOutput(), first)
    self.assertNoLeftovers()

  # ----- items 6 and 8: the manifest's counts and reasons ------------------------------------

  def test_manifest_counts_merges_and_kept_without_ground_truth(self):
    rc, err = self.main("--ground_truth", "--gt_grid=64", "--gt_samples=20", "--gt_batch=4",
                        "--nogt_jit", features="none")
    self.assertEqual(rc, 0, err)
    manifest = self.assertValidOutput()
    self.assertEqual(manifest["merged_duplicate_raters"], {"count": 1, "ids": ["u1"]})
    self.assertEqual(manifest["dropped"], {})
    self.assertEqual(manifest["utterances"], 4)
    self.assertEqual(manifest["kept_without_ground_truth"]["ids"], ["u3"])
    self.assertEqual(manifest["ground_truth"]["utterances"], 3)

  def test_skip_reasons_group_by_class_with_details(self):
    rows = list(ROWS) + ["u5,wav/a.wav,s3,train,r1,3,0,0,sad",  # line 10
                         "u6,wav/a.wav,s3,train,r1,0,-7,0,sad"]  # line 11
    self.csv = _corpus(os.path.join(self.tmp, "corpus2"), rows)
    rc, err = self.main(features="none")
    self.assertEqual(rc, 1)
    self.assertIn(f"{self.csv}:10, utterance u5: activation: rating 3.0 outside", err)
    rc, err = self.main("--skip_bad", features="none")
    self.assertEqual(rc, 0, err)
    dropped = self.assertValidOutput()["dropped"]
    self.assertLen(dropped, 2)  # activation and valence: two classes, values taken out
    entry = dropped["activation: rating <n> outside the corpus scale [<n>, <n>]"]
    self.assertEqual((entry["count"], entry["ids"]), (1, ["u5"]))
    self.assertIn(f"{self.csv}:10", entry["details"]["u5"])
    self.assertIn(f"{self.csv}:11", dropped[
        "valence: rating <n> outside the corpus scale [<n>, <n>]"]["details"]["u6"])


class EntryPointTest(tf.test.TestCase):
  """``python -m data_prep.prepare`` itself: exit status, a short message, no traceback."""

  def run_prepare(self, *args):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    proc = subprocess.run([sys.executable, "-m", "data_prep.prepare", *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=300, check=False, env=env)
    self.assertNotIn("Traceback", proc.stderr)
    return proc

  def test_bad_flag_value(self):
    out = tempfile.mkdtemp(dir=self.get_temp_dir()) + "/out"
    proc = self.run_prepare("--corpus=csv", "--root=/nonexistent", f"--out_dir={out}",
                            "--gt_grid=-4")
    self.assertEqual(proc.returncode, 2)
    lines = [l for l in proc.stderr.splitlines() if l.startswith(("error", "Run "))]
    self.assertEqual(len(lines), 2, proc.stderr)
    self.assertIn("--gt_grid=-4", lines[0])
    self.assertNotIn("math domain error", proc.stderr)
    self.assertLess(len(proc.stderr.splitlines()), 10, proc.stderr)  # not the whole help
    self.assertFalse(os.path.exists(out))

  def test_unreadable_audio_with_real_features(self):
    tmp = tempfile.mkdtemp(dir=self.get_temp_dir())
    csv = _corpus(os.path.join(tmp, "corpus"), ["u0,wav/bad.wav,s1,train,r1,0,0,0,sad"] + ROWS)
    with open(os.path.join(tmp, "corpus", "wav", "bad.wav"), "wb") as f:
      f.write(os.urandom(300))
    proc = self.run_prepare("--corpus=csv", f"--root={csv}", f"--out_dir={tmp}/out",
                            "--features=is10", "--noground_truth", "--noprogress")
    self.assertEqual(proc.returncode, 1, proc.stderr)
    self.assertIn(f"utterance CSV/u0 (read from {csv}:2): unreadable audio", proc.stderr)
    self.assertIn("--skip_bad", proc.stderr)
    self.assertNotIn("function_node", proc.stderr)
    self.assertFalse(os.path.exists(f"{tmp}/out/CSV"))


if __name__ == "__main__":
  tf.test.main()
