"""Flags of the annotators_multi task -> AnnotatorsMultiConfig -> tfser.tasks.annotators_multi
.train.run.

    python -m tfser.launch --task=annotators_multi --holdout=IEM --model=mt --objective=task1+2

Trains on every dimensional corpus of --data_dir except --holdout (or --training_corpora): one
minibatch per corpus per step with CWW corpus weights (--weighting=cww, --fit_metric,
--lambda_w) or every weight 1 (--weighting=equal), or the corpora merged into one shuffled
stream (--weighting=merged); tests the holdout zero-shot. --preset as the annotators task
(--preset=synthetic_demo for the demo). Without --data_dir the
embedded demo (IMP, POD, IEM stand-ins; IS10 features) is prepared under --demo_dir and
--features falls back to its IS10. The flags are generated from AnnotatorsMultiConfig (the
annotators task's settings and defaults plus the corpus weighting; ``tfser.core.flags``).
"""

import json
import os

from absl import flags
from absl import logging

from tfser.core import flags as config_flags
from tfser.launchers import common
from tfser.tasks.annotators_multi.config import AnnotatorsMultiConfig
from tfser.tasks.annotators_multi.config import NO_DISTRIBUTE

FLAGS = flags.FLAGS

config_flags.define_flags(AnnotatorsMultiConfig, module_name=__name__)
for _name in ("wav2vec2_model_dir", "bert_model_dir"):
  if _name not in FLAGS:
    flags.DEFINE_string(_name, "", f"Local {_name.split('_')[0]} model directory: with "
                        "--features from {wav2vec2, bert} (and both directories when both are "
                        "used), the SavedModel also gets predict_waveform.")


def config_from_flags() -> AnnotatorsMultiConfig:
  """The config of the parsed flags (ValueError naming the flag when one is bad)."""
  if FLAGS.distribute != "none":  # before the demo is prepared
    raise ValueError(NO_DISTRIBUTE.format(FLAGS.distribute))
  from tfser.data import pipeline  # pylint: disable=g-import-not-at-top
  from tfser.tasks.annotators_multi import data as data_lib  # pylint: disable=g-import-not-at-top
  features = tuple(FLAGS.features)
  data_dir = FLAGS.data_dir or common.demo_data_dir(FLAGS.demo_dir, features=("is10",))
  try:
    holdout = pipeline.load_manifest(data_dir, FLAGS.holdout)
  except (FileNotFoundError, ValueError) as e:
    raise ValueError(f"--holdout={FLAGS.holdout}: {e}") from None
  if not FLAGS.data_dir:
    available = holdout.get("features") or {}
    if not all(name in available for name in features):
      logging.warning("demo corpora have features %s only; using them instead of --features=%s",
                      ",".join(sorted(available)), ",".join(features))
      features = tuple(sorted(available))
  try:
    corpora = data_lib.training_corpora(data_dir, FLAGS.holdout, tuple(FLAGS.training_corpora))
  except FileNotFoundError as e:
    raise ValueError(f"--training_corpora={','.join(FLAGS.training_corpora)}: {e}") from None
  values = common.annotator_settings(
      config_flags.values_from_flags(AnnotatorsMultiConfig), data_dir,
      {"holdout": [FLAGS.holdout], "training_corpora": corpora})
  if values["model"] == "baseline":
    values["objective"] = "baseline"
  elif values["objective"] == "baseline":
    raise ValueError(f"--objective=baseline needs --model=baseline (got --model={FLAGS.model})")
  values.update(data_dir=data_dir, feature_names=features, training_corpora=corpora,
                out_dir=FLAGS.out_dir, seed=FLAGS.seed, batch_size=FLAGS.batch_size,
                jit=FLAGS.jit, mixed_precision=FLAGS.mixed_precision,
                deterministic=FLAGS.deterministic)
  return AnnotatorsMultiConfig(**values)


def main():
  from tfser.tasks.annotators_multi import train  # pylint: disable=g-import-not-at-top
  try:
    config = config_from_flags()
  except ValueError as e:
    raise SystemExit(f"tfser.launch --task=annotators_multi: {e}") from None
  common.prepare_out_dir()
  logging.info("annotators_multi run: %s", config)
  names = {f.name for module in (__name__, common.__name__)
           for f in FLAGS.get_flags_for_module(module)}
  flags_used = {name: FLAGS[name].value for name in sorted(names) if name in FLAGS}
  results = train.run(config, flags_used=flags_used, encoders=common.waveform_encoders(
      config.feature_names, {"wav2vec2": FLAGS.wav2vec2_model_dir, "bert": FLAGS.bert_model_dir}))
  print(json.dumps({"corpus_weights": results["corpus_weights"],
                    "zero_shot": results["zero_shot"],
                    "in_corpus_test": {c: r["test"] for c, r in results["in_corpus"].items()}},
                   indent=2))
  print(f"results: {os.path.join(os.path.abspath(config.out_dir), 'results.json')}")
