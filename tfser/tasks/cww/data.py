"""Where the corpus-wise-weights trainer gets its data: TFRecords (tfser.data) or arrays.

A source answers: which corpora exist (``list_corpora``), their feature width
(``feature_dim``), their speaker ids (``speakers``), how many utterances a CWW split has
(``split_size``), a labelled corpus split as a batched dataset of dicts ``{"features" [B, F]
float32, "label" [B] int32, "votes" [B, C] float32}`` (``labelled``; ``speakers=`` keeps only
those speakers' utterances, e.g. of split "all" for a within-corpus speaker fold) and an
unlabelled corpus as an endless batched dataset of ``{"features"}`` (``unlabelled``). Features
are raw: the model normalises. ``PipelineSource`` reads what data_prep wrote through
``tfser.data.pipeline``; ``tfser.testing.cww_arrays.ArraySource`` serves in-memory arrays
(tests, benchmarks, notebooks).
"""

from typing import Optional, Sequence, Tuple

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
