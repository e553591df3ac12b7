"""The annotators trainer: task1+2 vs task1, consensus vs a constant predictor, run outputs,
resuming after an interruption, determinism, and bad input.

Statistical tests run on a tiny synthetic corpus (tfser/testing/annotator_arrays.py) with a smaller
DiffKDE (grid 32, 100 samples) and learning rate 1e-2 instead of the paper's 1e-3, so that a few
epochs suffice; the comparisons are paired over test utterances.
"""

import dataclasses
import functools
import glob
import json
import os
import shutil
import tempfile

import numpy as np
from scipy import stats

import tfser  # noqa: F401
import tensorflow as tf

from tests import testing
from tfser.testing.annotator_arrays import make_corpus
from tfser import metrics
from tfser.core import run as train_common
from tfser.core.resumable import ResumableCheckpoint
from tfser.tasks.annotators import train as annotators
from tfser.tasks.annotators.callbacks import EarlyStoppingAfterMinimum
from tfser.tasks.annotators.model import AnnotatorTaskModel
from tfser.metrics import consensus_from_distribution
from tfser.layers.diffkde import DiffKDE
from tfser.models.annotator_builder import build_annotator_model
from tfser.models.annotator_config import AnnotatorModelConfig

_CORPUS = {}


def corpus():
  if not _CORPUS:
    _CORPUS["c"] = make_corpus(num_annotators=12, input_dim=8, gt_grid=32,
                               sizes=(("train", 192), ("validation", 32), ("test", 96)))
  return _CORPUS["c"]


def _data(c):
  return annotators.AnnotatorData(
      train=c.dataset("train", 32, shuffle=True), validation=c.dataset("validation"),
      test=c.dataset("test"), num_annotators=c.num_annotators, input_dim=c.input_dim,
      feature_names=("synthetic",))


def _train(objective, epochs=4, seed=0):
  tf.keras.utils.set_random_seed(seed)
  network = build_annotator_model(AnnotatorModelConfig(model="mt", input_dim=8,
                                                       num_annotators=12))
  small = dict(grid_size=32, samples=100)
  task = AnnotatorTaskModel(network, objective, train_diffkde=DiffKDE(seed=seed, **small),
                            eval_diffkde=DiffKDE(dtype="float64", seed=seed, **small))
  task.compile(optimizer=tf.keras.optimizers.legacy.SGD(1e-2, momentum=0.9))
  task.fit(corpus().dataset("train", 32, shuffle=True, seed=seed), epochs=epochs, verbose=0)
  return task


class _HalveLearningRateAfterFirstEpoch(tf.keras.callbacks.Callback):
  """A learning-rate change that a run resumed after the first epoch can only restore."""

  def on_epoch_end(self, epoch, logs=None):
    if epoch == 0:
      lr = self.model.optimizer.learning_rate
      lr.assign(lr.numpy() / 2)


class TrainingTest(tf.test.TestCase):

  def _make_tempdir(self):
    path = tempfile.mkdtemp(prefix="tfser_annotators_")
    self.addCleanup(shutil.rmtree, path, ignore_errors=True)
    return path

  def test_task1_plus_2_lowers_tvd_and_consensus_beats_a_constant(self):
    test = {k: tf.constant(v) for k, v in corpus().arrays["test"].items()
            if k != "utterance_id"}
    truth = test["ground_truth"].numpy().astype(np.float64)
    consensus_true = test["consensus"].numpy().astype(np.float64)
    tvd, ccc = {}, {}
    for objective in ("task1", "task1+2"):
      task = _train(objective)
      distribution = task.predicted_distribution(test, seed=[0, 0]).numpy()
      tvd[objective] = metrics.total_variation_distance(truth, distribution).numpy()
      ccc[objective] = consensus_from_distribution(distribution, 4).numpy()
    # Task 1+2 (DiffKDE loss) beats Task 1 alone on TVD, paired over utterances.
    gain = tvd["task1"] - tvd["task1+2"]
    self.assertGreater(gain.mean(), 0.05)
    self.assertLess(stats.ttest_rel(tvd["task1+2"], tvd["task1"]).pvalue, 1e-3)
    # MT's consensus CCC beats a constant predictor (whose CCC is 0), by a permutation test.
    rng = np.random.default_rng(0)
    constant = np.full_like(consensus_true[:, 0], consensus_true[:, 0].mean())
    self.assertAllClose(metrics.concordance_correlation_coefficient(consensus_true[:, 0],
                                                                    constant), 0.0)
    for objective in ("task1", "task1+2"):
      for d in range(2):
        observed = float(metrics.concordance_correlation_coefficient(
            consensus_true[:, d], ccc[objective][:, d]))
        null = [float(metrics.concordance_correlation_coefficient(
            rng.permutation(consensus_true[:, d]), ccc[objective][:, d])) for _ in range(100)]
        self.assertGreater(observed, 0.3, (objective, d))
        self.assertGreater(observed, max(null), (objective, d))

  def _config(self, out_dir, **kwargs):
    base = dict(model="mt", objective="task1+2", data_dir="synthetic", out_dir=out_dir,
                max_epochs=3, min_epochs=1, learning_rate=1e-2, hard_kde_grid_size=0,
                diffkde_grid_size=32, diffkde_samples=50, image_utterances=2, export=False,
                verbose=0)
    base.update(kwargs)
    return annotators.AnnotatorsConfig(**base)

  def _run(self, config, *callbacks):
    # Seeded before the datasets are built, as run() does for its own (their shuffle seeds).
    train_common.configure_runtime(config.seed, deterministic=True)
    data = _data(corpus())
    # Of unknown length, as the pipeline's (it drops records while parsing them).
    data = dataclasses.replace(data, **{split: getattr(data, split).filter(
        lambda batch: tf.constant(True)) for split in ("train", "validation", "test")})
    return annotators.run(config, data=data, extra_callbacks=list(callbacks),
                          flags_used={"model": config.model})

  def _saved_state(self, out_dir):
    """(epoch, step, callbacks' state) of the latest resumable checkpoint in ``out_dir``."""
    latest = tf.train.latest_checkpoint(os.path.join(out_dir, "checkpoints", "resume"))

    def value(name):
      return tf.train.load_variable(latest, f"{name}/.ATTRIBUTES/VARIABLE_VALUE")
    return (int(value("epoch")), int(value("step_in_epoch")),
            json.loads(value("callback_state").decode()))

  def _assert_same_run(self, resumed_dir, straight_dir, keys):
    with open(os.path.join(resumed_dir, "results.json")) as f:
      resumed = json.load(f)
    with open(os.path.join(straight_dir, "results.json")) as f:
      straight = json.load(f)
    for key in keys:  # as JSON text: NaN metrics compare equal
      self.assertEqual(json.dumps(resumed[key], sort_keys=True),
                       json.dumps(straight[key], sort_keys=True), key)
    # The last checkpoints too: epoch, step and the callbacks' counters.
    self.assertEqual(self._saved_state(resumed_dir), self._saved_state(straight_dir))
    resumed_final, straight_final = (os.path.join(d, "checkpoints", "final")
                                     for d in (resumed_dir, straight_dir))
    names = [n for n, _ in tf.train.list_variables(straight_final)]
    self.assertEqual(names, [n for n, _ in tf.train.list_variables(resumed_final)])
    for name in names:
      self.assertAllEqual(tf.train.load_variable(resumed_final, name),
                          tf.train.load_variable(straight_final, name), msg=name)

  def test_killed_mid_epoch_resumes_to_the_same_result(self):
    batches = int(np.ceil(192 / 32))
    config = functools.partial(self._config, checkpoint_every_batches=2)
    straight_dir, out_dir = self._make_tempdir(), self._make_tempdir()
    straight = self._run(config(straight_dir), _HalveLearningRateAfterFirstEpoch())
    self.assertIsNone(straight["resumed_from"])
    # The learning rate changed before the kill, so the resumed run must restore it.
    self.assertEqual(straight["history"]["lr"][1], straight["history"]["lr"][0] / 2)

    with self.assertRaises(KeyboardInterrupt):  # the 2nd epoch's 3rd step; saved after its 2nd
      self._run(config(out_dir), _HalveLearningRateAfterFirstEpoch(),
                testing.InterruptAfterSteps(batches + 3))
    self.assertFalse(os.path.exists(os.path.join(out_dir, "results.json")))
    self.assertEqual(self._saved_state(out_dir)[:2], (1, 2))

    class Record(tf.keras.callbacks.Callback):
      first_epoch = None

      def on_epoch_begin(self, epoch, logs=None):
        if Record.first_epoch is None:
          Record.first_epoch = epoch

      def on_train_end(self, logs=None):
        Record.iterations = int(self.model.optimizer.iterations.numpy())

    results = self._run(config(out_dir), _HalveLearningRateAfterFirstEpoch(), Record())
    self.assertEqual(results["resumed_from"], {"epoch": 1, "step_in_epoch": 2})
    self.assertEqual(Record.first_epoch, 1)
    self.assertEqual(Record.iterations, 2 * 3 * batches)  # task1+2: two optimiser steps a batch
    # Every metric (validation, test, every epoch's train and validation logs, the learning rate)
    # and the final weights as an uninterrupted run's.
    self._assert_same_run(out_dir, straight_dir, (
        "validation", "test", "zero_shot", "history", "epochs", "best_epoch",
        "early_stopped_epoch", "steps_per_epoch"))

    with open(os.path.join(out_dir, "results.json")) as f:
      saved = json.load(f)
    self.assertEqual(saved["seed"], 0)
    self.assertEqual(saved["flags"], {"model": "mt"})
    self.assertEqual(saved["config"]["objective"], "task1+2")
    for split in ("validation", "test"):
      for key in ("tvd", "jsd", "consensus_ccc_act", "consensus_ccc_val", "individual_ccc_act",
                  "mean_own_ccc_val", "mean_all_ccc_act", "per_annotator_ccc_val_mean"):
        self.assertIn(key, saved[split])
    self.assertEqual(results["test"]["utterances"], 96)
    run_dir = train_common.RunDirectory(out_dir)
    for sub in ("train", "validation", "images"):
      self.assertTrue(glob.glob(os.path.join(run_dir.tensorboard, sub, "events.*")), sub)

  def test_early_stopping_counters_survive_a_kill(self):
    # Learning rate 0: the weights, hence the validation loss, stay as they are, so early
    # stopping's wait grows by one an epoch (patience 2: it stops after the 3rd epoch) whatever
    # the data; ReduceLROnPlateau's wait grows alike.
    config = functools.partial(self._config, objective="task1", learning_rate=0.0, max_epochs=6,
                               early_stopping_patience=2, lr_patience=9, image_utterances=0)
    straight_dir, out_dir = self._make_tempdir(), self._make_tempdir()
    straight = self._run(config(straight_dir))
    self.assertEqual((straight["early_stopped_epoch"], straight["epochs"]), (2, 3))

    with self.assertRaises(KeyboardInterrupt):  # the 3rd epoch's 1st step; saved at its start
      self._run(config(out_dir), testing.InterruptAfterSteps(2 * int(np.ceil(192 / 32)) + 1))
    epoch, step, state = self._saved_state(out_dir)
    self.assertEqual((epoch, step), (2, 0))
    self.assertEqual(state["early_stopping"]["wait"], 1)
    self.assertEqual(state["early_stopping"]["best_epoch"], 0)
    self.assertEqual(state["reduce_lr"]["wait"], 1)

    # Counters restarted at 0 would let the resumed run go on to the 5th epoch.
    resumed = self._run(config(out_dir))
    self.assertEqual(resumed["resumed_from"], {"epoch": 2, "step_in_epoch": 0})
    self._assert_same_run(out_dir, straight_dir, (
        "validation", "test", "history", "epochs", "best_epoch", "early_stopped_epoch"))
    # Started again when finished: no training, the same results.
    again = self._run(config(out_dir))
    self.assertEqual(again["resumed_from"], {"epoch": 3, "step_in_epoch": 0})
    self._assert_same_run(out_dir, straight_dir, (
        "validation", "test", "history", "epochs", "best_epoch", "early_stopped_epoch"))

  def test_best_weights_survive_a_restart(self):
    directory = self._make_tempdir()

    def restarted():
      model = tf.keras.Sequential([tf.keras.layers.Dense(2)])
      model.build([None, 3])
      stopper = EarlyStoppingAfterMinimum(patience=5, min_epochs=1)
      checkpoint = ResumableCheckpoint(
          directory, {"model": model, "best_weights": stopper.track_best_weights(model)},
          stateful={"early_stopping": stopper})
      for callback in (stopper, checkpoint):
        callback.set_model(model)
      checkpoint.restore()
      stopper.on_train_begin()
      return model, stopper, checkpoint

    model, stopper, checkpoint = restarted()
    best = [w + 1.0 for w in model.get_weights()]
    model.set_weights(best)
    for epoch, val_loss in enumerate([1.0, 2.0]):
      stopper.on_epoch_end(epoch, {"val_loss": val_loss})
      model.set_weights([w + 1.0 for w in model.get_weights()])  # the next epoch's training
      checkpoint.on_epoch_end(epoch)
    model, stopper, _ = restarted()  # different fresh weights, then the checkpoint's
    self.assertEqual((stopper.best, stopper.best_epoch, stopper.wait), (1.0, 0, 1))
    stopper.on_train_end()
    for restored, expected in zip(model.get_weights(), best):
      self.assertAllEqual(restored, expected)

  def test_deterministic_for_a_seed(self):
    weights = []
    for _ in range(2):
      train_common.configure_runtime(3, deterministic=True)
      task = _train("task1", epochs=2, seed=3)
      weights.append([w.numpy() for w in task.network.weights])
    for a, b in zip(*weights):
      self.assertAllEqual(a, b)

  def test_bad_configuration_errors_name_the_flag(self):
    with self.assertRaisesRegex(ValueError, "--model"):
      annotators.AnnotatorsConfig(model="cnn", data_dir="x")
    with self.assertRaisesRegex(ValueError, "--objective"):
      annotators.AnnotatorsConfig(objective="task3", data_dir="x")
    with self.assertRaisesRegex(ValueError, "--objective=task1 does not fit --model=baseline"):
      annotators.AnnotatorsConfig(model="baseline", objective="task1", data_dir="x")

  def _fake_corpus(self, manifest_update):
    data_dir = self._make_tempdir()
    os.makedirs(os.path.join(data_dir, "NOR"))
    manifest = {"schema_version": 1, "corpus": "NOR", "annotators": ["a", "b"],
                "split_counts": {"train": 3, "validation": 2, "test": 2},
                "features": {"x": {"dim": 2, "mean": [0, 0], "std": [1, 1]}}}
    manifest.update(manifest_update)
    with open(os.path.join(data_dir, "NOR", "manifest.json"), "w") as f:
      json.dump(manifest, f)
    return annotators.AnnotatorsConfig(corpus="NOR", data_dir=data_dir, feature_names=("x",))

  def test_corpus_without_individual_ratings_is_a_clear_error(self):
    config = self._fake_corpus({"annotators": []})
    with self.assertRaisesRegex(ValueError, "--corpus=NOR: .*lists no annotators"):
      annotators.load_data(config)

  def test_empty_split_is_a_clear_error(self):
    config = self._fake_corpus({"split_counts": {"train": 3, "validation": 0, "test": 2}})
    with self.assertRaisesRegex(ValueError, "corpus NOR .* empty 'validation' split"):
      annotators.load_data(config)


if __name__ == "__main__":
  tf.test.main()
