"""The resume machinery both trainers share: resumable callbacks and one resumable fit.

A run killed at any point (mid-epoch included) and started again with the same out_dir ends
with the same results and weights as an uninterrupted one (given op determinism):

* :class:`ResumableCheckpoint` saves every ``save_every_steps`` steps and at every epoch end: the
  model and optimizer (weights, slots, iterations, learning rate, dropout generators' states),
  the epoch and the step within it, the training metrics' running values and the JSON state of
  the stateful callbacks (``get_state``/``set_state``).
* :class:`ResumableEarlyStopping`, :class:`ResumableReduceLROnPlateau` (:class:`PendingState`):
  Keras's callbacks whose counters survive the restart; :class:`BestCheckpoint` saves the network
  whenever the monitored value improves.
* :class:`ResumesMidEpoch` (a Model mixin): fit() starts its first epoch at the restored step.
* :func:`fit` restores the checkpoint, skips the endless training stream to the restored
  position and fits from there; the task trainers (``tfser.tasks.<task>.train``) call it.
"""

import json
import logging
import math
import os
from typing import Callable, Dict, Mapping, Optional, Sequence, Tuple

import numpy as np

import tfser  # noqa: F401  (Keras flavour before TensorFlow)
import tensorflow as tf

from tfser.core import distribute

class BestCheckpoint(tf.keras.callbacks.Callback):
  """Writes ``checkpoint`` to ``directory/best`` whenever ``monitor`` (max) improves."""

  def __init__(self, checkpoint: tf.train.Checkpoint, directory: str,
               monitor: str = "val_ua_mean", restore_directory: Optional[str] = None):
    super().__init__()
    self.checkpoint = checkpoint
    self.prefix = os.path.join(directory, "best", "best")
    # Several workers (tfser.core.distribute): a non-chief worker restarted after the best epoch
    # reads the chief's best checkpoint, its own temporary directory being new.
    self.restore_prefix = os.path.join(restore_directory or directory, "best", "best")
    self.monitor = monitor
    self.best = -math.inf
    self.best_epoch = -1
    self.best_logs: Dict[str, float] = {}

  def on_epoch_end(self, epoch, logs=None):
    value = (logs or {}).get(self.monitor)
    if value is not None and math.isfinite(value) and value > self.best:
      self.best, self.best_epoch = float(value), int(epoch)
      self.best_logs = {k: float(v) for k, v in (logs or {}).items()
                        if isinstance(v, (int, float, np.floating))}
      self.checkpoint.write(self.prefix)

  @property
  def path(self) -> Optional[str]:
    if self.best_epoch < 0:
      return None
    return self.prefix if tf.io.gfile.exists(self.prefix + ".index") else self.restore_prefix

  def get_state(self):
    return {"best": self.best, "best_epoch": self.best_epoch, "best_logs": self.best_logs}

  def set_state(self, state):
    best = state.get("best")
    self.best = -math.inf if best is None else float(best)
    self.best_epoch = int(state.get("best_epoch", -1))
    self.best_logs = dict(state.get("best_logs", {}))


class PendingState:
  """Callback mixin: state set before fit is applied at once and again after the callback's
  ``on_train_begin`` resets itself (as Keras's callbacks do), so a resumed run continues from it.

  ``_STATE_KEYS`` names the attributes saved; non-finite numbers travel as None (JSON) and are
  then left at their initial value.
  """
  _STATE_KEYS: Tuple[str, ...] = ()
  _pending = None

  def get_state(self):
    return {k: _jsonable_number(getattr(self, k)) for k in self._STATE_KEYS}

  def set_state(self, state):
    self._pending = dict(state)
    self._apply_pending()  # readable before fit (e.g. whether the run had stopped)

  def on_train_begin(self, logs=None):
    super().on_train_begin(logs)  # resets wait/best
    self._apply_pending()
    self._pending = None

  def _apply_pending(self):
    for k, v in (self._pending or {}).items():
      if v is not None:  # None: a non-finite initial value, which the reset just set again
        setattr(self, k, v)


def _jsonable_number(v):
  """JSON-safe copy: numpy scalars to Python, non-finite floats to None (recursively)."""
  if isinstance(v, dict):
    return {str(k): _jsonable_number(x) for k, x in v.items()}
  if isinstance(v, (list, tuple)):
    return [_jsonable_number(x) for x in v]
  if isinstance(v, (np.floating, np.integer)):
    v = v.item()
  if isinstance(v, float) and not math.isfinite(v):
    return None
  return v


class ResumableEarlyStopping(PendingState, tf.keras.callbacks.EarlyStopping):
  """Keras EarlyStopping whose counters survive a restart (via ResumableCheckpoint)."""
  _STATE_KEYS = ("wait", "best", "stopped_epoch", "best_epoch")


class ResumableReduceLROnPlateau(PendingState, tf.keras.callbacks.ReduceLROnPlateau):
  """Keras ReduceLROnPlateau whose counters survive a restart (the rate is in the optimizer)."""
  _STATE_KEYS = ("wait", "best", "cooldown_counter")


class ResumesMidEpoch:
  """Keras Model mixin: fit() starts its first epoch at step ``resume_step_in_epoch``.

  A trainer resuming from a :class:`ResumableCheckpoint` sets it to the restored step (and the
  input stream skipped to match) before fit, and back to 0 after.
  """
  resume_step_in_epoch = 0

  def _maybe_load_initial_counters_from_ckpt(self, steps_per_epoch, initial_epoch):
    # tf-keras 2.17's fit() asks this hook (BackupAndRestore's) for the (epoch, step) to start
    # at; tfser's ResumableCheckpoint restores the step itself, so the epoch starts there.
    del steps_per_epoch
    return initial_epoch, int(self.resume_step_in_epoch)


class ResumableCheckpoint(tf.keras.callbacks.Callback):
  """Saves everything a bit-identical resume needs, every N steps and at every epoch end.

  The N-step save skips an epoch's last step: the epoch-end save follows it, after the
  end-of-epoch callbacks, and a checkpoint between the two could not resume (no steps left).

  Saved: ``objects`` (model, optimizer: weights, slots, iterations, learning rate, the corpus
  weights variable and the dropout generators' states), the epoch and the step within it, and the
  JSON state of ``stateful`` callbacks (``get_state``/``set_state``). A checkpoint written at an
  epoch end records (epoch + 1, step 0).

  metrics: training metrics whose variables ``objects`` saves (e.g. the model's ``metrics``).
    fit() resets them at every epoch start; on a mid-epoch resume their restored running values
    are put back after that reset, so the resumed epoch logs the same averages as an
    uninterrupted one.
  restore_directory: where ``restore`` reads (default ``directory``): with several workers the
    chief's checkpoints, which every worker resumes from (each writes into its own ``directory``,
    see ``tfser.core.distribute``).
  """

  def __init__(self, directory: str, objects: Mapping[str, tf.Module],
               stateful: Mapping[str, object] = None, save_every_steps: int = 0,
               max_to_keep: int = 2, metrics: Sequence[tf.keras.metrics.Metric] = (),
               restore_directory: Optional[str] = None):
    super().__init__()
    self.epoch = tf.Variable(0, dtype=tf.int64, trainable=False, name="epoch")
    self.step_in_epoch = tf.Variable(0, dtype=tf.int64, trainable=False, name="step_in_epoch")
    self.callback_state = tf.Variable("{}", dtype=tf.string, trainable=False, name="callbacks")
    self.checkpoint = tf.train.Checkpoint(epoch=self.epoch, step_in_epoch=self.step_in_epoch,
                                          callback_state=self.callback_state, **objects)
    self.manager = tf.train.CheckpointManager(self.checkpoint, directory, max_to_keep=max_to_keep)
    self.restore_manager = self.manager
    if restore_directory and os.path.abspath(restore_directory) != os.path.abspath(directory):
      self.restore_manager = tf.train.CheckpointManager(self.checkpoint, restore_directory,
                                                        max_to_keep=max_to_keep)
    self.stateful = dict(stateful or {})
    self.save_every_steps = int(save_every_steps)
    self._metric_variables = [v for m in metrics for v in m.variables]
    self._resumed_metric_values = None
    self._current_epoch = 0
    self._steps_since_save = 0

  def restore(self, steps_per_epoch: Optional[int] = None) -> Tuple[int, int]:
    """Restores the latest checkpoint, if any. Returns (epoch, step within that epoch).

    steps_per_epoch: a checkpoint at an epoch's last step (written mid-epoch by an older tfser,
      before the end-of-epoch validation and corpus-weight pass ran) cannot resume: fit() would
      start an epoch with no steps left. The newest checkpoint before such a step is restored
      instead (the stream is skipped to it, so the result is the same).
    """
    path = self._resumable_checkpoint(steps_per_epoch)  # issue 11
    if not path:
      return 0, 0
    self.checkpoint.restore(path).assert_existing_objects_matched()
    state = json.loads(self.callback_state.numpy().decode("utf-8"))
    for name, callback in self.stateful.items():
      if name in state:
        callback.set_state(state[name])
    epoch, step = int(self.epoch.numpy()), int(self.step_in_epoch.numpy())
    if step and self._metric_variables:
      self._resumed_metric_values = [v.numpy() for v in self._metric_variables]
    return epoch, step

  def _resumable_checkpoint(self, steps_per_epoch: Optional[int]) -> Optional[str]:
    """The newest checkpoint whose step is not an epoch's last (see ``restore``), or None."""
    for path in reversed(self.restore_manager.checkpoints):
      if not steps_per_epoch:
        return path
      step = int(tf.train.load_variable(path, "step_in_epoch/.ATTRIBUTES/VARIABLE_VALUE"))
      if step < steps_per_epoch:
        return path
      logging.warning("checkpoint %s is at the last step of an epoch whose end-of-epoch pass "
                      "did not finish; resuming from the one before it", path)
    return None

  def _save(self, epoch: int, step_in_epoch: int):
    self.epoch.assign(epoch)
    self.step_in_epoch.assign(step_in_epoch)
    state = {name: _jsonable_number(cb.get_state()) for name, cb in self.stateful.items()}
    self.callback_state.assign(json.dumps(state, allow_nan=False))
    self.manager.save()
    self._steps_since_save = 0

  def _implements_train_batch_hooks(self):
    return self.save_every_steps > 0

  def on_epoch_begin(self, epoch, logs=None):
    self._current_epoch = epoch
    if self._resumed_metric_values is not None:  # fit() has just reset them
      for variable, value in zip(self._metric_variables, self._resumed_metric_values):
        variable.assign(value)
      self._resumed_metric_values = None

  def on_train_batch_end(self, batch, logs=None):
    self._steps_since_save += 1
    # issue 11: not at the epoch's last step: on_epoch_end saves (epoch + 1, 0) after the
    # validation and corpus-weight pass; a checkpoint before that pass could never resume.
    last_step = batch + 1 >= ((getattr(self, "params", None) or {}).get("steps") or math.inf)
    if self.save_every_steps and self._steps_since_save >= self.save_every_steps and not last_step:
      self._save(self._current_epoch, batch + 1)

  def on_epoch_end(self, epoch, logs=None):
    self._save(epoch + 1, 0)


def fit(model: tf.keras.Model, stream: tf.data.Dataset, *, checkpoint: ResumableCheckpoint,
        steps_per_epoch: int, max_epochs: int, stopped: Callable[[], bool],
        callbacks: Sequence[tf.keras.callbacks.Callback], refit_finished: bool = False,
        **fit_kwargs) -> Tuple[int, int, bool]:
  """The resumable fit both tasks use: restore, skip to the step, fit to ``max_epochs``.

  model: a :class:`ResumesMidEpoch` Keras model, compiled. stream: the endless training stream
  whose k-th ``steps_per_epoch`` elements are epoch k in every process (deterministic for a seed),
  so a resumed run skips it to (epoch, step). checkpoint: the run's ResumableCheckpoint (also in
  ``callbacks``, last). stopped: called after the restore, True when the restored run had stopped
  early. A finished run (stopped, or every epoch done) is not fitted again, unless
  ``refit_finished``: then it fits for zero epochs, which applies the callbacks' restored state
  (e.g. early stopping's best weights). fit_kwargs: more ``Model.fit`` arguments (verbose,
  validation_data, ...). Returns (restored epoch, restored step in it, finished before this call).
  """
  epoch, step = checkpoint.restore(steps_per_epoch)  # never an epoch's last step (issue 11)
  finished = epoch >= max_epochs or stopped()
  if finished and not refit_finished:
    return epoch, step, finished
  model.resume_step_in_epoch = 0 if finished else step
  try:
    # Several workers: each keeps its slices of every global minibatch (tfser.core.distribute).
    model.fit(distribute.shard_by_data(stream.skip(epoch * steps_per_epoch + step)),
              epochs=epoch if finished else max_epochs, initial_epoch=epoch,
              steps_per_epoch=steps_per_epoch, callbacks=list(callbacks), **fit_kwargs)
  finally:
    model.resume_step_in_epoch = 0
  return epoch, step, finished
