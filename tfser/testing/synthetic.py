"""Generated corpora for tests and benchmarks: one generator of features and ratings, one writer.

The generator (numpy; every function draws from the caller's ``np.random.Generator`` in a fixed
order, so a seed gives the same corpus):
  * :func:`class_features`: features with class structure plus a per-corpus shift and noise level
    (corpora differing in difficulty: what CWW reacts to);
  * :func:`class_votes`: categorical votes that mostly agree with the label (soft labels);
  * :func:`latent_affect`: (activation, valence) as a fixed nonlinear function of the features;
  * :func:`annotator_ratings`: each annotator's personal bias and noise around the latent affect,
    a few annotators per utterance;
  * :func:`rating_distribution` (Zhang et al.'s ground truth of the ratings, with kde-diffusion)
    and :func:`random_ground_truth` (any valid distributions).
``tfser.testing.cww_arrays`` and ``tfser.testing.annotator_arrays`` configure it into in-memory
corpora for the two tasks.

The writer, :func:`write_corpus`: utterances -> sharded TFRecords + ``manifest.json`` in the layout
of ``tfser/data/manifest.py`` (records from ``tfser.data.schema.encode``, as data_prep writes
them), without audio, feature extractors or KDEs: the features and ground-truth distributions are
given. The pipeline tests and ``bench/pipeline.py`` build their data sets with it, so neither
depends on the data_prep writer.
"""

import collections
import hashlib
import json
import math
import os
from typing import Dict, List, Optional, Sequence, Tuple

import kde_diffusion
import numpy as np

import tfser  # noqa: F401
import tensorflow as tf

from tfser.data import manifest as manifest_lib
from tfser.data import schema


# -------------------------------------------------------------------------------------------------
# The generator.

def class_features(rng: np.random.Generator, labels: np.ndarray, class_means: np.ndarray,
                   offset: np.ndarray, noise: float) -> np.ndarray:
  """Features ``[n, D]`` (float64): the label's class mean ``class_means [C, D]`` plus the
  corpus's ``offset [D]`` plus Gaussian noise of standard deviation ``noise``."""
  return class_means[labels] + offset + rng.normal(0.0, noise, [len(labels), class_means.shape[1]])


def class_votes(rng: np.random.Generator, labels: np.ndarray, num_classes: int, raters: int = 5,
                agreement: float = 0.6) -> np.ndarray:
  """Vote counts ``[n, num_classes]`` (float32) of ``raters`` raters per utterance: each votes
  for the label with probability ``agreement`` + (1 - agreement) / C, else for another class."""
  # round: 1 - 0.6 is not the double nearest 0.4, which the recorded corpora were drawn with.
  probs = (np.full([len(labels), num_classes], round(1.0 - agreement, 9) / num_classes)
           + agreement * np.eye(num_classes)[labels])
  return np.stack([rng.multinomial(raters, p) for p in probs]).astype(np.float32)


def latent_affect(features: np.ndarray, mixing: np.ndarray, gain: float = 1.0) -> np.ndarray:
  """(activation, valence) ``[n, 2]`` in (-1, 1): ``tanh(gain * features @ mixing)``, mixing
  ``[D, 2]``."""
  return np.tanh(gain * features @ mixing)


def annotator_ratings(rng: np.random.Generator, latent: np.ndarray, bias: np.ndarray,
                      max_raters: int, noise: float, min_raters: int = 3
                      ) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
  """Ratings of ``latent [n, 2]`` by ``min_raters``..``max_raters`` distinct annotators each.

  bias: ``[A, 2]``, annotator a's personal offset; each rating adds Gaussian noise (std
  ``noise``) and is clipped to [-1, 1]. Returns (annotator ids ``[n, R]`` int32, mask ``[n, R]``
  bool, ratings ``[n, R, 2]`` zero where masked), R = max_raters.
  """
  n = len(latent)
  raters = rng.integers(min_raters, max_raters + 1, size=n)
  ids = np.zeros([n, max_raters], np.int32)
  mask = np.zeros([n, max_raters], bool)
  for i in range(n):
    ids[i, :raters[i]] = rng.choice(len(bias), raters[i], replace=False)
    mask[i, :raters[i]] = True
  ratings = latent[:, None, :] + bias[ids] + rng.normal(scale=noise, size=[n, max_raters, 2])
  return ids, mask, np.clip(ratings, -1, 1) * mask[..., None]


def rating_distribution(ratings: np.ndarray, rng: np.random.Generator, grid: int,
                        samples: int = 200) -> np.ndarray:
  """Zhang et al.'s 4x4 distribution ``[16]`` of one utterance's ratings ``[n, 2]``, with
  kde-diffusion (the reference implementation).

  Random non-empty subsets (size uniform on 1..n), their mean plus U(-std/2, std/2) noise,
  clamped; kde_diffusion.kde2d on the grid; 4x4 block means, normalised.
  """
  n = len(ratings)
  sizes = rng.integers(1, n + 1, samples)
  chosen = rng.random([samples, n]).argsort(1).argsort(1) < sizes[:, None]  # first k of a shuffle
  means = chosen @ ratings / sizes[:, None]
  half = ratings.std(0) / 2 + 1e-12
  points = np.clip(means + rng.uniform(-half, half, size=means.shape), -1, 1)
  try:
    density = kde_diffusion.kde2d(points[:, 0], points[:, 1], n=grid,
                                  limits=((-1, 1), (-1, 1)))[0]
  except ValueError:  # "did not converge": fall back to the histogram
    density = np.histogram2d(points[:, 0], points[:, 1], bins=grid, range=[[-1, 1], [-1, 1]])[0]
  density = np.maximum(density, 1e-12)
  blocks = density.reshape(4, grid // 4, 4, grid // 4).mean(axis=(1, 3)).ravel()
  return blocks / blocks.sum()


def stored_ground_truth(distribution_4x4: np.ndarray) -> Dict[int, np.ndarray]:
  """A record's ground truth from one 4x4 distribution ``[16]``: {4: [GT_SEEDS, 16], 2:
  [GT_SEEDS, 4]} (the 2x2 bins are sums of 2x2 blocks of the 4x4; the same for every seed)."""
  four = np.asarray(distribution_4x4, np.float64).reshape(4, 4)
  two = four.reshape(2, 2, 2, 2).sum(axis=(1, 3))
  return {4: np.tile(four.ravel(), (schema.GT_SEEDS, 1)),
          2: np.tile(two.ravel(), (schema.GT_SEEDS, 1))}


def random_ground_truth(rng: np.random.Generator) -> Dict[int, np.ndarray]:
  """Random distributions per bins: {4: [GT_SEEDS, 16], 2: [GT_SEEDS, 4]}, rows summing to 1."""
  return {b: rng.dirichlet(np.ones(b * b), size=schema.GT_SEEDS) for b in schema.GT_BINS}


# -------------------------------------------------------------------------------------------------
# The writer.

def _stats(matrix: np.ndarray, rows: np.ndarray) -> dict:
  """Population mean/std of the selected rows, as the writer stores them (None if no rows)."""
  if not rows.any():
    return {"count": 0, "mean": None, "std": None}
  return {"count": int(rows.sum()), "mean": matrix[rows].mean(0).tolist(),
          "std": matrix[rows].std(0).tolist()}


def write_corpus(data_dir: str, corpus: str, utterances: Sequence[schema.Utterance],
                 features: Dict[str, np.ndarray],
                 ground_truth: Optional[List[Optional[Dict[int, np.ndarray]]]] = None,
                 shards_per_split: int = 2, manifest_version: int = schema.SCHEMA_VERSION,
                 examples: Optional[List[tf.train.Example]] = None) -> dict:
  """Writes one corpus; returns its manifest.

  features: name -> ``[N, D]`` aligned with ``utterances``. ground_truth: per utterance, or None.
  examples: already built records to write instead of serialising ``utterances`` (for corrupt
  records); the manifest is still computed from ``utterances``.
  """
  corpus_dir = os.path.join(data_dir, corpus)
  os.makedirs(corpus_dir, exist_ok=True)
  annotators = sorted({r.annotator for u in utterances for r in u.ratings})
  index = {a: i for i, a in enumerate(annotators)}
  if examples is None:
    records = [schema.encode(u, index, {n: f[i] for n, f in features.items()},
                             ground_truth[i] if ground_truth else None)
               for i, u in enumerate(utterances)]
  else:
    records = [e.SerializeToString(deterministic=True) for e in examples]
  by_split = collections.defaultdict(list)
  for i, u in enumerate(utterances):
    by_split[u.split].append(i)
  shards = {}
  for split, members in sorted(by_split.items()):
    chunks = [c for c in np.array_split(np.asarray(members), shards_per_split) if len(c)]
    for k, chunk in enumerate(chunks):
      name = manifest_lib.shard_name(split, k, len(chunks))
      path = os.path.join(corpus_dir, name)
      with tf.io.TFRecordWriter(path) as w:
        for i in chunk:
          w.write(records[i])
      with open(path, "rb") as f:
        shards[name] = {"sha256": hashlib.sha256(f.read()).hexdigest(), "records": len(chunk),
                        "split": split}
  train = np.asarray([u.split == "train" for u in utterances])
  cww_train = np.asarray([u.cww_split == "train" for u in utterances])
  manifest = {
      "schema_version": manifest_version,
      "corpus": corpus,
      "demo": False,
      "utterances": len(utterances),
      "speakers": sorted({u.speaker for u in utterances}),
      "annotators": annotators,
      "class_counts": dict(collections.Counter(u.label for u in utterances if u.label)),
      "split_counts": dict(collections.Counter(u.split for u in utterances)),
      "cww_split_counts": dict(collections.Counter(u.cww_split for u in utterances)),
      "dropped": {},
      "features": {n: dict(_stats(f, train), dim=int(f.shape[1]), cww_train=_stats(f, cww_train))
                   for n, f in features.items()},
      "ground_truth": {"seeds": schema.GT_SEEDS, "bins": list(schema.GT_BINS), "grid": 512},
      "shards": shards,
  }
  with open(os.path.join(corpus_dir, manifest_lib.MANIFEST), "w") as f:
    json.dump(manifest, f, allow_nan=True)
  return manifest


def rated_utterance(corpus: str, uid: str, ratings, split: str = "train", label: str = "neutral",
                    cww_split: Optional[str] = None, consensus=(math.nan, math.nan)):
  """An utterance with ratings given as (annotator, activation, valence[, category]) tuples."""
  return schema.Utterance(
      corpus=corpus, utterance_id=uid, speaker="s1", split=split,
      cww_split=cww_split or split, label=label, label_source="majority",
      activation=consensus[0], valence=consensus[1],
      ratings=[schema.Rating(r[0], r[1], r[2], category=r[3] if len(r) > 3 else "")
               for r in ratings])
