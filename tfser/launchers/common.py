"""Flags shared by every task, and the embedded demo (entry points are the only place that
prepares it: the tfser library never imports data_prep). Task modules define their own flags
beside these.

A flag whose paper default differs between tasks (learning rate, patience, epochs) is defined by
each task's module under a task-specific name, never here.
"""

import os
from typing import Mapping, Sequence

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
# issue 11: starting over in a run directory that holds another run (tfser.core.run_guard).
flags.DEFINE_bool("restart", False,
                  "Start this run over: delete --out_dir's checkpoints/, tensorboard/, "
                  "saved_model/ and results.json first (other files there stay). Without it, an "
                  "--out_dir holding a run resumes it when the settings match, else stops with "
                  "the differences.")


def annotator_settings(values: dict, data_dir: str,
                       corpora_by_flag: Mapping[str, Sequence[str]]) -> dict:
  """Both annotator tasks' --preset and ground-truth check (issue 15), on ``values`` in place.

  values: the config values of the parsed flags; a preset's settings replace those whose flag
  was not given (an explicit flag overrides the preset). corpora_by_flag: {flag: corpora it
  names}; a corpus whose ground truth was made with another --gt_std_ddof is refused
  (ValueError naming the flag and the corpus). The embedded demo without
  --preset=synthetic_demo gets a warning (raw IS10 diverges under SGD). Returns ``values``.
  """
  from absl import logging  # pylint: disable=g-import-not-at-top
  from tfser.data import pipeline  # pylint: disable=g-import-not-at-top
  from tfser.tasks.annotators.config import PRESETS  # pylint: disable=g-import-not-at-top
  for field, value in PRESETS[values["preset"]].items():
    if not FLAGS[field].present:
      values[field] = value
  for flag, corpora in corpora_by_flag.items():
    for corpus in corpora:
      try:
        manifest = pipeline.load_manifest(data_dir, corpus)
        pipeline.check_ground_truth_settings(manifest, std_ddof=values["gt_std_ddof"],
                                             where=f"corpus {corpus} in {data_dir}")
      except (FileNotFoundError, ValueError) as e:
        raise ValueError(f"--{flag}={corpus}: {e}") from None
  if not FLAGS.data_dir and values["preset"] != "synthetic_demo":
    logging.warning("the embedded demo with --preset=%s: raw IS10 features may diverge under "
                    "SGD; the demo commands use --preset=synthetic_demo", values["preset"])
  return values


def data_dir_in_use():
  """The data directory a run reads: --data_dir, else the demo's (for naming damaged shards)."""
  if FLAGS.data_dir:
    return FLAGS.data_dir
  return os.path.join(os.path.expanduser(FLAGS.demo_dir), "data")


def prepare_out_dir(chief: bool = True):
  """--out_dir checked writable (ValueError naming it) and, with --restart, its run deleted.

  chief: whether this process is the chief worker (tfser.core.distribute.worker_info). With
  several workers sharing --out_dir only the chief deletes (each worker deleting the shared run
  would race with the chief's new checkpoints); the others restore from the chief's checkpoints
  only after joining its first collective (the variables' initial broadcast), i.e. after this.
  """
  from absl import logging  # pylint: disable=g-import-not-at-top
  from tfser.core import run_guard  # pylint: disable=g-import-not-at-top
  path = run_guard.check_out_dir(FLAGS.out_dir)
  if FLAGS.restart and chief:
    removed = run_guard.start_over(path)
    if removed:
      logging.warning("--restart: deleted %s", ", ".join(removed))
  return path


def waveform_encoders(features, dirs):
  """In-graph encoders by feature name for predict_waveform, when every feature in ``features``
  has one ({"wav2vec2", "bert"}) and its local model directory is in ``dirs``; else None."""
  if not features or not all(dirs.get(name) for name in features):
    return None
  from tfser.layers import encoders  # pylint: disable=g-import-not-at-top
  built = {}
  if "wav2vec2" in features:
    built["wav2vec2"] = encoders.Wav2Vec2Encoder(model_path=dirs["wav2vec2"])
  if "bert" in features:
    built["bert"] = encoders.BertCLSEncoder(model_path=dirs["bert"])
  return built
