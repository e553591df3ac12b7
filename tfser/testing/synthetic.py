"""Writes prepared corpora from in-memory utterances: a tiny stand-in for the data_prep writer.

Utterances -> sharded TFRecords + ``manifest.json`` in the layout of ``tfser/data/manifest.py``
(``<data_dir>/<corpus>/<split>-NNNNN-of-MMMMM.tfrecord``), without audio, feature extractors or
KDEs: the features and ground-truth distributions are given. The pipeline tests and
``bench/pipeline.py`` build their data sets with it, so neither depends on the real writer.
"""

import collections
import hashlib
import json
import math
import os
from typing import Dict, List, Optional, Sequence

import numpy as np

import tfser  # noqa: F401
import tensorflow as tf

from tfser.data import manifest as manifest_lib
from tfser.data import schema


def random_ground_truth(rng: np.random.Generator) -> Dict[int, np.ndarray]:
  """Random distributions per bins: {4: [GT_SEEDS, 16], 2: [GT_SEEDS, 4]}, rows summing to 1."""
  return {b: rng.dirichlet(np.ones(b * b), size=schema.GT_SEEDS) for b in schema.GT_BINS}


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
    examples = [
        schema.to_example(u, index, {n: f[i] for n, f in features.items()},
                          ground_truth[i] if ground_truth else None)
        for i, u in enumerate(utterances)]
  by_split = collections.defaultdict(list)
  for i, u in enumerate(utterances):
    by_split[u.split].append(i)
  shards = {}
  for split, members in sorted(by_split.items()):
    chunks = [c for c in np.array_split(np.asarray(members), shards_per_split) if len(c)]
    for k, chunk in enumerate(chunks):
      name = f"{split}-{k:05d}-of-{len(chunks):05d}.tfrecord"
      path = os.path.join(corpus_dir, name)
      with tf.io.TFRecordWriter(path) as w:
        for i in chunk:
          w.write(examples[i].SerializeToString())
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
