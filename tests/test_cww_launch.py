"""The CWW launcher end to end on tiny TFRecords (tfser.data.pipeline), in a subprocess."""

import json
import os
import socket
import subprocess
import sys
import tempfile

import tfser  # noqa: F401
import tensorflow as tf

from tfser.testing import cww_arrays

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DIM = 16


def _launch(*flags, **env_overrides):
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", PYTHONPATH=ROOT, **env_overrides)
  return subprocess.run([sys.executable, "-m", "tfser.launch", "--task=cww", *flags], cwd=ROOT,
                        env=env, capture_output=True, text=True, timeout=300, check=False)


class LaunchTest(tf.test.TestCase):

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    cls.data_dir = tempfile.mkdtemp(prefix="tfser-cww-data-")
    source = cww_arrays.synthetic_corpora(dim=DIM, sizes={"CRE": 100, "IEM": 100, "IMP": 100,
                                                        "POD": 100, "LIBRI": 40}, seed=1)
    cww_arrays.write_tfrecords(source, cls.data_dir)

  def test_main_job_on_tfrecords(self):
    out = tempfile.mkdtemp(dir=self.get_temp_dir())
    proc = _launch(f"--data_dir={self.data_dir}", "--holdout=POD", f"--out_dir={out}",
                   f"--feature_dim={DIM}", "--max_epochs=2", "--method=cww_pel_al",
                   "--batch_size=16")
    self.assertEqual(proc.returncode, 0, proc.stderr[-4000:])
    with open(os.path.join(out, "results.json")) as f:
      results = json.load(f)
    self.assertEqual(results["method"], "cww_pel_al")
    self.assertEqual(results["flags"]["pel"], "all")
    self.assertEqual(results["holdout_split"], "test")
    self.assertEqual(results["holdout_utterances"], 20)  # POD's test split (20 % of 100)
    self.assertEqual(results["epochs_run"], 2)
    self.assertTrue(os.path.isdir(os.path.join(out, "saved_model")))
    self.assertNotEmpty(tf.io.gfile.glob(os.path.join(out, "tensorboard", "train", "events.*")))
    loaded = tf.saved_model.load(os.path.join(out, "saved_model"))
    probs = loaded.signatures["serving_default"](is10=tf.zeros([3, DIM]))["probabilities"]
    self.assertAllClose(tf.reduce_sum(probs, -1), tf.ones(3), rtol=1e-5)

  def test_multi_worker_strategy_with_a_one_worker_cluster(self):
    # The launcher creates the strategy before the runtime starts, as TF_CONFIG clusters need.
    with socket.socket() as sock:
      sock.bind(("localhost", 0))
      port = sock.getsockname()[1]
    tf_config = json.dumps({"cluster": {"worker": [f"localhost:{port}"]},
                            "task": {"type": "worker", "index": 0}})
    out = tempfile.mkdtemp(dir=self.get_temp_dir())
    proc = _launch(f"--data_dir={self.data_dir}", "--holdout=POD", f"--out_dir={out}",
                   f"--feature_dim={DIM}", "--max_epochs=1", "--batch_size=16",
                   "--distribute=multi_worker", "--noexport", TF_CONFIG=tf_config)
    self.assertEqual(proc.returncode, 0, proc.stderr[-4000:])
    with open(os.path.join(out, "results.json")) as f:
      self.assertEqual(json.load(f)["flags"]["distribute"], "multi_worker")

  def test_within_corpus_fold_on_tfrecords(self):
    out = tempfile.mkdtemp(dir=self.get_temp_dir())
    proc = _launch(f"--data_dir={self.data_dir}", "--method=within", "--holdout=IMP", "--fold=5",
                   f"--out_dir={out}", f"--feature_dim={DIM}", "--max_epochs=1",
                   "--batch_size=16", "--noexport")
    self.assertEqual(proc.returncode, 0, proc.stderr[-4000:])
    with open(os.path.join(out, "results.json")) as f:
      results = json.load(f)
    self.assertEqual((results["mode"], results["training_corpora"]), ("within_corpus", ["IMP"]))
    # Fold 5 of 12: session 3's male speaker tested, its female speaker validates.
    self.assertEqual((results["fold"]["index"], results["fold"]["num_folds"]), (5, 12))
    self.assertEqual((results["fold"]["test"], results["fold"]["validation"]), (["M03"], ["F03"]))
    self.assertNotIn("F03", results["fold"]["train"])
    # The synthetic speakers take turns in each split (IMP: train 60, validation 20): F03 and
    # M03, the 5th and 6th of 12, own 5 + 2 utterances each; the other 10 speakers train.
    self.assertEqual(results["holdout_utterances"], 7)
    self.assertEqual(sum(results["class_counts"]["IMP"]), 80 - 2 * 7)

  def test_flags_to_config(self):
    from absl import flags  # pylint: disable=g-import-not-at-top
    from absl.testing import flagsaver  # pylint: disable=g-import-not-at-top
    from tfser.launchers import cww as launcher  # pylint: disable=g-import-not-at-top
    if not flags.FLAGS.is_parsed():
      flags.FLAGS(["test"], known_only=True)
    with flagsaver.flagsaver(holdout="MSP"):
      with self.assertRaisesRegex(ValueError, "valid values: CRE, IEM, IMP, POD"):
        launcher.config_from_flags()
    with flagsaver.flagsaver(holdout="IEM", method="cww_unigram_smoothing", lambda_w=2.0):
      flags.FLAGS["lambda_w"].present = 1
      try:
        config = launcher.config_from_flags()
      finally:
        flags.FLAGS["lambda_w"].present = 0
    self.assertEqual((config.holdout, config.cww, config.target, config.lambda_w,
                      config.learning_rate, config.patience, config.batch_size),
                     ("IEM", True, "unigram", 2.0, 2e-4, 5, 32))
    self.assertEqual(config.method, "cww_unigram_smoothing")
    with flagsaver.flagsaver(holdout="IEM", method="within", fold=4):
      config = launcher.config_from_flags()
    self.assertEqual((config.mode, config.fold, config.cww), ("within_corpus", 4, False))
    config.validate()
    with flagsaver.flagsaver(holdout="IEM", method="within", fold=10):
      with self.assertRaisesRegex(ValueError, r"--fold=10 .*--holdout=IEM"):
        launcher.config_from_flags().validate()


if __name__ == "__main__":
  tf.test.main()
