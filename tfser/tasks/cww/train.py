"""The corpus-wise-weights trainer: build data, model, loss, callbacks; fit; evaluate; export.

``train(config)`` runs one leave-one-corpus-out fold (or one fold of the within-corpus speaker
cross-validation, ``tfser.tasks.cww.folds``: the holdout's train / validation / test
speakers of ``config.fold``, across all its splits; POD: its fixed splits) and returns the dict it
also writes to ``<out_dir>/results.json``. Read top to bottom it is the paper's recipe:

1. data: per training corpus a shuffled, repeated stream of minibatches of 32, zipped (Algorithm
   1); an epoch is as many steps as the smallest corpus has minibatches. Unlabelled stream for
   PEL (Eq. 4) or the reconstruction branch.
2. model: F with z-normalisation from the pooled training statistics; Adam 2e-4.
3. callbacks: validation UA per corpus, Eq. 3 corpus weights, best checkpoint, early stopping
   (patience 5) and LR x0.1 (patience 2) on the mean validation UA, TensorBoard, resumable
   checkpoints.
4. evaluation of the best-validation model on the holdout; export of a SavedModel.

A restarted run with the same out_dir resumes from its last checkpoint to the same result.
"""

import dataclasses
import logging
import os
from typing import Dict, Optional, Sequence

import numpy as np

import tfser  # noqa: F401  (Keras flavour before TensorFlow)
import tensorflow as tf

from tfser.core import distribute
from tfser.core import corpus_weights as corpus_weights_lib
from tfser.core import flags as config_flags
from tfser.core import resumable
from tfser.core import run_guard
from tfser.tasks.cww import equations as cww_equations
from tfser.tasks.cww import evaluate as cww_evaluate
from tfser.core import run as train_common
from tfser.data import schema
from tfser.tasks.cww import data as cww_data
from tfser.tasks.cww import folds as cww_folds
from tfser.tasks.cww.config import CwwConfig
from tfser.tasks.cww import model as cww_classifier

MERGED = corpus_weights_lib.MERGED
# Settings that cannot change a run's result: a run directory resumes whatever they are (the
# data's identity is compared by manifest, not by path; tfser.core.run_guard).
RESUME_IGNORES = ("out_dir", "data_dir", "demo_dir", "export", "checkpoint_every_steps")


class DataError(ValueError):
  """The data directory cannot serve this run (missing corpus, split, class or feature width)."""


def resolve_source(config: CwwConfig):
  """The data source of ``config.data_dir`` (the launchers prepare the demo and pass its source)."""
  if not config.data_dir:
    raise DataError("no data directory: set data_dir, or pass a source (the launcher "
                    "tfser.launch prepares the embedded demo when --data_dir is unset)")
  return cww_data.PipelineSource(config.data_dir, config.feature_name)


def strategy(name: str) -> tf.distribute.Strategy:
  """The tf.distribute strategy of ``--distribute`` (``tfser.core.distribute.strategy``)."""
  return distribute.strategy(name)


def _check_corpora(config: CwwConfig, source, uses_unlabelled: bool) -> None:
  available = list(source.list_corpora())
  needed = list(dict.fromkeys(config.training_corpora + (config.holdout,)))
  if uses_unlabelled:
    needed.append(config.unlabelled_corpus)
  missing = [c for c in needed if c not in available]
  if missing:
    raise DataError(f"corpora {', '.join(missing)} not found in {source!r}; it holds: "
                    f"{', '.join(available) or 'nothing'}")


def _feature_dim(config: CwwConfig, source, corpora: Sequence[str]) -> int:
  dims = {c: source.feature_dim(c) for c in corpora}
  expected = config.feature_dim or next(iter(dims.values()))
  wrong = {c: d for c, d in dims.items() if d != expected}
  if wrong:
    raise DataError(f"{config.feature_name} features have the wrong width in {source!r}: "
                    f"{', '.join(f'{c}: {d}' for c, d in wrong.items())}; expected {expected} "
                    "(--feature_dim)")
  return expected


def _uses_unlabelled(config: CwwConfig) -> bool:
  return config.pel != "none" or config.reconstruction


def within_fold(config: CwwConfig, source) -> Optional[cww_folds.Fold]:
  """The within-corpus fold of ``config`` (None out of corpus); DataError if the data lack it."""
  if config.mode != "within_corpus":
    return None
  try:
    return cww_folds.make_fold(config.holdout, source.speakers(config.holdout), config.fold)
  except ValueError as e:
    raise DataError(f"{e} ({source!r})") from None


def labelled(source, fold: Optional[cww_folds.Fold], corpus: str, split: str,
             **kwargs) -> tf.data.Dataset:
  """``source.labelled`` of a CWW split, or for the fold's corpus the speakers of that part.

  split: "train", "validation", "test" or "all"; kwargs: batching as ``source.labelled``.
  """
  if fold is not None and fold.by_speaker and corpus == fold.corpus and split != "all":
    return source.labelled(corpus, "all", speakers=fold.speakers(split), **kwargs)
  return source.labelled(corpus, split, **kwargs)


def build_training_stream(config: CwwConfig, source, counts: Dict[str, np.ndarray],
                          fold: Optional[cww_folds.Fold] = None):
  """(dataset, stream corpus names, steps per epoch) for Algorithm 1's loop.

  Each corpus stream is shuffled with its own seed, repeated and batched with drop_remainder
  (static shapes for XLA); the zip yields one minibatch per corpus per step. The stream is
  endless and deterministic for a seed, so resuming skips it to the restored step. fold: the
  within-corpus fold (its training speakers), or None.
  """
  b = config.batch_size
  corpora = config.training_corpora
  small = {c: int(n.sum()) for c, n in counts.items() if n.sum() < b}
  if small:
    raise DataError(f"training corpora with fewer utterances than one minibatch of {b}: {small}")
  sizes = {c: int(counts[c].sum()) for c in corpora}
  if config.merge_corpora:
    merged, steps = corpus_weights_lib.merged_corpus_stream(
        lambda c: labelled(source, fold, c, "train",
                           batch_size=config.eval_batch_size).unbatch(),
        sizes, b, seed=config.seed, max_steps_per_epoch=config.max_steps_per_epoch)
    labelled_stream = {MERGED: merged}
  else:
    labelled_stream, steps = corpus_weights_lib.zipped_corpus_stream(
        lambda c, d: labelled(source, fold, c, "train", batch_size=b, shuffle=True,
                              seed=config.seed * 100 + d, repeat=True, drop_remainder=True),
        sizes, b, max_steps_per_epoch=config.max_steps_per_epoch)
  element = {"labelled": labelled_stream}
  if _uses_unlabelled(config):
    element["unlabelled"] = source.unlabelled(config.unlabelled_corpus,
                                              batch_size=config.unlabelled_batch_size,
                                              seed=config.seed)
  dataset = tf.data.Dataset.zip(element).prefetch(tf.data.AUTOTUNE)
  return dataset, ((MERGED,) if config.merge_corpora else tuple(corpora)), steps


def build_model(config: CwwConfig, stream_corpora, feature_dim: int, mean, std, prior):
  """F and its training model, compiled with Adam (LossScaleOptimizer under mixed precision)."""
  network = cww_classifier.build_classifier(
      feature_dim, hidden_units=config.hidden_units, num_classes=config.num_classes,
      dropout=config.dropout,
      reconstruction_units=(tuple(config.reconstruction_units[:-1]) + (feature_dim,)
                            if config.reconstruction else None),
      reconstruction_layer=config.reconstruction_layer, feature_mean=mean, feature_std=std,
      seed=config.seed)
  model = cww_classifier.CwwModel(
      network, stream_corpora, num_classes=config.num_classes, target=config.target,
      smoothing=config.smoothing, prior=prior, focal_gamma=config.focal_gamma,
      confidence_penalty=config.confidence_penalty, pel=config.pel, lambda_l=config.lambda_l,
      reconstruction_weight=config.reconstruction_weight)
  optimizer = tf.keras.optimizers.Adam(config.learning_rate)
  model.compile(optimizer=optimizer, jit_compile=config.jit)
  # Slots now, so a checkpoint restores into existing variables.
  model.optimizer.build(network.trainable_variables)
  return network, model


def train(config: CwwConfig, source=None, extra_callbacks: Sequence = (),
          verbose: int = 0) -> Dict:
  """Runs one CWW experiment and returns (and writes) its results.

  source: a tfser.tasks.cww.data source (default: the corpora in ``config.data_dir``).
  extra_callbacks: Keras callbacks run before the checkpoint callback (tests inject failures).
  The Keras precision policy is restored afterwards, so in-process callers are unaffected.
  Several workers (``--distribute=multi_worker``): only the chief writes into ``out_dir``; the
  others write into a temporary directory, removed at the end (``tfser.core.distribute``).
  """
  policy = tf.keras.mixed_precision.global_policy()
  config.validate()
  out_dir = os.path.abspath(config.out_dir)
  try:
    with distribute.worker_directory(out_dir, strategy(config.distribute)) as write_dir:
      return _train(config, source, extra_callbacks, verbose, write_dir)
  finally:
    tf.keras.mixed_precision.set_global_policy(policy)


def _train(config: CwwConfig, source, extra_callbacks: Sequence, verbose: int,
           write_dir: str) -> Dict:
  train_common.configure_runtime(config.seed, deterministic=config.deterministic,
                                 mixed_precision=config.mixed_precision)
  run = train_common.RunDirectory(write_dir).make()
  chief_run = train_common.RunDirectory(os.path.abspath(config.out_dir))  # where workers resume
  source = source if source is not None else resolve_source(config)
  uses_unlabelled = _uses_unlabelled(config)
  _check_corpora(config, source, uses_unlabelled)
  corpora = config.training_corpora
  all_used = list(dict.fromkeys(corpora + (config.holdout,))) + (
      [config.unlabelled_corpus] if uses_unlabelled else [])
  feature_dim = _feature_dim(config, source, all_used)
  # issue 11 hook: an out_dir holding another run stops here (tfser.core.run_guard).
  run_guard.check_and_record(
      run.root, run.checkpoints, "cww",
      run_guard.settings_of(config, RESUME_IGNORES),
      data=(run_guard.data_identity(source.data_dir, all_used)
            if isinstance(source, cww_data.PipelineSource) else None),
      flag_names=config_flags.flag_names(CwwConfig))

  # 1. Data. A within-corpus speaker fold takes its parts from every split of the holdout.
  fold = within_fold(config, source)
  by_speaker = fold is not None and fold.by_speaker
  eval_bs = config.eval_batch_size
  if not by_speaker:
    empty_train = [c for c in corpora if not source.split_size(c, "train")]
    if empty_train:
      raise DataError(f"training corpora without a CWW 'train' split in {source!r}: "
                      f"{', '.join(empty_train)}")
  train_eval = {c: labelled(source, fold, c, "train", batch_size=eval_bs) for c in corpora}
  # A corpus without a validation split is left out of the stopping criterion (documented).
  validation = {c: labelled(source, fold, c, "validation", batch_size=eval_bs) for c in corpora
                if by_speaker or source.split_size(c, "validation")}
  if by_speaker and not cww_data.label_counts(validation[fold.corpus], config.num_classes).sum():
    raise DataError(f"fold {fold.index} of {fold.corpus}: no labelled utterances of the "
                    f"validation speakers {', '.join(fold.validation)} ({source!r})")
  if not validation:
    raise DataError(f"no validation utterances in {', '.join(corpora)} ({source!r}): the "
                    "stopping criterion needs them")
  scans = {c: cww_data.scan_labelled(train_eval[c], config.num_classes) for c in corpora}
  counts = {c: scan[0] for c, scan in scans.items()}
  missing_classes = {c: [schema.CLASS_NAMES[k] for k in np.flatnonzero(n == 0)]
                     for c, n in counts.items() if (n == 0).any()}
  if missing_classes:
    logging.warning("training corpora lacking classes (UA averages the classes present): %s",
                    missing_classes)
  pooled = sum(counts.values())
  prior = (pooled / pooled.sum()).tolist()
  # z-normalisation statistics of the CWW training splits, pooled (paper 3.3). Computed here
  # rather than taken from the manifests, whose statistics cover the annotator-task split.
  mean, std = cww_data.pooled_statistics(list(scans.values()))
  dataset, stream_corpora, steps_per_epoch = build_training_stream(config, source, counts, fold)

  # 2. Model.
  with strategy(config.distribute).scope():
    network, model = build_model(config, stream_corpora, feature_dim, mean, std, prior)
  predict_fn = tf.function(lambda x: model(x, training=False), reduce_retracing=True)

  # 3. Callbacks (order matters: see tfser.tasks.cww.evaluate).
  validation_cb = cww_evaluate.CorpusValidation(predict_fn, validation, config.num_classes)
  weights_cb = cww_equations.CorpusWeightsCallback(
      model.corpus_weights, predict_fn, train_eval, stream_corpora, lambda_w=config.lambda_w,
      enabled=config.cww and not config.merge_corpora, num_classes=config.num_classes)
  best_cb = resumable.BestCheckpoint(tf.train.Checkpoint(network=network), run.checkpoints,
                                     restore_directory=chief_run.checkpoints)
  stop_cb = resumable.ResumableEarlyStopping(monitor="val_ua_mean", mode="max",
                                                 patience=config.patience)
  lr_cb = resumable.ResumableReduceLROnPlateau(monitor="val_ua_mean", mode="max",
                                                   factor=config.lr_factor,
                                                   patience=config.lr_patience, verbose=0)
  tensorboard_cb = tf.keras.callbacks.TensorBoard(run.tensorboard, profile_batch=0)
  checkpoint_cb = resumable.ResumableCheckpoint(
      run.checkpoints, {"model": model, "optimizer": model.optimizer},
      stateful={"early_stopping": stop_cb, "reduce_lr": lr_cb, "best": best_cb,
                "corpus_weights": weights_cb},
      save_every_steps=config.checkpoint_every_steps, restore_directory=chief_run.checkpoints)
  callbacks = [validation_cb, weights_cb, best_cb, stop_cb, lr_cb, tensorboard_cb,
               *extra_callbacks, checkpoint_cb]

  # Resume: restore, skip the stream to the restored position, start the epoch at its step.
  # A restored stop (set_state applies it at once) or the last epoch done: nothing to fit.
  epoch, step, _ = resumable.fit(
      model, dataset, checkpoint=checkpoint_cb, steps_per_epoch=steps_per_epoch,
      max_epochs=config.max_epochs, stopped=lambda: stop_cb.stopped_epoch > 0,
      callbacks=callbacks, verbose=verbose)
  final_weights = model.corpus_weights.numpy().tolist()
  history = list(weights_cb.history)
  final_train_ua = {k[len("train_ua_"):]: v for k, v in (history[-1] if history else {}).items()
                    if k.startswith("train_ua_")}

  # 4. Evaluate the best-validation model; export it.
  if best_cb.path:
    tf.train.Checkpoint(network=network).read(best_cb.path).expect_partial()
  # Within a corpus: the fold's test part (its test speakers, or POD's test split).
  holdout_split = "test" if fold is not None else config.resolved_holdout_split
  if (not by_speaker and holdout_split != "all"
      and not source.split_size(config.holdout, holdout_split)):
    raise DataError(f"holdout {config.holdout} has no {holdout_split!r} split ({source!r})")
  holdout_ds = labelled(source, fold, config.holdout, holdout_split, batch_size=eval_bs)
  labels, predictions = cww_evaluate.predict_labels(predict_fn, holdout_ds)
  if len(labels) == 0:
    raise DataError(f"holdout {config.holdout} has no utterances in split {holdout_split!r} "
                    f"({source!r})")
  holdout_ua = cww_evaluate.unweighted_accuracy(labels, predictions, config.num_classes)
  train_ua = cww_evaluate.corpus_uas(predict_fn, train_eval, config.num_classes)
  val_ua = cww_evaluate.corpus_uas(predict_fn, validation, config.num_classes)

  results = {
      "task": "cww", "method": config.method, "mode": config.mode, "seed": config.seed,
      "holdout": config.holdout, "holdout_split": holdout_split, "holdout_ua": holdout_ua,
      # What the holdout was tested on, by name (tfser.data.test_sets; a fold: its test part).
      "holdout_test_set": (config.holdout_test_set.as_json() if fold is None else
                           {"corpus": config.holdout, "split": holdout_split,
                            "field": "cww_split", "name": f"{config.holdout} fold {fold.index} "
                            "test part" if by_speaker else f"{config.holdout} test split"}),
      "holdout_utterances": int(len(labels)),
      # Within-corpus runs: the fold (index, count, rule) and the speakers of each part.
      "fold": fold.as_dict() if fold is not None else None,
      "holdout_class_counts": np.bincount(labels, minlength=config.num_classes).tolist(),
      "training_corpora": list(corpora),
      "train_ua": train_ua, "val_ua": val_ua,
      "val_ua_mean": float(np.nanmean(list(val_ua.values()))),
      "final_train_ua": final_train_ua,
      "corpus_weights": dict(zip(stream_corpora, final_weights)),
      "corpus_weights_history": history,
      "best_epoch": best_cb.best_epoch, "epochs_run": len(history),
      "steps_per_epoch": steps_per_epoch,
      "stopped_early": bool(stop_cb.stopped_epoch),
      "resumed_from": {"epoch": epoch, "step_in_epoch": step} if (epoch or step) else None,
      "class_counts": {c: n.tolist() for c, n in counts.items()},
      "missing_classes": missing_classes,
      "data": repr(source), "feature_dim": feature_dim,
      # This process in the cluster, and a digest of the trained network (equal on every worker).
      "worker": distribute.worker_info(strategy(config.distribute)),
      "weights_sha256": distribute.weights_digest(network.weights),
      "flags": dataclasses.asdict(config),
      "notes": {
          "ua": "unweighted accuracy = mean recall over the classes present in the labels",
          "corpus_weights": "Eq. 3 from the final epoch's training-data UAs, mean 1 (sum D)",
          "class_weights": "Eq. 1 alpha_i = M / (K n_class) within each corpus minibatch",
          "holdout_model": "weights of the epoch with the best mean validation UA",
      },
  }
  if config.export:
    from tfser.tasks.cww import export as export_cww  # pylint: disable=g-import-not-at-top
    export_cww.export_saved_model(network, run.saved_model, feature_dim=feature_dim,
                                  feature_name=config.feature_name,
                                  extra_info={"holdout": config.holdout, "method": config.method,
                                              "seed": config.seed})
    results["saved_model"] = run.saved_model
    results["serving"] = {"signatures": ["serving_default", "is10"],
                          "waveform_signature": None, "note": export_cww.WAVEFORM_NOTE}
  train_common.write_json_atomic(run.results, results)
  return results
