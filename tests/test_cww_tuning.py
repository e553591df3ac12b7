"""CWW tuning (keras-tuner sweeps, HParams, the tuned registry rows) and Fig. 2, end to end on
tiny in-memory corpora: every number checked is re-read from the runs' own results.json."""

import csv
import glob
import json
import os
import shlex
import tempfile
from unittest import mock

import numpy as np

import tfser  # noqa: F401
import tensorflow as tf
from tensorboard.plugins.hparams import metadata as hparams_metadata
from tensorboard.plugins.hparams import plugin_data_pb2

from tfser import launch
from tfser import tasks
from tfser.tasks.cww import fig2 as cww_fig2
from tfser.tasks.cww import tuned
from tfser.tasks.cww import tuning
from tfser.tasks.cww.config import CwwConfig
from tfser.tasks.cww.config import method_config
from tfser.testing import cww_arrays

DIM = 8
TINY = dict(feature_dim=DIM, hidden_units=(16, 16, 8, 8), reconstruction_units=(16, DIM),
            max_epochs=1, batch_size=16, checkpoint_every_steps=0, eval_batch_size=64,
            learning_rate=1e-2)


def _source():
  return cww_arrays.synthetic_corpora(
      dim=DIM, sizes={"CRE": 80, "IEM": 80, "IMP": 80, "POD": 100, "LIBRI": 32}, seed=0)


def _events(directory):
  """Every summary value written under ``directory`` (not its subfolders): [(tag, value)]."""
  out = []
  for path in glob.glob(os.path.join(directory, "events.out.tfevents.*")):
    for event in tf.compat.v1.train.summary_iterator(path):
      out.extend((v.tag, v) for v in event.summary.value)
  return out


def _plugin_data(value):
  return plugin_data_pb2.HParamsPluginData.FromString(value.metadata.plugin_data.content)


def _csv(path):
  with open(path, newline="") as f:
    return list(csv.DictReader(f))


class TuningTest(tf.test.TestCase):

  def test_grid_sweep_chooses_by_validation_ua_and_writes_back(self):
    root = self.get_temp_dir()
    sweep, tuned_dir = os.path.join(root, "sweep"), os.path.join(root, "tuned")
    base = method_config("focal_loss", out_dir=root, **TINY)
    config = tuning.TuningConfig(max_trials=3, holdouts=("POD",), tuned_dir=tuned_dir)
    best = tuning.tune(base, config, sweep, source=_source())

    # Each trial's objective, re-read from its own run (the trainer's results.json).
    own = {}
    for trial_dir in glob.glob(os.path.join(sweep, "trials", "*")):
      with open(os.path.join(trial_dir, "POD", "seed0", "results.json")) as f:
        results = json.load(f)
      own[os.path.basename(trial_dir)] = (results["flags"]["focal_gamma"],
                                          results["val_ua_mean"], results["holdout_ua"])
    self.assertLen(own, 3)  # the grid's first three values, each trained once
    self.assertEqual(sorted(g for g, _, _ in own.values()), [0.5, 1.0, 2.0])
    best_val = max(v for _, v, _ in own.values())

    rows = _csv(os.path.join(sweep, "trials.csv"))
    self.assertLen(rows, 3)
    self.assertEqual([r["status"] for r in rows], ["COMPLETED"] * 3)
    self.assertAlmostEqual(float(rows[0]["val_ua"]), best_val)  # the table's best = best trial
    for r in rows:
      gamma, val, test = own[r["trial"]]
      self.assertEqual(float(r["focal_gamma"]), gamma)
      self.assertAlmostEqual(float(r["val_ua"]), val)
      self.assertAlmostEqual(float(r["holdout_ua"]), test)
    self.assertEqual([float(r["val_ua"]) for r in rows],
                     sorted((float(r["val_ua"]) for r in rows), reverse=True))
    markdown = open(os.path.join(sweep, "trials.md")).read()
    self.assertIn(f"| {100 * best_val:.2f} |", markdown.splitlines()[4])

    # Written back: best.json, the tuned file, the registry row and its flags.
    gamma = own[rows[0]["trial"]][0]
    self.assertEqual(best["values"], {"focal_gamma": gamma})
    self.assertAlmostEqual(best["best_val_ua"], best_val)
    record = tuned.read(tuned.path_of("focal_loss", tuned_dir))
    self.assertEqual(record["flags"], [f"--focal_gamma={gamma!r}"])
    with mock.patch.dict(os.environ, {tuned.ENV: tuned_dir}):
      row = tasks.experiments().get("cww/tuned/focal_loss")
      self.assertEqual(row.flags, ("--method=focal_loss", f"--focal_gamma={gamma!r}"))
      self.assertEqual(row.label, "Focal loss [18] (tuned)")
      self.assertEqual(launch._expand_experiment(  # pylint: disable=protected-access
          ["prog", "--experiment=cww/tuned/focal_loss", "--holdout=IEM"]),
          ["prog", "--task=cww", "--method=focal_loss", f"--focal_gamma={gamma!r}",
           "--holdout=IEM"])
      # The Table 2 rows stay as they are (the report and launch scripts read them).
      self.assertNotIn("tuned", " ".join(tasks.experiments().names("cww/table2/")))

    # HParams dashboard: the experiment (domain = the grid) and one session per trial.
    experiment = [_plugin_data(v) for tag, v in _events(os.path.join(sweep, "tensorboard"))
                  if tag == hparams_metadata.EXPERIMENT_TAG]
    self.assertLen(experiment, 1)
    (hparam,) = experiment[0].experiment.hparam_infos
    self.assertEqual(hparam.name, "focal_gamma")
    self.assertEqual([v.number_value for v in hparam.domain_discrete.values],
                     [0.5, 1.0, 2.0, 5.0])
    self.assertEqual({m.name.tag for m in experiment[0].experiment.metric_infos},
                     {"val_ua", "holdout_ua"})
    for trial_id, (gamma, val, _) in own.items():
      values = _events(os.path.join(sweep, "tensorboard", trial_id))
      start = [_plugin_data(v) for tag, v in values
               if tag == hparams_metadata.SESSION_START_INFO_TAG]
      self.assertEqual(start[0].session_start_info.hparams["focal_gamma"].number_value, gamma)
      scalar = [tf.make_ndarray(v.tensor) for tag, v in values if tag == "val_ua"]
      self.assertAllClose(scalar, [val])

    # Started again, the finished sweep trains nothing new and keeps its answer.
    again = tuning.tune(base, config, sweep, source=_source())
    self.assertEqual(again["values"], best["values"])
    self.assertLen(glob.glob(os.path.join(sweep, "trials", "*")), 3)

  def test_bayesian_sweep_samples_the_range(self):
    if not tuning.bayesian_available():
      self.skipTest("keras-tuner's Bayesian optimisation needs scikit-learn (not installed)")
    root = self.get_temp_dir()
    base = method_config("confidence_penalty", out_dir=root, **TINY)
    config = tuning.TuningConfig(algorithm="bayesian", max_trials=2, initial_points=1,
                                 holdouts=("POD",), tuned_dir=os.path.join(root, "tuned"))
    best = tuning.tune(base, config, os.path.join(root, "sweep"), source=_source())
    rows = _csv(os.path.join(root, "sweep", "trials.csv"))
    self.assertLen(rows, 2)
    for r in rows:
      self.assertBetween(float(r["confidence_penalty"]), 0.1, 3.0)
    self.assertEqual(best["values"]["confidence_penalty"], float(rows[0]["confidence_penalty"]))
    self.assertEqual(best["algorithm"], "bayesian")

  def test_bad_settings_are_named(self):
    with mock.patch.object(tuning, "bayesian_available", return_value=False):
      with self.assertRaisesRegex(ValueError, "--algorithm=bayesian needs scikit-learn"):
        tuning.TuningConfig(algorithm="bayesian").validate()
    with self.assertRaisesRegex(ValueError, "--method=ce has no hyper-parameter"):
      tuning.search_space("ce")
    with self.assertRaisesRegex(ValueError, "--holdouts: XYZ"):
      tuning.TuningConfig(holdouts=("XYZ",)).validate()
    with self.assertRaisesRegex(ValueError, "--lambda_l_method=cww has no pseudo-emotion"):
      cww_fig2.Fig2Config(lambda_l_method="cww").validate()
    with self.assertRaisesRegex(ValueError, "--lambda_w_method=ce has no corpus-wise"):
      cww_fig2.Fig2Config(lambda_w_method="ce").validate()
    # A data problem stops the sweep at its first trial, named (not retried trial after trial).
    no_pod = _source()
    del no_pod.corpora["POD"]
    root = self.get_temp_dir()
    with self.assertRaisesRegex(ValueError, "trial 0: corpora POD not found"):
      tuning.tune(method_config("focal_loss", out_dir=root, **TINY),
                  tuning.TuningConfig(holdouts=("POD",), tuned_dir=root),
                  os.path.join(root, "bad_sweep"), source=no_pod)
    bad = os.path.join(tempfile.mkdtemp(dir=self.get_temp_dir()), "cww", "cww.json")
    os.makedirs(os.path.dirname(bad))
    with open(bad, "w") as f:
      f.write("{not json")
    with self.assertRaisesRegex(ValueError, "cww.json: not a tuned configuration"):
      tuned.experiments({"cww": "CWW"}, os.path.dirname(os.path.dirname(bad)))


class FlagsTest(tf.test.TestCase):
  """The launchers' flags, generated from TuningConfig and Fig2Config (tfser.core.flags)."""

  def test_flags_parse_into_the_configs(self):
    from absl import flags as absl_flags  # pylint: disable=g-import-not-at-top
    from tfser.core import flags as config_flags  # pylint: disable=g-import-not-at-top
    for config_class, argv, expected in (
        (tuning.TuningConfig, ["--algorithm=grid", "--max_trials=3", "--holdouts=POD,IEM",
                               "--seeds=0,2", "--tune_overwrite"],
         tuning.TuningConfig(max_trials=3, holdouts=("POD", "IEM"), seeds=(0, 2),
                             overwrite=True)),
        (cww_fig2.Fig2Config, ["--holdouts=POD", "--fig2_lambda_w=1,4", "--fig2_lambda_l=",
                               "--seeds=1", "--nomerged_reference"],
         cww_fig2.Fig2Config(holdouts=("POD",), lambda_w_values=(1.0, 4.0), lambda_l_values=(),
                             seeds=(1,), merged_reference=False))):
      values = absl_flags.FlagValues()
      config_flags.define_flags(config_class, module_name="test", flag_values=values)
      values(["prog", *argv])
      self.assertEqual(config_class(**config_flags.values_from_flags(
          config_class, flag_values=values)), expected)
      values = absl_flags.FlagValues()  # the defaults are the paper's
      config_flags.define_flags(config_class, module_name="test", flag_values=values)
      values(["prog"])
      self.assertEqual(config_class(**config_flags.values_from_flags(
          config_class, flag_values=values)), config_class())


class Fig2Test(tf.test.TestCase):

  def test_tiny_fig2_writes_png_and_one_csv_row_per_holdout_and_value(self):
    out = self.get_temp_dir()
    config = cww_fig2.Fig2Config(holdouts=("POD",), lambda_w_values=(1.0, 4.0),
                                 lambda_l_values=(0.1, 0.001), seeds=(0,))
    # A preset field of the base (reconstruction) must not leak into the curves' methods.
    base = CwwConfig(out_dir=out, reconstruction=True, **TINY)
    result = cww_fig2.run(config, base, out, source=_source())
    for param, method, values in (("lambda_w", "cww", (1.0, 4.0)),
                                  ("lambda_l", "cww_pel_al", (0.1, 0.001))):
      rows = _csv(os.path.join(out, f"fig2_{param}.csv"))
      self.assertEqual([(r["holdout"], float(r[param])) for r in rows],
                       [("POD", v) for v in values])  # one row per (holdout, value)
      for r in rows:
        with open(os.path.join(out, "runs", param, "POD", f"{float(r[param]):g}", "seed0",
                               "results.json")) as f:
          results = json.load(f)
        self.assertEqual((results["method"], results["flags"][param]), (method, float(r[param])))
        self.assertFalse(results["flags"]["reconstruction"])
        self.assertAlmostEqual(float(r["ua_mean"]), 100 * results["holdout_ua"])
        self.assertEqual(int(r["n_seeds"]), 1)
    (merged,) = _csv(os.path.join(out, "fig2_merged.csv"))
    with open(os.path.join(out, "runs", "merged", "POD", "seed0", "results.json")) as f:
      self.assertAlmostEqual(float(merged["ua_mean"]), 100 * json.load(f)["holdout_ua"])
    png = os.path.join(out, "fig2.png")
    self.assertIn(png, result["paths"])
    with open(png, "rb") as f:
      self.assertEqual(f.read(8), b"\x89PNG\r\n\x1a\n")
    from matplotlib import image  # pylint: disable=g-import-not-at-top
    pixels = image.imread(png)
    self.assertEqual(pixels.ndim, 3)
    self.assertGreater(pixels.shape[1], pixels.shape[0])  # two panels side by side
    self.assertGreater(np.std(pixels), 0.0)


if __name__ == "__main__":
  tf.test.main()


class Table2ScriptTest(tf.test.TestCase):
  """launch/cww_table2.sh picks cww/tuned/<method> where one exists (runs recorded, not trained:
  the script's own training path is covered by tests/test_table_scripts.py)."""

  def test_script_runs_the_tuned_row_where_there_is_one(self):
    import subprocess  # pylint: disable=g-import-not-at-top
    import sys  # pylint: disable=g-import-not-at-top
    root = self.get_temp_dir()
    tuned_dir, calls = os.path.join(root, "tuned"), os.path.join(root, "calls.txt")
    tuned.write("focal_loss", {"method": "focal_loss", "values": {"focal_gamma": 1.0},
                               "flags": ["--focal_gamma=1.0"]}, tuned_dir)
    # PYTHON: lists experiments with the real interpreter, records every other command.
    fake = os.path.join(root, "python")
    with open(fake, "w") as f:
      # Quoted: a test temp dir may hold characters bash reads as redirections ("<string>").
      f.write(f'#!/usr/bin/env bash\ncase "$*" in *--list_experiments*) exec '
              f'{shlex.quote(sys.executable)} "$@";; *--experiment=*) echo "$*" >> '
              f'{shlex.quote(calls)};; esac\n')
    os.chmod(fake, 0o755)
    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    def run(**env):
      result = subprocess.run(
          ["bash", os.path.join(repo, "launch", "cww_table2.sh"), "--max_epochs=1"], cwd=repo,
          env=dict(os.environ, PYTHON=fake, ROOT=os.path.join(root, "t2"), SEEDS="0",
                   HOLDOUTS="POD", METHODS="focal_loss ce", TFSER_TUNED_DIR=tuned_dir, **env),
          capture_output=True, text=True, timeout=300)
      self.assertEqual(result.returncode, 0, result.stderr)
      with open(calls) as f:
        lines = f.read().splitlines()
      os.remove(calls)
      return result.stdout, lines
    stdout, lines = run()
    self.assertIn("tuned: cww/tuned/focal_loss (--method=focal_loss --focal_gamma=1.0)", stdout)
    self.assertLen(lines, 2)
    self.assertIn("--experiment=cww/tuned/focal_loss --holdout=POD", lines[0])
    self.assertIn("--experiment=cww/table2/ce --holdout=POD", lines[1])  # not tuned: fixed
    _, lines = run(TUNED="0")
    self.assertIn("--experiment=cww/table2/focal_loss --holdout=POD", lines[0])

  def test_tune_script_sweeps_every_tunable_method(self):
    import subprocess  # pylint: disable=g-import-not-at-top
    import sys  # pylint: disable=g-import-not-at-top
    root = self.get_temp_dir()
    calls, fake = os.path.join(root, "calls.txt"), os.path.join(root, "python")
    with open(fake, "w") as f:  # real for "-c" (the methods' list), recorded otherwise
      f.write(f'#!/usr/bin/env bash\ncase "$1" in -c) exec {shlex.quote(sys.executable)} "$@";; '
              f'*) echo "$*" >> {shlex.quote(calls)};; esac\n')
    os.chmod(fake, 0o755)
    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    result = subprocess.run(
        ["bash", os.path.join(repo, "launch", "cww_tune.sh"), "--max_epochs=1"], cwd=repo,
        env=dict(os.environ, PYTHON=fake, ROOT=os.path.join(root, "tune"), DATA_DIR="/d"),
        capture_output=True, text=True, timeout=300)
    self.assertEqual(result.returncode, 0, result.stderr)
    with open(calls) as f:
      lines = f.read().splitlines()
    self.assertEqual(len(lines), len(tuning.SEARCH_SPACES))
    for line, method in zip(lines, tuning.SEARCH_SPACES):
      self.assertEqual(line, f"-m tfser.launchers.cww_tune --method={method} --out_dir="
                       f"{os.path.join(root, 'tune', method)} --data_dir=/d --max_epochs=1")
