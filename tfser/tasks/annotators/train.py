"""The annotators paper end to end: data, model, objective, callbacks, fit, evaluate, export.

Tavernor, El-Tawil and Mower Provost, "The Whole Is Bigger Than the Sum of Its Parts: Modeling
Individual Annotators to Capture Emotional Variability". One run trains one model (baseline, MT or
one-hot) with one objective (baseline, Task 1 or Task 1+2) on one corpus for one seed:

    python -m tfser.launch --task=annotators --model=mt --objective=task1+2 --corpus=IMP --seed=0

Library entry point: :func:`run` with an :class:`AnnotatorsConfig` (the launcher
``tfser/launchers/annotators.py`` builds it from flags). Outputs under ``out_dir``
(:class:`tfser.core.run.RunDirectory`): ``tensorboard/`` (train/validation scalars per task
and metric, the learning rate, images of predicted vs ground-truth distributions of a fixed
validation batch), ``checkpoints/`` (``resume/``: the latest two resumable checkpoints;
``final``: the network after training, with the best weights restored), ``results.json`` and
``saved_model/``.

Feature standardisation (a tfser addition, off by default as the paper feeds the raw
wav2vec2/BERT embeddings): with ``standardize_features`` the features are z-normalised with the
training corpus's training-split mean/std from its manifest (the same constants for zero-shot
corpora and inside the SavedModel). The demo's IS10 features span several orders of magnitude
and diverge under SGD without it: ``--preset=synthetic_demo`` (config.PRESETS) turns it on.

Resuming: a run killed at any point and started again with the same command (same ``out_dir``)
ends with the same results and weights as an uninterrupted run (given op determinism,
``deterministic``). The ``ResumableCheckpoint`` of ``tfser.core.resumable`` saves in
``checkpoints/resume`` at every epoch end (and, with ``checkpoint_every_batches``, every N
batches): the network (with the input dropout's generator), the DiffKDE layers' upsampling call
counters, the optimiser (momentum, iterations, learning rate), the metrics' running values, early
stopping's best weights, the epoch and the step within it, ReduceLROnPlateau's and early
stopping's counters, and every epoch's logs. The training data is one endless stream of the
training split, reshuffled on every pass with the run's seed, so pass k is the same in every
process: a resumed run skips it to the restored epoch and step (reading the skipped batches
again, about one pass per finished epoch). Starting a finished run again only evaluates and
exports. ``train_seconds`` counts this process's training only.
"""

import dataclasses
import logging
import os
import time
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np

import tfser  # noqa: F401  (Keras flavour before TensorFlow)
import tensorflow as tf

from tfser.core import distribute
from tfser.core import flags as config_flags
from tfser.core import resumable
from tfser.core import run_guard
from tfser.core import run as train_common
from tfser.tasks.annotators import callbacks as callbacks_lib
from tfser.tasks.annotators.config import AnnotatorsConfig
from tfser.tasks.annotators.data import AnnotatorData
from tfser.tasks.annotators.data import load_data
from tfser.tasks.annotators.evaluate import evaluate
from tfser.tasks.annotators.model import AnnotatorTaskModel
from tfser.layers.diffkde import DiffKDE
from tfser.models.annotator_builder import build_annotator_model

_LOG = logging.getLogger(__name__)
# Settings that cannot change a run's result: a run directory resumes whatever they are (the
# data's identity is compared by manifest, not by path; tfser.core.run_guard). distribute: the
# losses are the global minibatch's on any number of workers (tfser.tasks.annotators.model), so
# a run resumes on another cluster (and run directories from before the setting still resume).
RESUME_IGNORES = ("out_dir", "data_dir", "export", "verbose", "checkpoint_every_batches",
                  "distribute")


def fit_and_keep_final(task_model: AnnotatorTaskModel, stream: tf.data.Dataset, callbacks,
                       run_dir: train_common.RunDirectory, *, steps_per_epoch: int,
                       max_epochs: int, validation_data, validation_steps: int,
                       verbose: int) -> Tuple[int, int, float]:
  """The resumable fit with an annotator task's callbacks (``_callbacks``), then the trained
  network's final checkpoint. A finished run fits for zero epochs, which applies the restored
  state and early stopping's best weights. Returns (restored epoch, step, training seconds)."""
  start = time.time()
  # Several workers: the validation set sharded as the training stream (the same number of
  # steps on every worker; tfser.core.distribute), never by file.
  epoch, step, _ = resumable.fit(
      task_model, stream, checkpoint=callbacks.checkpoint, steps_per_epoch=steps_per_epoch,
      max_epochs=max_epochs, stopped=lambda: callbacks.stopper.stopped_epoch >= 0,
      callbacks=callbacks.ordered, refit_finished=True,
      validation_data=distribute.shard_by_data(validation_data),
      validation_steps=validation_steps, verbose=verbose)
  train_seconds = time.time() - start
  tf.train.Checkpoint(network=task_model.network).write(
      os.path.join(run_dir.checkpoints, "final"))
  return epoch, step, train_seconds


def paper_settings(config: AnnotatorsConfig) -> Dict[str, Any]:
  """The settings where tfser's defaults follow the paper, as a run used them (issue 15)."""
  return {"preset": config.preset, "standardize_features": config.standardize_features,
          "diffkde_train_dtype": config.effective_train_dtype, "gt_std_ddof": config.gt_std_ddof}


def build_task_model(config: AnnotatorsConfig, data: AnnotatorData, *,
                     model_class=AnnotatorTaskModel, **model_kwargs) -> AnnotatorTaskModel:
  """The network of ``config`` wrapped with its objective, compiled with the paper's SGD.

  data: anything with ``input_dim`` and ``num_annotators``. model_class, model_kwargs: an
  AnnotatorTaskModel subclass and its extra arguments (annotators_multi's corpora)."""
  network = build_annotator_model(config.model_config(input_dim=data.input_dim,
                                                      num_annotators=data.num_annotators))
  train_dtype = config.effective_train_dtype
  diffkde_args = dict(grid_size=config.diffkde_grid_size, out_bins=config.out_bins,
                      sigma=config.diffkde_sigma, samples=config.diffkde_samples,
                      t_gradient=config.diffkde_t_gradient)
  train_diffkde = DiffKDE(dtype="mixed_float16" if train_dtype == "float16" else train_dtype,
                          seed=config.seed, name="diffkde_train", **diffkde_args)
  eval_diffkde = DiffKDE(dtype="float64", seed=config.seed + 7919, name="diffkde_eval",
                         **diffkde_args)
  task_model = model_class(network, config.objective, out_bins=config.out_bins,
                           train_diffkde=train_diffkde, eval_diffkde=eval_diffkde,
                           jit=config.jit, name="annotators", **model_kwargs)
  # Legacy SGD: its sparse momentum update touches only the gathered heads (see annotators_step).
  optimizer = tf.keras.optimizers.legacy.SGD(config.learning_rate, momentum=config.momentum)
  task_model.compile(optimizer=optimizer)
  # Slots, iterations and learning rate now: a checkpoint restores into existing variables, and
  # fit() traces its train step once (twice when the first call creates variables).
  task_model.optimizer._create_all_weights(  # pylint: disable=protected-access
      network.trainable_variables)
  return task_model


def _first_batch(dataset: tf.data.Dataset, size: int, description: str):
  for batch in dataset.take(1):
    return {k: v[:size] for k, v in batch.items()}
  raise ValueError(f"{description}: no utterances (an empty split, or no utterance with at least "
                   "min_ratings activation/valence ratings)")


def _count_batches(dataset: tf.data.Dataset, description: str) -> int:
  """Batches in one pass of ``dataset``: its cardinality, else counted (which fills its cache)."""
  count = int(dataset.cardinality().numpy())
  if count == tf.data.INFINITE_CARDINALITY:
    raise ValueError(f"{description}: the dataset is endless; one pass must be one epoch")
  if count < 0:  # unknown: records are filtered while parsed
    count = int(dataset.reduce(np.int64(0), lambda n, _: n + 1).numpy())
  if not count:
    raise ValueError(f"{description}: no utterances (an empty split, or no utterance with at "
                     "least min_ratings activation/valence ratings)")
  return count


@dataclasses.dataclass
class _Callbacks:
  """The run's callbacks in the order fit calls them, and the ones the trainer reads."""
  ordered: List[tf.keras.callbacks.Callback]
  stopper: callbacks_lib.EarlyStoppingAfterMinimum
  history: callbacks_lib.EpochHistory
  checkpoint: resumable.ResumableCheckpoint


def _callbacks(config: AnnotatorsConfig, run_dir: train_common.RunDirectory, image_batch,
               task_model: AnnotatorTaskModel,
               extra_callbacks: Sequence[tf.keras.callbacks.Callback], *,
               first: Sequence[tf.keras.callbacks.Callback] = (),
               extra_state: Optional[Mapping[str, Any]] = None,
               restore_dir: Optional[str] = None) -> _Callbacks:
  """first: callbacks run before all others (their logs reach the history and TensorBoard);
  extra_state: more {name: callback with get_state/set_state} for the resumable checkpoint
  (annotators_multi's corpus weights); restore_dir: the run directory every worker resumes
  from (the chief's ``out_dir``; default ``run_dir``)."""
  reduce_lr = resumable.ResumableReduceLROnPlateau(
      monitor="val_loss", factor=config.lr_factor, patience=config.lr_patience, verbose=0)
  stopper = callbacks_lib.EarlyStoppingAfterMinimum(
      monitor="val_loss", patience=config.early_stopping_patience, min_epochs=config.min_epochs,
      restore_best_weights=config.restore_best_weights)
  history = callbacks_lib.EpochHistory()
  # The model brings the network (dropout generators included), the DiffKDE call counters and
  # the metrics' running values; the optimizer its momentum, iterations and learning rate.
  objects = {"model": task_model, "optimizer": task_model.optimizer}
  if config.restore_best_weights:
    objects["best_weights"] = stopper.track_best_weights(task_model)
  checkpoint = resumable.ResumableCheckpoint(
      os.path.join(run_dir.checkpoints, "resume"), objects,
      stateful={"reduce_lr": reduce_lr, "early_stopping": stopper, "history": history,
                **(extra_state or {})},
      save_every_steps=config.checkpoint_every_batches, metrics=task_model.metrics,
      restore_directory=os.path.join(
          train_common.RunDirectory(restore_dir or run_dir.root).checkpoints, "resume"))
  ordered = list(first) + [
      # Before the history and TensorBoard, so that the "lr" it adds to the logs reaches them.
      reduce_lr, stopper, history,
      tf.keras.callbacks.TensorBoard(run_dir.tensorboard, update_freq="epoch", profile_batch=0),
  ] + ([callbacks_lib.DistributionImages(os.path.join(run_dir.tensorboard, "images"),
                                         image_batch, config.out_bins, seed=config.seed)]
       if config.image_utterances else [])
  # The checkpoint last: it saves what the others have updated at the same step or epoch end.
  ordered += list(extra_callbacks) + [checkpoint]
  return _Callbacks(ordered, stopper, history, checkpoint)


def run(config: AnnotatorsConfig, *, data: Optional[AnnotatorData] = None,
        flags_used: Optional[Mapping[str, Any]] = None,
        extra_callbacks: Sequence[tf.keras.callbacks.Callback] = (),
        encoders: Optional[Mapping[str, tf.keras.layers.Layer]] = None) -> Dict[str, Any]:
  """Trains, evaluates and exports one run; writes and returns results.json's content.

  data: prebuilt datasets (tests); None builds them from ``config.data_dir``.
  flags_used: recorded in results.json (the launcher passes every flag's value).
  extra_callbacks: Keras callbacks run after the run's own, before the checkpoint callback (tests
    inject interruptions).
  encoders: in-graph feature extractors by feature name (``tfser.layers.encoders``) for the
    SavedModel's predict_waveform; without them only predict_features is exported.

  Several workers (``config.distribute``, ``tfser.core.distribute``): every worker runs this with
  the same config; only the chief writes into ``out_dir``, the others into a temporary directory
  removed at the end, and every worker resumes from the chief's checkpoints.
  """
  strategy = distribute.strategy(config.distribute)
  with distribute.worker_directory(os.path.abspath(config.out_dir), strategy) as write_dir:
    return _run(config, strategy, write_dir, data=data, flags_used=flags_used,
                extra_callbacks=extra_callbacks, encoders=encoders)


def _run(config: AnnotatorsConfig, strategy: tf.distribute.Strategy, write_dir: str, *,
         data: Optional[AnnotatorData], flags_used: Optional[Mapping[str, Any]],
         extra_callbacks: Sequence[tf.keras.callbacks.Callback],
         encoders: Optional[Mapping[str, tf.keras.layers.Layer]]) -> Dict[str, Any]:
  train_common.configure_runtime(config.seed, deterministic=config.deterministic,
                                 mixed_precision=config.mixed_precision)
  run_dir = train_common.RunDirectory(write_dir).make()
  # issue 11 hook: an out_dir holding another run stops here (tfser.core.run_guard).
  run_guard.check_and_record(
      run_dir.root, run_dir.checkpoints, "annotators",
      run_guard.settings_of(config, RESUME_IGNORES), flag_names=config_flags.flag_names(AnnotatorsConfig),
      data=None if data is not None else run_guard.data_identity(
          config.data_dir, (config.corpus,) + tuple(config.zero_shot_corpora)))
  if data is None:
    data = load_data(config)
  with strategy.scope():
    task_model = build_task_model(config, data)
  image_batch = _first_batch(data.validation, max(1, config.image_utterances),
                             f"{config.corpus} validation")
  for corpus, dataset in data.zero_shot.items():  # fail before training, not after
    _first_batch(dataset, 1, f"zero-shot corpus {corpus}")

  callbacks = _callbacks(config, run_dir, image_batch, task_model, extra_callbacks,
                         restore_dir=os.path.abspath(config.out_dir))
  steps_per_epoch = _count_batches(data.train, f"{config.corpus} train")
  # Known validation steps: fit() would otherwise learn them by reading past the end once per
  # process, and that failed step still advances the DiffKDE counter (it does not wait for the
  # batch), so a resumed run's validations would draw other upsamplings.
  validation_steps = _count_batches(data.validation, f"{config.corpus} validation")

  # Resume: restore the checkpoint, skip the endless stream (epoch k is its k-th reshuffled pass)
  # to the restored position and start the epoch at the restored step. A finished run (stopped
  # early, or all epochs done) fits for zero epochs: that applies the restored state and early
  # stopping's best weights, and re-evaluates.
  epoch, step, train_seconds = fit_and_keep_final(
      task_model, data.train.repeat(), callbacks, run_dir, steps_per_epoch=steps_per_epoch,
      max_epochs=config.max_epochs, validation_data=data.validation,
      validation_steps=validation_steps, verbose=config.verbose)

  stopper, history = callbacks.stopper, callbacks.history.history
  results = {
      "task": "annotators", "seed": config.seed, "gt_seed": config.effective_gt_seed,
      "config": dataclasses.asdict(config), "flags": dict(flags_used or {}),
      "num_annotators": data.num_annotators, "input_dim": data.input_dim,
      "feature_names": list(data.feature_names),
      # The test split and each zero-shot corpus's test set, by name (tfser.data.test_sets).
      "test_sets": dict(data.test_sets),
      # The settings where tfser's defaults follow the paper, as this run used them (issue 15).
      "paper_settings": paper_settings(config),
      # Epochs of the whole run, a resumed one included; best_epoch is 0-based, the epoch whose
      # weights are evaluated (with restore_best_weights). train_seconds: this process's.
      "epochs": len(history.get("loss", [])), "steps_per_epoch": steps_per_epoch,
      "best_epoch": stopper.best_epoch, "early_stopped_epoch": stopper.stopped_epoch,
      "resumed_from": {"epoch": epoch, "step_in_epoch": step} if (epoch or step) else None,
      "train_seconds": train_seconds, "history": history,
      # This process in the cluster, and a digest of the trained network (equal on every worker).
      "worker": distribute.worker_info(strategy),
      "weights_sha256": distribute.weights_digest(task_model.network.weights),
  }
  results.update(evaluate(task_model, config, data))
  if config.export:
    from tfser.tasks.annotators import export  # pylint: disable=g-import-not-at-top
    signatures = export.export_annotator_model(
        task_model, run_dir.saved_model, feature_mean=data.feature_mean,
        feature_std=data.feature_std, feature_names=data.feature_names, encoders=encoders,
        seed=config.seed, annotators=data.annotators)
    results["saved_model"] = {"path": run_dir.saved_model, "signatures": signatures}
    if "predict_waveform" not in signatures:
      results["saved_model"]["predict_waveform"] = (
          "not exported: needs features from {wav2vec2, bert} and their model directories "
          f"(--wav2vec2_model_dir / --bert_model_dir); features: {list(data.feature_names)}")
  train_common.write_json_atomic(run_dir.results, results)
  return results
