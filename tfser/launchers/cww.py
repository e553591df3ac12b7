"""Flags of the corpus-wise-weights task -> CwwConfig -> tfser.experiments.cww_train.train.

``python -m tfser.launch --task=cww --holdout=POD`` trains on CRE, IEM and IMP of the embedded
demo with the paper's CWW method and writes results.json, TensorBoard events, checkpoints and a
SavedModel under --out_dir. ``--method`` picks a row of the paper's Table 2; any flag given
explicitly overrides that row's setting. ``--helpfull`` lists every flag with its default.
"""

import json
import os

from absl import flags
from absl import logging

from tfser.launchers import common  # noqa: F401  (shared flags: data_dir, out_dir, seed, ...)
from tfser.experiments import cww as cww_experiment

FLAGS = flags.FLAGS

flags.DEFINE_string("holdout", "POD",
                    "The unseen test corpus, one of --corpora (CRE, IEM, IMP, POD); the other "
                    "corpora train. Tested whole, except POD (its test split), as the paper.")
flags.DEFINE_list("corpora", list(cww_experiment.CORPORA),
                  "The labelled corpora of the leave-one-corpus-out study.")
flags.DEFINE_enum("method", "cww", ["within"] + list(cww_experiment.METHODS),
                  "A row of the paper's Table 2 (presets for the flags below; explicit flags "
                  "override): " + ", ".join(f"{k}={v}" for k, v in
                                            cww_experiment.TABLE2_LABELS.items()))
if "max_epochs" not in FLAGS:
  flags.DEFINE_integer("max_epochs", 100,
                       "Upper bound on epochs; the paper stops by patience only.")
flags.DEFINE_bool("cww", True, "Corpus-wise weights in the loss (Eq. 2-3).")
flags.DEFINE_float("lambda_w", 4.0, "lambda_W of Eq. 3 (paper: 4, tested over 1..5).")
flags.DEFINE_enum("label_target", "onehot", ["onehot", "uniform", "unigram", "soft"],
                  "Cross-entropy target: one-hot; uniform or unigram label smoothing; soft labels "
                  "from annotator votes.")
flags.DEFINE_float("label_smoothing", 0.1, "Label smoothing epsilon (not in the paper).")
flags.DEFINE_float("focal_gamma", 0.0, "Focal loss gamma; 0 = cross-entropy (method focal_loss: 2).")
flags.DEFINE_float("confidence_penalty", 0.0,
                   "Confidence penalty beta (method confidence_penalty: 0.1).")
flags.DEFINE_enum("pel", "none", ["none", "neutral", "all"],
                  "Pseudo-emotion labels (Eq. 4) on the unlabelled corpus: PEL_NL (neutral) or "
                  "PEL_AL (all-ones).")
flags.DEFINE_float("lambda_l", 1e-3, "lambda_L of Eq. 4 (paper: 0.001).")
flags.DEFINE_bool("reconstruction", False,
                  "The unsupervised reconstruction branch (1024, 1582) on the second layer.")
flags.DEFINE_float("reconstruction_weight", 1.0, "Weight of the reconstruction loss.")
flags.DEFINE_bool("merge_corpora", False, "Merge the training corpora into one stream (no CWW).")
flags.DEFINE_enum("mode", "out_of_corpus", list(cww_experiment.MODES),
                  "out_of_corpus (train on the others) or within_corpus (train on --holdout).")
flags.DEFINE_integer("fold", 0,
                     "Within-corpus benchmark (--method=within): the holdout's speaker fold, "
                     "0-based (paper 3.2: CRE 10 folds of 10 test / 9 validation / 72 training "
                     "speakers; IEM 10 and IMP 12 leave-one-speaker-out folds, validation the "
                     "test speaker's session partner; POD 1, its fixed splits).")
flags.DEFINE_string("holdout_split", "", "Split of the holdout to test on ('' = paper's).")
flags.DEFINE_string("unlabelled_corpus", "LIBRI", "Unlabelled corpus for PEL / reconstruction.")
flags.DEFINE_string("feature_name", "is10", "Feature set stored by data_prep (IS10: 1582).")
flags.DEFINE_integer("feature_dim", 1582, "Expected feature width (0 = whatever the data has).")
flags.DEFINE_float("cww_learning_rate", 2e-4, "Adam learning rate (paper: 0.0002).")
flags.DEFINE_integer("cww_patience", 5, "Early-stopping patience on the mean validation UA.")
flags.DEFINE_integer("cww_lr_patience", 2, "Epochs without improvement before LR x lr_factor.")
flags.DEFINE_float("cww_lr_factor", 0.1, "Learning-rate reduction factor.")
flags.DEFINE_integer("max_steps_per_epoch", 0, "Cap on steps per epoch (0 = Algorithm 1's).")
flags.DEFINE_integer("checkpoint_every_steps", 50, "Resumable checkpoint every N steps (and at "
                     "every epoch end).")
if "distribute" not in FLAGS:
  flags.DEFINE_enum("distribute", "none", list(cww_experiment.DISTRIBUTE),
                    "tf.distribute strategy: none, mirrored (all local devices), multi_worker "
                    "(TF_CONFIG).")
flags.DEFINE_bool("export", True, "Write the SavedModel.")


# Flag name -> CwwConfig field, for flags that override a --method preset when given.
_OVERRIDES = {
    "cww": "cww", "lambda_w": "lambda_w", "label_target": "target",
    "label_smoothing": "smoothing", "focal_gamma": "focal_gamma",
    "confidence_penalty": "confidence_penalty", "pel": "pel", "lambda_l": "lambda_l",
    "reconstruction": "reconstruction", "reconstruction_weight": "reconstruction_weight",
    "merge_corpora": "merge_corpora", "mode": "mode",
}


def config_from_flags() -> cww_experiment.CwwConfig:
  """The CwwConfig for the parsed flags. Raises ValueError on a bad --holdout."""
  corpora = tuple(FLAGS.corpora)
  if FLAGS.holdout not in corpora:
    raise ValueError(f"--holdout={FLAGS.holdout!r} is not a corpus of this study; valid values: "
                     f"{', '.join(corpora)}")
  overrides = {field: FLAGS[name].value for name, field in _OVERRIDES.items()
               if FLAGS[name].present}
  common_fields = dict(
      holdout=FLAGS.holdout, corpora=corpora, data_dir=FLAGS.data_dir, demo_dir=FLAGS.demo_dir,
      out_dir=FLAGS.out_dir, seed=FLAGS.seed, batch_size=FLAGS.batch_size,
      unlabelled_batch_size=FLAGS.batch_size, jit=FLAGS.jit,
      mixed_precision=FLAGS.mixed_precision, deterministic=FLAGS.deterministic,
      max_epochs=FLAGS.max_epochs, holdout_split=FLAGS.holdout_split, fold=FLAGS.fold,
      unlabelled_corpus=FLAGS.unlabelled_corpus, feature_name=FLAGS.feature_name,
      feature_dim=FLAGS.feature_dim, learning_rate=FLAGS.cww_learning_rate,
      patience=FLAGS.cww_patience, lr_patience=FLAGS.cww_lr_patience,
      lr_factor=FLAGS.cww_lr_factor, max_steps_per_epoch=FLAGS.max_steps_per_epoch,
      checkpoint_every_steps=FLAGS.checkpoint_every_steps, distribute=FLAGS.distribute,
      export=FLAGS.export)
  return cww_experiment.method_config(FLAGS.method, **common_fields, **overrides)


def main():
  import tensorflow as tf  # pylint: disable=g-import-not-at-top  (tfser is imported already)
  from tfser.experiments import cww_train  # pylint: disable=g-import-not-at-top
  tf.get_logger().setLevel("WARNING")  # TensorFlow's INFO lines (checkpoint sharding) drown the log
  try:
    config = config_from_flags()
    config.validate()
  except ValueError as e:
    raise SystemExit(f"tfser.launch --task=cww: {e}") from None
  common.prepare_out_dir()  # issue 11 hook: writable --out_dir; --restart clears its run
  logging.info("CWW run: %s", config)
  # Before anything starts the TensorFlow runtime: multi_worker configures collective ops.
  cww_train.strategy(config.distribute)
  try:
    results = cww_train.train(config, verbose=2)
  except (cww_train.DataError, FileNotFoundError) as e:
    raise SystemExit(f"tfser.launch --task=cww: {e}") from None
  summary = {k: results[k] for k in ("method", "holdout", "holdout_split", "holdout_ua",
                                     "train_ua", "corpus_weights", "best_epoch", "epochs_run")}
  if results["fold"]:
    summary["fold"] = {k: results["fold"][k] for k in ("index", "num_folds", "test")}
  print(json.dumps(summary, indent=2))
  print(f"results: {os.path.join(os.path.abspath(config.out_dir), 'results.json')}")
