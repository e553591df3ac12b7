"""Tuning the CWW paper's methods as the paper did: a search over each method's hyper-parameters,
chosen by validation UA (paper 3.3: "The hyper-parameters for the compared methods were also
tuned to result in the best performance"; lambda_W over [1..5] and lambda_L over
[1, 0.1, 0.01, 0.001, 0.0001]).

The search runs on Keras Tuner (keras-tuner 1.4): grid search (``GridSearchOracle``) or Bayesian
optimisation (``BayesianOptimizationOracle``) over the method's :data:`SEARCH_SPACES`. A trial is
one set of values; :class:`CwwHyperModel` trains it with tfser's own trainer
(``tfser.tasks.cww.train.train``) once per holdout and seed of the sweep and reports
``val_ua`` = the mean over those runs of the mean validation UA of the training corpora (the
paper's stopping criterion), which the oracle maximises. The held-out corpus's UA is recorded
too (``holdout_ua``) but never chooses.

Why not Keras Tuner's default trial loop: tfser's models are tf-keras (Keras 2) models and
keras-tuner 1.4 imports Keras 3, whose ``Tuner._try_build`` accepts only a Keras 3 model and
whose per-epoch callbacks are Keras 3 callbacks. :class:`CwwTuner` therefore overrides
``run_trial`` (keras-tuner's documented black-box form): ``HyperModel.build(hp)`` returns just
the trial's values (a dict) and ``HyperModel.fit`` runs the CWW trainer with them.

Distributed sweeps: keras-tuner's chief/worker mode. Every process runs the same command with
``KERASTUNER_ORACLE_IP`` / ``KERASTUNER_ORACLE_PORT`` (the chief's address) and a distinct
``KERASTUNER_TUNER_ID`` ("chief" for the oracle, "tuner0", "tuner1", ... for the workers) and the
same ``--out_dir`` on a shared file system; the chief serves the oracle and, when all trials are
done, writes the table and the tuned configuration.

Outputs under ``sweep_dir``: ``keras_tuner/`` (the oracle's state: a killed sweep started again
continues), ``trials/<trial>/<holdout>/seed<k>/`` (each run's results.json, checkpoints, ...),
``tensorboard/`` (HParams dashboard, ``tfser.tasks.cww.tuning_report``), ``trials.md`` /
``trials.csv`` and ``best.json``; and ``<tuned_dir>/cww/<method>.json`` (``tfser.tasks.cww.tuned``).
"""

import dataclasses
import os
from typing import Dict, Optional, Sequence, Tuple

import tfser  # noqa: F401  (Keras flavour before TensorFlow)

import keras_tuner
import numpy as np

from tfser.core.flags import setting
from tfser.tasks.cww import train as cww_train
from tfser.tasks.cww import tuning_report
from tfser.tasks.cww.config import CORPORA
from tfser.tasks.cww.config import CwwConfig

OBJECTIVE = "val_ua"
ALGORITHMS = ("grid", "bayesian")


@dataclasses.dataclass(frozen=True)
class SearchParam:
  """One hyper-parameter: a CwwConfig ``field``, its grid ``values`` and, for Bayesian search,
  the range [min(values), max(values)] sampled log-uniformly when ``log``."""
  field: str
  values: Tuple[float, ...]
  log: bool = False

  def declare(self, hp: keras_tuner.HyperParameters, algorithm: str) -> float:
    if algorithm == "grid":
      return hp.Choice(self.field, list(self.values))
    return hp.Float(self.field, min(self.values), max(self.values),
                    sampling="log" if self.log else "linear")


# Paper 3.3. The compared methods' grids are not in the paper (tfser's choice, README notes):
# label smoothing around Szegedy et al.'s 0.1; focal gamma over Lin et al.'s tested range;
# confidence penalty beta and the reconstruction weight on log grids around 1.
LAMBDA_W = SearchParam("lambda_w", (1.0, 2.0, 3.0, 4.0, 5.0))
LAMBDA_L = SearchParam("lambda_l", (1.0, 0.1, 0.01, 0.001, 0.0001), log=True)
EPSILON = SearchParam("smoothing", (0.05, 0.1, 0.2, 0.3))
GAMMA = SearchParam("focal_gamma", (0.5, 1.0, 2.0, 5.0))
BETA = SearchParam("confidence_penalty", (0.1, 0.3, 1.0, 3.0), log=True)
RECONSTRUCTION = SearchParam("reconstruction_weight", (0.1, 0.3, 1.0, 3.0), log=True)

# Table 2 methods with a hyper-parameter. The CWW combinations tune the added method's parameter
# with lambda_W at the paper's 4; ce, soft_label, merged and within have none.
SEARCH_SPACES: Dict[str, Tuple[SearchParam, ...]] = {
    "unsup": (RECONSTRUCTION,),
    "label_smoothing": (EPSILON,),
    "unigram_smoothing": (EPSILON,),
    "focal_loss": (GAMMA,),
    "confidence_penalty": (BETA,),
    "ce_pel_nl": (LAMBDA_L,),
    "ce_pel_al": (LAMBDA_L,),
    "cww": (LAMBDA_W,),
    "cww_unsup": (RECONSTRUCTION,),
    "cww_unigram_smoothing": (EPSILON,),
    "cww_pel_al": (LAMBDA_L,),
}


@dataclasses.dataclass(frozen=True)
class TuningConfig:
  """One sweep; the launcher (``tfser/launchers/cww_tune.py``) generates its flags."""
  algorithm: str = setting("grid", "Search: grid (every value of the method's grid) or bayesian "
                           "(Gaussian-process Bayesian optimisation over the grid's range).",
                           choices=ALGORITHMS)
  max_trials: int = setting(0, "Trials at most (0: the grid's size).")
  holdouts: Tuple[str, ...] = setting(CORPORA, "Holdouts each trial trains (one run each); the "
                                      "objective is the mean validation UA over them.")
  seeds: Tuple[int, ...] = setting((0,), "Seeds each trial trains per holdout.",
                                   from_flag=lambda v: tuple(int(s) for s in v))
  initial_points: int = setting(0, "Bayesian: random trials before the Gaussian process (0: "
                                "keras-tuner's default, 3 per hyper-parameter).")
  tuned_dir: str = setting("", "Where the best values are written as cww/<method>.json, the "
                           "registry's cww/tuned/<method> ('': $TFSER_TUNED_DIR, else ./tuned).")
  overwrite: bool = setting(False, "Start the sweep over (else a sweep in --out_dir continues).",
                            flag="tune_overwrite")

  def validate(self) -> None:
    if self.algorithm not in ALGORITHMS:
      raise ValueError(f"--algorithm must be one of {ALGORITHMS}; got {self.algorithm!r}")
    if self.max_trials < 0 or self.initial_points < 0:
      raise ValueError("--max_trials and --initial_points must be >= 0")
    if not self.holdouts or not self.seeds:
      raise ValueError("--holdouts and --seeds must name at least one each")
    unknown = [h for h in self.holdouts if h not in CORPORA]
    if unknown:
      raise ValueError(f"--holdouts: {', '.join(unknown)} not among {', '.join(CORPORA)}")
    if self.algorithm == "bayesian" and not bayesian_available():
      raise ValueError("--algorithm=bayesian needs scikit-learn (keras-tuner's Gaussian "
                       "process; pip install 'keras-tuner[bayesian]'), which is not installed; "
                       "use --algorithm=grid or install it")


def bayesian_available() -> bool:
  """Whether keras-tuner's BayesianOptimizationOracle can run (it needs scikit-learn)."""
  try:
    import sklearn.gaussian_process  # noqa: F401  pylint: disable=g-import-not-at-top,unused-import
  except ImportError:
    return False
  return True


def search_space(method: str) -> Tuple[SearchParam, ...]:
  """The method's hyper-parameters; ValueError naming the tunable methods otherwise."""
  if method not in SEARCH_SPACES:
    raise ValueError(f"--method={method} has no hyper-parameter to tune; tunable: "
                     f"{', '.join(SEARCH_SPACES)}")
  return SEARCH_SPACES[method]


def grid_size(space: Sequence[SearchParam]) -> int:
  return int(np.prod([len(p.values) for p in space]))


class CwwHyperModel(keras_tuner.HyperModel):
  """build(hp): the trial's values {field: value}; fit: the CWW runs -> {val_ua, holdout_ua}.

  base: the method's CwwConfig (its holdout, seed and out_dir are replaced per run); source: a
  data source for ``cww_train.train`` (None: ``base.data_dir``).
  """

  def __init__(self, base: CwwConfig, space: Sequence[SearchParam], algorithm: str,
               holdouts: Sequence[str], seeds: Sequence[int], sweep_dir: str, source=None):
    super().__init__(name=f"cww_{base.method}")
    self.base, self.space, self.algorithm = base, tuple(space), algorithm
    self.holdouts, self.seeds = tuple(holdouts), tuple(seeds)
    self.sweep_dir, self.source = sweep_dir, source

  def build(self, hp) -> Dict[str, float]:
    return {p.field: float(p.declare(hp, self.algorithm)) for p in self.space}

  def run_dir(self, trial_id: str, holdout: str, seed: int) -> str:
    return os.path.join(self.sweep_dir, "trials", str(trial_id), holdout, f"seed{seed}")

  def fit(self, hp, model, *args, trial_id: str = "0", **kwargs) -> Dict[str, float]:
    values = model
    val, test = [], []
    for holdout in self.holdouts:
      for seed in self.seeds:
        config = dataclasses.replace(self.base, **values, holdout=holdout, seed=seed,
                                     out_dir=self.run_dir(trial_id, holdout, seed), export=False)
        results = cww_train.train(config, source=self.source)
        val.append(results["val_ua_mean"])
        test.append(results["holdout_ua"])
    metrics = {OBJECTIVE: float(np.mean(val)), "holdout_ua": float(np.mean(test))}
    tuning_report.write_trial_hparams(self.sweep_dir, trial_id, values, metrics)
    return metrics


class SweepError(keras_tuner.errors.FatalValueError):
  """A trial stopped on a user's error (data, settings, files): every trial would, so the sweep
  stops at once with the message (keras-tuner retries other exceptions as failed trials)."""


class CwwTuner(keras_tuner.Tuner):
  """Runs each trial through :meth:`CwwHyperModel.fit` (no Keras 3 model is built)."""

  def run_trial(self, trial, *args, **kwargs):
    hp = trial.hyperparameters
    try:
      return self.hypermodel.fit(hp, self.hypermodel.build(hp), trial_id=trial.trial_id)
    except (ValueError, OSError) as e:  # tfser's DataError, a bad setting, a missing file
      raise SweepError(f"trial {trial.trial_id}: {e}") from e


def make_oracle(tuning: TuningConfig, space: Sequence[SearchParam], seed: int):
  objective = keras_tuner.Objective(OBJECTIVE, direction="max")
  trials = tuning.max_trials or grid_size(space)
  if tuning.algorithm == "grid":
    return keras_tuner.oracles.GridSearchOracle(objective=objective, max_trials=trials, seed=seed)
  return keras_tuner.oracles.BayesianOptimizationOracle(
      objective=objective, max_trials=trials, seed=seed,
      num_initial_points=tuning.initial_points or None)


def is_summary_writer() -> bool:
  """True for a single-process sweep and for the chief of a distributed one."""
  from keras_tuner.src.distribute import utils as dist_utils  # pylint: disable=g-import-not-at-top
  return not dist_utils.has_chief_oracle() or dist_utils.is_chief_oracle()


def tune(base: CwwConfig, tuning: TuningConfig, sweep_dir: str, source=None) -> Optional[Dict]:
  """Runs (or continues) the sweep of ``base.method``; returns the best trial's record.

  Writes the trials table, the HParams dashboard and the tuned configuration (module
  docstring); a distributed worker returns None after its trials (the chief writes them).
  """
  tuning.validate()
  space = search_space(base.method)
  sweep_dir = os.path.abspath(sweep_dir)
  os.makedirs(sweep_dir, exist_ok=True)
  hypermodel = CwwHyperModel(base, space, tuning.algorithm, tuning.holdouts, tuning.seeds,
                             sweep_dir, source)
  if is_summary_writer():
    tuning_report.write_hparams_config(sweep_dir, space, tuning.algorithm)
  tuner = CwwTuner(oracle=make_oracle(tuning, space, base.seed), hypermodel=hypermodel,
                   directory=sweep_dir, project_name="keras_tuner",
                   overwrite=tuning.overwrite)
  tuner.search()
  if not is_summary_writer():
    return None
  trials = tuning_report.trial_rows(tuner.oracle, space)
  if not any(t["status"] == "COMPLETED" for t in trials):
    raise ValueError(f"no trial of the sweep in {sweep_dir} completed (see the errors above)")
  tuning_report.write_table(sweep_dir, trials, space)
  best = next(t for t in trials if t["status"] == "COMPLETED")
  return tuning_report.write_tuned(sweep_dir, base.method, best, space, tuning)
