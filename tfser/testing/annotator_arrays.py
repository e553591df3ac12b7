"""A tiny synthetic annotator corpus in memory, shaped as tfser.data.pipeline.annotator_dataset's
batches, for fast model / trainer tests without data_prep; and the same corpus as TFRecords.

Each utterance has a latent (activation, valence) that is a fixed nonlinear function of its
features; each annotator adds a personal bias and noise; every utterance is rated by 3 to
``max_raters`` of the corpus's annotators. Consensus = mean rating; ground truth = Zhang et al.'s
distribution of the ratings (200 upsampled points, kde_diffusion.kde2d on the grid, 4x4 block
means). Drawn by ``tfser.testing.synthetic``'s generator.
"""

import dataclasses
from typing import Dict

import numpy as np

import tfser  # noqa: F401
import tensorflow as tf

from tfser.testing import synthetic


@dataclasses.dataclass
class SyntheticCorpus:
  arrays: Dict[str, Dict[str, np.ndarray]]  # split -> key -> array
  num_annotators: int
  input_dim: int

  def dataset(self, split, batch_size=32, shuffle=False, seed=0):
    data = self.arrays[split]
    ds = tf.data.Dataset.from_tensor_slices(data)
    if shuffle:
      ds = ds.shuffle(len(data["features"]), seed=seed, reshuffle_each_iteration=True)
    return ds.batch(batch_size)


def make_corpus(num_annotators=20, input_dim=16, sizes=(("train", 256), ("validation", 64),
                                                        ("test", 64)),
                max_raters=6, seed=0, noise=0.15, gt_grid=128) -> SyntheticCorpus:
  """A corpus of ``sizes`` ((split, utterances), ...); features ``[n, input_dim]`` float32,
  annotator ids / mask ``[n, max_raters]``, ratings ``[n, max_raters, 2]``, consensus ``[n, 2]``,
  ground truth ``[n, 16]`` (4x4 bins of a ``gt_grid`` KDE)."""
  rng = np.random.default_rng(seed)
  mixing = rng.normal(size=[input_dim, 2]) / np.sqrt(input_dim)
  bias = rng.normal(scale=0.25, size=[num_annotators, 2])
  arrays = {}
  for split, n in sizes:
    features = rng.normal(size=[n, input_dim]).astype(np.float32)
    latent = synthetic.latent_affect(features, mixing, gain=1.5)
    ids, mask, ratings = synthetic.annotator_ratings(rng, latent, bias, max_raters, noise)
    consensus = ratings.sum(1) / mask.sum(1)[:, None]
    ground_truth = np.stack([synthetic.rating_distribution(ratings[i, mask[i]], rng, gt_grid)
                             for i in range(n)])
    arrays[split] = {
        "features": features, "annotator_ids": ids, "ratings": ratings.astype(np.float32),
        "rating_mask": mask, "consensus": consensus.astype(np.float32),
        "ground_truth": ground_truth.astype(np.float32),
        "utterance_id": np.array([f"{split}_{i:04d}".encode() for i in range(n)])}
  return SyntheticCorpus(arrays, num_annotators, input_dim)


def write_tfrecords(data_dir: str, corpus_name: str, corpus: SyntheticCorpus,
                    feature_name: str = "synthetic") -> dict:
  """Writes ``corpus`` as a prepared corpus ``<data_dir>/<corpus_name>`` (one shard per split):
  utterance ids ``<corpus_name>_<split>_<i>``, annotators ``a<id>``, the features under
  ``feature_name``, the ground truth the same for every seed. Returns the manifest."""
  utterances, features, truth = [], [], []
  for split, arrays in corpus.arrays.items():
    for i in range(len(arrays["features"])):
      rated = np.flatnonzero(arrays["rating_mask"][i])
      ratings = [(f"a{arrays['annotator_ids'][i, k]}", *map(float, arrays["ratings"][i, k]))
                 for k in rated]
      utterances.append(synthetic.rated_utterance(
          corpus_name, f"{corpus_name}_{split}_{i}", ratings, split=split,
          consensus=tuple(map(float, arrays["consensus"][i]))))
      truth.append(synthetic.stored_ground_truth(arrays["ground_truth"][i]))
    features.append(arrays["features"])
  return synthetic.write_corpus(data_dir, corpus_name, utterances,
                                {feature_name: np.concatenate(features)}, truth,
                                shards_per_split=1)
