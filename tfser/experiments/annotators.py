"""The annotators paper end to end: data, model, objective, callbacks, fit, evaluate, export.

Tavernor, El-Tawil and Mower Provost, "The Whole Is Bigger Than the Sum of Its Parts: Modeling
Individual Annotators to Capture Emotional Variability". One run trains one model (baseline, MT or
one-hot) with one objective (baseline, Task 1 or Task 1+2) on one corpus for one seed:

    python -m tfser.launch --task=annotators --model=mt --objective=task1+2 --corpus=IMP --seed=0

Library entry point: :func:`run` with an :class:`AnnotatorsConfig` (the launcher
``tfser/launchers/annotators.py`` builds it from flags). Outputs under ``out_dir``
(:class:`tfser.train_common.RunDirectory`): ``tensorboard/`` (train/validation scalars per task
and metric, the learning rate, images of predicted vs ground-truth distributions of a fixed
validation batch), ``checkpoints/`` (``resume/``: the latest two resumable checkpoints;
``final``: the network after training, with the best weights restored), ``results.json`` and
``saved_model/``.

Feature standardisation (a tfser addition, on by default): features are z-normalised with the
training corpus's training-split mean/std from its manifest (the same constants for zero-shot
corpora and inside the SavedModel). The paper feeds the raw wav2vec2/BERT embeddings, which are
already of unit scale; the demo's IS10 features span several orders of magnitude and diverge
under SGD without it. ``standardize_features=False`` gives the paper's raw input.

Resuming: a run killed at any point and started again with the same command (same ``out_dir``)
ends with the same results and weights as an uninterrupted run (given op determinism,
``deterministic``). The ``ResumableCheckpoint`` of ``tfser.callbacks`` saves in
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

from tfser import callbacks as tfser_callbacks
from tfser import train_common
from tfser.core import run_guard
from tfser.data import pipeline
from tfser.data import schema
from tfser.experiments import annotators_callbacks as callbacks_lib
from tfser.experiments.annotators_eval import evaluate_dataset
from tfser.experiments.annotators_eval import make_predict_fn
from tfser.experiments.annotators_step import OBJECTIVES
from tfser.experiments.annotators_step import AnnotatorTaskModel
from tfser.layers.diffkde import DiffKDE
from tfser.models.annotator_builder import build_annotator_model
from tfser.models.annotator_config import MODELS
from tfser.models.annotator_config import AnnotatorModelConfig

_LOG = logging.getLogger(__name__)

TRAIN_DTYPES = ("auto", "float16", "float32", "float64")
# issue 11 (tfser.core.run_guard): settings that cannot change a run's result (a run directory
# resumes whatever they are; the data's identity is compared by manifest, not by path), and the
# flags of config fields named otherwise, for the mismatch message.
RESUME_IGNORES = ("out_dir", "data_dir", "export", "verbose", "checkpoint_every_batches")
FLAG_NAMES = {"feature_names": "--features", "zero_shot_corpora": "--zero_shot"}


@dataclasses.dataclass(frozen=True)
class AnnotatorsConfig:
  """One run of the annotators task. Defaults are the paper's (section 3.3) unless noted.

  model, objective: see ``tfser.models`` and ``tfser.experiments.annotators_step``; the baseline
    model always trains the "baseline" objective.
  corpus: the training corpus (its directory name under data_dir, e.g. IMP).
  zero_shot_corpora: corpora tested whole (split "all") with every head (Table 2).
  feature_names: stored features, concatenated in this order (wav2vec2 768 + BERT 512).
  gt_seed: which of the stored ground-truth distributions (seeds 0-4) trains and tests; None:
    ``seed % 5`` (the paper's five seeds each use their own ground truth).
  diffkde_train_dtype: DiffKDE's compute dtype in training: "auto" = float16 under mixed
    precision (the paper), else float32.
  hard_kde_grid_size: grid of the Task 1 ablation's hard-histogram KDE (the ground truth's 512;
    objective task1 only); 0 skips the ablation metrics.
  checkpoint_every_batches: 0 = checkpoint at the end of every epoch; N = every N batches too.
  """
  model: str = "mt"
  objective: str = "task1+2"
  corpus: str = "IMP"
  data_dir: str = ""
  out_dir: str = "runs/latest"
  zero_shot_corpora: Tuple[str, ...] = ()
  feature_names: Tuple[str, ...] = ("wav2vec2", "bert")
  standardize_features: bool = True
  seed: int = 0
  gt_seed: Optional[int] = None
  min_ratings: int = 2
  batch_size: int = 32
  # Model (section 3.2).
  hidden_units: int = 256
  shared_layers: int = 1
  branch_layers: int = 2
  dropout: float = 0.2
  out_bins: int = 4
  # Optimisation (section 3.3).
  learning_rate: float = 1e-3
  momentum: float = 0.9
  lr_factor: float = 0.1
  lr_patience: int = 5
  early_stopping_patience: int = 10
  min_epochs: int = 30
  max_epochs: int = 500
  restore_best_weights: bool = True
  # DiffKDE (section 3.3, Task 2).
  diffkde_grid_size: int = 64
  diffkde_sigma: float = 8.0
  diffkde_samples: int = 200
  diffkde_t_gradient: str = "implicit"
  diffkde_train_dtype: str = "auto"
  # Evaluation (section 3.4).
  hard_kde_grid_size: int = 512
  per_annotator_min_ratings: int = 5
  # Runtime.
  jit: bool = False
  mixed_precision: bool = False
  deterministic: bool = True
  checkpoint_every_batches: int = 0
  image_utterances: int = 8  # 0: no TensorBoard images
  export: bool = True
  verbose: int = 2

  def __post_init__(self):
    if self.model not in MODELS:
      raise ValueError(f"--model: unknown model {self.model!r}; choose from {', '.join(MODELS)}")
    if self.objective not in OBJECTIVES:
      raise ValueError(f"--objective: unknown objective {self.objective!r}; choose from "
                       f"{', '.join(OBJECTIVES)}")
    if (self.model == "baseline") != (self.objective == "baseline"):
      raise ValueError(f"--objective={self.objective} does not fit --model={self.model}: the "
                       "baseline trains the 'baseline' objective, MT and one-hot 'task1' or "
                       "'task1+2'")
    if self.diffkde_train_dtype not in TRAIN_DTYPES:
      raise ValueError(f"--diffkde_train_dtype: {self.diffkde_train_dtype!r} is not one of "
                       f"{', '.join(TRAIN_DTYPES)}")
    if self.out_bins not in schema.GT_BINS:
      raise ValueError(f"--out_bins: {self.out_bins} has no stored ground truth; choose from "
                       f"{schema.GT_BINS}")
    if self.max_epochs < 1 or self.batch_size < 1:
      raise ValueError(f"--max_epochs ({self.max_epochs}) and --batch_size ({self.batch_size}) "
                       "must be >= 1")
    if not self.data_dir:
      raise ValueError("AnnotatorsConfig.data_dir is empty (the launcher prepares the demo when "
                       "--data_dir is unset)")

  @property
  def effective_gt_seed(self) -> int:
    return self.seed % schema.GT_SEEDS if self.gt_seed is None else self.gt_seed

  @property
  def effective_train_dtype(self) -> str:
    if self.diffkde_train_dtype == "auto":
      return "float16" if self.mixed_precision else "float32"
    return self.diffkde_train_dtype


@dataclasses.dataclass
class AnnotatorData:
  """What a run trains and tests on (datasets yield ``pipeline.annotator_dataset`` batches)."""
  train: tf.data.Dataset
  validation: tf.data.Dataset
  test: tf.data.Dataset
  num_annotators: int
  input_dim: int
  feature_names: Tuple[str, ...]
  zero_shot: Mapping[str, tf.data.Dataset] = dataclasses.field(default_factory=dict)
  feature_mean: Optional[np.ndarray] = None  # [input_dim]; applied already, kept for export
  feature_std: Optional[np.ndarray] = None
  annotators: Tuple[str, ...] = ()  # the corpus's annotator ids, by head index


def _standardizer(mean: np.ndarray, std: np.ndarray):
  mean = tf.constant(mean, tf.float32)
  std = tf.constant(std, tf.float32)

  def apply(batch):
    return dict(batch, features=(batch["features"] - mean) / std)
  return apply


def load_data(config: AnnotatorsConfig) -> AnnotatorData:
  """Builds the datasets of ``config`` from ``config.data_dir`` (see ``tfser.data.pipeline``).

  Raises ValueError naming the corpus and data directory for a corpus without individual
  ratings (no annotators in its manifest) or an empty split.
  """
  manifest = pipeline.load_manifest(config.data_dir, config.corpus)
  annotators = tuple(manifest.get("annotators") or ())
  if config.model != "baseline" and not annotators:
    raise ValueError(f"--corpus={config.corpus}: {config.data_dir}/{config.corpus}/manifest.json "
                     "lists no annotators (a corpus without individual ratings cannot train "
                     "per-annotator models)")
  for split in ("train", "validation", "test"):
    if pipeline.split_size(manifest, split) == 0:
      raise ValueError(f"corpus {config.corpus} in {config.data_dir} has an empty {split!r} "
                       f"split (split_counts in its manifest.json: "
                       f"{manifest.get('split_counts')})")
  dims = pipeline.feature_dims(manifest, list(config.feature_names))
  input_dim = sum(dims.values())
  mean = std = None
  if config.standardize_features:
    means, stds = [], []
    for name in config.feature_names:
      m, s = pipeline.feature_statistics(config.data_dir, [config.corpus], name)
      means.append(m)
      stds.append(s)
    mean = np.concatenate(means).astype(np.float32)
    std = np.concatenate(stds).astype(np.float32)
    std = np.where(std > 1e-8, std, 1.0).astype(np.float32)


  def dataset(corpus, split, train=False):
    ds = pipeline.annotator_dataset(
        config.data_dir, corpus, split, feature_names=config.feature_names,
        batch_size=config.batch_size, gt_bins=config.out_bins, gt_seed=config.effective_gt_seed,
        min_ratings=config.min_ratings, shuffle=train, seed=config.seed)
    if mean is not None:
      ds = ds.map(_standardizer(mean, std), num_parallel_calls=tf.data.AUTOTUNE,
                  deterministic=True)
    return ds

  zero_shot = {}
  for corpus in config.zero_shot_corpora:
    other = pipeline.load_manifest(config.data_dir, corpus)
    other_dims = pipeline.feature_dims(other, list(config.feature_names))
    if other_dims != dims:
      raise ValueError(f"zero-shot corpus {corpus}: features {other_dims} differ from the "
                       f"training corpus {config.corpus}'s {dims}")
    zero_shot[corpus] = dataset(corpus, "all")
  return AnnotatorData(
      train=dataset(config.corpus, "train", train=True),
      validation=dataset(config.corpus, "validation"), test=dataset(config.corpus, "test"),
      num_annotators=len(annotators), input_dim=input_dim,
      feature_names=tuple(config.feature_names), zero_shot=zero_shot, feature_mean=mean,
      feature_std=std, annotators=annotators)


def build_task_model(config: AnnotatorsConfig, data: AnnotatorData) -> AnnotatorTaskModel:
  """The network of ``config`` wrapped with its objective, compiled with the paper's SGD."""
  network = build_annotator_model(AnnotatorModelConfig(
      model=config.model, input_dim=data.input_dim, num_annotators=data.num_annotators,
      hidden_units=config.hidden_units, shared_layers=config.shared_layers,
      branch_layers=config.branch_layers, dropout=config.dropout, out_bins=config.out_bins,
      seed=config.seed))
  train_dtype = config.effective_train_dtype
  diffkde_args = dict(grid_size=config.diffkde_grid_size, out_bins=config.out_bins,
                      sigma=config.diffkde_sigma, samples=config.diffkde_samples,
                      t_gradient=config.diffkde_t_gradient)
  train_diffkde = DiffKDE(dtype="mixed_float16" if train_dtype == "float16" else train_dtype,
                          seed=config.seed, name="diffkde_train", **diffkde_args)
  eval_diffkde = DiffKDE(dtype="float64", seed=config.seed + 7919, name="diffkde_eval",
                         **diffkde_args)
  task_model = AnnotatorTaskModel(network, config.objective, out_bins=config.out_bins,
                                  train_diffkde=train_diffkde, eval_diffkde=eval_diffkde,
                                  jit=config.jit, name="annotators")
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
  checkpoint: tfser_callbacks.ResumableCheckpoint


def _callbacks(config: AnnotatorsConfig, run_dir: train_common.RunDirectory, image_batch,
               task_model: AnnotatorTaskModel,
               extra_callbacks: Sequence[tf.keras.callbacks.Callback]) -> _Callbacks:
  reduce_lr = tfser_callbacks.ResumableReduceLROnPlateau(
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
  checkpoint = tfser_callbacks.ResumableCheckpoint(
      os.path.join(run_dir.checkpoints, "resume"), objects,
      stateful={"reduce_lr": reduce_lr, "early_stopping": stopper, "history": history},
      save_every_steps=config.checkpoint_every_batches, metrics=task_model.metrics)
  ordered = [
      # Before the history and TensorBoard, so that the "lr" it adds to the logs reaches them.
      reduce_lr, stopper, history,
      tf.keras.callbacks.TensorBoard(run_dir.tensorboard, update_freq="epoch", profile_batch=0),
  ] + ([callbacks_lib.DistributionImages(os.path.join(run_dir.tensorboard, "images"),
                                         image_batch, config.out_bins, seed=config.seed)]
       if config.image_utterances else [])
  # The checkpoint last: it saves what the others have updated at the same step or epoch end.
  ordered += list(extra_callbacks) + [checkpoint]
  return _Callbacks(ordered, stopper, history, checkpoint)


def evaluate(task_model: AnnotatorTaskModel, config: AnnotatorsConfig,
             data: AnnotatorData) -> Dict[str, Any]:
  """Validation, test and zero-shot metrics (``tfser.experiments.annotators_eval``)."""
  hard_kde = None
  # Section 4.2's ablation concerns Task 1 alone (no distribution seen in training).
  if config.objective == "task1" and config.hard_kde_grid_size:
    hard_kde = DiffKDE(grid_size=config.hard_kde_grid_size, out_bins=config.out_bins,
                       samples=config.diffkde_samples, histogram="hard", dtype="float64",
                       seed=config.seed, name="kde_hard")
  kwargs = dict(seed=config.seed, per_annotator_min_ratings=config.per_annotator_min_ratings)
  # One traced prediction function per kind of evaluation, shared by the datasets.
  within = make_predict_fn(task_model, data.validation.element_spec, hard_kde=hard_kde)
  results = {}
  for split, dataset in (("validation", data.validation), ("test", data.test)):
    results[split] = evaluate_dataset(task_model, dataset, hard_kde=hard_kde, predict_fn=within,
                                      description=f"{config.corpus} {split}", **kwargs)
  results["zero_shot"] = {}
  if data.zero_shot:
    first = next(iter(data.zero_shot.values()))
    every_head = make_predict_fn(task_model, first.element_spec, all_heads=True)
    for corpus, dataset in data.zero_shot.items():
      results["zero_shot"][corpus] = evaluate_dataset(
          task_model, dataset, all_heads=True, predict_fn=every_head,
          description=f"zero-shot corpus {corpus}", **kwargs)
  return results


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
  """
  train_common.configure_runtime(config.seed, deterministic=config.deterministic,
                                 mixed_precision=config.mixed_precision)
  run_dir = train_common.RunDirectory(config.out_dir).make()
  # issue 11 hook: an out_dir holding another run stops here (tfser.core.run_guard).
  run_guard.check_and_record(
      run_dir.root, run_dir.checkpoints, "annotators",
      run_guard.settings_of(config, RESUME_IGNORES), flag_names=FLAG_NAMES,
      data=None if data is not None else run_guard.data_identity(
          config.data_dir, (config.corpus,) + tuple(config.zero_shot_corpora)))
  if data is None:
    data = load_data(config)
  task_model = build_task_model(config, data)
  image_batch = _first_batch(data.validation, max(1, config.image_utterances),
                             f"{config.corpus} validation")
  for corpus, dataset in data.zero_shot.items():  # fail before training, not after
    _first_batch(dataset, 1, f"zero-shot corpus {corpus}")

  callbacks = _callbacks(config, run_dir, image_batch, task_model, extra_callbacks)
  steps_per_epoch = _count_batches(data.train, f"{config.corpus} train")
  # Known validation steps: fit() would otherwise learn them by reading past the end once per
  # process, and that failed step still advances the DiffKDE counter (it does not wait for the
  # batch), so a resumed run's validations would draw other upsamplings.
  validation_steps = _count_batches(data.validation, f"{config.corpus} validation")

  # Resume: restore the checkpoint, skip the endless stream (epoch k is its k-th reshuffled pass)
  # to the restored position and start the epoch at the restored step.
  epoch, step = callbacks.checkpoint.restore(steps_per_epoch)  # issue 11 hook: not an epoch end
  # A finished run (stopped early, or all epochs done) fits for zero epochs: that applies the
  # restored state and early stopping's best weights, and re-evaluates.
  finished = epoch >= config.max_epochs or callbacks.stopper.stopped_epoch >= 0
  start = time.time()
  task_model.resume_step_in_epoch = 0 if finished else step
  task_model.fit(
      data.train.repeat().skip(epoch * steps_per_epoch + step), validation_data=data.validation,
      epochs=epoch if finished else config.max_epochs, initial_epoch=epoch,
      steps_per_epoch=steps_per_epoch, validation_steps=validation_steps,
      callbacks=callbacks.ordered, verbose=config.verbose)
  task_model.resume_step_in_epoch = 0
  train_seconds = time.time() - start
  tf.train.Checkpoint(network=task_model.network).write(
      os.path.join(run_dir.checkpoints, "final"))

  stopper, history = callbacks.stopper, callbacks.history.history
  results = {
      "task": "annotators", "seed": config.seed, "gt_seed": config.effective_gt_seed,
      "config": dataclasses.asdict(config), "flags": dict(flags_used or {}),
      "num_annotators": data.num_annotators, "input_dim": data.input_dim,
      "feature_names": list(data.feature_names),
      # Epochs of the whole run, a resumed one included; best_epoch is 0-based, the epoch whose
      # weights are evaluated (with restore_best_weights). train_seconds: this process's.
      "epochs": len(history.get("loss", [])), "steps_per_epoch": steps_per_epoch,
      "best_epoch": stopper.best_epoch, "early_stopped_epoch": stopper.stopped_epoch,
      "resumed_from": {"epoch": epoch, "step_in_epoch": step} if (epoch or step) else None,
      "train_seconds": train_seconds, "history": history,
  }
  results.update(evaluate(task_model, config, data))
  if config.export:
    from tfser import export  # pylint: disable=g-import-not-at-top
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
