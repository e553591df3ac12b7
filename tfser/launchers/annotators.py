"""Flags of the annotators task -> AnnotatorsConfig -> tfser.experiments.annotators.run.

    python -m tfser.launch --task=annotators --model=mt --objective=task1+2 --corpus=IMP --seed=0

Without --data_dir the embedded demo corpora (CRE, IEM, IMP, POD; IS10 features only) are
prepared under --demo_dir on first use; --features then falls back to the features the demo's
manifest has (IS10), since the demo has no wav2vec2/BERT embeddings. With --data_dir a missing
feature is an error. Every default is the paper's; ``--helpfull`` lists them all.
"""

import json
import os

from absl import flags
from absl import logging

from tfser.launchers import common  # noqa: F401  (shared flags: data_dir, out_dir, seed, ...)

FLAGS = flags.FLAGS

flags.DEFINE_enum("model", "mt", ["baseline", "mt", "onehot"],
                  "baseline: 4x4 distribution from the features (Zhang et al.); mt: one linear "
                  "head per annotator (sparse head table); onehot: annotator one-hot joined to "
                  "the input.")
flags.DEFINE_enum("objective", "task1+2", ["task1", "task1+2", "baseline"],
                  "MT / one-hot training: task1 = CCC loss on individual annotators; task1+2 = "
                  "Task 1 and the DiffKDE distribution loss, alternating per batch (one SGD step "
                  "each). The baseline model always trains its own cross-entropy objective.")
flags.DEFINE_string("corpus", "IMP", "Training corpus (a directory under the data dir): IMP "
                    "(MSP-Improv, the paper's), POD, MuSE, IEM; the demo has CRE, IEM, IMP, POD.")
flags.DEFINE_list("zero_shot", [], "Corpora tested zero-shot (whole corpus, mean/KDE of all "
                  "heads) after training; the paper's Table 2: POD,IEM,MuSE.")
flags.DEFINE_list("features", ["wav2vec2", "bert"],
                  "Stored features, concatenated in this order (paper: wav2vec2 768 + BERT CLS). "
                  "On the demo (no --data_dir) falls back to the demo's features (is10).")
flags.DEFINE_bool("standardize_features", True,
                  "z-normalise features with the training corpus's training-split statistics "
                  "(tfser addition; the paper feeds raw embeddings: --nostandardize_features).")
flags.DEFINE_integer("gt_seed", -1, "Ground-truth distribution seed 0-4; -1: --seed mod 5.")
flags.DEFINE_integer("min_ratings", 2, "Utterances with fewer valid ratings are left out.")
flags.DEFINE_integer("hidden_units", 256, "Width of every hidden layer (paper: 256).")
flags.DEFINE_integer("shared_layers", 1, "Shared Dense+ReLU layers (paper: 1; the baseline has "
                     "shared_layers + branch_layers in a row).")
flags.DEFINE_integer("branch_layers", 2, "Dense+ReLU layers per prediction (paper: 2).")
flags.DEFINE_float("dropout", 0.2, "Dropout on the input features (paper: 0.2).")
flags.DEFINE_enum("out_bins", "4", ["4", "2"], "Bins per axis of the distributions (4x4; 2x2).")
flags.DEFINE_float("learning_rate", 1e-3, "SGD learning rate (paper: 0.001).")
flags.DEFINE_float("momentum", 0.9, "SGD momentum (paper: 0.9).")
flags.DEFINE_float("lr_factor", 0.1, "ReduceLROnPlateau factor (paper: 0.1).")
flags.DEFINE_integer("lr_patience", 5, "Epochs without validation improvement before the "
                     "learning rate drops (paper: 5).")
flags.DEFINE_integer("early_stopping_patience", 10, "Early-stopping patience (paper: 10).")
flags.DEFINE_integer("min_epochs", 30, "No early stop before this many epochs (paper: 30).")
if "max_epochs" not in FLAGS:
  flags.DEFINE_integer("max_epochs", 500, "Upper bound on epochs (annotators task: 500).")
flags.DEFINE_bool("restore_best_weights", True, "Evaluate the weights of the best validation "
                  "epoch (the authors keep the best model).")
flags.DEFINE_integer("diffkde_grid_size", 64, "DiffKDE grid in training (paper: 64).")
flags.DEFINE_float("diffkde_sigma", 8.0, "Soft-histogram sigmoid slope sigma (paper: 8).")
flags.DEFINE_integer("diffkde_samples", 200, "Upsampled points per utterance (paper: 200).")
flags.DEFINE_enum("diffkde_t_gradient", "implicit", ["implicit", "stop"],
                  "Gradient through the KDE bandwidth t*: implicit-function or none.")
flags.DEFINE_enum("diffkde_train_dtype", "auto", ["auto", "float16", "float32", "float64"],
                  "DiffKDE compute dtype in training; auto = float16 under --mixed_precision (the "
                  "paper), else float32. Evaluation always uses float64 (the paper).")
flags.DEFINE_integer("hard_kde_grid_size", 512, "Grid of the hard-histogram KDE of the "
                     "predictions, the Task 1 ablation (section 4.2; objective task1 only; the "
                     "ground truth's 512); 0 skips it.")
flags.DEFINE_integer("per_annotator_min_ratings", 5, "Annotators with fewer test ratings are "
                     "left out of the mean per-annotator CCC.")
flags.DEFINE_integer("checkpoint_every_batches", 0, "Also checkpoint every N batches (a killed "
                     "run resumes mid-epoch); 0: at epoch ends only.")
flags.DEFINE_integer("image_utterances", 8, "Validation utterances drawn in TensorBoard as "
                     "predicted vs ground-truth distributions (0: none).")
if "export" not in FLAGS:
  flags.DEFINE_bool("export", True, "Write the SavedModel.")
flags.DEFINE_string("wav2vec2_model_dir", "", "Local wav2vec2 model directory: with --features "
                    "from {wav2vec2, bert}, the SavedModel also gets predict_waveform.")
flags.DEFINE_string("bert_model_dir", "", "Local BERT model directory (see wav2vec2_model_dir).")
flags.DEFINE_integer("verbose", 2, "Keras fit verbosity (0 silent, 1 progress bar, 2 per epoch).")


def _data_dir_and_features():
  """(data_dir, feature names): the demo with its own features when --data_dir is unset."""
  from tfser.data import pipeline  # pylint: disable=g-import-not-at-top
  features = tuple(FLAGS.features)
  if FLAGS.data_dir:
    return FLAGS.data_dir, features
  from data_prep.prepare import ensure_demo_data  # pylint: disable=g-import-not-at-top
  data_dir = ensure_demo_data(FLAGS.demo_dir, features=("is10",), seed=0)
  try:
    available = pipeline.load_manifest(data_dir, FLAGS.corpus).get("features") or {}
  except FileNotFoundError as e:
    raise ValueError(f"--corpus={FLAGS.corpus}: {e}") from None
  if not all(name in available for name in features):
    fallback = tuple(sorted(available))
    logging.warning("demo corpora have features %s only; using them instead of --features=%s",
                    ",".join(fallback), ",".join(features))
    features = fallback
  return data_dir, features


def config_from_flags():
  """The AnnotatorsConfig of the parsed flags (ValueError naming the flag when one is bad)."""
  from tfser.experiments import annotators  # pylint: disable=g-import-not-at-top
  from tfser.data import pipeline  # pylint: disable=g-import-not-at-top
  data_dir, features = _data_dir_and_features()
  for flag, corpora in (("corpus", [FLAGS.corpus]), ("zero_shot", FLAGS.zero_shot)):
    for corpus in corpora:
      try:
        pipeline.load_manifest(data_dir, corpus)
      except (FileNotFoundError, ValueError) as e:
        raise ValueError(f"--{flag}={corpus}: {e}") from None
  objective = FLAGS.objective
  if FLAGS.model == "baseline":
    objective = "baseline"
  elif objective == "baseline":
    raise ValueError(f"--objective=baseline needs --model=baseline (got --model={FLAGS.model}); "
                     "MT and one-hot train task1 or task1+2")
  return annotators.AnnotatorsConfig(
      model=FLAGS.model, objective=objective, corpus=FLAGS.corpus, data_dir=data_dir,
      out_dir=FLAGS.out_dir, zero_shot_corpora=tuple(FLAGS.zero_shot), feature_names=features,
      standardize_features=FLAGS.standardize_features, seed=FLAGS.seed,
      gt_seed=None if FLAGS.gt_seed < 0 else FLAGS.gt_seed, min_ratings=FLAGS.min_ratings,
      batch_size=FLAGS.batch_size, hidden_units=FLAGS.hidden_units,
      shared_layers=FLAGS.shared_layers, branch_layers=FLAGS.branch_layers,
      dropout=FLAGS.dropout, out_bins=int(FLAGS.out_bins), learning_rate=FLAGS.learning_rate,
      momentum=FLAGS.momentum, lr_factor=FLAGS.lr_factor, lr_patience=FLAGS.lr_patience,
      early_stopping_patience=FLAGS.early_stopping_patience, min_epochs=FLAGS.min_epochs,
      max_epochs=FLAGS.max_epochs, restore_best_weights=FLAGS.restore_best_weights,
      diffkde_grid_size=FLAGS.diffkde_grid_size, diffkde_sigma=FLAGS.diffkde_sigma,
      diffkde_samples=FLAGS.diffkde_samples, diffkde_t_gradient=FLAGS.diffkde_t_gradient,
      diffkde_train_dtype=FLAGS.diffkde_train_dtype,
      hard_kde_grid_size=FLAGS.hard_kde_grid_size,
      per_annotator_min_ratings=FLAGS.per_annotator_min_ratings, jit=FLAGS.jit,
      mixed_precision=FLAGS.mixed_precision, deterministic=FLAGS.deterministic,
      checkpoint_every_batches=FLAGS.checkpoint_every_batches,
      image_utterances=FLAGS.image_utterances, export=FLAGS.export, verbose=FLAGS.verbose)


def _encoders(features):
  """In-graph encoders for predict_waveform, when every feature has one and its dir is given."""
  dirs = {"wav2vec2": FLAGS.wav2vec2_model_dir, "bert": FLAGS.bert_model_dir}
  if not features or not all(dirs.get(name) for name in features):
    return None
  from tfser.layers import encoders  # pylint: disable=g-import-not-at-top
  built = {}
  if "wav2vec2" in features:
    built["wav2vec2"] = encoders.Wav2Vec2Encoder(model_path=dirs["wav2vec2"])
  if "bert" in features:
    built["bert"] = encoders.BertCLSEncoder(model_path=dirs["bert"])
  return built


def main():
  from tfser.experiments import annotators  # pylint: disable=g-import-not-at-top
  try:
    config = config_from_flags()
  except ValueError as e:
    raise SystemExit(f"tfser.launch --task=annotators: {e}") from None
  common.prepare_out_dir()  # issue 11 hook: writable --out_dir; --restart clears its run
  logging.info("annotators run: %s", config)
  names = {f.name for module in (__name__, common.__name__)
           for f in FLAGS.get_flags_for_module(module)} | {"max_epochs", "export"}
  flags_used = {name: FLAGS[name].value for name in sorted(names) if name in FLAGS}
  results = annotators.run(config, flags_used=flags_used, encoders=_encoders(config.feature_names))
  summary = {split: results[split] for split in ("validation", "test")}
  summary["zero_shot"] = results["zero_shot"]
  print(json.dumps(summary, indent=2))
  print(f"results: {os.path.join(os.path.abspath(config.out_dir), 'results.json')}")

