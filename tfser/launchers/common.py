"""Flags shared by every task, and the embedded demo (entry points are the only place that
prepares it: the tfser library never imports data_prep). Task modules define their own flags
beside these.

A flag whose paper default differs between tasks (learning rate, patience, epochs) is defined by
each task's module under a task-specific name, never here.
"""

import os
from typing import Sequence

from absl import flags

flags.DEFINE_string("data_dir", None,
                    "Directory written by data_prep.prepare (holds <corpus>/manifest.json). "
                    "Unset: the embedded demo corpora, prepared on first use under --demo_dir.")
flags.DEFINE_string("demo_dir", "~/.cache/tfser/demo",
                    "Where the embedded demo corpora are prepared when --data_dir is unset.")
flags.DEFINE_string("out_dir", "runs/latest",
                    "Run directory: tensorboard/, checkpoints/, results.json, saved_model/.")
flags.DEFINE_integer("seed", 0, "Random seed (the papers report seeds 0-4).")
flags.DEFINE_integer("batch_size", 32, "Minibatch size (both papers: 32).")
flags.DEFINE_bool("jit", False, "Compile the train step with XLA (jit_compile=True).")
flags.DEFINE_bool("mixed_precision", False, "Train under the mixed_float16 Keras policy.")
flags.DEFINE_bool("deterministic", True,
                  "Enable TensorFlow op determinism (bit-identical reruns on CPU for a seed).")

FLAGS = flags.FLAGS


def demo_data_dir(demo_dir: str, features: Sequence[str] = ("is10",)) -> str:
  """The embedded demo's data directory under ``demo_dir``, prepared on first use (data_prep)."""
  from data_prep import prepare  # pylint: disable=g-import-not-at-top
  return prepare.ensure_demo_data(os.path.expanduser(demo_dir), features=tuple(features), seed=0)
