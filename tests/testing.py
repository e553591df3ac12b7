"""Shared test fixtures and paths."""

import os

import tfser  # noqa: F401  (Keras flavour before TensorFlow)
import tensorflow as tf

TESTS_DIR = os.path.dirname(os.path.abspath(__file__))
DATA_DIR = os.path.join(TESTS_DIR, "data")


class InterruptAfterSteps(tf.keras.callbacks.Callback):
  """Raises after ``at`` train steps of this process (simulates a job killed mid-epoch)."""

  def __init__(self, at):
    super().__init__()
    self.at, self.seen = at, 0

  def on_train_batch_end(self, batch, logs=None):
    self.seen += 1
    if self.seen == self.at:
      raise KeyboardInterrupt(f"interrupted after {self.at} steps")
