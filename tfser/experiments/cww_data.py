"""Where the corpus-wise-weights trainer gets its data: TFRecords (tfser.data) or arrays.

A source answers: which corpora exist (``list_corpora``), their feature width
(``feature_dim``), their speaker ids (``speakers``), how many utterances a CWW split has
(``split_size``), a labelled corpus split as a batched dataset of dicts ``{"features" [B, F]
float32, "label" [B] int32, "votes" [B, C] float32}`` (``labelled``; ``speakers=`` keeps only
those speakers' utterances, e.g. of split "all" for a within-corpus speaker fold) and an
unlabelled corpus as an endless batched dataset of ``{"features"}`` (``unlabelled``). Features
are raw: the model normalises. ``PipelineSource`` reads what data_prep wrote through
``tfser.data.pipeline``; ``ArraySource`` serves in-memory arrays (tests, benchmarks, notebooks).
"""

from typing import Dict, Mapping, Optional, Sequence, Tuple

import numpy as np

import tfser  # noqa: F401  (Keras flavour before TensorFlow)
import tensorflow as tf

LABELLED_KEYS = ("features", "label", "votes")


def _labelled_only(batch):
  return {k: batch[k] for k in LABELLED_KEYS if k in batch}


class PipelineSource:
  """Corpora prepared by data_prep under ``data_dir`` (``<data_dir>/<corpus>/manifest.json``)."""

  def __init__(self, data_dir: str, feature_name: str = "is10"):
    from tfser.data import pipeline  # pylint: disable=g-import-not-at-top
    self._pipeline = pipeline
    self.data_dir = data_dir
    self.feature_name = feature_name

  def __repr__(self):
    return f"PipelineSource({self.data_dir!r}, feature_name={self.feature_name!r})"

  def list_corpora(self) -> Sequence[str]:
    return list(self._pipeline.list_corpora(self.data_dir))

  def feature_dim(self, corpus: str) -> int:
    manifest = self._pipeline.load_manifest(self.data_dir, corpus)
    features = manifest.get("features", {})
    if self.feature_name not in features:
      raise ValueError(f"corpus {corpus} in {self.data_dir} has no {self.feature_name!r} features "
                       f"(it has: {sorted(features) or 'none'}); re-run data_prep.prepare with "
                       f"--features={self.feature_name}")
    return int(features[self.feature_name]["dim"])

  def split_size(self, corpus: str, split: str) -> int:
    """Utterances in a CWW split by the manifest (0: the split is absent)."""
    manifest = self._pipeline.load_manifest(self.data_dir, corpus)
    return self._pipeline.split_size(manifest, split, "cww_split_counts")

  def speakers(self, corpus: str) -> Sequence[str]:
    """The corpus's speaker ids, sorted (the manifest's; "" for no speaker left out)."""
    manifest = self._pipeline.load_manifest(self.data_dir, corpus)
    return sorted(s for s in manifest.get("speakers") or [] if s)

  def labelled(self, corpus: str, split: str, *, batch_size: int, shuffle: bool = False,
               seed: int = 0, repeat: bool = False, drop_remainder: bool = False,
               speakers: Optional[Sequence[str]] = None) -> tf.data.Dataset:
    ds = self._pipeline.cww_dataset(self.data_dir, corpus, split, feature_name=self.feature_name,
                                    batch_size=batch_size, shuffle=shuffle, seed=seed,
                                    repeat=repeat, drop_remainder=drop_remainder,
                                    speakers=speakers)
    return ds.map(_labelled_only)

  def unlabelled(self, corpus: str, *, batch_size: int, seed: int = 0) -> tf.data.Dataset:
    ds = self._pipeline.unlabelled_dataset(self.data_dir, corpus, feature_name=self.feature_name,
                                           batch_size=batch_size, shuffle=True, seed=seed,
                                           repeat=True, normalizer=None)
    return ds.map(lambda b: {"features": b["features"]})


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


def scan_labelled(dataset: tf.data.Dataset, num_classes: int = 4):
  """One pass over a finite labelled dataset: (class counts ``[C]``, feature sum ``[F]``, sum of
  squares ``[F]``), sums in float64. Checks labels lie in [0, C)."""
  counts = np.zeros([num_classes], np.int64)
  total = squares = None
  for batch in dataset:
    labels = np.asarray(batch["label"]).reshape(-1)
    if labels.size and (labels.min() < 0 or labels.max() >= num_classes):
      raise ValueError(f"labels outside [0, {num_classes}): {sorted(set(labels.tolist()))}")
    counts += np.bincount(labels, minlength=num_classes)[:num_classes]
    x = np.asarray(batch["features"], np.float64)
    total = x.sum(0) if total is None else total + x.sum(0)
    squares = (x * x).sum(0) if squares is None else squares + (x * x).sum(0)
  return counts, total, squares


def label_counts(dataset: tf.data.Dataset, num_classes: int = 4) -> np.ndarray:
  """Per-class counts ``[C]`` over a finite labelled dataset."""
  return scan_labelled(dataset, num_classes)[0]


def pooled_statistics(scans) -> Tuple[np.ndarray, np.ndarray]:
  """Mean and population std ``[F]`` (float32) of the union of scanned datasets."""
  n = sum(int(c.sum()) for c, _, _ in scans)
  total = sum(t for c, t, _ in scans if c.sum())
  squares = sum(q for c, _, q in scans if c.sum())
  mean = total / n
  var = np.maximum(squares / n - mean * mean, 0.0)
  return mean.astype(np.float32), np.sqrt(var).astype(np.float32)


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
      x = class_means[labels] + offset + rng.normal(0.0, noise, [m, dim])
      votes = None
      if k == 0:  # like CREMA-D, the first corpus has annotator votes (for soft labels)
        probs = np.full([m, num_classes], 0.4 / num_classes) + 0.6 * np.eye(num_classes)[labels]
        votes = np.stack([rng.multinomial(5, p) for p in probs]).astype(np.float32)
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
