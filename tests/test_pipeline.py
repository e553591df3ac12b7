"""tfser.data.pipeline on small TFRecords written by tfser.data.synthetic (tests/pipeline_fixtures)."""

import dataclasses
import math
import os
from unittest import mock

from absl.testing import parameterized
import hypothesis
from hypothesis import strategies as st
import numpy as np

import tfser  # noqa: F401
import tensorflow as tf

from tests import pipeline_fixtures as fx
from tfser.data import manifest as manifest_lib
from tfser.data import pipeline
from tfser.data import schema
from tfser.testing import records as testing_records

NAN = math.nan


def _batches(ds):
  return [{k: v for k, v in b.items()} for b in ds.as_numpy_iterator()]


def _ids(ds):
  return [u.decode() for b in ds.as_numpy_iterator() for u in b["utterance_id"]]


class AnnotatorDatasetTest(tf.test.TestCase, parameterized.TestCase):

  def setUp(self):
    super().setUp()
    self.data_dir = fx.temp_dir(self)
    rng = np.random.default_rng(0)
    self.utts = [
        fx.rated_utterance("IMP", "u0", [("a", 0.1, 0.2), ("b", 0.3, -0.4)],
                           consensus=(0.2, -0.1)),
        fx.rated_utterance("IMP", "u1", [("c", -1.0, 1.0), ("a", 0.5, 0.5), ("d", 0.0, 0.0),
                                         ("e", 0.25, -0.25), ("b", 1.0, -1.0)],
                           consensus=(0.15, 0.05)),
        # Valence missing for "b": only two valid ratings remain; consensus NaN -> their mean.
        fx.rated_utterance("IMP", "u2", [("a", 0.2, 0.4), ("b", 0.9, NAN), ("c", 0.4, 0.0)]),
        fx.rated_utterance("IMP", "u3", [("d", 0.5, 0.5)], consensus=(0.5, 0.5)),  # one rater
        fx.rated_utterance("IMP", "u4", [("a", NAN, 0.1), ("e", -0.5, -0.5)],
                           consensus=(-0.5, -0.5)),  # one valid rater
        fx.rated_utterance("IMP", "v0", [("a", 0.0, 0.1), ("c", 0.2, 0.3)], split="validation",
                           consensus=(0.1, 0.2)),
        fx.rated_utterance("IMP", "t0", [("b", 0.0, 0.1), ("e", 0.2, 0.3), ("d", 0.1, 0.1)],
                           split="test", consensus=(0.1, 0.2)),
    ]
    n = len(self.utts)
    self.w2v = rng.normal(size=(n, 6)).astype(np.float32)
    self.bert = rng.normal(size=(n, 4)).astype(np.float32)
    self.gt = [fx.random_ground_truth(rng) for _ in range(n)]
    self.manifest = fx.write_corpus(self.data_dir, "IMP", self.utts,
                                    {"wav2vec2": self.w2v, "bert": self.bert}, self.gt)
    self.annotators = self.manifest["annotators"]

  def test_padding_mask_and_values(self):
    ds = pipeline.annotator_dataset(self.data_dir, "IMP", "train", batch_size=8)
    (batch,) = _batches(ds)
    self.assertEqual([u.decode() for u in batch["utterance_id"]], ["u0", "u1", "u2"])
    self.assertEqual(batch["features"].shape, (3, 10))
    self.assertEqual(batch["features"].dtype, np.float32)
    self.assertAllClose(batch["features"], np.concatenate([self.w2v, self.bert], 1)[:3])
    self.assertEqual(batch["annotator_ids"].shape, (3, 5))  # A = most raters in the batch
    self.assertEqual(batch["annotator_ids"].dtype, np.int32)
    self.assertEqual(batch["ratings"].shape, (3, 5, 2))
    self.assertEqual(batch["rating_mask"].dtype, bool)
    self.assertAllEqual(batch["rating_mask"].sum(1), [2, 5, 2])
    for row, utt in enumerate(self.utts[:3]):
      valid = [r for r in utt.ratings if np.isfinite(r.activation) and np.isfinite(r.valence)]
      k = len(valid)
      self.assertAllEqual(batch["rating_mask"][row, :k], [True] * k)
      self.assertAllEqual(batch["rating_mask"][row, k:], [False] * (5 - k))
      self.assertAllEqual(batch["annotator_ids"][row, :k],
                          [self.annotators.index(r.annotator) for r in valid])
      self.assertAllClose(batch["ratings"][row, :k],
                          [[r.activation, r.valence] for r in valid])
      self.assertAllEqual(batch["annotator_ids"][row, k:], [0] * (5 - k))
      self.assertAllEqual(batch["ratings"][row, k:], np.zeros((5 - k, 2)))
    self.assertFalse(np.isnan(batch["ratings"]).any())
    self.assertAllClose(batch["consensus"], [[0.2, -0.1], [0.15, 0.05], [0.3, 0.2]])

  @parameterized.parameters((4, 0), (4, 3), (2, 4))
  def test_ground_truth_seed_and_bins(self, bins, seed):
    ds = pipeline.annotator_dataset(self.data_dir, "IMP", "train", gt_bins=bins, gt_seed=seed)
    (batch,) = _batches(ds)
    self.assertEqual(batch["ground_truth"].shape, (3, bins * bins))
    self.assertAllClose(batch["ground_truth"], [self.gt[i][bins][seed] for i in range(3)])

  @parameterized.parameters((2, ["u0", "u1", "u2"]), (1, ["u0", "u1", "u2", "u3", "u4"]),
                            (3, ["u1"]))
  def test_min_ratings_filter(self, min_ratings, expected):
    ds = pipeline.annotator_dataset(self.data_dir, "IMP", "train", min_ratings=min_ratings)
    self.assertCountEqual(_ids(ds), expected)

  def test_splits(self):
    self.assertEqual(_ids(pipeline.annotator_dataset(self.data_dir, "IMP", "validation")), ["v0"])
    self.assertEqual(_ids(pipeline.annotator_dataset(self.data_dir, "IMP", "test")), ["t0"])
    self.assertCountEqual(_ids(pipeline.annotator_dataset(self.data_dir, "IMP", "all")),
                          ["u0", "u1", "u2", "v0", "t0"])

  def test_batches_pad_per_batch_and_drop_remainder(self):
    ds = pipeline.annotator_dataset(self.data_dir, "IMP", "all", batch_size=2)
    widths = [b["annotator_ids"].shape[1] for b in _batches(ds)]
    counts = [b["rating_mask"].sum(1).max() for b in _batches(ds)]
    self.assertEqual(widths, counts)  # each batch is padded to its own most-rated utterance
    ds = pipeline.annotator_dataset(self.data_dir, "IMP", "all", batch_size=2,
                                    drop_remainder=True)
    self.assertEqual([b["features"].shape[0] for b in _batches(ds)], [2, 2])
    self.assertEqual(ds.element_spec["features"].shape.as_list(), [2, 10])

  def test_shuffle_is_seeded_and_reshuffles(self):
    def epochs(seed, n=4):
      ds = pipeline.annotator_dataset(self.data_dir, "IMP", "all", batch_size=1, shuffle=True,
                                      seed=seed, min_ratings=1)
      return [tuple(_ids(ds)) for _ in range(n)]
    first = epochs(1)
    self.assertEqual(first, epochs(1))
    self.assertCountEqual(first[0], ["u0", "u1", "u2", "u3", "u4", "v0", "t0"])
    self.assertGreater(len(set(first)), 1)  # a new order in later epochs
    self.assertNotEqual(first, epochs(2))

  def test_repeat(self):
    ds = pipeline.annotator_dataset(self.data_dir, "IMP", "train", batch_size=2, repeat=True)
    ids = [u.decode() for b in ds.take(4).as_numpy_iterator() for u in b["utterance_id"]]
    self.assertEqual(ids, ["u0", "u1", "u2", "u0", "u1", "u2"])

  def test_missing_feature_names_it(self):
    with self.assertRaisesRegex(ValueError, r"feature hubert .*IMP.*available: bert, wav2vec2"):
      pipeline.annotator_dataset(self.data_dir, "IMP", "train", feature_names=("hubert",))

  def test_bad_arguments(self):
    with self.assertRaisesRegex(ValueError, "split"):
      pipeline.annotator_dataset(self.data_dir, "IMP", "dev")
    with self.assertRaisesRegex(ValueError, "gt_bins"):
      pipeline.annotator_dataset(self.data_dir, "IMP", "train", gt_bins=3)
    with self.assertRaisesRegex(ValueError, "gt_seed"):
      pipeline.annotator_dataset(self.data_dir, "IMP", "train", gt_seed=5)

  def test_missing_split_is_an_error(self):
    utts = [fx.rated_utterance("IEM", "x", [("a", 0.1, 0.1), ("b", 0.2, 0.2)])]
    fx.write_corpus(self.data_dir, "IEM", utts, {"wav2vec2": np.zeros((1, 2)),
                                                 "bert": np.zeros((1, 2))})
    with self.assertRaisesRegex(ValueError, r"IEM.*no shards for split 'test'.*train"):
      pipeline.annotator_dataset(self.data_dir, "IEM", "test")

  def test_missing_shard_is_named(self):
    os.remove(os.path.join(self.data_dir, "IMP", "validation-00000-of-00001.tfrecord"))
    with self.assertRaisesRegex(FileNotFoundError, "validation-00000-of-00001.tfrecord"):
      pipeline.annotator_dataset(self.data_dir, "IMP", "validation")


class CwwDatasetTest(tf.test.TestCase, parameterized.TestCase):

  def setUp(self):
    super().setUp()
    self.data_dir = fx.temp_dir(self)
    rng = np.random.default_rng(1)
    votes = {
        "c0": [("a", NAN, NAN, "happy"), ("b", NAN, NAN, "happy"), ("c", NAN, NAN, "sad"),
               ("d", NAN, NAN, "disgusted")],
        "c1": [],
        "c2": [("a", NAN, NAN, "angry")],
    }
    self.utts = [
        fx.rated_utterance("CRE", "c0", votes["c0"], label="happy"),
        fx.rated_utterance("CRE", "c1", votes["c1"], label="sad"),
        fx.rated_utterance("CRE", "c2", votes["c2"], label="angry"),
        fx.rated_utterance("CRE", "c3", [], label=""),  # outside the four classes
        fx.rated_utterance("CRE", "c4", [], label="neutral", split="validation"),
        # annotator split and CWW split differ (as MSP-Improv's): CWW follows cww_split.
        fx.rated_utterance("CRE", "c5", [], label="neutral", split="train",
                           cww_split="validation"),
    ]
    self.x = rng.normal(3.0, 2.0, size=(len(self.utts), 5)).astype(np.float32)
    self.x[:, 4] = 7.0  # a constant feature
    fx.write_corpus(self.data_dir, "CRE", self.utts, {"is10": self.x}, shards_per_split=3)

  def test_labels_votes_and_skipped_classes(self):
    (batch,) = _batches(pipeline.cww_dataset(self.data_dir, "CRE", "train"))
    # Three shards are interleaved: put the rows back in id order.
    order = np.argsort(batch["utterance_id"])
    batch = {k: v[order] for k, v in batch.items()}
    self.assertEqual([u.decode() for u in batch["utterance_id"]], ["c0", "c1", "c2"])
    self.assertEqual(batch["label"].dtype, np.int32)
    self.assertAllEqual(batch["label"], [schema.CLASS_INDEX[c] for c in ("happy", "sad", "angry")])
    self.assertEqual(batch["votes"].dtype, np.float32)
    # c0: two happy, one sad (disgusted is outside the four classes); c1: no votes -> one-hot.
    self.assertAllClose(batch["votes"], [[0, 2 / 3, 1 / 3, 0], [0, 0, 1, 0], [0, 0, 0, 1]])
    self.assertAllClose(batch["features"], self.x[:3])

  def test_cww_split_selection(self):
    self.assertCountEqual(_ids(pipeline.cww_dataset(self.data_dir, "CRE", "validation")),
                          ["c4", "c5"])
    self.assertCountEqual(_ids(pipeline.cww_dataset(self.data_dir, "CRE", "all")),
                          ["c0", "c1", "c2", "c4", "c5"])
    with self.assertRaisesRegex(ValueError, r"no 'test' CWW split.*train, validation"):
      pipeline.cww_dataset(self.data_dir, "CRE", "test")

  def test_speaker_filter_spans_the_splits(self):
    # c0 s0, c1 s1, c2 s2, c3 s0 (outside the classes), c4 s1 and c5 s2 (validation).
    utts = [dataclasses.replace(u, corpus="SPK", speaker=f"s{i % 3}")
            for i, u in enumerate(self.utts)]
    fx.write_corpus(self.data_dir, "SPK", utts, {"is10": self.x}, shards_per_split=2)
    ds = pipeline.cww_dataset(self.data_dir, "SPK", "all", speakers=["s1", "s2"], batch_size=2)
    self.assertCountEqual(_ids(ds), ["c1", "c2", "c4", "c5"])
    rows = {tuple(r) for b in _batches(ds) for r in b["features"]}
    self.assertEqual(rows, {tuple(self.x[i]) for i in (1, 2, 4, 5)})
    self.assertEqual(_ids(pipeline.cww_dataset(self.data_dir, "SPK", "validation",
                                               speakers=["s1"])), ["c4"])
    self.assertEqual(_ids(pipeline.cww_dataset(self.data_dir, "SPK", "all", speakers=[])), [])
    with self.assertRaisesRegex(ValueError, "SPK .* has no speakers s9"):
      pipeline.cww_dataset(self.data_dir, "SPK", "all", speakers=["s0", "s9"])

  def test_normalizer(self):
    mean, std = pipeline.feature_statistics(self.data_dir, ["CRE"], "is10")
    train = np.asarray([u.split == "train" for u in self.utts])
    self.assertAllClose(mean, self.x[train].mean(0), atol=1e-5)
    self.assertAllClose(std, self.x[train].std(0), atol=1e-5)
    ds = pipeline.cww_dataset(self.data_dir, "CRE", "all", normalizer=(mean, std))
    got = np.concatenate([b["features"] for b in _batches(ds)])
    kept = [int(u[1:]) for u in _ids(ds)]  # c<i>
    self.assertCountEqual(kept, [i for i, u in enumerate(self.utts) if u.label])
    safe_std = np.where(std > 1e-8, std, 1.0)
    self.assertAllClose(got, (self.x[kept] - mean) / safe_std, atol=1e-5)
    self.assertAllClose(got[:, 4], np.zeros(len(kept)), atol=1e-5)  # constant: centred, finite
    cww_train = np.asarray([u.cww_split == "train" for u in self.utts])
    mean, std = pipeline.feature_statistics(self.data_dir, ["CRE"], "is10",
                                            statistics="cww_train")
    self.assertAllClose(mean, self.x[cww_train].mean(0), atol=1e-5)
    self.assertAllClose(std, self.x[cww_train].std(0), atol=1e-5)
    with self.assertRaisesRegex(ValueError, r"CRE.*is10.*normalizer shapes"):
      pipeline.cww_dataset(self.data_dir, "CRE", "all", normalizer=(mean[:3], std[:3]))

  def test_unlabelled(self):
    ds = pipeline.unlabelled_dataset(self.data_dir, "CRE", batch_size=4, seed=3)
    batches = list(ds.take(5).as_numpy_iterator())
    self.assertEqual(set(batches[0]), {"features"})
    self.assertEqual([b["features"].shape for b in batches],
                     [(4, 5), (2, 5), (4, 5), (2, 5), (4, 5)])  # repeats; all 6 records
    rows = {tuple(r) for b in batches[:2] for r in b["features"]}
    self.assertEqual(rows, {tuple(r) for r in self.x})

  def test_schema_version_mismatch_in_record(self):
    examples = []
    for u in self.utts:
      ex = schema.to_example(u, {a: i for i, a in enumerate("abcd")}, {"is10": np.zeros(5)})
      ex.features.feature["schema_version"].int64_list.value[0] = schema.SCHEMA_VERSION + 1
      examples.append(ex)
    fx.write_corpus(self.data_dir, "BAD", self.utts, {"is10": self.x}, examples=examples)
    # Both versions are named: this tfser's in the message, the record's in its data.
    with self.assertRaisesRegex(
        tf.errors.InvalidArgumentError,
        rf"schema version differs from this tfser\\?'s \({schema.SCHEMA_VERSION}\)"
        rf"(.|\n)*{schema.SCHEMA_VERSION + 1}"):
      _batches(pipeline.cww_dataset(self.data_dir, "BAD", "train"))


class ZipAndManifestTest(tf.test.TestCase, parameterized.TestCase):

  def setUp(self):
    super().setUp()
    self.data_dir = fx.temp_dir(self)
    rng = np.random.default_rng(2)
    self.sizes = {"CRE": 50, "IEM": 22, "IMP": 37}
    self.features = {}
    for corpus, n in self.sizes.items():
      utts = [fx.rated_utterance(corpus, f"{corpus}{i}", [], label=schema.CLASS_NAMES[i % 4],
                                 split="train" if i % 5 else "validation")
              for i in range(n)]
      self.features[corpus] = rng.normal(size=(n, 3)).astype(np.float32)
      fx.write_corpus(self.data_dir, corpus, utts, {"is10": self.features[corpus]})

  def _zip(self, seed):
    return pipeline.per_corpus_zip({
        c: pipeline.cww_dataset(self.data_dir, c, "train", batch_size=4, shuffle=True,
                                seed=seed + i)
        for i, c in enumerate(self.sizes)})

  def test_epoch_is_the_smallest_corpus(self):
    ds = self._zip(0)
    steps = list(ds.as_numpy_iterator())
    # Training records: 40, 17 and 29 -> 10, 5 and 8 batches of 4: an epoch is 5 steps.
    self.assertLen(steps, 5)
    for step in steps:
      self.assertEqual(set(step), set(self.sizes))
      for corpus, batch in step.items():
        self.assertTrue(all(u.decode().startswith(corpus) for u in batch["utterance_id"]))
    # IEM, the smallest, is seen whole each epoch.
    iem = [u for s in steps for u in s["IEM"]["utterance_id"]]
    self.assertLen(set(iem), 17)

  def test_zip_is_deterministic_and_reshuffles(self):
    def run(seed):
      ds = self._zip(seed)
      return [[tuple(s[c]["utterance_id"]) for c in sorted(s)] for _ in range(2)
              for s in ds.as_numpy_iterator()]
    first = run(0)
    self.assertEqual(first, run(0))
    self.assertNotEqual(first[:5], first[5:])  # epoch 2 draws new minibatches
    self.assertNotEqual(first, run(10))

  def test_static_parallelism_carries_over_to_the_zip(self):
    ds = self._zip(0)
    self.assertFalse(ds.options().autotune.enabled)
    self.assertLen(list(ds.as_numpy_iterator()), 5)

  def test_zip_with_repeating_stream(self):
    ds = pipeline.per_corpus_zip({
        "IEM": pipeline.cww_dataset(self.data_dir, "IEM", "train", batch_size=4),
        "PEL": pipeline.unlabelled_dataset(self.data_dir, "CRE", batch_size=4)})
    self.assertLen(list(ds.as_numpy_iterator()), 5)

  def test_missing_corpus_lists_the_present_ones(self):
    with self.assertRaisesRegex(FileNotFoundError, r"'POD'.*present: CRE, IEM, IMP"):
      pipeline.cww_dataset(self.data_dir, "POD", "train")
    self.assertEqual(pipeline.list_corpora(self.data_dir), ["CRE", "IEM", "IMP"])

  def test_manifest_schema_version_mismatch(self):
    path = os.path.join(self.data_dir, "IEM", "manifest.json")
    with open(path) as f:
      text = f.read()
    with open(path, "w") as f:
      f.write(text.replace(f'"schema_version": {schema.SCHEMA_VERSION}', '"schema_version": 0'))
    with self.assertRaisesRegex(ValueError, r"IEM.*manifest.json: schema_version 0"):
      pipeline.load_manifest(self.data_dir, "IEM")

  def test_feature_statistics_pool_the_training_sets(self):
    mean, std = pipeline.feature_statistics(self.data_dir, ["CRE", "IMP"], "is10")
    union = np.concatenate([self.features[c][[i for i in range(self.sizes[c]) if i % 5]]
                            for c in ("CRE", "IMP")])
    self.assertAllClose(mean, union.mean(0), atol=1e-5)
    self.assertAllClose(std, union.std(0), atol=1e-5)
    # A corpus without a training split (unlabelled, used whole) contributes nothing.
    libri = [fx.rated_utterance("LIBRI", f"l{i}", [], label="", split="all") for i in range(4)]
    fx.write_corpus(self.data_dir, "LIBRI", libri, {"is10": np.full((4, 3), 50.0, np.float32)})
    mean2, std2 = pipeline.feature_statistics(self.data_dir, ["CRE", "LIBRI", "IMP"], "is10")
    self.assertAllClose((mean2, std2), (mean, std))
    with self.assertRaisesRegex(ValueError, "no training utterances in LIBRI"):
      pipeline.feature_statistics(self.data_dir, ["LIBRI"], "is10")
    with self.assertRaisesRegex(ValueError, "feature egemaps.*CRE.*available: is10"):
      pipeline.feature_statistics(self.data_dir, ["CRE"], "egemaps")


class ParseTest(tf.test.TestCase):

  def test_block_parse_matches_the_schema_parser_record_by_record(self):
    rng = np.random.default_rng(3)
    utts = [
        fx.rated_utterance("IMP", "u", [("a", 0.1, NAN, "happy"), ("b", -0.5, 0.25, "")],
                           label="sad", cww_split="validation", consensus=(0.3, NAN)),
        fx.rated_utterance("IMP", "v", [], label=""),  # no ratings, no label, no ground truth
        fx.rated_utterance("IMP", "w", [("b", 0.5, 0.5, "angry")], split="test"),
    ]
    gts = [fx.random_ground_truth(rng), None, fx.random_ground_truth(rng)]
    records = [schema.to_example(u, {"a": 0, "b": 1}, {"is10": rng.normal(size=7)},
                                 gt).SerializeToString() for u, gt in zip(utts, gts)]
    keys = ("label_index", "cww_split", "activation", "rating_valence", "rating_category")
    block = pipeline._parse_block(tf.constant(records), {"is10": 7}, keys, with_ground_truth=True)
    self.assertCountEqual(block, keys + ("features/is10", "gt_4x4", "gt_2x2"))
    for row, record in enumerate(records):
      full = testing_records.parse_example(tf.constant(record), {"is10": 7})
      for key, value in block.items():
        got = value[row]
        self.assertEqual(got.dtype, full[key].dtype, key)
        self.assertEqual(got.shape, full[key].shape, key)
        np.testing.assert_array_equal(got.numpy(), full[key].numpy(), err_msg=key)
    self.assertTrue(np.isnan(block["gt_4x4"][1]).all())  # the default for a missing one
    self.assertEqual(block["rating_valence"][1].shape, (0,))


def _reference_annotator_dataset(data_dir, corpus, split, *, feature_names=("wav2vec2", "bert"),
                                 batch_size=32, gt_bins=4, gt_seed=0, min_ratings=2,
                                 shuffle=False, seed=0, drop_remainder=False):
  """The per-record annotator pipeline (before the parse was vectorised), for comparison."""
  manifest = pipeline.load_manifest(data_dir, corpus)
  dims = pipeline.feature_dims(manifest, list(feature_names))

  def to_inputs(serialized):
    p = testing_records.parse_example(serialized, dims)
    act, val = p["rating_activation"], p["rating_valence"]
    valid = tf.math.is_finite(act) & tf.math.is_finite(val)
    ids = tf.cast(tf.boolean_mask(p["rating_annotator"], valid), tf.int32)
    ratings = tf.stack([tf.boolean_mask(act, valid), tf.boolean_mask(val, valid)], axis=-1)
    mean_rating = tf.math.divide_no_nan(tf.reduce_sum(ratings, 0),
                                        tf.cast(tf.shape(ratings)[0], tf.float32))
    consensus = tf.stack([p["activation"], p["valence"]])
    return {"features": tf.concat([p["features/" + n] for n in feature_names], axis=0),
            "annotator_ids": ids, "ratings": ratings,
            "rating_mask": tf.ones_like(ids, tf.bool),
            "consensus": tf.where(tf.math.is_finite(consensus), consensus, mean_rating),
            "ground_truth": p[f"gt_{gt_bins}x{gt_bins}"][gt_seed],
            "utterance_id": p["utterance_id"], "_split": p["split"]}

  ds = pipeline._records(data_dir, manifest, split).map(to_inputs)
  ds = ds.filter(lambda x: tf.size(x["annotator_ids"]) >= min_ratings)
  if split != "all":
    ds = ds.filter(lambda x: tf.equal(x["_split"], split))
  ds = ds.map(lambda x: {k: v for k, v in x.items() if k != "_split"})
  return pipeline._finish(ds, size=manifest_lib.split_size(manifest, split),
                          batch_size=batch_size, shuffle=shuffle, seed=seed, repeat=False,
                          drop_remainder=drop_remainder, cache=True, padded=True,
                          shuffle_buffer=None)


def _reference_cww_dataset(data_dir, corpus, split, *, batch_size=32, shuffle=False, seed=0,
                           normalizer=None):
  """The per-record CWW pipeline (before the parse was vectorised), for comparison."""
  manifest = pipeline.load_manifest(data_dir, corpus)
  dims = pipeline.feature_dims(manifest, ["is10"])
  norm = pipeline._normalizer(normalizer, dims["is10"], corpus)

  def keep(p):
    ok = p["label_index"] >= 0
    return ok if split == "all" else ok & tf.equal(p["cww_split"], split)

  def to_inputs(p):
    x = p["features/is10"]
    if norm is not None:
      x = (x - norm[0]) / norm[1]
    label = tf.cast(p["label_index"], tf.int32)
    cats = p["rating_category"]
    counts = tf.reduce_sum(tf.one_hot(tf.boolean_mask(cats, cats >= 0), 4), axis=0)
    total = tf.reduce_sum(counts)
    votes = tf.cond(total > 0, lambda: counts / total, lambda: tf.one_hot(label, 4))
    return {"features": x, "label": label, "votes": votes, "utterance_id": p["utterance_id"]}

  ds = pipeline._records(data_dir, manifest, "all").map(
      lambda s: testing_records.parse_example(s, dims, with_ground_truth=False))
  ds = ds.filter(keep).map(to_inputs)
  return pipeline._finish(ds, size=manifest_lib.split_size(manifest, split, "cww_split_counts"),
                          batch_size=batch_size, shuffle=shuffle, seed=seed, repeat=False,
                          drop_remainder=False, cache=True, padded=False, shuffle_buffer=None)


class VectorisedParseTest(tf.test.TestCase, parameterized.TestCase):
  """The block-parsed pipelines give exactly the per-record pipelines' batches, in order."""

  def setUp(self):
    super().setUp()
    self.data_dir = fx.temp_dir(self)
    rng = np.random.default_rng(4)
    splits = ("train", "validation", "test")
    labels = schema.CLASS_NAMES + ("",)
    votes = schema.CLASS_NAMES + ("disgusted", "")
    utts, gts = [], []
    for i in range(150):
      ratings = []
      for a in rng.choice(12, size=rng.integers(0, 9), replace=False):  # 0 to 8 ratings
        act = NAN if rng.random() < 0.15 else rng.uniform(-1, 1)
        val = NAN if rng.random() < 0.15 else rng.uniform(-1, 1)
        ratings.append((f"a{a:02d}", act, val, votes[rng.integers(len(votes))]))
      consensus = (NAN, NAN) if rng.random() < 0.3 else tuple(rng.uniform(-1, 1, 2))
      utts.append(fx.rated_utterance("IMP", f"u{i:03d}", ratings, split=splits[i % 3],
                                     cww_split=splits[rng.integers(3)],
                                     label=labels[rng.integers(len(labels))],
                                     consensus=consensus))
      gts.append(None if rng.random() < 0.2 else fx.random_ground_truth(rng))
    self.n = len(utts)
    features = {"wav2vec2": rng.normal(size=(self.n, 6)).astype(np.float32),
                "bert": rng.normal(size=(self.n, 4)).astype(np.float32),
                "is10": rng.normal(2.0, 3.0, size=(self.n, 5)).astype(np.float32)}
    fx.write_corpus(self.data_dir, "IMP", utts, features, gts, shards_per_split=2)
    # MIX: the same records, but the manifest says every one is "train", so the shards mix
    # splits and the split filter inside the block is what selects them.
    index = {a: k for k, a in enumerate(sorted({r.annotator for u in utts for r in u.ratings}))}
    examples = [schema.to_example(u, index, {n: f[i] for n, f in features.items()}, gts[i])
                for i, u in enumerate(utts)]
    as_train = [dataclasses.replace(u, corpus="MIX", split="train") for u in utts]
    fx.write_corpus(self.data_dir, "MIX", as_train, features, shards_per_split=3,
                    examples=examples)

  def assertSameBatches(self, got, want, epochs=2):
    for _ in range(epochs):  # a second epoch: from the cache, reshuffled
      got_batches, want_batches = list(got.as_numpy_iterator()), list(want.as_numpy_iterator())
      self.assertLen(got_batches, len(want_batches))
      for g, w in zip(got_batches, want_batches):
        self.assertCountEqual(g, w)
        for key in w:
          self.assertEqual(g[key].dtype, w[key].dtype, key)
          self.assertEqual(g[key].shape, w[key].shape, key)
          np.testing.assert_array_equal(g[key], w[key], err_msg=key)
    self.assertEqual(got.element_spec, want.element_spec)

  @parameterized.named_parameters(
      ("train", "IMP", "train", {}),
      ("all_min0_block3", "IMP", "all", {"min_ratings": 0, "batch_size": 7}, 3),
      ("validation_min1_gt2", "IMP", "validation", {"min_ratings": 1, "gt_bins": 2,
                                                     "gt_seed": 4}),
      ("shuffled", "IMP", "all", {"shuffle": True, "seed": 5, "batch_size": 16}),
      ("mixed_shards", "MIX", "train", {"min_ratings": 0, "batch_size": 8, "shuffle": True}, 4),
      ("drop_remainder", "IMP", "train", {"batch_size": 4, "drop_remainder": True}),
      ("one_feature", "IMP", "all", {"feature_names": ("bert",), "min_ratings": 3}, 1),
  )
  def test_annotator_dataset(self, corpus, split, kwargs, block=None):
    with mock.patch.object(pipeline, "PARSE_BLOCK", block or pipeline.PARSE_BLOCK):
      got = pipeline.annotator_dataset(self.data_dir, corpus, split, **kwargs)
    self.assertSameBatches(got, _reference_annotator_dataset(self.data_dir, corpus, split,
                                                             **kwargs))

  @parameterized.named_parameters(
      ("train", "train", {}),
      ("all_normalised_block5", "all", {"normalizer": "stats", "batch_size": 9}, 5),
      ("validation_shuffled", "validation", {"shuffle": True, "seed": 2, "batch_size": 4}),
  )
  def test_cww_dataset(self, split, kwargs, block=None):
    if kwargs.get("normalizer") == "stats":
      kwargs = dict(kwargs, normalizer=pipeline.feature_statistics(self.data_dir, ["IMP"],
                                                                     "is10"))
    with mock.patch.object(pipeline, "PARSE_BLOCK", block or pipeline.PARSE_BLOCK):
      got = pipeline.cww_dataset(self.data_dir, "IMP", split, **kwargs)
    self.assertSameBatches(got, _reference_cww_dataset(self.data_dir, "IMP", split, **kwargs))

  def test_unlabelled_dataset(self):
    stats = pipeline.feature_statistics(self.data_dir, ["IMP"], "is10")
    got = pipeline.unlabelled_dataset(self.data_dir, "IMP", shuffle=False, repeat=False,
                                      normalizer=stats, batch_size=64)
    manifest = pipeline.load_manifest(self.data_dir, "IMP")
    records = [r.numpy() for r in pipeline._records(self.data_dir, manifest, "all")]
    mean, std = (tf.constant(v, tf.float32) for v in (stats[0], np.where(stats[1] > 1e-8,
                                                                          stats[1], 1.0)))
    parse = testing_records.parse_example
    want = np.stack([((parse(tf.constant(r), {"is10": 5}, False)["features/is10"]
                       - mean) / std).numpy() for r in records])
    np.testing.assert_array_equal(np.concatenate([b["features"] for b in
                                                  got.as_numpy_iterator()]), want)

  def test_annotator_index_beyond_the_manifest_fails(self):
    utts = [fx.rated_utterance("BAD", "x", [("a", 0.1, 0.1), ("b", 0.2, 0.2)])]
    example = schema.to_example(utts[0], {"a": 0, "b": 7}, {"is10": np.zeros(2)})
    fx.write_corpus(self.data_dir, "BAD", utts, {"is10": np.zeros((1, 2))}, examples=[example])
    with self.assertRaisesRegex(tf.errors.InvalidArgumentError, "annotator index beyond"):
      list(pipeline.annotator_dataset(self.data_dir, "BAD", "train", feature_names=("is10",)))


class FeatureStatisticsPropertyTest(tf.test.TestCase):

  @hypothesis.settings(max_examples=25, deadline=None)
  @hypothesis.given(st.lists(st.integers(1, 40), min_size=1, max_size=4), st.integers(0, 2 ** 16))
  def test_pooling_equals_numpy_on_the_union(self, sizes, seed):
    rng = np.random.default_rng(seed)
    data_dir = fx.temp_dir(self)
    parts = []
    for k, n in enumerate(sizes):
      x = rng.normal(rng.normal(0, 5), rng.uniform(0.1, 3), size=(n, 3))
      parts.append(x)
      # Only the manifest matters here; write it directly as the writer would.
      corpus_dir = os.path.join(data_dir, f"C{k}")
      os.makedirs(corpus_dir)
      import json  # pylint: disable=g-import-not-at-top
      with open(os.path.join(corpus_dir, manifest_lib.MANIFEST), "w") as f:
        json.dump({"schema_version": schema.SCHEMA_VERSION, "corpus": f"C{k}",
                   "split_counts": {"train": n},
                   "features": {"is10": {"dim": 3, "mean": x.mean(0).tolist(),
                                         "std": x.std(0).tolist()}}}, f)
    mean, std = pipeline.feature_statistics(data_dir, [f"C{k}" for k in range(len(sizes))],
                                            "is10")
    union = np.concatenate(parts)
    np.testing.assert_allclose(mean, union.mean(0), rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(std, union.std(0), rtol=1e-7, atol=1e-9)


if __name__ == "__main__":
  tf.test.main()
