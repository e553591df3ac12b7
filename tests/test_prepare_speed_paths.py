"""Issue 13's speed paths, functionally: sharded workers, automatic KDE chunking, progress line.

No timings here (bench/prepare.py measures them).
"""

import concurrent.futures
import dataclasses
import io
import json
import os
import re

import numpy as np
import tensorflow as tf

from data_prep import ground_truth as gtm
from data_prep import gt_plan
from data_prep import parallel
from data_prep import progress
from data_prep import write_tfrecords
from tests import write_tfrecords_fixtures as fx
from tests.test_write_tfrecords import _files as _tree  # {relative path: bytes}, hidden too

# A small grid keeps these tests quick; the paths are the same as at 512.
SMALL_GT = gtm.GroundTruthConfig(grid_size=64, kde_batch=8, jit=False, threads=1)


class ShardedPrepareTest(tf.test.TestCase):

  def _prepare(self, out, **kwargs):
    return write_tfrecords.prepare_corpus(
        fx.make_utterances(14, raters=(0, 5), seed=3), corpus="TST", out_dir=out,
        extractors=[fx.FakeExtractor()], shard_size=3, gt_config=SMALL_GT, progress=False,
        **kwargs)

  def test_workers_give_the_single_process_bytes(self):
    single = self.get_temp_dir() + "/single"
    manifest = self._prepare(single)
    self.assertGreater(len(manifest["shards"]), 4)  # several shards per worker below
    expected = _tree(single)
    self.assertIn("TST/manifest.json", expected)
    self.assertFalse([p for p in expected if p.endswith(parallel.LOCK_SUFFIX)], expected)

    # Sequential workers: only the last one to finish writes the manifest.
    sequential = self.get_temp_dir() + "/sequential"
    self.assertIsNone(self._prepare(sequential, num_shards=3, shard_index=2))
    self.assertIsNone(self._prepare(sequential, num_shards=3, shard_index=0))
    self.assertFalse(os.path.exists(sequential + "/TST/manifest.json"))
    self.assertEqual(self._prepare(sequential, num_shards=3, shard_index=1), manifest)
    self.assertEqual(_tree(sequential), expected)

    # Concurrent workers (the corpus lock serialises set-up and the manifest step).
    concurrent_dir = self.get_temp_dir() + "/concurrent"
    with concurrent.futures.ThreadPoolExecutor(3) as pool:
      results = list(pool.map(
          lambda i: self._prepare(concurrent_dir, num_shards=3, shard_index=i), range(3)))
    self.assertIn(manifest, results)
    self.assertEqual(_tree(concurrent_dir), expected)

  def test_plain_run_finishes_what_workers_left(self):
    single = self.get_temp_dir() + "/single2"
    self._prepare(single)
    partial = self.get_temp_dir() + "/partial"
    self.assertIsNone(self._prepare(partial, num_shards=2, shard_index=1))
    self.assertIsNotNone(self._prepare(partial))  # the "final step": worker 0's shards + manifest
    self.assertEqual(_tree(partial), _tree(single))

  def test_bad_shard_flags(self):
    with self.assertRaisesRegex(ValueError, r"--shard_index must be in \[0, --num_shards=2\)"):
      self._prepare(self.get_temp_dir() + "/bad", num_shards=2, shard_index=2)
    with self.assertRaisesRegex(ValueError, "--num_shards must be >= 1"):
      parallel.check_sharding(0, 0)
    self.assertEqual(parallel.worker_items(list("abcde"), 2, 1), ["b", "d"])


class CommandLineShardsTest(tf.test.TestCase):

  def test_two_workers_from_the_command_line(self):
    from absl import app  # pylint: disable=g-import-not-at-top
    from absl import flags  # pylint: disable=g-import-not-at-top
    from data_prep import prepare  # pylint: disable=g-import-not-at-top
    from tests import test_prepare  # pylint: disable=g-import-not-at-top
    prepare._define_flags()  # pylint: disable=protected-access
    root = test_prepare._csv(self.get_temp_dir() + "/cli", test_prepare.CSV_ROWS)  # pylint: disable=protected-access
    out = self.get_temp_dir() + "/cli_out"

    def main(*args):
      flags.FLAGS.unparse_flags()
      try:
        return prepare.main(flags.FLAGS(["prepare", "--corpus=csv", f"--root={root}",
                                         f"--out_dir={out}", "--features=none",
                                         "--noground_truth", "--shard_size=1", "--noprogress"]
                                        + list(args)))
      finally:
        flags.FLAGS.unparse_flags()

    with self.assertRaisesRegex(app.UsageError, r"--shard_index must be in \[0, --num_shards=2\)"):
      main("--num_shards=2", "--shard_index=2")
    with self.assertRaisesRegex(app.UsageError, r"--gt_batch=0: use an integer >= 1"):
      main("--gt_batch=0")
    self.assertEqual(main("--num_shards=2", "--shard_index=1"), 0)
    self.assertFalse(os.path.exists(out + "/CSV/manifest.json"))
    self.assertEqual(main("--num_shards=2", "--shard_index=0"), 0)
    with open(out + "/CSV/manifest.json") as f:
      self.assertLen(json.load(f)["shards"], 4)


class AutomaticChunksTest(tf.test.TestCase):

  def test_resolve(self):
    auto = gtm.GroundTruthConfig()
    # A 10-utterance corpus at grid 512: eagerly (no trace), chunks of 16 rows (2**22 cells).
    small = auto.resolved(50)
    self.assertEqual((small.eager, small.kde_batch, small.jit), (True, 16, False))
    self.assertEqual(small.threads, parallel.cores())
    # Past the eager limit a graph of the cache-sized 4 rows (2**20 cells), XLA from JIT_MIN_ROWS.
    medium = auto.resolved(gt_plan.EAGER_MAX_ROWS + 1)
    self.assertEqual((medium.eager, medium.kde_batch, medium.jit), (False, 4, False))
    large = auto.resolved(gt_plan.JIT_MIN_ROWS)
    self.assertEqual((large.eager, large.kde_batch, large.jit), (False, 4, True))
    self.assertEqual(dataclasses.replace(auto, grid_size=64).resolved(10).kde_batch, 10)
    self.assertEqual(dataclasses.replace(auto, grid_size=64, eager=False).resolved(
        10 ** 4).kde_batch, 256)
    explicit = gtm.GroundTruthConfig(kde_batch=32, jit=True, threads=1).resolved(50)
    self.assertEqual((explicit.eager, explicit.kde_batch, explicit.jit, explicit.threads),
                     (False, 32, True, 1))
    with self.assertRaisesRegex(ValueError, "--gt_eager and --gt_jit"):
      gtm.GroundTruthConfig(eager=True, jit=True).resolved(50)
    # Threads are execution only: not in the writer's plan fingerprint.
    self.assertEqual(dataclasses.replace(explicit, threads=2).fingerprint(),
                     explicit.fingerprint())

  def test_auto_chunks_and_threads_give_the_same_numbers(self):
    utts = fx.make_utterances(6, raters=(2, 6), seed=7)
    auto = dataclasses.replace(SMALL_GT, kde_batch=None, threads=None)
    threads = dataclasses.replace(SMALL_GT, threads=2)
    fixed, has_gt = gtm.get_ground_truth(SMALL_GT).compute(utts)
    self.assertTrue(np.all(has_gt))
    in_threads, _ = gtm.get_ground_truth(threads).compute(utts)
    automatic, _ = gtm.get_ground_truth(auto.resolved(5 * len(utts))).compute(utts)
    self.assertTrue(auto.resolved(5 * len(utts)).eager)
    graph_config = dataclasses.replace(SMALL_GT, eager=False, threads=2)
    in_graph, _ = gtm.get_ground_truth(graph_config).compute(utts)
    for b in SMALL_GT.bins:
      np.testing.assert_array_equal(in_threads[b], fixed[b])  # same chunks: same bits
      # Other chunks: a chunk's rows decide how many frequencies and line slots its sums run
      # over, so the numbers agree to rounding (of densities ~1e-16 of their peak: at most
      # ~1e-12 on a probability).
      np.testing.assert_allclose(automatic[b], fixed[b], rtol=1e-12, atol=1e-12)
      np.testing.assert_allclose(in_graph[b], fixed[b], rtol=1e-12, atol=1e-12)


class ProgressLineTest(tf.test.TestCase):

  def test_log_lines(self):
    now = [100.0]
    stream = io.StringIO()
    bar = progress.Progress("IEM", {"features": 100, "ground truth": 100}, stream=stream,
                            clock=lambda: now[0], tty=False)
    bar.skip("ground truth", 40)  # a resumed run: counted as done, not into the rate
    now[0] += 10
    bar.advance("ground truth", 20)
    bar.advance("features", 5)
    lines = stream.getvalue().splitlines()
    self.assertEqual(lines[-2], "IEM ground truth: 60/100 utterances (60%), 2.0 utt/s, 0:20 left")
    self.assertEqual(lines[-1], "IEM features: 5/100 utterances (5%), 0.5 utt/s, 3:10 left")
    self.assertEqual(lines[0], "IEM ground truth: 40/100 utterances (40%), ? utt/s, ? left")
    bar.advance("features", 1)  # same decile, within log_seconds: no new line
    self.assertLen(stream.getvalue().splitlines(), 3)
    self.assertEqual(progress.format_duration(3725), "1:02:05")

  def test_terminal_line_redraws_all_stages(self):
    stream = io.StringIO()
    bar = progress.Progress("POD", {"features": 4, "ground truth": 4}, stream=stream,
                            clock=lambda: 0.0, tty=True)
    bar.advance("features", 4)
    bar.advance("ground truth", 4)
    bar.close()
    last = stream.getvalue().split("\r")[-1]
    self.assertRegex(last, re.escape("POD features: 4/4 utterances (100%), ") + r".* \| "
                     + re.escape("ground truth: 4/4 utterances (100%), "))
    self.assertTrue(last.endswith("0:00 left \n"))


if __name__ == "__main__":
  tf.test.main()
