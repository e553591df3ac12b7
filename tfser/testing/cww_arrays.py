"""In-memory CWW corpora for tests and benchmarks: ``ArraySource`` and ``synthetic_corpora``.

``ArraySource`` serves numpy arrays through the same interface as
``tfser.tasks.cww.data.PipelineSource`` (the TFRecord source), so trainer tests exercise
the same code path without writing records; :func:`write_tfrecords` writes one as prepared
corpora for the tests that do. ``synthetic_corpora`` draws them with ``tfser.testing.synthetic``'s
generator.
"""

from typing import Dict, Mapping, Optional, Sequence, Tuple

import numpy as np

import tfser  # noqa: F401  (Keras flavour before TensorFlow)
import tensorflow as tf

from tfser.data import schema
from tfser.testing import synthetic


class ArraySource:
  """In-memory corpora: ``{corpus: {split: (features [n, F], labels [n], votes [n, C] or None[,
  speakers [n] str])}}``.

  ``unlabelled``: ``{corpus: features [n, F]}``. Split "all" is every split of a corpus. Without
  speaker ids every utterance's speaker is "" (no speaker), as in a record without one.
  Datasets are built exactly as the TFRecord pipeline's contract says (shuffle with a seed, then
  repeat, then batch), so trainer tests exercise the same code path.
  """

  def __init__(self, labelled: Mapping[str, Mapping[str, Tuple]],
               unlabelled: Optional[Mapping[str, np.ndarray]] = None, num_classes: int = 4):
    self.corpora = {}
    for corpus, splits in labelled.items():
      self.corpora[corpus] = {}
      for split, item in splits.items():
        features, labels = np.asarray(item[0], np.float32), np.asarray(item[1], np.int32)
        votes = item[2] if len(item) > 2 and item[2] is not None else np.zeros(
            [len(labels), num_classes], np.float32)
        speakers = np.asarray(item[3] if len(item) > 3 and item[3] is not None
                              else [""] * len(labels), str)
        if speakers.shape != labels.shape:
          raise ValueError(f"{corpus}/{split}: {len(speakers)} speaker ids for {len(labels)} "
                           "utterances")
        self.corpora[corpus][split] = (features, labels, np.asarray(votes, np.float32), speakers)
    self.unlabelled_features = {k: np.asarray(v, np.float32) for k, v in (unlabelled or {}).items()}

  def list_corpora(self) -> Sequence[str]:
    return sorted(set(self.corpora) | set(self.unlabelled_features))

  def feature_dim(self, corpus: str) -> int:
    if corpus in self.unlabelled_features:
      return int(self.unlabelled_features[corpus].shape[1])
    return int(next(iter(self.corpora[corpus].values()))[0].shape[1])

  def split_size(self, corpus: str, split: str) -> int:
    return int(len(self._arrays(corpus, split)[1]))

  def speakers(self, corpus: str) -> Sequence[str]:
    """The corpus's speaker ids over every split, sorted ("" left out)."""
    return sorted(set(self._arrays(corpus, "all")[3].tolist()) - {""})

  def _arrays(self, corpus: str, split: str):
    """(features [n, F], labels [n], votes [n, C], speakers [n]) of a split ("all": every one)."""
    splits = self.corpora[corpus]
    if split == "all":
      parts = [splits[s] for s in sorted(splits)]
      return tuple(np.concatenate([p[i] for p in parts]) for i in range(4))
    if split not in splits:
      dim = self.feature_dim(corpus)
      return (np.zeros([0, dim], np.float32), np.zeros([0], np.int32),
              np.zeros([0, next(iter(splits.values()))[2].shape[1]], np.float32),
              np.zeros([0], str))
    return splits[split]

  def labelled(self, corpus: str, split: str, *, batch_size: int, shuffle: bool = False,
               seed: int = 0, repeat: bool = False, drop_remainder: bool = False,
               speakers: Optional[Sequence[str]] = None) -> tf.data.Dataset:
    features, labels, votes, ids = self._arrays(corpus, split)
    if speakers is not None:  # as the pipeline: unknown ids are an error, [] keeps nothing
      unknown = sorted(set(speakers) - set(self.speakers(corpus)))
      if unknown:
        raise ValueError(f"corpus {corpus} has no speakers {', '.join(unknown)}")
      keep = np.isin(ids, list(speakers))
      features, labels, votes = features[keep], labels[keep], votes[keep]
    ds = tf.data.Dataset.from_tensor_slices({"features": features, "label": labels,
                                             "votes": votes})
    if shuffle:
      ds = ds.shuffle(max(len(labels), 1), seed=seed, reshuffle_each_iteration=True)
    if repeat:
      ds = ds.repeat()
    return ds.batch(batch_size, drop_remainder=drop_remainder).prefetch(2)

  def unlabelled(self, corpus: str, *, batch_size: int, seed: int = 0) -> tf.data.Dataset:
    features = self.unlabelled_features[corpus]
    ds = tf.data.Dataset.from_tensor_slices({"features": features})
    return ds.shuffle(len(features), seed=seed).repeat().batch(batch_size, drop_remainder=True)


def synthetic_speakers(corpus: str) -> Tuple[str, ...]:
  """Speaker ids of a synthetic corpus, shaped like the real corpora's (and the demo's).

  IEM: ``Ses01F`` .. ``Ses05M`` (5 sessions x 2); IMP: ``F01`` .. ``M06`` (6 x 2); CRE: 12 actors
  ``1001`` ..; any other corpus: 8 speakers ``<corpus>-s0`` ...
  """
  if corpus == "IEM":
    return tuple(f"Ses{s:02d}{g}" for s in range(1, 6) for g in "FM")
  if corpus == "IMP":
    return tuple(f"{g}{s:02d}" for s in range(1, 7) for g in "FM")
  if corpus == "CRE":
    return tuple(str(1001 + i) for i in range(12))
  return tuple(f"{corpus}-s{i}" for i in range(8))


def synthetic_corpora(corpora: Sequence[str] = ("CRE", "IEM", "IMP", "POD"), *,
                      dim: int = 1582, sizes: Optional[Dict[str, int]] = None,
                      unlabelled: Optional[str] = "LIBRI", num_classes: int = 4,
                      seed: int = 0) -> ArraySource:
  """Small random corpora with class structure and a per-corpus shift (for tests and benches).

  Each corpus has class means shared across corpora plus a corpus-specific offset and noise
  level, so corpora differ in difficulty (what CWW reacts to). Splits: train/validation, and
  test for the last corpus (like POD). Speakers (:func:`synthetic_speakers`) take turns within
  every split, so each speaker has utterances in each split (a speaker fold spans the splits).
  """
  rng = np.random.default_rng(seed)
  sizes = dict(sizes or {})
  class_means = rng.normal(0.0, 1.0, [num_classes, dim])
  labelled = {}
  for k, corpus in enumerate(corpora):
    n = sizes.get(corpus, 160)
    offset = rng.normal(0.0, 1.0, [dim])
    noise = 1.0 + 1.5 * k  # later corpora are harder
    splits = {}
    for split, frac in (("train", 0.6), ("validation", 0.2), ("test", 0.2)):
      if split == "test" and k != len(corpora) - 1:
        continue
      m = max(int(n * frac), num_classes)
      labels = rng.integers(0, num_classes, m).astype(np.int32)
      x = synthetic.class_features(rng, labels, class_means, offset, noise)
      # Like CREMA-D, the first corpus has annotator votes (for soft labels).
      votes = synthetic.class_votes(rng, labels, num_classes) if k == 0 else None
      # Speakers assigned without the generator, so the features and labels do not depend on it.
      speakers = synthetic_speakers(corpus)
      splits[split] = (x.astype(np.float32), labels, votes,
                       [speakers[i % len(speakers)] for i in range(m)])
    labelled[corpus] = splits
  extra = {}
  if unlabelled:
    extra[unlabelled] = (rng.normal(0.0, 1.0, [max(sizes.get(unlabelled, 128), 32), dim])
                         + class_means[0]).astype(np.float32)
  return ArraySource(labelled, extra, num_classes)


def write_tfrecords(source: ArraySource, data_dir: str) -> None:
  """Writes an ArraySource's corpora as prepared corpora (``synthetic.write_corpus``, one shard
  per split): features "is10", the votes as categorical ratings of raters ``r0`` ..."""
  for corpus, splits in source.corpora.items():
    utterances, features = [], []
    for split, (x, y, votes, speakers) in sorted(splits.items()):
      for i in range(len(y)):
        ratings = [schema.Rating(f"r{k}", category=schema.CLASS_NAMES[c])
                   for k, c in enumerate(np.repeat(np.arange(4), votes[i].astype(int)))]
        utterances.append(schema.Utterance(
            corpus=corpus, utterance_id=f"{corpus}_{split}_{i}", speaker=speakers[i], split=split,
            cww_split=split, label=schema.CLASS_NAMES[y[i]], label_source="intended",
            ratings=ratings))
        features.append(x[i])
    synthetic.write_corpus(data_dir, corpus, utterances, {"is10": np.stack(features)},
                           shards_per_split=1)
  for corpus, x in source.unlabelled_features.items():
    utterances = [schema.Utterance(corpus=corpus, utterance_id=f"{corpus}_{i}", split="all",
                                   cww_split="all") for i in range(len(x))]
    synthetic.write_corpus(data_dir, corpus, utterances, {"is10": x}, shards_per_split=1)
