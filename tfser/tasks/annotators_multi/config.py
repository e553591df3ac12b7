"""Configuration of the annotators_multi task: the annotators task's settings (model, objective,
DiffKDE, SGD; ``tfser.tasks.annotators.config``) plus the corpora and the corpus weighting.

One run trains on ``training_corpora`` (default: every corpus of the data directory with
individual ratings except the holdout) and tests the holdout zero-shot. ``weighting``:

* "cww": one minibatch per corpus per step (CWW Algorithm 1), CWW Eq. 2 with Eq. 3's weights
  recomputed at every epoch end from each training corpus's fit on its training split
  (``fit_metric``: 1 - TVD, or the consensus CCC (mean of activation and valence, clipped to
  [0, 1]: a negative CCC fits as badly as 0));
* "merged": the corpora merged, no weights: one shuffled stream of every training corpus's
  utterances (``tfser.core.corpus_weights.merged_corpus_stream``, the CWW task's merged
  system), so a minibatch mixes the corpora in proportion to their sizes and an epoch is one
  pass over all of them;
* "equal": Algorithm 1's zipped stream with every weight 1 (each corpus an equal say per step
  whatever its size: what "cww" would be with lambda_W = 0).

With one training corpus "equal" is the annotators paper's single-corpus training (its stream).
The fit U_d is measured (and logged) for every weighting, on at most ``fit_max_utterances``
utterances of each training split: a fixed random subset per run seed (0: every utterance).
"""

import dataclasses
from typing import Tuple

from tfser.core.corpus_weights import DEFAULT_LAMBDA_W
from tfser.core.flags import NO_FLAG
from tfser.core.flags import setting
from tfser.tasks.annotators.config import AnnotatorsConfig

WEIGHTINGS = ("cww", "merged", "equal")
# Why --distribute is refused here (the annotators task's --distribute; README, Several workers).
NO_DISTRIBUTE = ("annotators_multi trains in one process only: --distribute={} is not supported "
                 "(its train step would gather the minibatches like the annotators task's, but "
                 "its run, per-corpus fit pass and export are not set up for several workers, "
                 "and nothing tests them there); drop --distribute, or train the annotators "
                 "task (--task=annotators) on several workers")
FIT_METRICS = ("tvd", "ccc")


@dataclasses.dataclass(frozen=True)
class AnnotatorsMultiConfig(AnnotatorsConfig):
  """One annotators_multi run; every AnnotatorsConfig field keeps its meaning and default.

  holdout: the corpus tested zero-shot (never trained on). training_corpora: () = every corpus
  in data_dir with individual ratings except the holdout (resolved by ``data.training_corpora``).
  """
  corpus: str = setting("", "Unused here (see --training_corpora).", flag=NO_FLAG)
  zero_shot_corpora: Tuple[str, ...] = setting((), "Unused here (the holdout is tested "
                                               "zero-shot).", flag=NO_FLAG)
  holdout: str = setting("IEM", "Corpus held out of training and tested zero-shot (whole "
                         "corpus, every head): IMP, POD, IEM, MuSE; the demo's IMP, POD, IEM.")
  training_corpora: Tuple[str, ...] = setting(
      (), "Training corpora; empty: every corpus of the data dir with individual ratings except "
      "--holdout. One corpus: the annotators paper's single-corpus training.")
  weighting: str = setting("cww", "cww: one minibatch per corpus per step, CWW Eq. 2-3 corpus "
                           "weights recomputed at every epoch end from --fit_metric; merged: "
                           "the corpora merged into one shuffled stream, no weights; equal: one "
                           "minibatch per corpus per step, every weight 1.", choices=WEIGHTINGS)
  fit_metric: str = setting("tvd", "Per-corpus fit U_d of Eq. 3 on its training split: tvd = 1 - "
                            "mean TVD of the distributions; ccc = consensus CCC (mean of "
                            "activation and valence, clipped to [0, 1]).", choices=FIT_METRICS)
  fit_max_utterances: int = setting(
      2048, "Utterances of each training split the per-epoch fit U_d is measured on: a fixed "
      "random subset per --seed, the same every epoch (0: every utterance). The fit's float64 "
      "DiffKDE over a large split (MSP-Podcast) would cost more than the epoch's training.")
  lambda_w: float = setting(DEFAULT_LAMBDA_W, "Eq. 3's compensation exponent lambda_W (CWW "
                            "paper: 4).")
  max_steps_per_epoch: int = setting(0, "Cap on the steps of an epoch (0: the smallest "
                                     "corpus's minibatches, Algorithm 1).")

  def __post_init__(self):
    super().__post_init__()
    if self.distribute != "none":
      raise ValueError(NO_DISTRIBUTE.format(self.distribute))
    if not self.holdout:
      raise ValueError("--holdout is empty: name the corpus to test zero-shot")
    if self.holdout in self.training_corpora:
      raise ValueError(f"--holdout={self.holdout} is also in --training_corpora="
                       f"{','.join(self.training_corpora)}: a zero-shot corpus is never trained on")
    if len(set(self.training_corpora)) != len(self.training_corpora):
      raise ValueError(f"--training_corpora names a corpus twice: {self.training_corpora}")
    if self.weighting not in WEIGHTINGS:
      raise ValueError(f"--weighting: {self.weighting!r} is not one of {', '.join(WEIGHTINGS)}")
    if self.fit_metric not in FIT_METRICS:
      raise ValueError(f"--fit_metric: {self.fit_metric!r} is not one of "
                       f"{', '.join(FIT_METRICS)}")
    if self.lambda_w < 0:
      raise ValueError(f"--lambda_w must be >= 0, got {self.lambda_w}")
    if self.fit_max_utterances < 0:
      raise ValueError(f"--fit_max_utterances must be >= 0, got {self.fit_max_utterances}")
    if self.max_steps_per_epoch < 0:
      raise ValueError(f"--max_steps_per_epoch must be >= 0, got {self.max_steps_per_epoch}")

  @property
  def mode(self) -> str:
    """single (one training corpus), merged (one pooled stream), equal (zipped, weights 1) or
    weighted (zipped, CWW Eq. 3)."""
    if len(self.training_corpora) == 1:
      return "single"
    return {"cww": "weighted", "merged": "merged", "equal": "equal"}[self.weighting]
