"""Issue 15: the papers' test sets, defaults and ground-truth settings.

* Each corpus's test set is defined once (``tfser.data.test_sets``) and the annotators task's
  zero-shot path reads exactly it (MSP-Podcast: Test1, not every split), named in its data.
* The annotators task's defaults are the paper's (raw features, float16 DiffKDE, ground truth
  with the sample std); ``--preset=synthetic_demo`` changes only what it names.
* The ground truth's noise uses numpy's ``std(ddof=1)`` by default (the authors' ``torch.std``);
  a launcher refuses data made with another ddof (one line, no traceback, exit status 1).
"""

import dataclasses
import json
import os
import subprocess
import sys

import numpy as np
import tensorflow as tf

from data_prep import ground_truth as gtm
from data_prep.corpora import iemocap
from tests import pipeline_fixtures as pf
from tfser.data import test_sets
from tfser.tasks.annotators import config as annotators_config
from tfser.tasks.annotators.config import AnnotatorsConfig
from tfser.tasks.annotators.data import load_data
from tfser.tasks.cww.config import CwwConfig

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _write(data_dir, corpus, splits, seed=0, dim=4):
  """A small corpus with the given {split: utterances}; two raters each; random features/GT."""
  rng = np.random.default_rng(seed)
  utts, gts = [], []
  for split, n in splits.items():
    for i in range(n):
      utts.append(pf.rated_utterance(corpus, f"{corpus}_{split}_{i}",
                                     [("a", 0.1, 0.2, "happy"), ("b", -0.3, 0.4, "happy")],
                                     split=split, label="happy"))
      gts.append(pf.random_ground_truth(rng))
  return pf.write_corpus(data_dir, corpus, utts,
                         {"is10": rng.normal(size=[len(utts), dim]).astype(np.float32)}, gts,
                         shards_per_split=1)


def _utterance_ids(dataset):
  return sorted(u.decode() for b in dataset for u in b["utterance_id"].numpy())


class TestSetsTest(tf.test.TestCase):

  def test_each_task_names_the_papers_sets(self):
    pod = test_sets.held_out_test_set("annotators", "POD")
    self.assertEqual((pod.split, pod.field), ("test", "split"))
    self.assertIn("Test1", pod.name)
    self.assertNotIn("Test2", pod.name)
    for corpus in ("IEM", "MuSE"):
      self.assertEqual(test_sets.held_out_test_set("annotators", corpus).split, "all")
    self.assertEqual(test_sets.held_out_test_set("annotators", "IMP").split, "test")
    cww_pod = test_sets.held_out_test_set("cww", "POD")
    self.assertEqual((cww_pod.split, cww_pod.field), ("test", "cww_split"))
    self.assertIn("Test2", cww_pod.name)
    for corpus in ("CRE", "IEM", "IMP"):
      self.assertEqual(test_sets.held_out_test_set("cww", corpus).split, "all")
    # The CWW config reads its holdout split from the same table.
    for holdout in ("CRE", "IEM", "IMP", "POD"):
      config = CwwConfig(holdout=holdout)
      self.assertEqual(config.resolved_holdout_split,
                       test_sets.held_out_test_set("cww", holdout).split)
    self.assertEqual(CwwConfig(holdout="POD", holdout_split="all").holdout_test_set.split, "all")
    with self.assertRaisesRegex(ValueError, "unknown task"):
      test_sets.held_out_test_set("asr", "POD")

  def test_zero_shot_reads_the_annotators_test_set(self):
    data_dir = self.get_temp_dir()
    _write(data_dir, "IMP", {"train": 6, "validation": 3, "test": 3})
    # POD as the MSP-Podcast reader marks it: Test1 -> "test", Test2 and others -> "all".
    _write(data_dir, "POD", {"train": 5, "validation": 4, "test": 3, "all": 7}, seed=1)
    _write(data_dir, "IEM", {"test": 4}, seed=2)
    config = AnnotatorsConfig(data_dir=data_dir, corpus="IMP", feature_names=("is10",),
                              zero_shot_corpora=("POD", "IEM"), batch_size=4)
    data = load_data(config)
    self.assertEqual(_utterance_ids(data.zero_shot["POD"]),
                     sorted(f"POD_test_{i}" for i in range(3)))
    self.assertLen(_utterance_ids(data.zero_shot["IEM"]), 4)
    self.assertEqual(data.test_sets["zero_shot"]["POD"]["name"], "MSP-Podcast Test1")
    self.assertEqual(data.test_sets["zero_shot"]["IEM"]["split"], "all")
    self.assertEqual(data.test_sets["test"]["split"], "test")
    # --zero_shot_split=all pins the whole corpus (tfser before issue 15).
    whole = load_data(dataclasses.replace(config, zero_shot_split="all"))
    self.assertLen(_utterance_ids(whole.zero_shot["POD"]), 19)
    self.assertIn("--zero_shot_split", whole.test_sets["zero_shot"]["POD"]["name"])


class PaperDefaultsTest(tf.test.TestCase):

  def test_defaults_are_the_papers_and_the_demo_preset_names_its_changes(self):
    config = AnnotatorsConfig(data_dir="x")
    self.assertFalse(config.standardize_features)
    self.assertEqual(config.effective_train_dtype, "float16")
    self.assertEqual(config.gt_std_ddof, 1)
    self.assertEqual(gtm.GroundTruthConfig().std_ddof, 1)
    self.assertEqual(annotators_config.PRESETS["paper"], {})
    demo = annotators_config.PRESETS["synthetic_demo"]
    self.assertEqual(demo, {"standardize_features": True, "diffkde_train_dtype": "float32"})
    self.assertEqual(AnnotatorsConfig(data_dir="x", **demo).effective_train_dtype, "float32")

  def test_ground_truth_noise_uses_the_sample_std(self):
    """Same seed, ddof 1 vs 0: only the noise half-width differs, so the uniforms u and the
    subset means m follow from numpy's stds: p1 = m + u * std1 / 2, p0 = m + u * std0 / 2."""
    config = dataclasses.replace(gtm.GroundTruthConfig(), samples=64, grid_size=16, jit=False)
    ratings = np.array([[0.1, -0.2], [0.4, 0.3], [-0.2, 0.1]])
    seeds = np.array([[3, 11]], np.int64)
    p1 = gtm.GroundTruth(config).upsample([ratings], seeds)[0]
    p0 = gtm.GroundTruth(dataclasses.replace(config, std_ddof=0)).upsample([ratings], seeds)[0]
    half1, half0 = ratings.std(0, ddof=1) / 2, ratings.std(0, ddof=0) / 2
    u = (p1 - p0) / (half1 - half0)
    self.assertLessEqual(np.abs(u).max(), 1 + 1e-6)
    self.assertGreater(np.abs(u).max(), 0.5)
    means = p1 - u * half1
    # Every recovered mean is the mean of a non-empty subset of the raters.
    subsets = np.array([ratings[list(s)].mean(0) for s in
                        ([0], [1], [2], [0, 1], [0, 2], [1, 2], [0, 1, 2])])
    gaps = np.abs(means[:, None, :] - subsets[None]).max(-1).min(-1)
    np.testing.assert_allclose(gaps, 0, atol=1e-6)


class GroundTruthSettingsTest(tf.test.TestCase):

  def test_launcher_refuses_ground_truth_made_with_another_ddof(self):
    data_dir = self.get_temp_dir()
    for corpus in ("IMP", "POD"):
      manifest = _write(data_dir, corpus, {"train": 4, "validation": 2, "test": 2})
      if corpus == "POD":  # IMP's generated ground truth records no ddof: not checked
        manifest["ground_truth"]["std_ddof"] = 0
      with open(os.path.join(data_dir, corpus, "manifest.json"), "w") as f:
        json.dump(manifest, f)
    def launch(*args):
      return subprocess.run(
          [sys.executable, "-m", "tfser.launch", f"--data_dir={data_dir}", "--features=is10",
           *args], cwd=ROOT, env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"),
          capture_output=True, text=True, timeout=300)

    def assert_refused(run, *needles):
      self.assertEqual(run.returncode, 1, run.stderr)
      for needle in needles + ("std_ddof=0",):
        self.assertIn(needle, run.stderr)
      self.assertNotIn("Traceback", run.stderr)

    assert_refused(launch("--task=annotators", "--corpus=IMP", "--zero_shot=POD",
                          f"--out_dir={os.path.join(data_dir, 'run')}"),
                   "--zero_shot=POD", "--gt_std_ddof=1")
    self.assertFalse(os.path.exists(os.path.join(data_dir, "run", "results.json")))
    # annotators_multi's launcher shares the check (tfser.launchers.common.annotator_settings).
    assert_refused(launch("--task=annotators_multi", "--holdout=POD", "--training_corpora=IMP",
                          f"--out_dir={os.path.join(data_dir, 'multi')}"), "--holdout=POD")
    # The library path refuses too; a matching ddof loads.
    config = AnnotatorsConfig(data_dir=data_dir, corpus="IMP", feature_names=("is10",),
                              zero_shot_corpora=("POD",))
    with self.assertRaisesRegex(ValueError, "zero-shot corpus POD.*std_ddof=0"):
      load_data(config)
    self.assertIn("POD", load_data(dataclasses.replace(config, gt_std_ddof=0)).zero_shot)


class AnnotatorExclusionTest(tf.test.TestCase):
  """IEMOCAP utterances with partly missing or out-of-range ratings: in the data, marked."""

  def test_prepared_iemocap_keeps_and_counts_them(self):
    from data_prep import prepare  # pylint: disable=g-import-not-at-top
    from tests import testing  # pylint: disable=g-import-not-at-top
    from tfser.testing import records  # pylint: disable=g-import-not-at-top
    out = self.get_temp_dir()
    config = gtm.GroundTruthConfig(samples=20, grid_size=16, kde_batch=8, jit=False)
    manifest = prepare.prepare("iemocap", os.path.join(testing.DATA_DIR, "fixtures", "iemocap"),
                               out, gt_config=config, progress=False)["IEM"]
    marked = ["Ses01F_impro01_F002", "Ses01F_impro01_M001", "Ses05M_script01_1_F001"]
    self.assertEqual(manifest["utterances"], 8)
    self.assertEqual(manifest["split_counts"], {"test": 8})
    self.assertEqual(manifest["dropped"], {})
    view = manifest["annotator_task"]
    self.assertEqual((view["utterances"], view["split_counts"]), (5, {"test": 5}))
    self.assertEqual(view["excluded"]["ids"], marked)
    self.assertEqual(view["excluded"]["reasons"], {iemocap.OUT_OF_RANGE: 3})
    # M001 (angry) counts for the CWW task; its record carries the reason.
    self.assertEqual(manifest["class_counts"]["angry"], 1)
    self.assertEqual(manifest["ground_truth"]["std_ddof"], 1)
    found = {}
    for name in manifest["shards"]:
      for raw in tf.data.TFRecordDataset(os.path.join(out, "IEM", name)):
        rec = records.parse_example(raw, {})
        found[rec["utterance_id"].numpy().decode()] = rec["annotator_excluded"].numpy().decode()
    self.assertEqual(sorted(k for k, v in found.items() if v), marked)

  def test_annotator_datasets_skip_them_cww_datasets_keep_them(self):
    from tfser.data import pipeline  # pylint: disable=g-import-not-at-top
    data_dir = self.get_temp_dir()
    rng = np.random.default_rng(0)
    utts = [pf.rated_utterance("IEM", f"u{i}", [("a", 0.1, 0.2, "sad"), ("b", 0.3, 0.1, "sad")],
                               split="test", cww_split="train", label="sad") for i in range(6)]
    for u in utts[:2]:
      u.annotator_excluded = "ratings outside 1-5"
    pf.write_corpus(data_dir, "IEM", utts, {"is10": rng.normal(size=[6, 3]).astype(np.float32)},
                    [pf.random_ground_truth(rng) for _ in utts])
    for split in ("test", "all"):
      got = _utterance_ids(pipeline.annotator_dataset(data_dir, "IEM", split,
                                                      feature_names=("is10",), batch_size=4))
      self.assertEqual(got, [f"u{i}" for i in range(2, 6)])
    self.assertEqual(_utterance_ids(pipeline.cww_dataset(data_dir, "IEM", "train", batch_size=4)),
                     [f"u{i}" for i in range(6)])


if __name__ == "__main__":
  tf.test.main()
