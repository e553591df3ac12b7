"""End-to-end CWW runs on tiny in-memory corpora: outputs, SavedModel, resume, bad input."""

import glob
import json
import math
import os
import tempfile

import numpy as np
from absl.testing import parameterized

import tfser  # noqa: F401
import tensorflow as tf

from tests import testing
from tfser.testing import cww_arrays
from tfser.tasks.cww import train as cww_train
from tfser.tasks.cww.config import CwwConfig

DIM = 24


def _source(drop_class=None, dim=DIM):
  src = cww_arrays.synthetic_corpora(dim=dim, sizes={"CRE": 120, "IEM": 150, "IMP": 180,
                                                   "POD": 150, "LIBRI": 64}, seed=0)
  if drop_class is not None:  # CRE's training split without one class
    x, y, v, speakers = src.corpora["CRE"]["train"]
    keep = y != drop_class
    src.corpora["CRE"]["train"] = (x[keep], y[keep], v[keep], speakers[keep])
  return src


def _config(out_dir, **kwargs):
  base = dict(holdout="POD", out_dir=out_dir, feature_dim=DIM, hidden_units=(32, 32, 16, 16),
              reconstruction_units=(32, DIM), max_epochs=3, batch_size=16,
              checkpoint_every_steps=1, eval_batch_size=64)
  base.update(kwargs)
  return CwwConfig(**base)


class EndToEndTest(tf.test.TestCase, parameterized.TestCase):

  def test_run_writes_results_tensorboard_and_servable_model(self):
    out = tempfile.mkdtemp(dir=self.get_temp_dir())
    # CRE lacks "angry" in training: UA averages the classes present; weights stay finite.
    results = cww_train.train(_config(out, pel="all"), source=_source(drop_class=3))
    with open(os.path.join(out, "results.json")) as f:
      stored = json.load(f)
    self.assertEqual(stored["holdout"], "POD")
    self.assertEqual(stored["holdout_split"], "test")
    self.assertEqual(stored["training_corpora"], ["CRE", "IEM", "IMP"])
    self.assertEqual(stored["missing_classes"], {"CRE": ["angry"]})
    self.assertEqual(stored["flags"]["seed"], 0)
    for value in [stored["holdout_ua"], *stored["train_ua"].values(),
                  *stored["corpus_weights"].values()]:
      self.assertTrue(math.isfinite(value))
    self.assertAllClose(sum(stored["corpus_weights"].values()), 3.0, rtol=1e-5)
    self.assertLen(stored["corpus_weights_history"], stored["epochs_run"])
    # steps per epoch: the smallest training split (CRE, 72 minus the dropped class) // 16.
    n_cre = int((_source().corpora["CRE"]["train"][1] != 3).sum())
    self.assertEqual(stored["steps_per_epoch"], n_cre // 16)
    # TensorBoard: per-corpus weights and UAs per epoch.
    def tags(writer):
      events = glob.glob(os.path.join(out, "tensorboard", writer, "events.out.tfevents.*"))
      self.assertNotEmpty(events, writer)
      return {v.tag for e in tf.compat.v1.train.summary_iterator(events[0])
              for v in e.summary.value}
    self.assertContainsSubset({"epoch_cww_CRE", "epoch_cww_IEM", "epoch_cww_IMP",
                               "epoch_train_ua_IMP", "epoch_loss"}, tags("train"))
    # Keras files "val_*" logs under validation/ without the prefix.
    self.assertContainsSubset({"epoch_ua_mean", "epoch_ua_CRE"}, tags("validation"))
    self.assertNotEmpty(tf.io.gfile.glob(os.path.join(out, "checkpoints", "ckpt-*")))
    # SavedModel: reload without tfser's Python classes and call the feature signature.
    loaded = tf.saved_model.load(os.path.join(out, "saved_model"))
    x = _source().corpora["POD"]["test"][0][:5]
    probs = loaded.signatures["is10"](is10=tf.constant(x))["probabilities"].numpy()
    self.assertEqual(probs.shape, (5, 4))
    self.assertAllClose(probs.sum(-1), np.ones(5), rtol=1e-5)
    served = loaded.signatures["serving_default"](is10=tf.constant(x))
    self.assertAllEqual(served["class_index"], probs.argmax(-1))
    with open(os.path.join(out, "saved_model", "tfser_export.json")) as f:
      self.assertIn("openSMILE", json.load(f)["waveform_note"])
    self.assertEqual(results["serving"]["waveform_signature"], None)

  def test_killed_mid_epoch_resumes_to_the_same_result(self):
    config = dict(max_epochs=2, pel="all", reconstruction=True, export=False,
                  checkpoint_every_steps=2)
    straight = cww_train.train(_config(tempfile.mkdtemp(dir=self.get_temp_dir()), **config),
                               source=_source())
    out = tempfile.mkdtemp(dir=self.get_temp_dir())
    steps = straight["steps_per_epoch"]
    # Killed mid-epoch of the second epoch; the last checkpoint is at its step 2 of 4.
    with self.assertRaises(KeyboardInterrupt):
      cww_train.train(_config(out, **config), source=_source(),
                      extra_callbacks=[testing.InterruptAfterSteps(steps + 3)])
    latest = tf.train.latest_checkpoint(os.path.join(out, "checkpoints"))
    self.assertEqual(tf.train.load_variable(latest, "step_in_epoch/.ATTRIBUTES/VARIABLE_VALUE"), 2)
    resumed = cww_train.train(_config(out, **config), source=_source())
    self.assertEqual(resumed["resumed_from"], {"epoch": 1, "step_in_epoch": 2})
    self.assertIsNone(straight["resumed_from"])
    for key in ("holdout_ua", "train_ua", "val_ua", "corpus_weights", "corpus_weights_history",
                "best_epoch", "epochs_run"):
      self.assertEqual(resumed[key], straight[key], key)

  def test_merged_mode(self):
    merged = cww_train.train(
        _config(tempfile.mkdtemp(dir=self.get_temp_dir()), cww=False, merge_corpora=True, max_epochs=1,
                export=False), source=_source())
    self.assertEqual(list(merged["corpus_weights"]), ["merged"])
    total = sum(len(_source().corpora[c]["train"][1]) for c in ("CRE", "IEM", "IMP"))
    self.assertEqual(merged["steps_per_epoch"], total // 16)
    self.assertIsNone(merged["fold"])


def _utterances_of(source, corpus, speakers):
  """Class counts [4] of the corpus's utterances (every split) by these speakers."""
  _, labels, _, ids = source._arrays(corpus, "all")  # pylint: disable=protected-access
  return np.bincount(labels[np.isin(ids, list(speakers))], minlength=4)


class WithinCorpusTest(tf.test.TestCase, parameterized.TestCase):
  """The within-single-corpus benchmark: speaker folds across the splits (paper 3.2)."""

  @parameterized.parameters(("CRE", 0), ("IEM", 3))
  def test_fold_trains_validates_and_tests_on_its_speakers(self, corpus, fold):
    src = _source()
    out = tempfile.mkdtemp(dir=self.get_temp_dir())
    results = cww_train.train(_config(out, cww=False, mode="within_corpus", holdout=corpus,
                                      fold=fold, max_epochs=1, export=False), source=src)
    with open(os.path.join(out, "results.json")) as f:
      stored = json.load(f)
    self.assertEqual(stored["fold"], results["fold"])
    parts = stored["fold"]
    self.assertEqual(parts["index"], fold)
    if corpus == "IEM":  # fold 3: session 2's male speaker, validated on his session partner
      self.assertEqual((parts["num_folds"], parts["rule"]), (10, "sessions"))
      self.assertEqual((parts["test"], parts["validation"]), (["Ses02M"], ["Ses02F"]))
      self.assertLen(parts["train"], 8)
    else:  # 12 synthetic actors: 10 folds, fold 0 tests 2, validates on 1
      self.assertEqual((parts["num_folds"], parts["rule"]), (10, "speakers"))
      self.assertEqual((len(parts["train"]), len(parts["validation"]), len(parts["test"])),
                       (9, 1, 2))
    self.assertEqual(sorted(parts["train"] + parts["validation"] + parts["test"]),
                     list(src.speakers(corpus)))
    self.assertEqual(stored["training_corpora"], [corpus])
    self.assertEqual(stored["holdout_split"], "test")
    # Each part is exactly its speakers' utterances, taken from the train and validation splits.
    self.assertEqual(stored["class_counts"][corpus],
                     _utterances_of(src, corpus, parts["train"]).tolist())
    self.assertEqual(stored["holdout_class_counts"],
                     _utterances_of(src, corpus, parts["test"]).tolist())
    self.assertEqual(stored["steps_per_epoch"],
                     _utterances_of(src, corpus, parts["train"]).sum() // 16)
    self.assertEqual(list(stored["val_ua"]), [corpus])

  def test_podcast_uses_its_fixed_splits(self):
    src = _source()
    results = cww_train.train(
        _config(tempfile.mkdtemp(dir=self.get_temp_dir()), cww=False, mode="within_corpus",
                holdout="POD", max_epochs=1, export=False), source=src)
    self.assertEqual(results["fold"]["rule"], "splits")
    self.assertEqual(results["holdout_split"], "test")
    self.assertEqual(results["holdout_utterances"], len(src.corpora["POD"]["test"][1]))
    self.assertEqual(sum(results["class_counts"]["POD"]), len(src.corpora["POD"]["train"][1]))

  def test_fold_out_of_range_for_the_data(self):
    src = _source()
    x, y, v, _ = src.corpora["CRE"]["train"]  # 5 actors: 5 leave-one-speaker-out folds
    src.corpora["CRE"] = {"train": (x, y, v, np.asarray([f"a{i % 5}" for i in range(len(y))]))}
    with self.assertRaisesRegex(cww_train.DataError, r"--fold=7 .*CRE.* 5 fold\(s\)"):
      cww_train.train(_config(tempfile.mkdtemp(dir=self.get_temp_dir()), cww=False,
                              mode="within_corpus", holdout="CRE", fold=7, max_epochs=1,
                              export=False), source=src)


class BadInputTest(tf.test.TestCase):

  def test_unknown_holdout(self):
    with self.assertRaisesRegex(ValueError, "CRE, IEM, IMP, POD"):
      cww_train.train(_config(tempfile.mkdtemp(dir=self.get_temp_dir()), holdout="MSP"), source=_source())

  def test_missing_corpus_lists_what_is_there(self):
    src = _source()
    del src.corpora["IEM"]
    with self.assertRaisesRegex(cww_train.DataError, r"IEM not found.*CRE, IMP, LIBRI, POD"):
      cww_train.train(_config(tempfile.mkdtemp(dir=self.get_temp_dir())), source=src)

  def test_wrong_feature_width(self):
    with self.assertRaisesRegex(cww_train.DataError, r"wrong width.*CRE: 24.*expected 1582"):
      cww_train.train(_config(tempfile.mkdtemp(dir=self.get_temp_dir()), feature_dim=1582),
                      source=_source())

  def test_merge_with_cww_is_refused(self):
    with self.assertRaisesRegex(ValueError, "nocww"):
      _config("x", merge_corpora=True).validate()


if __name__ == "__main__":
  tf.test.main()
