"""Flags of the corpus-wise-weights task -> CwwConfig -> tfser.tasks.cww.train.train.

``python -m tfser.launch --task=cww --holdout=POD`` trains on CRE, IEM and IMP of the embedded
demo with the paper's CWW method and writes results.json, TensorBoard events, checkpoints and a
SavedModel under --out_dir. ``--method`` picks a row of the paper's Table 2; any flag given
explicitly overrides that row's setting. ``--helpfull`` lists every flag with its default.

The flags are generated from CwwConfig's fields (``tfser.core.flags``: each setting is declared
once, in ``tfser/tasks/cww/config.py``, with its help text and paper default).
"""

import json
import os

from absl import flags
from absl import logging

from tfser.core import flags as config_flags
from tfser.launchers import common  # noqa: F401  (shared flags: data_dir, out_dir, seed, ...)
from tfser.tasks.cww import config as cww_experiment
from tfser.tasks.cww import experiments as cww_experiments

FLAGS = flags.FLAGS

flags.DEFINE_enum("method", "cww", list(cww_experiments.METHODS),
                  "A row of the paper's Table 2 (presets for the flags below; explicit flags "
                  "override): " + ", ".join(f"{k}={v}" for k, v in
                                            cww_experiments.LABELS.items()))
config_flags.define_flags(cww_experiment.CwwConfig, module_name=__name__)

# CwwConfig fields a --method row presets: their flags apply only when given explicitly.
_PRESET_FIELDS = sorted({k for preset in cww_experiment.METHODS.values() for k in preset}
                        | {"mode"})


def config_from_flags() -> cww_experiment.CwwConfig:
  """The CwwConfig for the parsed flags. Raises ValueError on a bad --holdout."""
  values = config_flags.values_from_flags(cww_experiment.CwwConfig, explicit_only=_PRESET_FIELDS)
  if values["holdout"] not in values["corpora"]:
    raise ValueError(f"--holdout={values['holdout']!r} is not a corpus of this study; valid "
                     f"values: {', '.join(values['corpora'])}")
  return cww_experiment.method_config(
      FLAGS.method, **values, data_dir=FLAGS.data_dir, demo_dir=FLAGS.demo_dir,
      out_dir=FLAGS.out_dir, seed=FLAGS.seed, batch_size=FLAGS.batch_size,
      unlabelled_batch_size=FLAGS.batch_size, jit=FLAGS.jit,
      mixed_precision=FLAGS.mixed_precision, deterministic=FLAGS.deterministic)


def main():
  import tensorflow as tf  # pylint: disable=g-import-not-at-top  (tfser is imported already)
  from tfser.core import distribute  # pylint: disable=g-import-not-at-top
  from tfser.tasks.cww import data as cww_data  # pylint: disable=g-import-not-at-top
  from tfser.tasks.cww import train as cww_train  # pylint: disable=g-import-not-at-top
  tf.get_logger().setLevel("WARNING")  # TensorFlow's INFO lines (checkpoint sharding) drown the log
  try:
    config = config_from_flags()
    config.validate()
  except ValueError as e:
    raise SystemExit(f"tfser.launch --task=cww: {e}") from None
  # Before anything starts the TensorFlow runtime: multi_worker configures collective ops.
  strategy = cww_train.strategy(config.distribute)
  # issue 11 hook: writable --out_dir; --restart clears its run (the chief only)
  common.prepare_out_dir(chief=distribute.worker_info(strategy)["chief"])
  logging.info("CWW run: %s", config)
  try:
    source = None
    if not config.data_dir:  # the embedded demo, prepared on first use
      data_dir = common.demo_data_dir(config.demo_dir, (config.feature_name,))
      source = cww_data.PipelineSource(data_dir, config.feature_name)
    results = cww_train.train(config, source=source, verbose=2)
  except (cww_train.DataError, FileNotFoundError) as e:
    raise SystemExit(f"tfser.launch --task=cww: {e}") from None
  summary = {k: results[k] for k in ("method", "holdout", "holdout_split", "holdout_ua",
                                     "train_ua", "corpus_weights", "best_epoch", "epochs_run",
                                     "worker", "weights_sha256")}
  if results["fold"]:
    summary["fold"] = {k: results["fold"][k] for k in ("index", "num_folds", "test")}
  print(json.dumps(summary, indent=2))
  print(f"results: {os.path.join(os.path.abspath(config.out_dir), 'results.json')}")
