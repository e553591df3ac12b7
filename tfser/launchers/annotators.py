"""Flags of the annotators task -> AnnotatorsConfig -> tfser.tasks.annotators.train.run.

    python -m tfser.launch --task=annotators --model=mt --objective=task1+2 --corpus=IMP --seed=0

Without --data_dir the embedded demo corpora (CRE, IEM, IMP, POD; IS10 features only) are
prepared under --demo_dir on first use; --features then falls back to the features the demo's
manifest has (IS10), since the demo has no wav2vec2/BERT embeddings. With --data_dir a missing
feature is an error. Every default is the paper's; ``--helpfull`` lists them all. The flags are
generated from AnnotatorsConfig's fields (``tfser/tasks/annotators/config.py``, each declared
once with its help text and default; ``tfser.core.flags``).
"""

import json
import os

from absl import flags
from absl import logging

from tfser.core import flags as config_flags
from tfser.launchers import common  # noqa: F401  (shared flags: data_dir, out_dir, seed, ...)
from tfser.tasks.annotators.config import AnnotatorsConfig

FLAGS = flags.FLAGS

config_flags.define_flags(AnnotatorsConfig, module_name=__name__)
flags.DEFINE_string("wav2vec2_model_dir", "", "Local wav2vec2 model directory: with --features "
                    "from {wav2vec2, bert}, the SavedModel also gets predict_waveform.")
flags.DEFINE_string("bert_model_dir", "", "Local BERT model directory (see wav2vec2_model_dir).")


def _data_dir_and_features():
  """(data_dir, feature names): the demo with its own features when --data_dir is unset."""
  from tfser.data import pipeline  # pylint: disable=g-import-not-at-top
  features = tuple(FLAGS.features)
  if FLAGS.data_dir:
    return FLAGS.data_dir, features
  data_dir = common.demo_data_dir(FLAGS.demo_dir, features=("is10",))
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
  data_dir, features = _data_dir_and_features()
  values = common.annotator_settings(
      config_flags.values_from_flags(AnnotatorsConfig), data_dir,
      {"corpus": [FLAGS.corpus], "zero_shot": FLAGS.zero_shot})
  objective = values["objective"]
  if values["model"] == "baseline":
    objective = "baseline"
  elif objective == "baseline":
    raise ValueError(f"--objective=baseline needs --model=baseline (got --model={FLAGS.model}); "
                     "MT and one-hot train task1 or task1+2")
  values.update(objective=objective, data_dir=data_dir, feature_names=features,
                out_dir=FLAGS.out_dir, seed=FLAGS.seed, batch_size=FLAGS.batch_size,
                jit=FLAGS.jit, mixed_precision=FLAGS.mixed_precision,
                deterministic=FLAGS.deterministic)
  return AnnotatorsConfig(**values)


def _encoders(features):
  """In-graph encoders for predict_waveform, when every feature has one and its dir is given."""
  return common.waveform_encoders(
      features, {"wav2vec2": FLAGS.wav2vec2_model_dir, "bert": FLAGS.bert_model_dir})


def main():
  from tfser.core import distribute  # pylint: disable=g-import-not-at-top
  from tfser.tasks.annotators import train as annotators  # pylint: disable=g-import-not-at-top
  # Before anything starts the TensorFlow runtime (preparing the demo does): multi_worker
  # configures collective ops (tfser.core.distribute.strategy).
  strategy = distribute.strategy(FLAGS.distribute)
  try:
    config = config_from_flags()
  except ValueError as e:
    raise SystemExit(f"tfser.launch --task=annotators: {e}") from None
  # issue 11 hook: writable --out_dir; --restart clears its run (the chief only)
  common.prepare_out_dir(chief=distribute.worker_info(strategy)["chief"])
  logging.info("annotators run: %s", config)
  names = {f.name for module in (__name__, common.__name__)
           for f in FLAGS.get_flags_for_module(module)} | {"max_epochs", "export"}
  flags_used = {name: FLAGS[name].value for name in sorted(names) if name in FLAGS}
  results = annotators.run(config, flags_used=flags_used, encoders=_encoders(config.feature_names))
  summary = {split: results[split] for split in ("validation", "test")}
  summary["zero_shot"] = results["zero_shot"]
  summary.update(worker=results["worker"], weights_sha256=results["weights_sha256"])
  print(json.dumps(summary, indent=2))
  print(f"results: {os.path.join(os.path.abspath(config.out_dir), 'results.json')}")

