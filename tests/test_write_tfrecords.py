"""data_prep.write_tfrecords: round trip, manifest, sha256, resume, atomicity, bad input."""

import dataclasses
import fnmatch
import glob
import hashlib
import json
import math
import os
import re
import signal
import subprocess
import sys
import textwrap
import time
from unittest import mock

from absl.testing import parameterized
import numpy as np
import tensorflow as tf

from data_prep import ground_truth
from data_prep import labels
from data_prep import shard_writer
from data_prep import write_tfrecords as wt
from data_prep.errors import CorpusError, DropLog
from tests import write_tfrecords_fixtures as fx
from tfser.data import schema
from tfser.testing import records as testing_records

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _write(utts, out_dir, **kwargs):
  kwargs.setdefault("corpus", "TST")
  kwargs.setdefault("shard_size", 5)
  kwargs.setdefault("progress", False)
  kwargs.setdefault("gt_config", None)
  return wt.prepare_corpus(utts, out_dir=out_dir, **kwargs)


def _files(directory):
  """{relative path: bytes} of every file under directory (hidden ones included)."""
  out = {}
  for base, _, names in os.walk(directory):
    for name in names:
      path = os.path.join(base, name)
      with open(path, "rb") as f:
        out[os.path.relpath(path, directory)] = f.read()
  return out


def _find(directory, pattern):
  """Files under directory (hidden folders such as the build's .partial/ included) matching
  the fnmatch pattern."""
  return [os.path.join(base, name) for base, _, names in os.walk(directory)
          for name in fnmatch.filter(names, pattern)]


def _parse_all(corpus_dir, manifest):
  dims = {k: v["dim"] for k, v in manifest["features"].items()}
  records = {}
  for name in sorted(manifest["shards"]):
    for raw in tf.data.TFRecordDataset(os.path.join(corpus_dir, name)):
      parsed = testing_records.parse_example(raw, dims)
      records[parsed["utterance_id"].numpy().decode()] = (name, parsed)
  return records


class RoundTripTest(tf.test.TestCase):

  def test_every_field_round_trips(self):
    utts = fx.make_utterances(23)
    out = self.get_temp_dir() + "/rt"
    extractor = fx.FakeExtractor(dim=4)
    manifest = _write(utts, out, extractors=[extractor])
    records = _parse_all(os.path.join(out, "TST"), manifest)
    self.assertLen(records, 23)
    annotators = manifest["annotators"]
    for utt in utts:
      shard, rec = records[utt.utterance_id]
      self.assertTrue(shard.startswith(utt.split + "-"))
      for key in ("corpus", "speaker", "gender", "split", "cww_split", "audio_path",
                  "transcript", "label", "raw_label", "label_source"):
        self.assertEqual(rec[key].numpy().decode(), getattr(utt, key), key)
      self.assertEqual(int(rec["label_index"]), utt.label_index)
      merged = labels.merge_duplicate_ratings(utt.ratings)
      self.assertEqual([annotators[i] for i in rec["rating_annotator"].numpy()],
                       [r.annotator for r in merged])
      for key in ("activation", "valence", "dominance"):
        np.testing.assert_allclose(rec["rating_" + key].numpy(),
                                   np.float32([getattr(r, key) for r in merged]))
      self.assertAllEqual(rec["rating_category"].numpy(),
                          [schema.CLASS_INDEX.get(r.category, -1) for r in merged])
      # One de-duplication rule (labels.merge_duplicate_raters, as every reader): where raters
      # were merged the consensus is the mean of the merged ratings; otherwise it is kept.
      expected = (labels.consensus(merged) if len(merged) != len(utt.ratings)
                  else (utt.activation, utt.valence, utt.dominance))
      np.testing.assert_allclose([float(rec[k]) for k in ("activation", "valence", "dominance")],
                                 np.float32(expected))
      if len(merged) == len(utt.ratings):
        self.assertTrue(math.isnan(float(rec["dominance"])))
      np.testing.assert_array_equal(rec["features/fake"].numpy(), extractor(utt, None))
      # No ground truth requested: the parser's default is NaN.
      self.assertTrue(np.all(np.isnan(rec["gt_4x4"].numpy())))
      self.assertEqual(rec["gt_2x2"].shape, (schema.GT_SEEDS, 4))
    # Records inside a shard are sorted by utterance id.
    for name in manifest["shards"]:
      ids = [k for k, (s, _) in sorted(records.items()) if s == name]
      self.assertEqual(ids, sorted(ids))

  def test_ground_truth_stored_per_utterance(self):
    utts = fx.make_utterances(7, raters=(0, 4), seed=2)
    out = self.get_temp_dir() + "/gt"
    manifest = _write(utts, out, gt_config=fx.GT_CONFIG)
    merged = [dataclasses.replace(u, ratings=labels.merge_duplicate_ratings(u.ratings))
              for u in utts]
    expected, has_gt = ground_truth.get_ground_truth(fx.GT_CONFIG).compute(merged)
    self.assertTrue(0 < has_gt.sum() < len(utts))
    self.assertEqual(manifest["ground_truth"]["utterances"], int(has_gt.sum()))
    self.assertEqual((manifest["ground_truth"]["grid"], manifest["ground_truth"]["samples"],
                      manifest["ground_truth"]["seeds"]), (512, 200, [0, 1, 2, 3, 4]))
    records = _parse_all(os.path.join(out, "TST"), manifest)
    for i, utt in enumerate(utts):
      rec = records[utt.utterance_id][1]
      for bins in (4, 2):
        got = rec[f"gt_{bins}x{bins}"].numpy()
        if has_gt[i]:
          np.testing.assert_array_equal(got, expected[bins][i].astype(np.float32))
          np.testing.assert_allclose(got.sum(-1), np.ones(5), rtol=1e-6)
        else:
          self.assertTrue(np.all(np.isnan(got)))

  def test_audio_never_opened_without_features(self):
    def loader(path):
      raise AssertionError(f"audio opened: {path}")
    manifest = _write(fx.make_utterances(6), self.get_temp_dir() + "/none", audio_loader=loader)
    self.assertEqual(manifest["features"], {})

  def test_audio_goes_to_extractors_that_need_it(self):
    loaded = []

    def loader(path):
      loaded.append(path)
      return np.full(160, 0.25, np.float32)
    ex = fx.FakeExtractor("audio", 2, needs_audio=True)
    manifest = _write(fx.make_utterances(4), self.get_temp_dir() + "/audio", extractors=[ex],
                      audio_loader=loader)
    self.assertLen(loaded, 4)
    recs = _parse_all(self.get_temp_dir() + "/audio/TST", manifest)
    for _, rec in recs.values():
      self.assertEqual(float(rec["features/audio"][0]), 0.25)


class EncodingAndStreamTest(tf.test.TestCase):

  def test_float_features_encode_as_protobuf_builds_them(self):
    # schema._floats parses the packed wire form; protobuf's own FloatList(value=...) is the
    # reference (same message, same bytes), also for NaN, infinities, -0.0 and no values.
    rng = np.random.default_rng(3)
    for width in (0, 1, 2, 31, 32, 33, 1582, 40000):
      values = rng.normal(size=width).astype(np.float32)
      values[:4] = [np.nan, np.inf, -np.inf, -0.0][:width]
      want = tf.train.Feature(float_list=tf.train.FloatList(value=values))
      got = schema._floats(values)
      self.assertEqual(got.SerializeToString(deterministic=True),
                       want.SerializeToString(deterministic=True), width)
      np.testing.assert_array_equal(np.float32(got.float_list.value), values)
    self.assertEqual(schema._floats([0.5, 2.0]).float_list.value, [0.5, 2.0])

  def test_feature_stream_in_order_bounded_and_raising_when_taken(self):
    utts = fx.make_utterances(12)
    reference = fx.FakeExtractor()
    want = [reference(u, None) for u in utts]
    bar = wt.progress_lib.Progress("TST", {"features": len(utts)}, enabled=False)
    started = []

    class Counted(fx.FakeExtractor):
      def __call__(self, utterance, waveform):
        started.append(utterance.utterance_id)
        return super().__call__(utterance, waveform)
    for threads in (1, 2):
      started.clear()
      with shard_writer.FeatureStream(utts, [Counted()], None, bar, threads=threads,
                                      ahead=3) as stream:
        first = list(stream.take(4))  # a shard of 4, then one of 8
        self.assertLessEqual(len(started), 4 + 3)  # at most `ahead` computed beyond
        rest = list(stream.take(8))
      for got, vec in zip(first + rest, want):
        np.testing.assert_array_equal(got["fake"], vec)
    failing = fx.FakeExtractor(fail_on=utts[5].utterance_id)
    with shard_writer.FeatureStream(utts, [failing], None, bar, threads=2) as stream:
      self.assertLen(list(stream.take(5)), 5)  # computed ahead, raised only when taken
      with self.assertRaisesRegex(RuntimeError, "injected crash on " + utts[5].utterance_id):
        list(stream.take(1))


class ManifestTest(tf.test.TestCase):

  def test_contents(self):
    utts = fx.make_utterances(31, seed=3)
    out = self.get_temp_dir() + "/man"
    reader_log = DropLog()
    reader_log.add("malformed evaluation line", "bad_utt")
    ex = fx.FakeExtractor(dim=5)
    manifest = _write(utts, out, extractors=[ex], dropped=reader_log, seed=7, demo=True)
    with open(os.path.join(out, "TST", "manifest.json")) as f:
      self.assertEqual(json.load(f), manifest)
    self.assertEqual(manifest["schema_version"], schema.SCHEMA_VERSION)
    self.assertEqual((manifest["corpus"], manifest["demo"], manifest["seed"]), ("TST", True, 7))
    self.assertEqual(manifest["utterances"], 31)
    self.assertEqual(manifest["speakers"], sorted({u.speaker for u in utts}))
    self.assertEqual(manifest["annotators"],
                     sorted({r.annotator for u in utts for r in u.ratings}))
    for name in schema.CLASS_NAMES:
      self.assertEqual(manifest["class_counts"][name], sum(u.label == name for u in utts))
    self.assertEqual(set(manifest["class_counts"]), set(schema.CLASS_NAMES))
    self.assertEqual(manifest["cww_excluded"]["count"], sum(not u.label for u in utts))
    for split in ("train", "validation", "test"):
      self.assertEqual(manifest["split_counts"][split], sum(u.split == split for u in utts))
    for split in ("train", "validation"):
      self.assertEqual(manifest["cww_split_counts"][split],
                       sum(u.cww_split == split for u in utts))
      self.assertEqual(sum(manifest["cww_class_counts"][split].values()),
                       sum(u.cww_split == split and bool(u.label) for u in utts))
    few = [u.utterance_id for u in utts if labels.count_annotators(u.ratings) < 2]
    self.assertNotEmpty(few)
    # Too few raters: written (categorical task) and counted as kept without ground truth, not
    # as dropped.
    self.assertEqual({k: manifest["kept_without_ground_truth"][k] for k in ("count", "ids")},
                     {"count": len(few), "ids": sorted(few)})
    self.assertEqual(manifest["dropped"], {"malformed evaluation line":
                                           {"count": 1, "ids": ["bad_utt"]}})
    # Merged duplicate raters: the writer's own merges and those the reader reports.
    merged = [u.utterance_id for u in utts if labels.has_duplicate_annotators(u.ratings)]
    self.assertNotEmpty(merged)
    self.assertEqual(manifest["merged_duplicate_raters"],
                     {"count": len(merged), "ids": sorted(merged)})
    self.assertEqual(manifest["max_ratings"],
                     max(len(labels.merge_duplicate_ratings(u.ratings)) for u in utts))
    # Feature statistics: numpy over the training split (population std).
    train = np.stack([ex(u, None) for u in utts if u.split == "train"]).astype(np.float64)
    feat = manifest["features"]["fake"]
    self.assertEqual((feat["dim"], feat["count"]), (5, len(train)))
    np.testing.assert_allclose(feat["mean"], train.mean(0), rtol=1e-12)
    np.testing.assert_allclose(feat["std"], train.std(0), rtol=1e-10)
    cww = np.stack([ex(u, None) for u in utts if u.cww_split == "train"]).astype(np.float64)
    np.testing.assert_allclose(feat["cww_train"]["std"], cww.std(0), rtol=1e-10)
    self.assertEqual(feat["cww_train"]["count"], len(cww))
    every = np.stack([ex(u, None) for u in utts]).astype(np.float64)
    np.testing.assert_allclose(feat["all"]["mean"], every.mean(0), rtol=1e-12)
    # Shards: the files on disk, their sha256 and record counts.
    corpus_dir = os.path.join(out, "TST")
    on_disk = sorted(os.path.basename(p) for p in glob.glob(corpus_dir + "/*.tfrecord"))
    self.assertEqual(on_disk, sorted(manifest["shards"]))
    self.assertIn("train-00000-of-00004.tfrecord", on_disk)  # 19 train utterances / 5
    for name, info in manifest["shards"].items():
      with open(os.path.join(corpus_dir, name), "rb") as f:
        self.assertEqual(info["sha256"], hashlib.sha256(f.read()).hexdigest())
      n = sum(1 for _ in tf.data.TFRecordDataset(os.path.join(corpus_dir, name)))
      self.assertEqual(info["records"], n)
      self.assertEqual(info["bytes"], os.path.getsize(os.path.join(corpus_dir, name)))
      self.assertEqual(info["split"], name.split("-")[0])
    self.assertEqual(sorted(os.listdir(corpus_dir)), sorted(on_disk + ["manifest.json"]))

  def test_unlabelled_corpus_used_whole(self):
    utts = fx.make_utterances(6, raters=(0, 0))
    for u in utts:
      u.split = u.cww_split = "all"
      u.label, u.raw_label, u.label_source = "", "", "none"
    ex = fx.FakeExtractor(dim=2)
    manifest = _write(utts, self.get_temp_dir() + "/libri", extractors=[ex],
                      gt_config=fx.GT_CONFIG)
    everything = np.stack([ex(u, None) for u in utts]).astype(np.float64)
    feat = manifest["features"]["fake"]
    # No training split: no training statistics (a pooled normalisation skips the corpus), but
    # the whole corpus's are there.
    self.assertEqual((feat["count"], feat["mean"], feat["std"]), (0, None, None))
    self.assertEqual(feat["cww_train"]["count"], 0)
    self.assertEqual(feat["all"]["count"], 6)
    np.testing.assert_allclose(feat["all"]["mean"], everything.mean(0), rtol=1e-12)
    np.testing.assert_allclose(feat["all"]["std"], everything.std(0), rtol=1e-10)
    self.assertEqual(list(manifest["shards"]), ["all-00000-of-00002.tfrecord",
                                                "all-00001-of-00002.tfrecord"])
    # No dimensional ratings at all: the annotator task does not apply, nothing is listed.
    self.assertEqual(manifest["dropped"], {})
    self.assertEqual(manifest["kept_without_ground_truth"]["count"], 0)
    self.assertEqual(manifest["ground_truth"]["utterances"], 0)
    self.assertEqual(manifest["cww_excluded"], {"count": 6, "raw_labels": {"(unlabelled)": 6}})

  def test_deterministic_and_order_independent(self):
    utts = fx.make_utterances(17)
    a = _write(utts, self.get_temp_dir() + "/a")
    b = _write(list(reversed(utts)), self.get_temp_dir() + "/b")
    self.assertEqual(a, b)
    self.assertEqual(_files(self.get_temp_dir() + "/a"), _files(self.get_temp_dir() + "/b"))

  def test_rerun_is_a_no_op_and_new_plan_replaces_old_shards(self):
    out = self.get_temp_dir() + "/rerun"
    utts = fx.make_utterances(12)
    first = _write(utts, out)
    stamp = {p: os.stat(p).st_mtime_ns for p in glob.glob(out + "/TST/*")}
    ex = fx.FakeExtractor()
    self.assertEqual(_write(utts, out), first)
    self.assertEqual({p: os.stat(p).st_mtime_ns for p in glob.glob(out + "/TST/*")}, stamp)
    second = _write(utts, out, shard_size=3, extractors=[ex])
    self.assertEqual(ex.calls, 12)
    names = sorted(os.path.basename(p) for p in glob.glob(out + "/TST/*.tfrecord"))
    self.assertEqual(names, sorted(second["shards"]))
    self.assertNotEqual(sorted(first["shards"]), names)


class ResumeTest(parameterized.TestCase, tf.test.TestCase):

  class Interrupt(Exception):
    pass

  def _reference(self):
    ref = self.get_temp_dir() + "/reference"
    if not os.path.exists(ref):
      _write(fx.make_utterances(23), ref, extractors=[fx.FakeExtractor()])
    return _files(ref)

  @parameterized.parameters(("shard_written", 1), ("shard_done", 1), ("shard_written", 3),
                            ("shard_done", 4), ("manifest_written", 1))
  def test_interrupted_run_resumes_byte_identical(self, event, k):
    out = self.get_temp_dir() + f"/{event}{k}"
    seen = []

    def interrupt(name, shard):
      if name == event:
        seen.append(shard)
        if len(seen) == k:
          raise self.Interrupt(shard)
    with self.assertRaises(self.Interrupt):
      _write(fx.make_utterances(23), out, extractors=[fx.FakeExtractor()], on_event=interrupt)
    self.assertEmpty(_find(out, ".*.tmp"))
    ex = fx.FakeExtractor()
    _write(fx.make_utterances(23), out, extractors=[ex])
    # Finished shards are not recomputed (an interrupt at "shard_written" leaves no sidecar).
    done = k if event == "shard_done" else (k - 1 if event == "shard_written" else 0)
    if event != "manifest_written":
      plan = wt.plan_shards(fx.make_utterances(23), 5)
      self.assertEqual(ex.calls, sum(len(s.utterances) for s in plan[done:]))
    self.assertEqual(_files(out), self._reference())

  def test_leftovers_of_a_killed_run_are_repaired(self):
    out = self.get_temp_dir() + "/leftovers"

    def stop(name, shard):
      if name == "shard_done" and shard.startswith("validation"):
        raise self.Interrupt(shard)
    with self.assertRaises(self.Interrupt):
      _write(fx.make_utterances(23), out, extractors=[fx.FakeExtractor()], on_event=stop)
    build_dir = out + "/.partial/TST"  # the build in progress (data_prep.staging)
    self.assertFalse(os.path.exists(out + "/TST"))
    # What SIGKILL can leave: a temporary file, a shard whose sidecar is missing, a damaged one.
    with open(build_dir + "/.train-00001-of-00003.tfrecord.tmp", "wb") as f:
      f.write(b"half")
    with open(build_dir + "/.partial/.plan.json.tmp", "wb") as f:
      f.write(b"{")
    os.remove(build_dir + "/.partial/train-00000-of-00003.tfrecord.json")
    with open(build_dir + "/train-00001-of-00003.tfrecord", "r+b") as f:
      f.write(b"\0\0\0")
    ex = fx.FakeExtractor()
    _write(fx.make_utterances(23), out, extractors=[ex])
    self.assertEqual(_files(out), self._reference())

  def test_sigkill_mid_run_then_resume(self):
    out = self.get_temp_dir() + "/killed"
    script = textwrap.dedent(f"""
        import sys, time
        sys.path.insert(0, {ROOT!r})
        import tfser
        from data_prep import write_tfrecords as wt
        from tests import write_tfrecords_fixtures as fx

        class Slow(fx.FakeExtractor):
          def __call__(self, utt, wav):
            time.sleep(0.05)
            return super().__call__(utt, wav)

        def announce(event, shard):
          print(event, shard, flush=True)
        wt.prepare_corpus(fx.make_utterances(23), corpus="TST", out_dir={out!r}, shard_size=5,
                          progress=False, gt_config=None, extractors=[Slow()], on_event=announce)
        """)
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
      for line in proc.stdout:
        if line.startswith("shard_done"):
          break  # one shard finished; the next one is mid-computation
      time.sleep(0.1)
      proc.send_signal(signal.SIGKILL)
    finally:
      proc.wait(timeout=120)
    self.assertEqual(proc.returncode, -signal.SIGKILL)
    self.assertFalse(os.path.exists(out + "/TST/manifest.json"))
    ex = fx.FakeExtractor()
    _write(fx.make_utterances(23), out, extractors=[ex])
    self.assertLess(ex.calls, 23)
    self.assertEqual(_files(out), self._reference())


class AtomicityTest(tf.test.TestCase):

  def test_crash_mid_shard_leaves_only_finished_files(self):
    out = self.get_temp_dir() + "/crash"
    with self.assertRaisesRegex(RuntimeError, "injected crash on utt008"):
      _write(fx.make_utterances(23), out, extractors=[fx.FakeExtractor(fail_on="utt008")])
    self.assertFalse(os.path.exists(out + "/TST"))
    self.assertEmpty(_find(out, ".*.tmp"))
    # utt008 is in the validation shard, planned after the three train shards; the finished
    # ones wait in the build directory for a rerun.
    plan = [sh.name for sh in wt.plan_shards(fx.make_utterances(23), 5)]
    self.assertEqual(plan[3], "validation-00000-of-00001.tfrecord")
    self.assertEqual(sorted(os.path.basename(p) for p in glob.glob(out + "/.partial/TST/*.tfrecord")),
                     plan[:3])

  def test_crash_while_writing_the_shard_file(self):
    out = self.get_temp_dir() + "/crash2"
    utts = fx.make_utterances(8)
    bad_annotators = {}  # an annotator index without the ids makes to_example raise mid-file
    original = shard_writer.write_shard

    def broken(shard, path, annotator_index, *args):
      return original(shard, path, bad_annotators, *args)
    with mock.patch.object(shard_writer, "write_shard", broken):
      with self.assertRaises(KeyError):
        _write(utts, out)
    self.assertEmpty(_find(out, "*.tfrecord") + _find(out, ".*.tmp"))


class BadInputTest(parameterized.TestCase, tf.test.TestCase):

  @parameterized.named_parameters(
      ("out_of_scale", lambda u: u.ratings[0].__setattr__("activation", 3.0),
       "rating out of scale or not finite", r"utterance TST/utt001.*activation 3.0 outside"),
      ("infinite", lambda u: u.ratings[0].__setattr__("valence", math.inf),
       "rating out of scale or not finite", r"utterance TST/utt001.*valence inf"),
      ("consensus", lambda u: setattr(u, "activation", -1.5),
       "rating out of scale or not finite", r"consensus activation -1.5"),
      ("label", lambda u: setattr(u, "label", "bored"), "unknown label",
       r"utterance TST/utt001: label 'bored' is not one of"),
      ("split", lambda u: setattr(u, "split", "dev"), "unknown split", r"split 'dev'"),
      ("corpus", lambda u: setattr(u, "corpus", "XYZ"), "wrong corpus", r"corpus 'XYZ'"),
      ("annotator", lambda u: u.ratings[0].__setattr__("annotator", ""), "empty annotator id",
       r"annotator id ''"))
  def test_error_or_counted_skip(self, corrupt, reason, message):
    utts = fx.make_utterances(6, raters=(2, 4))
    corrupt(utts[1])
    out = self.get_temp_dir() + "/bad_" + reason.replace(" ", "_")
    with self.assertRaisesRegex(CorpusError, message):
      _write(utts, out)
    self.assertFalse(os.path.exists(out + "/TST"))  # nothing written before validation passed
    manifest = _write(utts, out, skip_bad=True)
    entry = manifest["dropped"][reason]  # keyed by the reason class, the message per item
    self.assertEqual((entry["count"], entry["ids"]), (1, ["utt001"]))
    self.assertRegex(entry.get("details", {}).get("utt001", reason),
                     re.sub(r"^utterance TST/utt001(\.\*|: )", "", message))
    self.assertEqual(manifest["utterances"], 5)

  def test_duplicate_id(self):
    utts = fx.make_utterances(4)
    utts.append(dataclasses.replace(utts[2]))
    with self.assertRaisesRegex(CorpusError, "utterance TST/utt002: the utterance id occurs twice"):
      _write(utts, self.get_temp_dir() + "/dup")
    manifest = _write(utts, self.get_temp_dir() + "/dup", skip_bad=True)
    self.assertEqual(manifest["dropped"]["duplicate utterance id"]["ids"], ["utt002"])

  def test_empty_corpus(self):
    with self.assertRaisesRegex(CorpusError, "corpus TST is empty: the reader yielded no"):
      _write([], self.get_temp_dir() + "/empty")
    utts = fx.make_utterances(2)
    for u in utts:
      u.split = "bogus"
    with self.assertRaisesRegex(CorpusError, "yielded 2 utterance.*2 dropped"):
      _write(utts, self.get_temp_dir() + "/empty", skip_bad=True)

  def test_bad_audio_names_the_file_or_is_counted(self):
    def loader(path):
      if path.endswith("utt002.wav"):
        raise CorpusError("empty audio file", path=path)
      return np.zeros(16, np.float32)
    ex = fx.FakeExtractor(needs_audio=True)
    out = self.get_temp_dir() + "/audio_bad"
    with self.assertRaisesRegex(CorpusError, r"/nonexistent/utt002.wav, utterance TST/utt002: "
                                r"empty audio file \(pass --skip_bad"):
      _write(fx.make_utterances(7), out, extractors=[ex], audio_loader=loader)
    self.assertFalse(os.path.exists(out + "/TST/manifest.json"))
    manifest = _write(fx.make_utterances(7), out, extractors=[ex], audio_loader=loader,
                      skip_bad=True)
    self.assertEqual(manifest["dropped"]["empty audio file"],
                     {"count": 1, "ids": ["utt002"],
                      "details": {"utt002": "/nonexistent/utt002.wav: empty audio file"}})
    self.assertEqual(manifest["utterances"], 6)
    self.assertEqual(sum(s["records"] for s in manifest["shards"].values()), 6)

  def test_non_finite_features(self):
    class NanExtractor(fx.FakeExtractor):
      def __call__(self, utt, wav):
        return np.full(self.dim, np.nan if utt.utterance_id == "utt003" else 1.0)
    with self.assertRaisesRegex(CorpusError, "utterance TST/utt003: nan features are not finite"):
      _write(fx.make_utterances(5), self.get_temp_dir() + "/nanfeat",
             extractors=[NanExtractor("nan")])


if __name__ == "__main__":
  tf.test.main()
