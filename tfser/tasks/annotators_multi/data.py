"""The annotators_multi task's data: the training stream over the training corpora, each
corpus's splits for the fit measure, validation and in-corpus tests, and the holdout's test set
(zero-shot).

Training stream (``MultiCorpusData.train``, ``{stream name: minibatch}`` per step): with
weighting "cww" or "equal" one minibatch per corpus per step (Algorithm 1 of the CWW paper,
``tfser.core.corpus_weights.zipped_corpus_stream``; stream names = the corpora); with "merged"
one shuffled stream of every corpus's training utterances
(``tfser.core.corpus_weights.merged_corpus_stream``; one stream named ``MERGED``).

Fit measure (``train_eval``): each corpus's training split unshuffled, or a fixed random subset
of ``fit_max_utterances`` of its utterances (drawn once from the run seed, in file order).

Annotator heads: one table for all training corpora. Corpus d's annotators take rows
``offset_d .. offset_d + A_d - 1`` in the training-corpus order (offset_d = sum of the earlier
corpora's annotator counts), named ``"<corpus>/<annotator id>"`` (``annotators``): an annotator of
one corpus is never another corpus's, even where two corpora reuse an id. The batches of
``tfser.data.pipeline.annotator_dataset`` carry each corpus's own indices; ``_namespaced`` adds
the offset, so the train step gathers the batch's rows sparsely, as the annotators task does.
Features are z-normalised with the training corpora's pooled training-split statistics.
"""

import dataclasses
from typing import Callable, Dict, Mapping, Optional, Sequence, Tuple

import numpy as np

import tfser  # noqa: F401  (Keras flavour before TensorFlow)
import tensorflow as tf

from tfser.core import corpus_weights as corpus_weights_lib
from tfser.data import pipeline
from tfser.data import standardize as standardize_lib
from tfser.data import test_sets
from tfser.tasks.annotators_multi.config import AnnotatorsMultiConfig

SEPARATOR = "/"
MERGED = corpus_weights_lib.MERGED  # the merged training stream's name


def namespaced_id(corpus: str, annotator: str) -> str:
  """The head table's name of ``annotator`` of ``corpus``: ``"<corpus>/<annotator>"``."""
  return f"{corpus}{SEPARATOR}{annotator}"


def is_dimensional(manifest) -> bool:
  """Whether a corpus has individual dimensional ratings: annotators, and ground-truth
  distributions for some utterance (the writer's ``ground_truth.utterances``; CREMA-D's
  categorical votes give none)."""
  return bool(manifest.get("annotators")) and (
      (manifest.get("ground_truth") or {}).get("utterances", 1) > 0)


def training_corpora(data_dir: str, holdout: str,
                     requested: Sequence[str] = ()) -> Tuple[str, ...]:
  """``requested``, or every dimensional corpus in data_dir (:func:`is_dimensional`) but holdout.

  Raises ValueError naming the corpus for one without individual ratings, and when none is left.
  """
  if requested:
    for corpus in requested:
      if not is_dimensional(pipeline.load_manifest(data_dir, corpus)):
        raise ValueError(f"--training_corpora: {data_dir}/{corpus}/manifest.json lists no "
                         "annotators with dimensional ratings (a corpus without individual "
                         "activation/valence ratings cannot train per-annotator models)")
    return tuple(requested)
  found = tuple(c for c in pipeline.list_corpora(data_dir)
                if c != holdout and is_dimensional(pipeline.load_manifest(data_dir, c)))
  if not found:
    raise ValueError(f"no corpus with individual ratings in {data_dir} besides the holdout "
                     f"{holdout}")
  return found


@dataclasses.dataclass
class MultiCorpusData:
  """What a run trains and tests on; the datasets yield ``annotator_dataset`` batches with the
  namespaced head indices (``train``: ``{corpus: batch}`` per step, endless)."""
  corpora: Tuple[str, ...]
  train: tf.data.Dataset
  steps_per_epoch: int
  train_eval: Dict[str, tf.data.Dataset]  # each corpus's training split (or fit subset), once
  validation: tf.data.Dataset  # the training corpora's validation splits, one after another
  validation_by_corpus: Dict[str, tf.data.Dataset]
  test: Dict[str, tf.data.Dataset]
  holdout: tf.data.Dataset  # the holdout's annotators test set (tfser.data.test_sets)
  num_annotators: int
  input_dim: int
  feature_names: Tuple[str, ...]
  annotators: Tuple[str, ...]  # namespaced ids by head index
  offsets: Dict[str, int]
  feature_mean: Optional[np.ndarray] = None
  feature_std: Optional[np.ndarray] = None
  merged: bool = False  # the training stream is the corpora merged (one MERGED stream)
  train_sizes: Optional[Dict[str, int]] = None  # training utterances per corpus

  @property
  def stream_corpora(self) -> Tuple[str, ...]:
    """The training stream's names (one corpus weight each): the corpora, or (MERGED,)."""
    return (MERGED,) if self.merged else self.corpora


def fit_subset(dataset: tf.data.Dataset, size: int, max_utterances: int, seed: int,
               batch_size: int) -> tf.data.Dataset:
  """``dataset`` (batches of one corpus's ``size`` training utterances), or when larger than
  max_utterances (> 0) that many of its utterances, drawn without replacement once from
  ``seed`` (the same subset on every pass), in their order, re-batched (padded) by batch_size."""
  if not max_utterances or size <= max_utterances:
    return dataset
  keep = np.zeros([size], bool)
  keep[np.random.default_rng(seed).choice(size, max_utterances, replace=False)] = True
  keep = tf.constant(keep)
  return (dataset.unbatch().enumerate().filter(lambda i, _: keep[i]).map(lambda _, row: row)
          .padded_batch(batch_size))


def _namespaced(offset: int, mean, std):
  def apply(batch):
    out = dict(batch, annotator_ids=tf.where(batch["rating_mask"],
                                             batch["annotator_ids"] + offset, 0))
    if mean is not None:
      out["features"] = standardize_lib.standardize(batch["features"], mean, std)
    return out
  return apply


def load_data(config: AnnotatorsMultiConfig) -> MultiCorpusData:
  """The datasets of ``config`` from ``config.data_dir``.

  Raises ValueError naming the corpus and the data directory for an empty split, a corpus
  without annotators, or features whose widths differ between corpora.
  """
  corpora = training_corpora(config.data_dir, config.holdout, config.training_corpora)
  manifests = {c: pipeline.load_manifest(config.data_dir, c) for c in corpora + (config.holdout,)}
  dims = None
  for corpus, manifest in manifests.items():
    corpus_dims = pipeline.feature_dims(manifest, list(config.feature_names))
    if dims is not None and corpus_dims != dims:
      raise ValueError(f"corpus {corpus}: features {corpus_dims} differ from {corpora[0]}'s "
                       f"{dims} in {config.data_dir}")
    dims = corpus_dims
    splits = ("train", "validation", "test") if corpus in corpora else ()
    for split in splits:
      if pipeline.split_size(manifest, split) == 0:
        raise ValueError(f"corpus {corpus} in {config.data_dir} has an empty {split!r} split "
                         f"(split_counts in its manifest.json: {manifest.get('split_counts')})")
  mean = std = None
  if config.standardize_features:
    stats = [pipeline.feature_statistics(config.data_dir, list(corpora), name)
             for name in config.feature_names]
    mean = np.concatenate([m for m, _ in stats]).astype(np.float32)
    std = standardize_lib.safe_std(np.concatenate([s for _, s in stats])).astype(np.float32)

  def dataset(corpus, split, **kwargs):
    return pipeline.annotator_dataset(
        config.data_dir, corpus, split, feature_names=config.feature_names,
        batch_size=config.batch_size, gt_bins=config.out_bins,
        gt_seed=config.effective_gt_seed, min_ratings=config.min_ratings, **kwargs)

  return assemble(dataset, {c: manifests[c]["annotators"] for c in corpora}, config.holdout,
                  batch_size=config.batch_size, seed=config.seed,
                  max_steps_per_epoch=config.max_steps_per_epoch,
                  merged=config.weighting == "merged",
                  fit_max_utterances=config.fit_max_utterances,
                  input_dim=sum(dims.values()), feature_names=tuple(config.feature_names),
                  feature_mean=mean, feature_std=std)


def assemble(dataset: Callable[..., tf.data.Dataset], annotators: Mapping[str, Sequence[str]],
             holdout: str, *, batch_size: int, seed: int, max_steps_per_epoch: int,
             input_dim: int, feature_names: Tuple[str, ...],
             feature_mean: Optional[np.ndarray] = None,
             feature_std: Optional[np.ndarray] = None, merged: bool = False,
             fit_max_utterances: int = 0) -> MultiCorpusData:
  """The run's datasets from per-corpus ones (``load_data``'s pipeline; tests' in-memory ones).

  dataset(corpus, split, **kwargs): corpus's ``annotator_dataset``-shaped batches of
  ``batch_size`` with the corpus's own annotator indices; kwargs, when given, are shuffle, seed,
  repeat and drop_remainder (the training stream). annotators: the training corpora (in order)
  and their annotator ids by index. Features are standardised here with feature_mean/std.
  merged: the training stream is the corpora merged (one ``MERGED`` stream) instead of zipped.
  fit_max_utterances: the fit measure's subset size per corpus (:func:`fit_subset`; 0: all).
  """
  corpora = tuple(annotators)
  offsets, names = {}, []
  for corpus in corpora:
    offsets[corpus] = len(names)
    names += [namespaced_id(corpus, a) for a in annotators[corpus]]
  mean_t = std_t = None
  if feature_mean is not None:
    mean_t, std_t = tf.constant(feature_mean, tf.float32), tf.constant(feature_std, tf.float32)

  def namespaced(corpus, split, **kwargs):
    return dataset(corpus, split, **kwargs).map(
        _namespaced(offsets.get(corpus, 0), mean_t, std_t), num_parallel_calls=tf.data.AUTOTUNE,
        deterministic=True)

  train_eval = {c: namespaced(c, "train") for c in corpora}
  sizes = {c: int(train_eval[c].unbatch().reduce(np.int64(0), lambda n, _: n + 1).numpy())
           for c in corpora}
  train_eval = {c: fit_subset(train_eval[c], sizes[c], fit_max_utterances, seed * 100 + d,
                              batch_size) for d, c in enumerate(corpora)}
  if merged:
    stream, steps = corpus_weights_lib.merged_corpus_stream(
        lambda c: namespaced(c, "train").unbatch(), sizes, batch_size, seed=seed,
        max_steps_per_epoch=max_steps_per_epoch, padded=True)
    train = tf.data.Dataset.zip({MERGED: stream})
  else:
    train, steps = corpus_weights_lib.zipped_corpus_stream(
        lambda c, d: namespaced(c, "train", shuffle=True, seed=seed * 100 + d, repeat=True,
                                drop_remainder=True),
        sizes, batch_size, max_steps_per_epoch=max_steps_per_epoch)
  validation_by_corpus = {c: namespaced(c, "validation") for c in corpora}
  validation = validation_by_corpus[corpora[0]]
  for corpus in corpora[1:]:
    validation = validation.concatenate(validation_by_corpus[corpus])
  return MultiCorpusData(
      corpora=corpora, train=train.prefetch(tf.data.AUTOTUNE), steps_per_epoch=steps,
      train_eval=train_eval, validation=validation, validation_by_corpus=validation_by_corpus,
      test={c: namespaced(c, "test") for c in corpora},
      holdout=namespaced(holdout, test_sets.held_out_test_set("annotators", holdout).split),
      num_annotators=len(names), input_dim=input_dim, feature_names=feature_names,
      annotators=tuple(names), offsets=offsets, feature_mean=feature_mean,
      feature_std=feature_std, merged=merged,
      train_sizes=sizes)
