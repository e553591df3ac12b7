"""The annotators task's data: the training corpus's splits and the zero-shot corpora, as
``tfser.data.pipeline.annotator_dataset`` batches, with the optional feature standardisation.
"""

import dataclasses
from typing import Mapping, Optional, Tuple

import numpy as np

import tfser  # noqa: F401  (Keras flavour before TensorFlow)
import tensorflow as tf

from tfser.data import pipeline
from tfser.data import standardize as standardize_lib
from tfser.data import test_sets
from tfser.tasks.annotators.config import AnnotatorsConfig


@dataclasses.dataclass
class AnnotatorData:
  """What a run trains and tests on (datasets yield ``pipeline.annotator_dataset`` batches)."""
  train: tf.data.Dataset
  validation: tf.data.Dataset
  test: tf.data.Dataset
  num_annotators: int
  input_dim: int
  feature_names: Tuple[str, ...]
  zero_shot: Mapping[str, tf.data.Dataset] = dataclasses.field(default_factory=dict)
  feature_mean: Optional[np.ndarray] = None  # [input_dim]; applied already, kept for export
  feature_std: Optional[np.ndarray] = None
  annotators: Tuple[str, ...] = ()  # the corpus's annotator ids, by head index
  # What "test" and each zero-shot corpus are (tfser.data.test_sets), for results.json.
  test_sets: Mapping[str, object] = dataclasses.field(default_factory=dict)


def _standardizer(mean: np.ndarray, std: np.ndarray):
  mean = tf.constant(mean, tf.float32)
  std = tf.constant(std, tf.float32)

  def apply(batch):
    return dict(batch, features=standardize_lib.standardize(batch["features"], mean, std))
  return apply


def load_data(config: AnnotatorsConfig) -> AnnotatorData:
  """Builds the datasets of ``config`` from ``config.data_dir`` (see ``tfser.data.pipeline``).

  Raises ValueError naming the corpus and data directory for a corpus without individual
  ratings (no annotators in its manifest) or an empty split.
  """
  manifest = pipeline.load_manifest(config.data_dir, config.corpus)
  pipeline.check_ground_truth_settings(manifest, std_ddof=config.gt_std_ddof,
                                       where=f"corpus {config.corpus} in {config.data_dir}")
  annotators = tuple(manifest.get("annotators") or ())
  if config.model != "baseline" and not annotators:
    raise ValueError(f"--corpus={config.corpus}: {config.data_dir}/{config.corpus}/manifest.json "
                     "lists no annotators (a corpus without individual ratings cannot train "
                     "per-annotator models)")
  for split in ("train", "validation", "test"):
    if pipeline.split_size(manifest, split) == 0:
      raise ValueError(f"corpus {config.corpus} in {config.data_dir} has an empty {split!r} "
                       f"split (split_counts in its manifest.json: "
                       f"{manifest.get('split_counts')})")
  dims = pipeline.feature_dims(manifest, list(config.feature_names))
  input_dim = sum(dims.values())
  mean = std = None
  if config.standardize_features:
    means, stds = [], []
    for name in config.feature_names:
      m, s = pipeline.feature_statistics(config.data_dir, [config.corpus], name)
      means.append(m)
      stds.append(s)
    mean = np.concatenate(means).astype(np.float32)
    std = np.concatenate(stds).astype(np.float32)
    std = standardize_lib.safe_std(std).astype(np.float32)


  def dataset(corpus, split, train=False):
    ds = pipeline.annotator_dataset(
        config.data_dir, corpus, split, feature_names=config.feature_names,
        batch_size=config.batch_size, gt_bins=config.out_bins, gt_seed=config.effective_gt_seed,
        min_ratings=config.min_ratings, shuffle=train, seed=config.seed)
    if mean is not None:
      ds = ds.map(_standardizer(mean, std), num_parallel_calls=tf.data.AUTOTUNE,
                  deterministic=True)
    return ds

  zero_shot, zero_shot_sets = {}, {}
  for corpus in config.zero_shot_corpora:
    other = pipeline.load_manifest(config.data_dir, corpus)
    pipeline.check_ground_truth_settings(other, std_ddof=config.gt_std_ddof,
                                         where=f"zero-shot corpus {corpus} in {config.data_dir}")
    other_dims = pipeline.feature_dims(other, list(config.feature_names))
    if other_dims != dims:
      raise ValueError(f"zero-shot corpus {corpus}: features {other_dims} differ from the "
                       f"training corpus {config.corpus}'s {dims}")
    # The corpus's annotators test set (POD: Test1; IEM, MuSE: whole), defined in test_sets.
    test_set = test_sets.held_out_test_set("annotators", corpus)
    if config.zero_shot_split != "paper" and config.zero_shot_split != test_set.split:
      test_set = dataclasses.replace(
          test_set, split=config.zero_shot_split,
          name=f"{corpus} split {config.zero_shot_split!r} (--zero_shot_split)")
    zero_shot[corpus] = dataset(corpus, test_set.split)
    zero_shot_sets[corpus] = test_set.as_json()
  return AnnotatorData(
      train=dataset(config.corpus, "train", train=True),
      validation=dataset(config.corpus, "validation"), test=dataset(config.corpus, "test"),
      num_annotators=len(annotators), input_dim=input_dim,
      feature_names=tuple(config.feature_names), zero_shot=zero_shot, feature_mean=mean,
      feature_std=std, annotators=annotators,
      test_sets={"test": test_sets.in_corpus_test_set("annotators", config.corpus).as_json(),
                 "zero_shot": zero_shot_sets})
