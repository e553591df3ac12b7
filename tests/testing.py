"""Shared test fixtures and paths."""

import os
import shutil
import tempfile

import tfser  # noqa: F401  (Keras flavour before TensorFlow)
import tensorflow as tf

TESTS_DIR = os.path.dirname(os.path.abspath(__file__))
DATA_DIR = os.path.join(TESTS_DIR, "data")
FIXTURES = os.path.join(DATA_DIR, "fixtures")  # corpus trees in each release's layout


def temp_dir(test_case) -> str:
  """A fresh directory removed after the test (works under pytest, unlike create_tempdir)."""
  path = tempfile.mkdtemp(prefix="tfser-test-")
  test_case.addCleanup(shutil.rmtree, path, ignore_errors=True)
  return path


class FixtureTrees:
  """Mixin for a TestCase reading the corpus fixtures (tests/data/fixtures)."""

  def tempdir(self) -> str:
    return temp_dir(self)

  def copy_fixture(self, name: str) -> str:
    """A writable copy of the fixture tree ``name``."""
    dst = os.path.join(self.tempdir(), name)
    shutil.copytree(os.path.join(FIXTURES, name), dst)
    return dst


class InterruptAfterSteps(tf.keras.callbacks.Callback):
  """Raises after ``at`` train steps of this process (simulates a job killed mid-epoch)."""

  def __init__(self, at):
    super().__init__()
    self.at, self.seen = at, 0

  def on_train_batch_end(self, batch, logs=None):
    self.seen += 1
    if self.seen == self.at:
      raise KeyboardInterrupt(f"interrupted after {self.at} steps")
