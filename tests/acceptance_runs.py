"""Fixed-seed launcher runs whose results.json metrics pin tfser's behaviour (the acceptance test).

Each run is a command line of ``python -m tfser.launch`` (the flags a user types), on one of two
data sources (``--source``):

- ``generated`` (the default suite): a small fixed-seed prepared corpus set written here (four
  labelled corpora with individual ratings, ground-truth distributions and 16-dim "is10"
  features, plus an unlabelled one), so that the pinned metrics depend on tfser only (data_prep's
  demo generator may change independently) and the runs take well under a minute and a half on
  2 cores. Expected metrics: ``tests/data/acceptance/<task>.json``.
- ``demo``: the same commands on the embedded demo the README's main job prepares (1582-dim
  IS10, a few hundred utterances a corpus; hence ``--feature_dim=1582`` and a batch of 32, see
  :func:`runs`). Expected metrics: ``tests/data/acceptance/demo_<task>.json``, recorded with the
  tfser of commit b69d44c (before the issue-14 refactor) on demo records prepared by the code the
  recording names; ``demo_data.json`` holds a summary of those records (:func:`demo_summary`),
  which :func:`demo_data_dir` checks, so that a change of the demo data is told apart from a
  change of tfser's numbers. Opt-in in the suite (``TFSER_DEMO_ACCEPTANCE=1``): about as long
  again as the generated runs.

Record the expected metrics (only when a change is MEANT to alter the numbers):

    .venv/bin/python -m tests.acceptance_runs --record [--source=demo [--demo_dir=DIR]]

which writes the expected files above; tests/test_acceptance_metrics.py reruns the same commands
and compares. One process per task runs that task's commands one after another, parsing each
command line with absl as ``tfser.launch`` would.
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

SOURCES = ("generated", "demo")
# The demo variant of each command line: the demo's IS10 width, and a wider batch for its larger
# corpora (fewer steps; each method still trains two epochs).
_DEMO_ARGS = {f"--feature_dim={DIM}": "--feature_dim=1582", "--batch_size=16": "--batch_size=32"}
DEMO_DATA_FILE = os.path.join(EXPECTED_DIR, "demo_data.json")


def runs(task: str, source: str = "generated") -> Dict[str, List[str]]:
  """name -> command line of the task's runs on ``source`` (RUNS; for the demo, _DEMO_ARGS
  substituted)."""
  if source == "generated":
    return dict(RUNS[task])
  if source != "demo":
    raise ValueError(f"source {source!r}: one of {SOURCES}")
  return {name: [_DEMO_ARGS.get(a, a) for a in argv] for name, argv in RUNS[task].items()}


def by_name(task: str, source: str = "generated") -> Dict[str, Tuple[str, List[str]]]:
  """BY_NAME's runs of ``task`` on ``source`` (none on the demo: the generated runs check that
  --experiment selects the same run)."""
  return dict(BY_NAME[task]) if source == "generated" else {}


def expected_path(task: str, source: str = "generated") -> str:
  return os.path.join(EXPECTED_DIR, f"{task}.json" if source == "generated" else
                      f"{source}_{task}.json")


# Record fields that differ between two preparations of the same demo without the runs reading
# them: the audio's absolute path, and the transcript's provenance.
_DEMO_IGNORED_FIELDS = ("audio_path", "transcript", "transcript_source")


def demo_summary(data_dir: str) -> Dict[str, Dict[str, dict]]:
  """{corpus: {shard file: {record field: summary}}} of the prepared demo in ``data_dir``.

  A summary that two preparations of the same demo share and a changed demo does not: per field,
  over the shard's records in order, strings -> sha256 of their concatenation (ids, labels,
  speakers, splits, annotators), numbers -> [count, NaN count, sum, sum of squares, sum weighted
  by position (against a reordering)] (features, ratings, ground truth; compared with
  :func:`compare`'s tolerance, since the same demo prepared with the KDE jitted or not differs in
  the 16th digit). The bytes of the shards differ anyway:
  each record names its audio's absolute path.
  """
  import hashlib  # pylint: disable=g-import-not-at-top
  import tfser  # noqa: F401  (before TensorFlow)  pylint: disable=g-import-not-at-top,unused-import
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  out = {}
  for corpus in sorted(os.listdir(data_dir)):
    corpus_dir = os.path.join(data_dir, corpus)
    if not os.path.isfile(os.path.join(corpus_dir, "manifest.json")):
      continue
    out[corpus] = {}
    for shard in sorted(f for f in os.listdir(corpus_dir) if f.endswith(".tfrecord")):
      strings, numbers = {}, {}
      for record in tf.data.TFRecordDataset(os.path.join(corpus_dir, shard)).as_numpy_iterator():
        example = tf.train.Example.FromString(record)
        for key, feature in example.features.feature.items():
          if key in _DEMO_IGNORED_FIELDS:
            continue
          kind = feature.WhichOneof("kind")
          if kind == "bytes_list":
            digest = strings.setdefault(key, hashlib.sha256())
            for value in feature.bytes_list.value:
              digest.update(value + b"\0")
          elif kind is not None:
            numbers.setdefault(key, []).extend(getattr(feature, kind).value)
      summary = {k: v.hexdigest() for k, v in strings.items()}
      for key, values in numbers.items():
        values = np.asarray(values, np.float64)
        finite = values[~np.isnan(values)]
        position = np.arange(1, finite.size + 1) / finite.size
        summary[key] = [int(values.size), int(values.size - finite.size), float(finite.sum()),
                        float(np.square(finite).sum()), float(np.dot(finite, position))]
      out[corpus][shard] = summary
  return out


def demo_differences(data_dir: str) -> List[str]:
  """How the demo records in ``data_dir`` differ from those the demo metrics were recorded on."""
  with open(DEMO_DATA_FILE) as f:
    recorded = json.load(f)["summary"]
  return compare(recorded, demo_summary(data_dir), "demo records")


def demo_data_dir(demo_dir: str, scratch: str) -> str:
  """The demo data directory the demo runs read: ``demo_dir``'s (prepared there on first use, as
  the launchers do) when its records are those of the recording, else a fresh demo prepared under
  ``scratch`` (a cache prepared by an older data_prep). AssertionError naming the differing fields
  when the fresh demo differs too: data_prep's demo changed, not tfser's numbers."""
  from data_prep import prepare  # pylint: disable=g-import-not-at-top
  data_dir = prepare.ensure_demo_data(os.path.expanduser(demo_dir), progress=False)
  if not demo_differences(data_dir):
    return data_dir
  data_dir = prepare.ensure_demo_data(os.path.join(scratch, "demo"), progress=False)
  diffs = demo_differences(data_dir)
  if diffs:
    raise AssertionError(
        "the embedded demo's records differ from those the demo metrics were recorded on "
        f"({DEMO_DATA_FILE}); data_prep changed the demo:\n" + "\n".join(diffs[:10]))
  return data_dir


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


def run_task_in_process(task: str, data_dir: str, out_root: str, names=None,
                        source: str = "generated") -> Dict[str, dict]:
  """Runs the task's commands on ``source`` in this process (absl parses each) -> {name: metrics}.
  """
  import tfser  # noqa: F401  pylint: disable=g-import-not-at-top,unused-import
  import importlib  # pylint: disable=g-import-not-at-top
  from absl import flags  # pylint: disable=g-import-not-at-top
  from absl import logging  # pylint: disable=g-import-not-at-top
  from tfser.launchers import common  # noqa: F401  pylint: disable=g-import-not-at-top
  launcher = importlib.import_module(f"tfser.launchers.{task}")
  logging.set_verbosity(logging.WARNING)
  from tfser import launch  # pylint: disable=g-import-not-at-top
  out = {}
  commands = runs(task, source)
  for name, (_, argv) in by_name(task, source).items():
    # As tfser.launch does: --experiment=NAME becomes the row's --task and flags.
    expanded = launch._expand_experiment(["tfser.launch", *argv])  # pylint: disable=protected-access
    assert expanded[1] == f"--task={task}", expanded
    commands[name] = expanded[2:]
  for name, argv in commands.items():
    if names and name not in names:
      continue
    run_dir = os.path.join(out_root, task, name.replace(":", "_"))
    flags.FLAGS.unparse_flags()
    flags.FLAGS(["tfser.launch", f"--data_dir={data_dir}", f"--out_dir={run_dir}", *argv])
    launcher.main()
    with open(os.path.join(run_dir, "results.json")) as f:
      out[name] = metrics(task, json.load(f))
  return out


def run_tasks(data_dir: str, out_root: str,
              source: str = "generated") -> Dict[str, Dict[str, dict]]:
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
         f"--data_dir={data_dir}", f"--out_root={out_root}", f"--result={result}",
         f"--source={source}"],
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


def load_expected(task: str, source: str = "generated") -> Dict[str, dict]:
  with open(expected_path(task, source)) as f:
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
  parser.add_argument("--source", choices=SOURCES, default="generated")
  parser.add_argument("--demo_dir", default="~/.cache/tfser/demo",
                      help="--source=demo: the demo cache (the launchers' --demo_dir default)")
  args = parser.parse_args(argv)
  if args.task:  # the per-task child process
    results = run_task_in_process(args.task, args.data_dir, args.out_root, source=args.source)
    with open(args.result, "w") as f:
      json.dump(results, f, indent=1, sort_keys=True)
    return
  if not args.record:
    parser.error("--record (or --task for one task's runs)")
  with tempfile.TemporaryDirectory(prefix="tfser-acceptance-") as tmp:
    if args.source == "demo":
      from data_prep import prepare  # pylint: disable=g-import-not-at-top
      data_dir = prepare.ensure_demo_data(os.path.expanduser(args.demo_dir))
    else:
      data_dir = os.path.join(tmp, "data")
      write_data(data_dir)
    os.makedirs(EXPECTED_DIR, exist_ok=True)
    for task, results in run_tasks(data_dir, os.path.join(tmp, "runs"), args.source).items():
      results = {k: v for k, v in results.items() if k in RUNS[task]}
      with open(expected_path(task, args.source), "w") as f:
        json.dump(results, f, indent=1, sort_keys=True)
        f.write("\n")
      print(f"wrote {expected_path(task, args.source)}")
    if args.source == "demo":
      with open(DEMO_DATA_FILE, "w") as f:
        json.dump({"recorded_with": "tfser at the commit that wrote this file",
                   "summary": demo_summary(data_dir)}, f, indent=1, sort_keys=True)
        f.write("\n")


if __name__ == "__main__":
  _main()
