"""Callbacks of the annotators task: early stopping with a minimum epoch count, the epochs' logs
(both resumable), and TensorBoard images of predicted vs ground-truth distributions."""

import numpy as np

import tfser  # noqa: F401  (Keras flavour before TensorFlow)
import tensorflow as tf

from tfser.core import resumable


class EarlyStoppingAfterMinimum(resumable.PendingState, tf.keras.callbacks.Callback):
  """Early stopping with patience, never before ``min_epochs`` (the paper: 10 and 30).

  Tracks the best ``monitor`` value (lower is better) from the first epoch; stops when it has
  not improved for ``patience`` epochs and at least ``min_epochs`` epochs have run, then restores
  the best weights (``restore_best_weights``). Keras's ``EarlyStopping(start_from_epoch=...)``
  ignores the epochs before the start, so the best model could not come from them.

  Resumable (``tfser.core.resumable.ResumableCheckpoint``): ``get_state``/``set_state`` (PendingState)
  carry the counters, and after ``track_best_weights(model)`` the best weights live in variables whose
  module the checkpoint saves with them, so a resumed run stops and restores as an uninterrupted
  one (otherwise they are arrays in memory).
  """

  def __init__(self, monitor: str = "val_loss", patience: int = 10, min_epochs: int = 30,
               min_delta: float = 0.0, restore_best_weights: bool = True):
    super().__init__()
    self.monitor = monitor
    self.patience = patience
    self.min_epochs = min_epochs
    self.min_delta = min_delta
    self.restore_best_weights = restore_best_weights
    self.best = np.inf
    self.best_epoch = -1
    self.best_weights = None
    self.wait = 0
    self.stopped_epoch = -1
    self._best_variables = None

  def track_best_weights(self, model: tf.keras.Model) -> tf.Module:
    """Keeps the best weights in variables shaped like ``model``'s; returns their module."""
    module = tf.Module(name="best_weights")
    module.values = [tf.Variable(w, trainable=False) for w in model.get_weights()]
    self._best_variables = module
    return module

  _STATE_KEYS = ("best", "best_epoch", "wait", "stopped_epoch")

  def on_train_begin(self, logs=None):
    # A fresh start; PendingState then puts back a resumed run's counters (the best weights
    # are restored with the checkpoint's variables).
    self.best, self.best_epoch, self.best_weights, self.wait = np.inf, -1, None, 0
    super().on_train_begin(logs)

  def on_epoch_end(self, epoch, logs=None):
    current = (logs or {}).get(self.monitor)
    if current is None:
      raise KeyError(f"EarlyStoppingAfterMinimum: metric {self.monitor!r} not in the epoch logs "
                     f"({sorted(logs or {})})")
    if np.isfinite(current) and current < self.best - self.min_delta:
      self.best, self.best_epoch, self.wait = float(current), epoch, 0
      if self.restore_best_weights:
        self._keep_weights(self.model.get_weights())
    else:
      self.wait += 1
    if self.wait >= self.patience and epoch + 1 >= self.min_epochs:
      self.stopped_epoch = epoch
      self.model.stop_training = True

  def _keep_weights(self, weights):
    if self._best_variables is None:
      self.best_weights = weights
      return
    if len(weights) != len(self._best_variables.values):
      raise ValueError(f"EarlyStoppingAfterMinimum: the model has {len(weights)} weights, the "
                       f"tracked copy {len(self._best_variables.values)}")
    for variable, value in zip(self._best_variables.values, weights):
      variable.assign(value)

  def on_train_end(self, logs=None):
    if not self.restore_best_weights or self.best_epoch < 0:
      return
    if self._best_variables is not None:
      self.model.set_weights([v.numpy() for v in self._best_variables.values])
    elif self.best_weights is not None:
      self.model.set_weights(self.best_weights)


class EpochHistory(tf.keras.callbacks.Callback):
  """Every epoch's logs as ``{name: [value per epoch]}`` (Keras's History), kept across a resume
  through ``get_state``/``set_state`` (``tfser.core.resumable.ResumableCheckpoint``)."""

  def __init__(self):
    super().__init__()
    self.history = {}

  def on_epoch_end(self, epoch, logs=None):
    for name, value in (logs or {}).items():
      self.history.setdefault(name, []).append(float(value))

  def get_state(self):
    return {"history": self.history}

  def set_state(self, state):
    # The checkpoint's JSON stores non-finite values as None.
    self.history = {k: [np.nan if v is None else v for v in values]
                    for k, values in state.get("history", {}).items()}


def distribution_image(predicted: np.ndarray, truth: np.ndarray, bins: int,
                       scale: int = 16) -> np.ndarray:
  """``[n, bins*scale, (2*bins+1)*scale, 1]`` float images: predicted | gap | ground truth.

  Rows are activation bins (low at the top), columns valence bins (low at the left); each pair
  is scaled by its own maximum so the two panels share one colour scale.
  """
  predicted = np.asarray(predicted, np.float64).reshape(-1, bins, bins)
  truth = np.asarray(truth, np.float64).reshape(-1, bins, bins)
  top = np.maximum(predicted.max(axis=(1, 2)), truth.max(axis=(1, 2)))[:, None, None]
  top = np.where(top > 0, top, 1.0)
  gap = np.ones([predicted.shape[0], bins, 1])
  panel = np.concatenate([predicted / top, gap, truth / top], axis=2)
  panel = np.repeat(np.repeat(panel, scale, axis=1), scale, axis=2)
  return panel[..., None].astype(np.float32)


class DistributionImages(tf.keras.callbacks.Callback):
  """Writes, every ``every_epochs`` epochs, images of the predicted (left) and ground-truth (right)
  distributions of a fixed validation batch into ``log_dir`` (TensorBoard "images" tab)."""

  def __init__(self, log_dir: str, batch, bins: int, every_epochs: int = 1, seed: int = 0):
    super().__init__()
    self.batch = {k: v for k, v in batch.items() if k != "utterance_id"}
    self.utterance_ids = [u.decode() if isinstance(u, bytes) else str(u)
                          for u in np.asarray(batch["utterance_id"]).tolist()]
    self.bins = bins
    self.every_epochs = max(1, every_epochs)
    self.seed = seed
    self.writer = tf.summary.create_file_writer(log_dir)
    self._predict = None

  def on_epoch_end(self, epoch, logs=None):
    if epoch % self.every_epochs:
      return
    if self._predict is None:  # traced once: an eager float64 DiffKDE every epoch is slow
      self._predict = tf.function(lambda batch: self.model.predicted_distribution(
          batch, seed=tf.constant([self.seed, 0], tf.int64)))
    predicted = self._predict(self.batch).numpy()
    images = distribution_image(predicted, self.batch["ground_truth"].numpy(), self.bins)
    with self.writer.as_default():
      tf.summary.image("predicted_vs_ground_truth", images, step=epoch,
                       max_outputs=images.shape[0],
                       description="left: predicted, right: ground truth; rows activation, "
                                   "columns valence; utterances: " + ", ".join(self.utterance_ids))
    self.writer.flush()
