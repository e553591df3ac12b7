"""tf.data input pipelines over the prepared TFRecords (see ``tfser.data.manifest`` for the layout).

Every pipeline: the corpus's shard files -> interleaved ``TFRecordDataset`` -> blocks of
:data:`PARSE_BLOCK` serialized records -> one vectorised function per block
(``tf.io.parse_example`` of the keys it needs, with ``schema.feature_spec``; the filters as a
boolean mask; the model inputs) -> unbatch -> cache (in memory) -> shuffle (seeded, reshuffled
every iteration, a full-corpus buffer by default) -> batch (ragged ratings padded to the batch's
widest, with a mask) -> repeat (optional) -> prefetch (unless fully shuffled, see ``_finish``).
The utterances come out in shard-interleave order, exactly as a record-at-a-time parse gives them,
so for a given seed the order of every epoch is the same from run to run (and the same as before
the parse was vectorised). The tf.data autotuner is off (``_options``).

Parsing a block at a time removes the per-record function calls (parse, filters, inputs), which
cost more than the parse: per record 4.7x faster for CWW, 2.7x for the annotator records
(bench/pipeline.py). What an epoch costs beyond its records is start-up, paid by every fresh
iterator (Keras: every epoch), mostly the instantiation of the block function (~0.15 ms per op:
keep it small, hence flat values and dense ops instead of tf.ragged).

  * :func:`annotator_dataset`: features, every annotator's (activation, valence) padded to the
    batch's most-rated utterance with a mask, consensus and the ground-truth distribution
    (the annotators paper).
  * :func:`cww_dataset`: one corpus's IS10 features, class label and vote distribution (the
    corpus-wise-weights paper); :func:`per_corpus_zip` zips one such stream per training corpus
    (Algorithm 1); :func:`unlabelled_dataset` is the pseudo-emotion-label stream.

A record written with another schema version fails at iteration with an ``InvalidArgumentError``
naming both versions; a manifest with another version fails at construction.
"""

from typing import Dict, Mapping, Optional, Sequence, Tuple

import numpy as np

import tfser  # noqa: F401  (Keras flavour before TensorFlow)
import tensorflow as tf

from tfser.data import schema
from tfser.data import standardize as standardize_lib
from tfser.data.manifest import (check_ground_truth_settings, feature_dims,  # noqa: F401
                                 feature_statistics, list_corpora, load_manifest, shard_paths,
                                 split_size)

AUTOTUNE = tf.data.AUTOTUNE
ANNOTATOR_SPLITS = ("train", "validation", "test", "all")
_MAX_CYCLE = 8  # shards read in parallel


def _records(data_dir: str, manifest: dict, split: str) -> tf.data.Dataset:
  """Serialized records of the corpus's shards for ``split`` ("all": every shard), interleaved."""
  files = shard_paths(data_dir, manifest, split)
  if not files:
    raise ValueError(f"corpus {manifest['corpus']} in {data_dir} has no shards for split "
                     f"{split!r} (splits: {', '.join(sorted(manifest.get('split_counts') or {}))})")
  ds = tf.data.Dataset.from_tensor_slices(files)
  return ds.interleave(tf.data.TFRecordDataset, cycle_length=min(len(files), _MAX_CYCLE),
                       num_parallel_calls=AUTOTUNE, deterministic=True)


PARSE_BLOCK = 128  # serialized records parsed per tf.io.parse_example call


def _block_spec(dims: Dict[str, int], keys: Sequence[str],
                with_ground_truth: bool) -> Dict[str, object]:
  """``schema.feature_spec`` restricted to what a pipeline uses, shaped as it uses it.

  The same keys, dtypes and defaults; only the shapes differ (the same values): the one-value
  features (``[1]`` in the schema) parse as scalars and ``gt_BxB`` as ``[GT_SEEDS, B * B]``, so
  the parse needs no reshaping ops after it (each op costs start-up: see the module docstring).
  """
  full = schema.feature_spec(dims, with_ground_truth)
  wanted = set(keys) | {"schema_version"} | {"features/" + n for n in dims}
  if with_ground_truth:
    wanted |= {f"gt_{b}x{b}" for b in schema.GT_BINS}
  spec = {}
  for key in sorted(wanted):
    feature = full[key]
    if isinstance(feature, tf.io.FixedLenFeature) and key.startswith("gt_"):
      shape = (schema.GT_SEEDS, feature.shape[0] // schema.GT_SEEDS)
      default = feature.default_value
      feature = tf.io.FixedLenFeature(
          shape, feature.dtype, None if default is None else np.reshape(default, shape).tolist())
    elif isinstance(feature, tf.io.FixedLenFeature) and list(feature.shape) == [1]:
      default = feature.default_value
      feature = tf.io.FixedLenFeature([], feature.dtype,
                                      None if default is None else np.ravel(default)[0])
    spec[key] = feature
  return spec


def _parse_block(serialized: tf.Tensor, dims: Dict[str, int], keys: Sequence[str],
                 with_ground_truth: bool = False) -> Dict[str, tf.Tensor]:
  """``tfser.testing.records.parse_example`` of a block ``[K]`` of records, restricted to ``keys``.

  Also parses the features in ``dims`` (and both ground truths if ``with_ground_truth``); parsing
  only what a pipeline uses is about 2.5x faster than the full record (the strings and the unused
  ratings dominate). Same spec (``schema.feature_spec``) and version check as
  ``records.parse_example``, whose per-record output gains a leading ``[K]`` axis: scalars ``[K]``,
  features ``[K, D]``, ``gt_BxB`` ``[K, GT_SEEDS, B * B]`` (NaN where the record has none) and
  ratings ``tf.RaggedTensor`` ``[K, None]`` (row k: record k's ratings, possibly none).
  """
  parsed = tf.io.parse_example(serialized, _block_spec(dims, keys, with_ground_truth))
  version = parsed.pop("schema_version")
  # tf.debugging.Assert with string data only is one op (assert_equal adds a cond and ~20 ops).
  tf.debugging.Assert(
      tf.reduce_all(tf.equal(version, schema.SCHEMA_VERSION)),
      [f"TFRecord schema version differs from this tfser's ({schema.SCHEMA_VERSION}); re-run "
       "data_prep.prepare. Record versions:", tf.strings.as_string(version)], summarize=8)
  return parsed


def _row_ids(splits: tf.Tensor) -> tf.Tensor:
  """The row of each value of a ragged ``[K, None]`` with ``row_splits`` ``splits`` [K + 1]."""
  # The raw op on [1, n]: tf.searchsorted's reshaping of its arguments adds ~8 ops.
  return tf.raw_ops.UpperBound(sorted_inputs=splits[None, 1:], values=tf.range(splits[-1])[None],
                               out_type=tf.int32)[0]


def _keep_rows(tensors: Dict[str, tf.Tensor], keep: tf.Tensor) -> Dict[str, tf.Tensor]:
  """The rows of a block's dense ``[K, ...]`` tensors where ``keep`` [K] is True."""
  index = tf.where(keep)[:, 0]
  return {k: tf.gather(v, index) for k, v in tensors.items()}


def _parsed(data_dir: str, manifest: dict, split: str, block_fn) -> tf.data.Dataset:
  """Records -> blocks of PARSE_BLOCK -> ``block_fn`` (vectorised parse, filter, inputs) -> rows."""
  return (_records(data_dir, manifest, split).batch(PARSE_BLOCK)
          .map(block_fn, num_parallel_calls=AUTOTUNE, deterministic=True).unbatch())


def _dense_ratings(row: Dict[str, tf.Tensor]) -> Dict[str, tf.Tensor]:
  """One utterance's ratings (a ragged row after ``unbatch``) as dense tensors, plus the mask.

  ``padded_batch`` (and a plain dense cache) need dense elements. This is the one per-utterance
  function of the annotator pipeline and it runs before the cache, on the first epoch only; a
  per-batch alternative (ragged batch, then pad) would cost every cached epoch more than this
  costs once.
  """
  out = dict(row)
  out["rating_mask"] = tf.ones_like(row["annotator_ids"], tf.bool)
  return out


def _options() -> tf.data.Options:
  """tf.data options of every pipeline here: static parallelism instead of the autotuner.

  With the autotuner on, deleting an iterator (Keras: every epoch) often waited 30-300 ms for
  its model thread (demo corpora, 2 cores), and parsing was no faster; ``AUTOTUNE`` parallelism
  then means one call per core. The options carry over to datasets built on these (a zip, a
  later map).
  """
  options = tf.data.Options()
  options.autotune.enabled = False
  return options


def _finish(ds: tf.data.Dataset, *, size: int, batch_size: int, shuffle: bool, seed: int,
            repeat: bool, drop_remainder: bool, cache: bool, padded: bool,
            shuffle_buffer: Optional[int]) -> tf.data.Dataset:
  """cache -> shuffle -> batch (padded for ragged ratings) -> repeat -> prefetch (see below)."""
  if batch_size < 1:
    raise ValueError(f"batch_size must be >= 1, got {batch_size}")
  if cache:
    ds = ds.cache()
  buffer = max(1, shuffle_buffer or size)
  if shuffle:
    # A buffer as large as the corpus is a full shuffle; it also reads the cache to its end on
    # the first element, so the cache completes even when a zip stops this stream early.
    ds = ds.shuffle(buffer, seed=seed, reshuffle_each_iteration=True)
  ds = (ds.padded_batch(batch_size, drop_remainder=drop_remainder) if padded
        else ds.batch(batch_size, drop_remainder=drop_remainder))
  if repeat:
    ds = ds.repeat()
  if not (shuffle and buffer >= size):
    # After a full shuffle there is nothing to prefetch: its first batch has read (and parsed)
    # the whole split, and each later batch only takes elements from its buffer. A prefetch
    # there made every epoch's start-up ~45 ms slower per stream (demo corpora, 2 cores).
    ds = ds.prefetch(AUTOTUNE)
  return ds.with_options(_options())


def _normalizer(normalizer, dim: int, where: str):
  """(mean, std) -> float32 constants ``[dim]``; a zero std divides by 1 (constant feature)."""
  if normalizer is None:
    return None
  mean, std = (np.asarray(v, np.float64) for v in normalizer)
  if mean.shape != (dim,) or std.shape != (dim,):
    raise ValueError(f"{where}: normalizer shapes {mean.shape} and {std.shape} do not match the "
                     f"feature width ({dim},)")
  std = standardize_lib.safe_std(std)
  return tf.constant(mean, tf.float32), tf.constant(std, tf.float32)


def annotator_dataset(data_dir: str, corpus: str, split: str, *,
                      feature_names: Sequence[str] = ("wav2vec2", "bert"), batch_size: int = 32,
                      gt_bins: int = 4, gt_seed: int = 0, min_ratings: int = 2,
                      shuffle: bool = False, seed: int = 0, repeat: bool = False,
                      drop_remainder: bool = False, cache: bool = True,
                      shuffle_buffer: Optional[int] = None) -> tf.data.Dataset:
  """Batches for the annotator-modelling task (the annotators paper).

  split: "train", "validation", "test" (the record's ``split``) or "all" (the whole corpus, for
  zero-shot cross-corpus testing). Only ratings with both activation and valence count; an
  utterance with fewer than ``min_ratings`` such ratings is left out, and so is one whose record
  has a non-empty ``annotator_excluded`` (kept in the data for the CWW task only).

  Yields dicts (B = batch, A = most valid ratings of an utterance in this batch):
    features [B, D] float32: the named features concatenated in order (e.g. 768 + 512);
    annotator_ids [B, A] int32: indices into the manifest's ``annotators``, 0 where masked;
    ratings [B, A, 2] float32: (activation, valence) on [-1, 1], 0 where masked;
    rating_mask [B, A] bool: True for a real rating, False for padding;
    consensus [B, 2] float32: the corpus's consensus (activation, valence), or the mean of the
      valid ratings where the record has none;
    ground_truth [B, gt_bins**2] float32: the ground-truth distribution of seed ``gt_seed``
      (NaN where the record has none, possible only with min_ratings < 2);
    utterance_id [B] string.
  """
  if split not in ANNOTATOR_SPLITS:
    raise ValueError(f"split must be one of {ANNOTATOR_SPLITS}, got {split!r}")
  if gt_bins not in schema.GT_BINS:
    raise ValueError(f"gt_bins must be one of {schema.GT_BINS}, got {gt_bins}")
  if not 0 <= gt_seed < schema.GT_SEEDS:
    raise ValueError(f"gt_seed must be in 0..{schema.GT_SEEDS - 1}, got {gt_seed}")
  manifest = load_manifest(data_dir, corpus)
  dims = feature_dims(manifest, list(feature_names))
  num_annotators = len(manifest.get("annotators") or [])
  gt_key = f"gt_{gt_bins}x{gt_bins}"
  names = list(feature_names)

  def to_inputs(serialized):  # a block [K] of records -> the utterances kept, as rows
    p = _parse_block(serialized, dims, ("split", "utterance_id", "activation", "valence",
                                        "rating_annotator", "rating_activation",
                                        "rating_valence", "annotator_excluded"),
                     with_ground_truth=True)
    # The ratings as flat values + row splits and dense ops: the tf.ragged ops would make this
    # function ~10x larger, and instantiating it (every new iterator, i.e. every epoch) slower.
    ann, act, val = (p[k] for k in ("rating_annotator", "rating_activation", "rating_valence"))
    splits = act.row_splits
    tf.debugging.assert_equal(tf.stack([ann.row_splits, val.row_splits]), splits[None],
                              message=f"{corpus}: ratings of unequal lengths in a record")
    valid = tf.where(tf.math.is_finite(act.values) & tf.math.is_finite(val.values))[:, 0]
    rows = tf.gather(_row_ids(splits), valid)  # the utterance of each valid rating
    ids = tf.cast(tf.gather(ann.values, valid), tf.int32)
    tf.debugging.assert_less(
        ids, tf.constant(max(num_annotators, 1), tf.int32),
        message=f"{corpus}: annotator index beyond the manifest's {num_annotators} annotators")
    ratings = tf.stack([tf.gather(act.values, valid), tf.gather(val.values, valid)], axis=-1)
    num_rows = tf.size(splits) - 1
    count = tf.math.unsorted_segment_sum(tf.ones_like(rows, tf.int64), rows, num_rows)
    mean_rating = tf.math.divide_no_nan(tf.math.unsorted_segment_sum(ratings, rows, num_rows),
                                        tf.cast(count, tf.float32)[:, None])
    consensus = tf.stack([p["activation"], p["valence"]], axis=-1)
    # Records kept for the categorical task only (e.g. IEMOCAP's partly missing or out-of-range
    # ratings, annotators paper 3.1) are not the annotators task's.
    keep = (count >= min_ratings) & tf.equal(p["annotator_excluded"], "")
    if split != "all":  # the shards are per split already; this guards a mixed shard
      keep &= tf.equal(p["split"], split)
    out = _keep_rows({
        "features": tf.concat([p["features/" + n] for n in names], axis=1),
        "consensus": tf.where(tf.math.is_finite(consensus), consensus, mean_rating),
        "count": count,
        "ground_truth": p[gt_key][:, gt_seed],
        "utterance_id": p["utterance_id"],
    }, keep)
    kept_splits = tf.concat([tf.zeros([1], tf.int64), tf.cumsum(out.pop("count"))], axis=0)
    taken = tf.where(tf.gather(keep, rows))[:, 0]  # the valid ratings of the kept utterances
    out["annotator_ids"] = tf.RaggedTensor.from_row_splits(tf.gather(ids, taken), kept_splits,
                                                           validate=False)
    out["ratings"] = tf.RaggedTensor.from_row_splits(tf.gather(ratings, taken), kept_splits,
                                                     validate=False)
    return out

  # Sequential: for so small a function a parallel map's hand-offs cost more than they save.
  ds = _parsed(data_dir, manifest, split, to_inputs).map(_dense_ratings)
  return _finish(ds, size=split_size(manifest, split), batch_size=batch_size, shuffle=shuffle,
                 seed=seed, repeat=repeat, drop_remainder=drop_remainder, cache=cache,
                 padded=True, shuffle_buffer=shuffle_buffer)


def cww_dataset(data_dir: str, corpus: str, split: str, *, feature_name: str = "is10",
                batch_size: int = 32, shuffle: bool = False, seed: int = 0, repeat: bool = False,
                drop_remainder: bool = False,
                normalizer: Optional[Tuple[np.ndarray, np.ndarray]] = None, cache: bool = True,
                shuffle_buffer: Optional[int] = None,
                speakers: Optional[Sequence[str]] = None) -> tf.data.Dataset:
  """One corpus's stream for the corpus-wise-weights task.

  split: the records' ``cww_split`` ("train", "validation", "test") or "all" (the whole corpus,
  for a held-out test corpus). Records whose emotion is outside the four classes are skipped.
  speakers: if given, only these speakers' utterances (of ``split``; with "all", across every
  split: the within-corpus speaker folds of ``tfser.tasks.cww.folds``). Every id must be
  in the manifest's ``speakers`` (ValueError otherwise); an empty list yields nothing.
  normalizer: (mean, std) ``[D]`` for z-normalisation (e.g. :func:`feature_statistics` of the
  training corpora); a zero std leaves that feature centred but unscaled.

  Yields dicts: features [B, D] float32; label [B] int32 in 0..3 (``schema.CLASS_NAMES``);
  votes [B, 4] float32, the distribution of the raters' categorical votes over the four classes
  (votes for other emotions ignored; the one-hot label when there are none); utterance_id [B].
  """
  if split not in ANNOTATOR_SPLITS:
    raise ValueError(f"split must be one of {ANNOTATOR_SPLITS}, got {split!r}")
  manifest = load_manifest(data_dir, corpus)
  dims = feature_dims(manifest, [feature_name])
  if split != "all" and split_size(manifest, split, "cww_split_counts") == 0:
    raise ValueError(f"corpus {corpus} in {data_dir} has no {split!r} CWW split (cww splits: "
                     f"{', '.join(sorted(manifest.get('cww_split_counts') or {})) or 'none'})")
  norm = _normalizer(normalizer, dims[feature_name], f"corpus {corpus}, feature {feature_name}")
  num_classes = len(schema.CLASS_NAMES)
  wanted = None
  if speakers is not None:
    unknown = sorted(set(speakers) - set(manifest.get("speakers") or []))
    if unknown:
      raise ValueError(f"corpus {corpus} in {data_dir} has no speakers {', '.join(unknown)}")
    wanted = tf.constant(sorted(set(speakers)), tf.string, shape=[len(set(speakers))])

  def to_inputs(serialized):  # a block [K] of records -> the utterances kept, as rows
    p = _parse_block(serialized, dims, ("label_index", "cww_split", "rating_category",
                                        "utterance_id") + (("speaker",) if wanted is not None
                                                           else ()))
    keep = p["label_index"] >= 0
    if split != "all":
      keep &= tf.equal(p["cww_split"], split)
    if wanted is not None:  # [K, S] comparisons: a fold has at most ~80 speakers
      keep &= tf.reduce_any(tf.equal(p["speaker"][:, None], wanted[None, :]), axis=1)
    x = p["features/" + feature_name]
    if norm is not None:
      x = (x - norm[0]) / norm[1]
    label = tf.cast(p["label_index"], tf.int32)
    cats = p["rating_category"]  # ragged [K, None]; -1: a vote outside the four classes
    # one_hot of a negative index is all zeros: such votes count for no class.
    counts = tf.math.unsorted_segment_sum(tf.one_hot(cats.values, num_classes),
                                          _row_ids(cats.row_splits), tf.size(label))
    total = tf.reduce_sum(counts, axis=1, keepdims=True)
    votes = tf.where(total > 0, counts / tf.maximum(total, 1.0), tf.one_hot(label, num_classes))
    return _keep_rows({"features": x, "label": label, "votes": votes,
                       "utterance_id": p["utterance_id"]}, keep)

  ds = _parsed(data_dir, manifest, "all", to_inputs)
  return _finish(ds, size=split_size(manifest, split, "cww_split_counts"), batch_size=batch_size,
                 shuffle=shuffle, seed=seed, repeat=repeat, drop_remainder=drop_remainder,
                 cache=cache, padded=False, shuffle_buffer=shuffle_buffer)


def unlabelled_dataset(data_dir: str, corpus: str, *, feature_name: str = "is10",
                       batch_size: int = 32, shuffle: bool = True, seed: int = 0,
                       repeat: bool = True,
                       normalizer: Optional[Tuple[np.ndarray, np.ndarray]] = None,
                       drop_remainder: bool = False, cache: bool = True) -> tf.data.Dataset:
  """Every record of a corpus as {"features": [B, D] float32} (the pseudo-emotion-label stream).

  Repeats by default, so that zipped beside the labelled streams it never ends an epoch.
  """
  manifest = load_manifest(data_dir, corpus)
  dims = feature_dims(manifest, [feature_name])
  norm = _normalizer(normalizer, dims[feature_name], f"corpus {corpus}, feature {feature_name}")

  def to_inputs(serialized):  # a block [K] of records -> rows
    x = _parse_block(serialized, dims, ())["features/" + feature_name]
    return {"features": x if norm is None else (x - norm[0]) / norm[1]}

  ds = _parsed(data_dir, manifest, "all", to_inputs)
  return _finish(ds, size=split_size(manifest, "all"), batch_size=batch_size, shuffle=shuffle,
                 seed=seed, repeat=repeat, drop_remainder=drop_remainder, cache=cache,
                 padded=False, shuffle_buffer=None)


def per_corpus_zip(datasets: Mapping[str, tf.data.Dataset]) -> tf.data.Dataset:
  """Zips per-corpus batch streams: each element is {corpus: that corpus's batch} (Algorithm 1).

  Every step sees one minibatch from each corpus; an epoch ends when the corpus with the fewest
  minibatches runs out, so pass finite (``repeat=False``) streams. Each new iteration reshuffles
  every stream, so the larger corpora contribute a different random subset each epoch. A
  repeating stream (e.g. :func:`unlabelled_dataset`) may be included and never ends the epoch.
  """
  if not datasets:
    raise ValueError("per_corpus_zip needs at least one dataset")
  # No prefetch of its own: each stream prefetches unless it is fully shuffled (see _finish).
  return tf.data.Dataset.zip(dict(datasets))
