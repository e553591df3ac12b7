"""Fault injection on the training side (issue 11): runs and data a user can trust.

* a run directory resumes only its own run (tfser.core.run_guard): other settings stop with the
  differences and the two ways out; --restart starts over; settings that cannot change the
  result (checkpoint interval, export) resume;
* a run killed after its last mid-epoch checkpoint of an epoch, during the end-of-epoch pass,
  resumes to the result of an uninterrupted run (both tasks), also from a checkpoint an older
  tfser wrote at an epoch's last step;
* shards are checked against the manifest (tfser.data.integrity): truncated, byte-flipped and
  valid-but-different shards stop with the file named and the repair; sha256 cached by size and
  mtime;
* errors a user causes (another schema version, a truncated manifest, missing features, an
  --out_dir that is a file or unwritable, a full disk, a DataLossError) become one message
  without a traceback (tfser.core.cli); the main job's output has no TensorFlow INFO lines.

In-process runs are tiny (a few steps); a few launcher cases run in a subprocess to prove the
exit status and the absence of a traceback.
"""

import contextlib
import errno
import json
import os
import shutil
import subprocess
import sys
import tempfile
from unittest import mock

import tfser  # noqa: F401
import tensorflow as tf

from tfser.testing.annotator_arrays import make_corpus
from tfser.core import resumable as tfser_callbacks
from tfser.core import run as train_common
from tfser.core import cli
from tfser.core import run_guard
from tfser.data import integrity
from tfser.data import pipeline
from tfser.tasks.annotators import train as annotators
from tfser.tasks.cww import data as cww_data
from tfser.tasks.cww import train as cww_train
from tfser.tasks.cww.config import CwwConfig
from tfser.testing import cww_arrays

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DIM = 16
_SOURCE = {}


def _source():
  """CRE/IEM/IMP/POD in memory; CRE's 72 training utterances make 4 steps of 16 per epoch."""
  if not _SOURCE:
    _SOURCE["s"] = cww_arrays.synthetic_corpora(
        dim=DIM, sizes={"CRE": 120, "IEM": 120, "IMP": 120, "POD": 100}, unlabelled=None, seed=0)
  return _SOURCE["s"]


def _cww_config(out_dir, **kwargs):
  base = dict(holdout="POD", out_dir=out_dir, feature_dim=DIM, hidden_units=(16, 16, 8, 8),
              max_epochs=2, batch_size=16, checkpoint_every_steps=2, eval_batch_size=64,
              export=False)
  base.update(kwargs)
  return CwwConfig(**base)


class RaiseAtEpochEnd(tf.keras.callbacks.Callback):
  """Raises in on_epoch_end of ``epoch``: a run killed in the end-of-epoch pass."""

  def __init__(self, epoch):
    super().__init__()
    self.epoch = epoch

  def on_epoch_end(self, epoch, logs=None):
    if epoch == self.epoch:
      raise KeyboardInterrupt(f"killed at the end of epoch {epoch}")


def _tempdir(test):
  path = tempfile.mkdtemp(prefix="tfser-faults-")
  test.addCleanup(shutil.rmtree, path, ignore_errors=True)
  return path


def _launch(task, *flags, env=None):
  environment = dict(os.environ, PYTHONPATH=ROOT, **(env or {}))
  environment.pop("TF_CPP_MIN_LOG_LEVEL", None)  # the launcher's own default (item 8)
  return subprocess.run([sys.executable, "-m", "tfser.launch", f"--task={task}", *flags],
                        cwd=ROOT, env=environment, capture_output=True, text=True, timeout=300,
                        check=False)


class _CacheDir(tf.test.TestCase):
  """Each test's shard sha256 cache in a temporary directory."""

  def setUp(self):
    super().setUp()
    patcher = mock.patch.dict(os.environ, {"TFSER_CACHE_DIR": _tempdir(self)})
    patcher.start()
    self.addCleanup(patcher.stop)


def _write_corpora(data_dir, size=60):
  """CRE, IEM, IMP and POD (``size`` utterances each, no unlabelled corpus) as TFRecords."""
  cww_arrays.write_tfrecords(cww_arrays.synthetic_corpora(
      dim=DIM, sizes={c: size for c in ("CRE", "IEM", "IMP", "POD")}, unlabelled=None, seed=1),
      data_dir)


class _WithCorpora(_CacheDir):
  """``cls.data_dir``: the corpora of :func:`_write_corpora`, written once for the class."""

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    cls.data_dir = tempfile.mkdtemp(prefix=f"tfser-{cls.__name__}-")
    _write_corpora(cls.data_dir)

  @classmethod
  def tearDownClass(cls):
    shutil.rmtree(cls.data_dir, ignore_errors=True)
    super().tearDownClass()


# ---------------------------------------------------------------- 1. a run dir resumes its own run

class RunGuardTest(_CacheDir):

  def test_cww_other_settings_stop_ignored_settings_resume(self):
    out = _tempdir(self)
    first = cww_train.train(_cww_config(out, max_epochs=1), source=_source())
    for change, expected in ((dict(holdout="IEM"), "--holdout: POD in the saved run, IEM now"),
                             (dict(seed=3), "--seed: 0 in the saved run, 3 now"),
                             (dict(cww=False, target="uniform"), "--label_target: onehot")):
      with self.assertRaises(run_guard.RunMismatchError) as caught:
        cww_train.train(_cww_config(out, max_epochs=1, **change), source=_source())
      message = str(caught.exception)
      self.assertIn(expected, message)
      self.assertIn("another --out_dir", message)
      self.assertIn("--restart", message)
    # The refused runs changed nothing: the first run's results stay.
    with open(os.path.join(out, "results.json")) as f:
      self.assertEqual(json.load(f)["holdout_ua"], first["holdout_ua"])
    # Where outputs go and the checkpoint interval cannot change the result: the run resumes.
    again = cww_train.train(_cww_config(out, max_epochs=1, checkpoint_every_steps=3),
                            source=_source())
    self.assertEqual(again["resumed_from"], {"epoch": 1, "step_in_epoch": 0})
    self.assertEqual(again["holdout_ua"], first["holdout_ua"])
    # Starting over (what --restart does) trains the new settings from scratch.
    removed = run_guard.start_over(out)
    self.assertContainsSubset({os.path.join(out, n) for n in ("checkpoints", "results.json")},
                              set(removed))
    other = cww_train.train(_cww_config(out, max_epochs=1, holdout="IEM"), source=_source())
    self.assertIsNone(other["resumed_from"])
    self.assertEqual(other["holdout"], "IEM")

  def test_annotators_other_objective_is_a_clear_error_not_a_dtype_traceback(self):
    corpus = make_corpus(num_annotators=6, input_dim=8, gt_grid=32,
                         sizes=(("train", 64), ("validation", 32), ("test", 32)))
    data = annotators.AnnotatorData(
        train=corpus.dataset("train", 32, shuffle=True), validation=corpus.dataset("validation"),
        test=corpus.dataset("test"), num_annotators=6, input_dim=8,
        feature_names=("synthetic",))
    out = _tempdir(self)
    config = dict(data_dir="synthetic", out_dir=out, max_epochs=1, min_epochs=1,
                  hard_kde_grid_size=0, diffkde_grid_size=32, diffkde_samples=20,
                  image_utterances=0, export=False, verbose=0)
    annotators.run(annotators.AnnotatorsConfig(model="baseline", objective="baseline", **config),
                   data=data)
    with self.assertRaisesRegex(run_guard.RunMismatchError,
                                "--objective: baseline in the saved run, task1 now"):
      annotators.run(annotators.AnnotatorsConfig(model="mt", objective="task1", **config),
                     data=data)

  def test_checkpoints_without_a_record_and_another_task(self):
    root = _tempdir(self)
    checkpoints = os.path.join(root, "checkpoints")
    os.makedirs(checkpoints)
    with open(os.path.join(checkpoints, "ckpt-1.index"), "w") as f:
      f.write("x")
    with self.assertRaisesRegex(run_guard.RunMismatchError, "without a readable record"):
      run_guard.check_and_record(root, checkpoints, "cww", {"seed": 0})
    with open(run_guard.config_path(checkpoints), "w") as f:
      json.dump({"task": "cww", "settings": {"seed": 0}, "data": {"IEM": "aa"}}, f)
    self.assertTrue(run_guard.check_and_record(root, checkpoints, "cww", {"seed": 0},
                                               data={"IEM": "aa"}))
    with self.assertRaisesRegex(run_guard.RunMismatchError, "--task: cww in the saved run"):
      run_guard.check_and_record(root, checkpoints, "annotators", {"seed": 0})
    with self.assertRaisesRegex(run_guard.RunMismatchError, "data of corpus IEM"):
      run_guard.check_and_record(root, checkpoints, "cww", {"seed": 0}, data={"IEM": "bb"})

  def test_start_over_deletes_only_the_run_outputs(self):
    root = _tempdir(self)
    for name in ("checkpoints", "tensorboard", "saved_model", "notes"):
      os.makedirs(os.path.join(root, name))
    for name in ("results.json", "my_analysis.csv"):
      with open(os.path.join(root, name), "w") as f:
        f.write("x")
    run_guard.start_over(root)
    self.assertEqual(sorted(os.listdir(root)), ["my_analysis.csv", "notes"])


# ------------------------------------------- 2. killed in the end-of-epoch pass, after a checkpoint

class EpochEndKillTest(_CacheDir):

  def _cww_killed_then_resumed(self, legacy_checkpoint):
    straight = cww_train.train(_cww_config(_tempdir(self)), source=_source())
    self.assertEqual(straight["steps_per_epoch"], 4)  # the interval 2 divides it
    out = _tempdir(self)
    # As tfser before issue 11: a mid-epoch save at the epoch's last step (fit's params unseen).
    legacy = mock.patch.object(tfser_callbacks.ResumableCheckpoint, "set_params",
                               lambda self, params: setattr(self, "params", {}))
    with legacy if legacy_checkpoint else contextlib.nullcontext():
      with self.assertRaises(KeyboardInterrupt):
        cww_train.train(_cww_config(out), source=_source(), extra_callbacks=[RaiseAtEpochEnd(0)])
    latest = tf.train.latest_checkpoint(os.path.join(out, "checkpoints"))
    step = tf.train.load_variable(latest, "step_in_epoch/.ATTRIBUTES/VARIABLE_VALUE")
    self.assertEqual(step, 4 if legacy_checkpoint else 2)
    resumed = cww_train.train(_cww_config(out), source=_source())
    self.assertEqual(resumed["resumed_from"], {"epoch": 0, "step_in_epoch": 2})
    for key in ("holdout_ua", "train_ua", "val_ua", "corpus_weights", "corpus_weights_history",
                "best_epoch", "epochs_run"):
      self.assertEqual(resumed[key], straight[key], key)

  def test_cww_resumes_after_a_kill_in_the_epoch_end_pass(self):
    self._cww_killed_then_resumed(legacy_checkpoint=False)

  def test_cww_resumes_from_a_legacy_checkpoint_at_an_epochs_last_step(self):
    self._cww_killed_then_resumed(legacy_checkpoint=True)

  def test_annotators_resume_after_a_kill_in_the_epoch_end_pass(self):
    corpus = make_corpus(num_annotators=6, input_dim=8, gt_grid=32,
                         sizes=(("train", 128), ("validation", 32), ("test", 32)))

    def run(out, *callbacks):
      train_common.configure_runtime(0, deterministic=True)
      data = annotators.AnnotatorData(
          train=corpus.dataset("train", 32, shuffle=True),
          validation=corpus.dataset("validation"), test=corpus.dataset("test"),
          num_annotators=6, input_dim=8, feature_names=("synthetic",))
      # The baseline model: the quickest to train; fit, callbacks and checkpoints as MT's.
      config = annotators.AnnotatorsConfig(
          model="baseline", objective="baseline", data_dir="synthetic", out_dir=out, max_epochs=2,
          min_epochs=1, learning_rate=1e-2, hard_kde_grid_size=0, diffkde_grid_size=32,
          diffkde_samples=20, image_utterances=0, export=False, verbose=0,
          checkpoint_every_batches=2)  # 4 batches per epoch: a save at the last step
      return annotators.run(config, data=data, extra_callbacks=list(callbacks))

    straight = run(_tempdir(self))
    out = _tempdir(self)
    with self.assertRaises(KeyboardInterrupt):
      run(out, RaiseAtEpochEnd(0))
    resumed = run(out)
    self.assertEqual(resumed["resumed_from"], {"epoch": 0, "step_in_epoch": 2})
    for key in ("validation", "test", "history", "best_epoch", "epochs"):
      self.assertEqual(json.dumps(resumed[key], sort_keys=True),
                       json.dumps(straight[key], sort_keys=True), key)


# -------------------------------------------------------------- 3. shards against the manifest

class ShardIntegrityTest(_WithCorpora):

  def _data(self):
    data_dir = os.path.join(_tempdir(self), "data")
    shutil.copytree(self.data_dir, data_dir)  # a copy to damage; the class's stays pristine
    return data_dir

  def _shard(self, data_dir, split="train", corpus="IEM"):
    return os.path.join(data_dir, corpus, f"{split}-00000-of-00001.tfrecord")

  def _assert_names_file_and_repair(self, data_dir, path, what):
    with self.assertRaises(integrity.ShardIntegrityError) as caught:
      pipeline.cww_dataset(data_dir, "IEM", "train", batch_size=8)
    message = str(caught.exception)
    self.assertIn(os.path.abspath(path), message)
    self.assertIn(what, message)
    self.assertIn("re-run data_prep.prepare for corpus IEM", message)

  def test_truncated_shard(self):
    data_dir = self._data()
    path = self._shard(data_dir)
    with open(path, "r+b") as f:
      f.truncate(os.path.getsize(path) - 100)
    self._assert_names_file_and_repair(data_dir, path, "truncated or corrupt")

  def test_byte_flipped_shard(self):
    data_dir = self._data()
    path = self._shard(data_dir)
    with open(path, "r+b") as f:
      f.seek(40)  # inside the first record's data (its 12-byte header precedes it)
      byte = f.read(1)
      f.seek(-1, os.SEEK_CUR)
      f.write(bytes([byte[0] ^ 0xFF]))
    self._assert_names_file_and_repair(data_dir, path, "sha256")

  def test_valid_but_different_shard(self):
    data_dir = self._data()
    path = self._shard(data_dir)
    shutil.copyfile(self._shard(data_dir, "validation"), path)
    self._assert_names_file_and_repair(data_dir, path, "records, but")

  def test_shard_size_against_manifest_bytes(self):
    # data_prep records each shard's size ("bytes"): a size that differs is named at once.
    data_dir = self._data()
    path = self._shard(data_dir)
    manifest_path = os.path.join(data_dir, "IEM", "manifest.json")
    with open(manifest_path) as f:
      manifest = json.load(f)
    manifest["shards"][os.path.basename(path)]["bytes"] = os.path.getsize(path) + 1
    with open(manifest_path, "w") as f:
      json.dump(manifest, f)
    self._assert_names_file_and_repair(data_dir, path, "bytes, but")

  def test_sha256_cached_by_size_and_mtime(self):
    data_dir = self._data()
    manifest = pipeline.load_manifest(data_dir, "IEM")
    calls = []
    real = integrity.file_sha256

    def counting(path, *args):
      calls.append(path)
      return real(path, *args)
    with mock.patch.object(integrity, "file_sha256", counting):
      integrity._verified.clear()  # pylint: disable=protected-access
      pipeline.shard_paths(data_dir, manifest)
      self.assertLen(calls, len(manifest["shards"]))
      integrity._verified.clear()  # pylint: disable=protected-access  (a new process)
      pipeline.shard_paths(data_dir, manifest)
      self.assertLen(calls, len(manifest["shards"]))  # from the cache file
      with open(integrity.cache_path()) as f:
        self.assertIn(os.path.abspath(self._shard(data_dir)), json.load(f))
      path = self._shard(data_dir)
      stat = os.stat(path)
      os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))  # changed later
      pipeline.shard_paths(data_dir, manifest)
      self.assertEqual(calls[-1], os.path.abspath(path))
      self.assertLen(calls, len(manifest["shards"]) + 1)

  def test_data_loss_error_names_the_damaged_shard(self):
    data_dir = self._data()
    path = self._shard(data_dir, corpus="IMP")
    with open(path, "r+b") as f:
      f.seek(40)
      f.write(b"\0\0\0\0")
    error = tf.errors.DataLossError(None, None, "truncated record at 745761")
    message = cli.user_message(error, data_dir)
    self.assertIn(os.path.abspath(path), message)
    self.assertIn("data_prep.prepare", message)

  def test_cww_training_stops_on_a_damaged_shard(self):
    data_dir = self._data()
    path = self._shard(data_dir, corpus="CRE")
    shutil.copyfile(self._shard(data_dir, "validation", "CRE"), path)
    source = cww_data.PipelineSource(data_dir)
    try:
      cww_train.train(_cww_config(_tempdir(self), max_epochs=1), source=source)
    except integrity.ShardIntegrityError as e:
      self.assertIn("CRE/train-00000", str(e))
      self.assertEqual(cli.user_message(e), str(e))  # the launchers print it, no traceback
    else:
      self.fail("trained on a damaged shard")


# ------------------------------------------------------ 7. user errors: a message, no traceback

class UserErrorTest(_CacheDir):

  def _message(self, fn):
    try:
      fn()
    except BaseException as e:  # pylint: disable=broad-except
      return cli.user_message(e)
    self.fail("no error")

  def _bad_data(self, edit):
    data_dir = tempfile.mkdtemp(dir=_tempdir(self))
    _write_corpora(data_dir, size=40)
    edit(os.path.join(data_dir, "IEM", "manifest.json"))
    return data_dir

  def _train_cww(self, data_dir):
    return lambda: cww_train.train(_cww_config(_tempdir(self), max_epochs=1),
                                   source=cww_data.PipelineSource(data_dir))

  def test_manifest_problems(self):
    def other_version(path):
      with open(path) as f:
        manifest = json.load(f)
      manifest["schema_version"] = 99
      with open(path, "w") as f:
        json.dump(manifest, f)

    def truncated(path):
      with open(path, "r+") as f:
        f.truncate(50)

    def no_is10(path):
      with open(path) as f:
        manifest = json.load(f)
      manifest["features"] = {"wav2vec2": manifest["features"]["is10"]}
      with open(path, "w") as f:
        json.dump(manifest, f)
    for edit, expected in ((other_version, "schema_version 99"),
                           (truncated, "not a valid manifest"), (no_is10, "no 'is10' features")):
      message = self._message(self._train_cww(self._bad_data(edit)))
      self.assertIsNotNone(message, edit.__name__)
      self.assertIn("IEM", message)
      self.assertIn(expected, message)

  def test_annotators_feature_not_prepared(self):
    data_dir = self._bad_data(lambda path: None)
    config = annotators.AnnotatorsConfig(model="baseline", objective="baseline",
                                         data_dir=data_dir, corpus="POD", out_dir=_tempdir(self),
                                         feature_names=("bogus",), max_epochs=1, verbose=0)
    message = self._message(lambda: annotators.run(config))
    self.assertIn("feature bogus not prepared for corpus POD", message)

  def test_out_dir_a_file_or_unwritable(self):
    root = _tempdir(self)
    a_file = os.path.join(root, "results.txt")
    with open(a_file, "w") as f:
      f.write("x")
    with self.assertRaisesRegex(ValueError, "--out_dir=.*results.txt is a file"):
      run_guard.check_out_dir(a_file)
    with self.assertRaisesRegex(ValueError, "is inside .*results.txt, which is a file"):
      run_guard.check_out_dir(os.path.join(a_file, "run"))
    # Root ignores permission bits: a refused write is simulated.
    refused = PermissionError(errno.EACCES, "Permission denied")
    with mock.patch.object(tempfile, "mkstemp", side_effect=refused):
      with self.assertRaisesRegex(ValueError, "--out_dir=.*cannot write there .Permission denied"):
        run_guard.check_out_dir(os.path.join(root, "run"))

  def test_disk_full_names_the_path_and_the_run_resumes(self):
    out = _tempdir(self)
    real_save = tf.train.CheckpointManager.save
    saves = []

    def save_until_full(manager, *args, **kwargs):
      saves.append(1)
      if len(saves) == 3:  # epoch 1's first mid-epoch save
        raise OSError(errno.ENOSPC, "No space left on device",
                      os.path.join(manager.directory, "ckpt-3.data-00000-of-00001"))
      return real_save(manager, *args, **kwargs)
    with mock.patch.object(tf.train.CheckpointManager, "save", save_until_full):
      message = self._message(lambda: cww_train.train(_cww_config(out), source=_source()))
    self.assertIn("No space left on device", message)
    self.assertIn(os.path.join(out, "checkpoints", "ckpt-3"), message)
    self.assertIn("resumes the run from its last checkpoint", message)
    # TensorFlow's own error for the same fault.
    tf_error = tf.errors.ResourceExhaustedError(
        None, None, f"{out}/checkpoints/ckpt-3_temp/part-00000; No space left on device")
    self.assertIn("No space left on device", cli.user_message(tf_error))
    # Space freed: the same command resumes and finishes.
    resumed = cww_train.train(_cww_config(out), source=_source())
    self.assertEqual(resumed["resumed_from"], {"epoch": 1, "step_in_epoch": 0})
    self.assertEqual(resumed["epochs_run"], 2)

  def test_results_file_not_half_written_on_a_full_disk(self):
    out = _tempdir(self)
    # The disk fills up once the temporary file is written: nothing is left behind.
    with mock.patch.object(os, "replace", side_effect=OSError(errno.ENOSPC, "No space left")):
      with self.assertRaises(OSError):
        train_common.write_json_atomic(os.path.join(out, "results.json"), {"a": 1})
    self.assertEqual(os.listdir(out), [])

  def test_library_bugs_keep_their_traceback(self):
    try:
      tf.constant([1.0]) + tf.constant([1])  # a dtype error raised inside TensorFlow
    except Exception as e:  # pylint: disable=broad-except
      self.assertIsNone(cli.user_message(e))


  def test_a_diverged_run_is_a_message_not_the_kde_assert(self):
    # The real graph assert of tfser.ops.kde on a NaN prediction, as a diverging DiffKDE run meets it.
    from tfser.ops import kde  # pylint: disable=g-import-not-at-top
    points = tf.constant([[[0.1, 0.2], [float("nan"), 0.3], [0.5, 0.6]]], tf.float32)
    with self.assertRaises(tf.errors.InvalidArgumentError) as caught:
      tf.function(lambda p: kde.diffusion_kde_2d(p, grid_size=16))(points)
    message = cli.user_message(caught.exception)
    self.assertIsNotNone(message)
    self.assertIn("training diverged", message)
    for flag in ("--learning_rate", "--standardize_features", "--diffkde_train_dtype", "--restart"):
      self.assertIn(flag, message)
    # Another InvalidArgumentError stays a bug with its traceback.
    with self.assertRaises(tf.errors.InvalidArgumentError) as other:
      tf.debugging.assert_equal(tf.constant(1), tf.constant(2))
    self.assertIsNone(cli.user_message(other.exception))


# ---------------------------------------------- the launchers in a subprocess: status, no traceback

class LauncherTest(_WithCorpora):

  def test_cww_quiet_output_then_other_holdout_refused_then_restart(self):
    out = _tempdir(self)
    common = (f"--data_dir={self.data_dir}", f"--out_dir={out}", f"--feature_dim={DIM}",
              "--max_epochs=1", "--batch_size=16", "--noexport",
              f"--demo_dir={_tempdir(self)}")
    first = _launch("cww", "--holdout=POD", *common)
    self.assertEqual(first.returncode, 0, first.stderr[-3000:])
    output = first.stdout + first.stderr
    self.assertIn("val_ua_mean", output)  # Keras's epoch line: the progress stays
    self.assertIn("results:", output)
    for chatter in ("Local rendezvous", "Sharding callback", "XLA service", "CWW run:"):
      self.assertNotIn(chatter, output)
    refused = _launch("cww", "--holdout=IEM", *common)
    self.assertEqual(refused.returncode, 1, refused.stderr[-3000:])
    self.assertIn("--holdout: POD in the saved run, IEM now", refused.stderr)
    self.assertIn("--restart", refused.stderr)
    self.assertNotIn("Traceback", refused.stderr)
    # --restart (in-process: the launchers' shared step before training) clears that run.
    from absl import flags  # pylint: disable=g-import-not-at-top
    from absl.testing import flagsaver  # pylint: disable=g-import-not-at-top
    from tfser.launchers import common as launcher_common  # pylint: disable=g-import-not-at-top
    if not flags.FLAGS.is_parsed():
      flags.FLAGS(["test"], known_only=True)
    with flagsaver.flagsaver(out_dir=out, restart=False):
      launcher_common.prepare_out_dir()
      self.assertTrue(os.path.exists(os.path.join(out, "results.json")))
    # A non-chief worker of a cluster sharing --out_dir never deletes the chief's run.
    with flagsaver.flagsaver(out_dir=out, restart=True):
      launcher_common.prepare_out_dir(chief=False)
      self.assertTrue(os.path.exists(os.path.join(out, "results.json")))
    with flagsaver.flagsaver(out_dir=out, restart=True):
      launcher_common.prepare_out_dir()
    self.assertEqual(os.listdir(out), [])

  def test_annotators_missing_feature_and_read_only_out_dir(self):
    cases = [(("--features=bogus", f"--out_dir={_tempdir(self)}"),
              "feature bogus not prepared for corpus POD")]
    try:
      os.makedirs("/sys/tfser-faults-probe")
    except OSError:  # sysfs: nobody can make a directory there, not even root
      cases.append((("--out_dir=/sys/tfser-run",), "cannot write there"))
    else:
      os.rmdir("/sys/tfser-faults-probe")
    for flags, expected in cases:
      proc = _launch("annotators", f"--data_dir={self.data_dir}", "--corpus=POD",
                     "--model=baseline", "--max_epochs=1", *flags)
      self.assertEqual(proc.returncode, 1, (flags, proc.stderr[-3000:]))
      self.assertIn(expected, proc.stderr, flags)
      self.assertNotIn("Traceback", proc.stderr, flags)


if __name__ == "__main__":
  tf.test.main()
