"""Pieces every training run shares: determinism, precision policy, run directory, results file.

Both tasks train with ``tf.keras.Model.fit`` and a custom ``train_step``; this module holds only
what is identical between them, so each task's trainer stays readable top to bottom.
"""

import dataclasses
import os
from typing import Any, Dict

import numpy as np

import tfser  # noqa: F401  (Keras flavour before TensorFlow)
import tensorflow as tf
from tfser.core import atomic


def configure_runtime(seed: int, *, deterministic: bool = True,
                      mixed_precision: bool = False) -> None:
  """Seeds Python/NumPy/TF, enables op determinism, and sets the Keras precision policy.

  Call once, before building models or datasets. Mixed precision uses ``mixed_float16``:
  compute in float16, variables in float32 (losses that need float32 cast explicitly).
  """
  tf.keras.utils.set_random_seed(seed)
  if deterministic:
    tf.config.experimental.enable_op_determinism()
  tf.keras.mixed_precision.set_global_policy("mixed_float16" if mixed_precision else "float32")


@dataclasses.dataclass(frozen=True)
class RunDirectory:
  """The layout of one run's output directory (``--out_dir``)."""
  root: str

  @property
  def tensorboard(self) -> str:
    return os.path.join(self.root, "tensorboard")

  @property
  def checkpoints(self) -> str:
    return os.path.join(self.root, "checkpoints")

  @property
  def saved_model(self) -> str:
    return os.path.join(self.root, "saved_model")

  @property
  def results(self) -> str:
    return os.path.join(self.root, "results.json")

  def make(self) -> "RunDirectory":
    for path in (self.root, self.tensorboard, self.checkpoints):
      os.makedirs(path, exist_ok=True)
    return self


def _jsonable(value: Any) -> Any:
  if dataclasses.is_dataclass(value) and not isinstance(value, type):
    return _jsonable(dataclasses.asdict(value))
  if isinstance(value, dict):
    return {str(k): _jsonable(v) for k, v in value.items()}
  if isinstance(value, (list, tuple)):
    return [_jsonable(v) for v in value]
  if isinstance(value, (np.floating, float)):
    return None if not np.isfinite(value) else float(value)
  if isinstance(value, np.integer):
    return int(value)
  if isinstance(value, np.ndarray):
    return _jsonable(value.tolist())
  if isinstance(value, tf.Tensor):
    return _jsonable(value.numpy())
  return value


def write_json_atomic(path: str, payload: Dict[str, Any]) -> None:
  """Writes JSON via a temporary file and rename; NaN/Inf become null (strict JSON)."""
  # issue 11: a full disk leaves no half-written temporary file behind (atomic.replacing)
  atomic.write_json(path, _jsonable(payload), indent=2, sort_keys=True, allow_nan=False)
