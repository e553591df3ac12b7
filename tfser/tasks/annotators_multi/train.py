"""One annotators_multi run: data, model, corpus weights, callbacks, resumable fit, evaluate,
export.

    python -m tfser.launch --task=annotators_multi --holdout=IEM --model=mt --objective=task1+2

trains the annotators paper's model (``tfser.tasks.annotators``: network, objectives, SGD,
early stopping after a minimum, ReduceLROnPlateau, distribution images) on every training corpus
at once: one minibatch per corpus per step (CWW Algorithm 1), each objective's loss summed over
the corpora with Eq. 2's weights (``tfser.tasks.annotators_multi.model``), or with
``weighting="merged"`` one shuffled stream of all their utterances (one "merged" stream, weight
1). At every epoch end (before the history, TensorBoard and the checkpoint)
``tfser.core.corpus_weights.CorpusWeightsCallback`` measures every corpus's fit on its training
split or its fixed subset (``evaluate.CorpusFit``, ``fit_max_utterances``) and, with
``weighting="cww"``, sets Eq. 3's weights; it logs ``fit_<corpus>`` and ``weight_<stream>``
(TensorBoard scalars per corpus, the epoch history) and keeps one dict per epoch
(``corpus_weights_history`` in results.json). The validation loss that drives the learning rate
and early stopping is the objective's loss over every training corpus's validation split.

Outputs under ``out_dir`` as the annotators task's (``tfser.core.run.RunDirectory``). Resuming:
a run killed at any point and started again with the same out_dir ends with the same results
(the corpus weights live in the model's checkpoint, their history in the callback's state; the
training stream is deterministic per seed and skipped to the restored step).
"""

import dataclasses
from typing import Any, Dict, Mapping, Optional, Sequence

import tfser  # noqa: F401  (Keras flavour before TensorFlow)
import tensorflow as tf

from tfser.core import corpus_weights as corpus_weights_lib
from tfser.core import flags as config_flags
from tfser.core import run as run_lib
from tfser.core import run_guard
from tfser.data import test_sets
from tfser.tasks.annotators import train as annotators_train
from tfser.tasks.annotators_multi import evaluate as evaluate_lib
from tfser.tasks.annotators_multi.config import AnnotatorsMultiConfig
from tfser.tasks.annotators_multi.data import MultiCorpusData
from tfser.tasks.annotators_multi.data import load_data
from tfser.tasks.annotators_multi.data import training_corpora
from tfser.tasks.annotators_multi.model import MultiCorpusAnnotatorModel

TASK = "annotators_multi"
RESUME_IGNORES = annotators_train.RESUME_IGNORES


def run(config: AnnotatorsMultiConfig, *, data: Optional[MultiCorpusData] = None,
        flags_used: Optional[Mapping[str, Any]] = None,
        extra_callbacks: Sequence[tf.keras.callbacks.Callback] = (),
        encoders: Optional[Mapping[str, tf.keras.layers.Layer]] = None) -> Dict[str, Any]:
  """Trains, evaluates and exports one run; writes and returns results.json's content.

  data: prebuilt datasets (tests); None builds them from ``config.data_dir``. flags_used,
  extra_callbacks, encoders: as ``tfser.tasks.annotators.train.run``.
  """
  run_lib.configure_runtime(config.seed, deterministic=config.deterministic,
                            mixed_precision=config.mixed_precision)
  run_dir = run_lib.RunDirectory(config.out_dir).make()
  corpora = data.corpora if data is not None else training_corpora(
      config.data_dir, config.holdout, config.training_corpora)
  run_guard.check_and_record(
      run_dir.root, run_dir.checkpoints, TASK, run_guard.settings_of(config, RESUME_IGNORES),
      flag_names=config_flags.flag_names(AnnotatorsMultiConfig),
      data=None if data is not None else run_guard.data_identity(
          config.data_dir, corpora + (config.holdout,)))
  if data is None:
    data = load_data(config)
  stream_corpora = data.stream_corpora
  task_model = annotators_train.build_task_model(
      config, data, model_class=MultiCorpusAnnotatorModel, corpora=stream_corpora)
  # pylint: disable=protected-access  (the annotators task's helpers, reused)
  image_batch = annotators_train._first_batch(
      data.validation, max(1, config.image_utterances), "validation")
  annotators_train._first_batch(data.holdout, 1, f"holdout {config.holdout}")
  validation_steps = annotators_train._count_batches(data.validation, "validation")

  fit = evaluate_lib.CorpusFit(task_model, data, config)
  weights_cb = corpus_weights_lib.CorpusWeightsCallback(
      task_model.corpus_weights, fit, stream_corpora, lambda_w=config.lambda_w,
      enabled=config.weighting == "cww")
  callbacks = annotators_train._callbacks(
      config, run_dir, image_batch, task_model, extra_callbacks, first=[weights_cb],
      extra_state={"corpus_weights": weights_cb})
  # pylint: enable=protected-access

  epoch, step, train_seconds = annotators_train.fit_and_keep_final(
      task_model, data.train, callbacks, run_dir, steps_per_epoch=data.steps_per_epoch,
      max_epochs=config.max_epochs, validation_data=data.validation,
      validation_steps=validation_steps, verbose=config.verbose)

  stopper, history = callbacks.stopper, callbacks.history.history
  results = {
      "task": TASK, "mode": config.mode, "seed": config.seed, "gt_seed": config.effective_gt_seed,
      "holdout": config.holdout, "training_corpora": list(data.corpora),
      "holdout_test_set": test_sets.held_out_test_set("annotators", config.holdout).as_json(),
      "model": config.model, "objective": config.objective, "weighting": config.weighting,
      "fit_metric": config.fit_metric, "lambda_w": config.lambda_w,
      "config": dataclasses.asdict(config), "flags": dict(flags_used or {}),
      "paper_settings": annotators_train.paper_settings(config),
      "num_annotators": data.num_annotators, "annotator_offsets": data.offsets,
      "input_dim": data.input_dim, "feature_names": list(data.feature_names),
      "epochs": len(history.get("loss", [])), "steps_per_epoch": data.steps_per_epoch,
      "best_epoch": stopper.best_epoch, "early_stopped_epoch": stopper.stopped_epoch,
      "resumed_from": {"epoch": epoch, "step_in_epoch": step} if (epoch or step) else None,
      "train_seconds": train_seconds, "history": history,
      "train_utterances": data.train_sizes,
      # Per stream: each training corpus (zipped), or one "merged" stream (weight 1).
      "corpus_weights": dict(zip(stream_corpora, task_model.corpus_weights.numpy().tolist())),
      # One dict per epoch: fit_<corpus> (U_d) and weight_<corpus> (Eq. 3, set at its end).
      "corpus_weights_history": list(weights_cb.history),
  }
  results.update(evaluate_lib.evaluate(task_model, config, data,
                                       within_predict_fn=fit.predict_fn))
  if config.export:
    from tfser.tasks.annotators_multi import export  # pylint: disable=g-import-not-at-top
    signatures = export.export_multi_corpus_model(
        task_model, run_dir.saved_model, annotators=data.annotators,
        feature_mean=data.feature_mean, feature_std=data.feature_std,
        feature_names=data.feature_names, encoders=encoders, seed=config.seed)
    results["saved_model"] = {"path": run_dir.saved_model, "signatures": signatures,
                              "annotator_ids": export.DESCRIPTION}
  run_lib.write_json_atomic(run_dir.results, results)
  return results
