"""Fixed-seed launcher runs whose results.json metrics pin tfser's behaviour (the acceptance test).

Each run is a command line of ``python -m tfser.launch`` (the flags a user types), on a small
fixed-seed prepared corpus set written here (four labelled corpora with individual ratings,
ground-truth distributions and 16-dim "is10" features, plus an unlabelled one). The data are
generated in the test, not taken from the embedded demo, so that the pinned metrics depend on
tfser only (data_prep's demo generator may change independently) and so that the whole set of
runs takes well under a minute and a half on 2 cores.

Record the expected metrics (only when a change is MEANT to alter the numbers):

    .venv/bin/python -m tests.acceptance_runs --record

which writes ``tests/data/acceptance/<task>.json``; tests/test_acceptance_metrics.py reruns the
same commands and compares. One process per task runs that task's commands one after another,
parsing each command line with absl as ``tfser.launch`` would.
"""

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
from typing import Dict, List, Tuple

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EXPECTED_DIR = os.path.join(ROOT, "tests", "data", "acceptance")
DIM = 16

_COMMON = ["--batch_size=16", "--noexport"]
_CWW = _COMMON + [f"--feature_dim={DIM}", "--max_epochs=2"]
_ANN = _COMMON + ["--features=is10", "--max_epochs=2", "--hidden_units=16",
                  "--diffkde_grid_size=32", "--diffkde_samples=50", "--hard_kde_grid_size=64",
                  "--image_utterances=0", "--verbose=0",
                  # The settings the metrics were recorded with (tfser before issue 15, whose
                  # defaults became the paper's): pinned, so these runs keep documenting that
                  # the refactors preserve behaviour.
                  "--standardize_features", "--diffkde_train_dtype=auto", "--zero_shot_split=all"]

# name -> command line after ``python -m tfser.launch`` (data and output flags are added).
RUNS: Dict[str, Dict[str, List[str]]] = {
    "cww": {
        "ce_POD": ["--method=ce", "--holdout=POD"] + _CWW,
        "cww_POD": ["--method=cww", "--holdout=POD"] + _CWW,
        "cww_pel_al_POD": ["--method=cww_pel_al", "--holdout=POD"] + _CWW,
        "focal_loss_POD": ["--method=focal_loss", "--holdout=POD"] + _CWW,
        "ce_IEM": ["--method=ce", "--holdout=IEM"] + _CWW,
        "cww_IEM": ["--method=cww", "--holdout=IEM"] + _CWW,
        "cww_pel_al_IEM": ["--method=cww_pel_al", "--holdout=IEM"] + _CWW,
        "focal_loss_IEM": ["--method=focal_loss", "--holdout=IEM"] + _CWW,
        "within_IEM_fold0": ["--method=within", "--holdout=IEM", "--fold=0"] + _CWW,
    },
    "annotators": {
        "baseline": ["--model=baseline", "--corpus=IMP", "--zero_shot=POD,IEM"] + _ANN,
        "mt_task1": ["--model=mt", "--objective=task1", "--corpus=IMP",
                     "--zero_shot=POD,IEM"] + _ANN,
        "mt_task1+2": ["--model=mt", "--objective=task1+2", "--corpus=IMP",
                       "--zero_shot=POD,IEM"] + _ANN,
        "onehot_task1+2": ["--model=onehot", "--objective=task1+2", "--corpus=IMP",
                           "--zero_shot=POD,IEM"] + _ANN,
    },
}

# The same runs named by the registry (tfser.launch --experiment): name -> (the run whose recorded
# metrics they must reproduce, command line).
BY_NAME: Dict[str, Dict[str, Tuple[str, List[str]]]] = {
    "cww": {"experiment:focal_loss_IEM": (
        "focal_loss_IEM", ["--experiment=cww/table2/focal_loss", "--holdout=IEM"] + _CWW)},
    "annotators": {"experiment:mt_task1+2": (
        "mt_task1+2", ["--experiment=annotators/table1/mt_task1+2", "--corpus=IMP",
                       "--zero_shot=POD,IEM"] + _ANN)},
}

# The results.json entries compared (every number below them).
METRIC_KEYS = {
    "cww": ("holdout_ua", "holdout_utterances", "holdout_class_counts", "train_ua", "val_ua",
            "val_ua_mean", "final_train_ua", "corpus_weights", "corpus_weights_history",
            "best_epoch", "epochs_run", "steps_per_epoch", "class_counts"),
    "annotators": ("validation", "test", "zero_shot"),
}

_SPEAKERS = {
    "CRE": [f"10{k:02d}" for k in range(12)],
    "IEM": [f"Ses0{s}{g}" for s in range(1, 6) for g in "FM"],
    "IMP": [f"{g}0{s}" for s in range(1, 7) for g in "FM"],
    "POD": [f"pod{k}" for k in range(8)],
}


def write_data(data_dir: str, seed: int = 7) -> None:
  """Writes the fixed-seed corpora: CRE, IEM, IMP, POD (120 utterances each), LIBRI (48)."""
  from tests import pipeline_fixtures  # pylint: disable=g-import-not-at-top
  from tfser.data import schema  # pylint: disable=g-import-not-at-top
  from tfser.testing import synthetic  # pylint: disable=g-import-not-at-top
  rng = np.random.default_rng(seed)
  class_means = rng.normal(size=[4, DIM])
  affect = np.array([[0.0, 0.0], [0.5, 0.6], [-0.5, -0.5], [0.7, -0.6]])  # act/val per class
  for corpus, speakers in _SPEAKERS.items():
    n = 120
    shift = rng.normal(scale=0.5, size=DIM)
    labels = rng.integers(0, 4, n)
    features = synthetic.class_features(rng, labels, class_means, shift, noise=1.2)
    annotators = [f"{corpus}_a{k}" for k in range(8)]
    utterances, ground_truth = [], []
    for i in range(n):
      speaker = speakers[i % len(speakers)]
      part = i % 10
      split = "train" if part < 6 else ("validation" if part < 8 else "test")
      raters = rng.choice(len(annotators), int(rng.integers(3, 6)), replace=False)
      ratings = []
      for r in raters:
        act, val = np.clip(affect[labels[i]] + rng.normal(scale=0.3, size=2), -1, 1)
        vote = labels[i] if rng.random() < 0.7 else int(rng.integers(0, 4))
        ratings.append(schema.Rating(annotators[r], float(act), float(val),
                                     category=schema.CLASS_NAMES[vote]))
      act_mean = float(np.mean([r.activation for r in ratings]))
      val_mean = float(np.mean([r.valence for r in ratings]))
      utterances.append(schema.Utterance(
          corpus=corpus, utterance_id=f"{corpus}_{i:04d}", speaker=speaker, split=split,
          cww_split=split, label=schema.CLASS_NAMES[labels[i]], label_source="intended",
          activation=act_mean, valence=val_mean, ratings=ratings))
      ground_truth.append(pipeline_fixtures.random_ground_truth(rng))
    pipeline_fixtures.write_corpus(data_dir, corpus, utterances,
                                   {"is10": features.astype(np.float32)}, ground_truth,
                                   shards_per_split=1)
  unlabelled = rng.normal(size=[48, DIM]).astype(np.float32)
  utterances = [schema.Utterance(corpus="LIBRI", utterance_id=f"LIBRI_{i}", split="all",
                                 cww_split="all") for i in range(len(unlabelled))]
  pipeline_fixtures.write_corpus(data_dir, "LIBRI", utterances, {"is10": unlabelled},
                                 shards_per_split=1)


def _numbers(value):
  """The JSON value with every number kept and everything else dropped (None for no number)."""
  if isinstance(value, bool):
    return value
  if isinstance(value, (int, float)):
    return value
  if isinstance(value, dict):
    kept = {k: _numbers(v) for k, v in value.items()}
    return {k: v for k, v in kept.items() if v is not None}
  if isinstance(value, (list, tuple)):
    return [_numbers(v) for v in value]
  return None


def metrics(task: str, results: dict) -> dict:
  return {k: _numbers(results.get(k)) for k in METRIC_KEYS[task]}


def run_task_in_process(task: str, data_dir: str, out_root: str, names=None) -> Dict[str, dict]:
  """Runs the task's commands in this process (absl parses each) -> {name: metrics}."""
  import tfser  # noqa: F401  pylint: disable=g-import-not-at-top,unused-import
  import importlib  # pylint: disable=g-import-not-at-top
  from absl import flags  # pylint: disable=g-import-not-at-top
  from absl import logging  # pylint: disable=g-import-not-at-top
  from tfser.launchers import common  # noqa: F401  pylint: disable=g-import-not-at-top
  launcher = importlib.import_module(f"tfser.launchers.{task}")
  logging.set_verbosity(logging.WARNING)
  from tfser import launch  # pylint: disable=g-import-not-at-top
  out = {}
  runs = dict(RUNS[task])
  for name, (_, argv) in BY_NAME[task].items():
    # As tfser.launch does: --experiment=NAME becomes the row's --task and flags.
    expanded = launch._expand_experiment(["tfser.launch", *argv])  # pylint: disable=protected-access
    assert expanded[1] == f"--task={task}", expanded
    runs[name] = expanded[2:]
  for name, argv in runs.items():
    if names and name not in names:
      continue
    run_dir = os.path.join(out_root, task, name.replace(":", "_"))
    flags.FLAGS.unparse_flags()
    flags.FLAGS(["tfser.launch", f"--data_dir={data_dir}", f"--out_dir={run_dir}", *argv])
    launcher.main()
    with open(os.path.join(run_dir, "results.json")) as f:
      out[name] = metrics(task, json.load(f))
  return out


def run_tasks(data_dir: str, out_root: str) -> Dict[str, Dict[str, dict]]:
  """run_task_in_process of every task, each in its own Python process (its own flags), the
  processes side by side -> {task: {name: metrics}}."""
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", PYTHONPATH=ROOT)
  os.makedirs(out_root, exist_ok=True)
  procs = {}
  for task in RUNS:
    result = os.path.join(out_root, f"{task}.json")
    log = open(os.path.join(out_root, f"{task}.log"), "w+")  # pylint: disable=consider-using-with
    procs[task] = (subprocess.Popen(  # pylint: disable=consider-using-with
        [sys.executable, "-m", "tests.acceptance_runs", f"--task={task}",
         f"--data_dir={data_dir}", f"--out_root={out_root}", f"--result={result}"],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, text=True), log, result)
  out = {}
  for task, (proc, log, result) in procs.items():
    code = proc.wait(timeout=900)
    log.seek(0)
    text = log.read()
    log.close()
    if code != 0:
      raise AssertionError(f"acceptance runs of {task} exited {code}:\n{text[-6000:]}")
    with open(result) as f:
      out[task] = json.load(f)
  return out


def load_expected(task: str) -> Dict[str, dict]:
  with open(os.path.join(EXPECTED_DIR, f"{task}.json")) as f:
    return json.load(f)


def compare(expected, actual, path="", rtol=1e-6, atol=1e-7) -> List[str]:
  """Differences between two metric trees (NaN equals NaN), as 'path: expected vs actual'."""
  diffs = []
  if isinstance(expected, dict) and isinstance(actual, dict):
    for key in sorted(set(expected) | set(actual)):
      if key not in expected or key not in actual:
        diffs.append(f"{path}/{key}: only in {'actual' if key in actual else 'expected'}")
      else:
        diffs += compare(expected[key], actual[key], f"{path}/{key}", rtol, atol)
  elif isinstance(expected, list) and isinstance(actual, list):
    if len(expected) != len(actual):
      diffs.append(f"{path}: length {len(expected)} vs {len(actual)}")
    else:
      for i, (e, a) in enumerate(zip(expected, actual)):
        diffs += compare(e, a, f"{path}[{i}]", rtol, atol)
  elif isinstance(expected, (int, float)) and isinstance(actual, (int, float)):
    if math.isnan(expected) and math.isnan(actual):
      return diffs
    if not math.isclose(expected, actual, rel_tol=rtol, abs_tol=atol):
      diffs.append(f"{path}: {expected!r} vs {actual!r}")
  elif expected != actual:
    diffs.append(f"{path}: {expected!r} vs {actual!r}")
  return diffs


def _main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__)
  parser.add_argument("--record", action="store_true", help="rewrite tests/data/acceptance")
  parser.add_argument("--task", choices=tuple(RUNS))
  parser.add_argument("--data_dir")
  parser.add_argument("--out_root")
  parser.add_argument("--result")
  args = parser.parse_args(argv)
  if args.task:  # the per-task child process
    results = run_task_in_process(args.task, args.data_dir, args.out_root)
    with open(args.result, "w") as f:
      json.dump(results, f, indent=1, sort_keys=True)
    return
  if not args.record:
    parser.error("--record (or --task for one task's runs)")
  with tempfile.TemporaryDirectory(prefix="tfser-acceptance-") as tmp:
    data_dir = os.path.join(tmp, "data")
    write_data(data_dir)
    os.makedirs(EXPECTED_DIR, exist_ok=True)
    for task, results in run_tasks(data_dir, os.path.join(tmp, "runs")).items():
      results = {k: v for k, v in results.items() if k in RUNS[task]}
      with open(os.path.join(EXPECTED_DIR, f"{task}.json"), "w") as f:
        json.dump(results, f, indent=1, sort_keys=True)
        f.write("\n")
      print(f"wrote {os.path.join(EXPECTED_DIR, task + '.json')}")


if __name__ == "__main__":
  _main()
