"""Configuration of the annotators task (Tavernor et al.): one frozen dataclass per run.

Every default is the paper's (section 3.3) unless noted; ``tfser/launchers/annotators.py`` builds
it from the flags, and the named experiments (``tfser.tasks.annotators.experiments``) are rows
of the paper's Tables 1 and 2 over it.
"""

import dataclasses
from typing import Optional, Tuple

from tfser.data import schema
from tfser.models.annotator_config import MODELS

# The objectives (tfser.tasks.annotators.model.OBJECTIVES; kept here free of TensorFlow).
OBJECTIVES = ("baseline", "task1", "task1+2")
TRAIN_DTYPES = ("auto", "float16", "float32", "float64")


@dataclasses.dataclass(frozen=True)
class AnnotatorsConfig:
  """One run of the annotators task. Defaults are the paper's (section 3.3) unless noted.

  model, objective: see ``tfser.models`` and ``tfser.tasks.annotators.model``; the baseline
    model always trains the "baseline" objective.
  corpus: the training corpus (its directory name under data_dir, e.g. IMP).
  zero_shot_corpora: corpora tested whole (split "all") with every head (Table 2).
  feature_names: stored features, concatenated in this order (wav2vec2 768 + BERT 512).
  gt_seed: which of the stored ground-truth distributions (seeds 0-4) trains and tests; None:
    ``seed % 5`` (the paper's five seeds each use their own ground truth).
  diffkde_train_dtype: DiffKDE's compute dtype in training: "auto" = float16 under mixed
    precision (the paper), else float32.
  hard_kde_grid_size: grid of the Task 1 ablation's hard-histogram KDE (the ground truth's 512;
    objective task1 only); 0 skips the ablation metrics.
  checkpoint_every_batches: 0 = checkpoint at the end of every epoch; N = every N batches too.
  """
  model: str = "mt"
  objective: str = "task1+2"
  corpus: str = "IMP"
  data_dir: str = ""
  out_dir: str = "runs/latest"
  zero_shot_corpora: Tuple[str, ...] = ()
  feature_names: Tuple[str, ...] = ("wav2vec2", "bert")
  standardize_features: bool = True
  seed: int = 0
  gt_seed: Optional[int] = None
  min_ratings: int = 2
  batch_size: int = 32
  # Model (section 3.2).
  hidden_units: int = 256
  shared_layers: int = 1
  branch_layers: int = 2
  dropout: float = 0.2
  out_bins: int = 4
  # Optimisation (section 3.3).
  learning_rate: float = 1e-3
  momentum: float = 0.9
  lr_factor: float = 0.1
  lr_patience: int = 5
  early_stopping_patience: int = 10
  min_epochs: int = 30
  max_epochs: int = 500
  restore_best_weights: bool = True
  # DiffKDE (section 3.3, Task 2).
  diffkde_grid_size: int = 64
  diffkde_sigma: float = 8.0
  diffkde_samples: int = 200
  diffkde_t_gradient: str = "implicit"
  diffkde_train_dtype: str = "auto"
  # Evaluation (section 3.4).
  hard_kde_grid_size: int = 512
  per_annotator_min_ratings: int = 5
  # Runtime.
  jit: bool = False
  mixed_precision: bool = False
  deterministic: bool = True
  checkpoint_every_batches: int = 0
  image_utterances: int = 8  # 0: no TensorBoard images
  export: bool = True
  verbose: int = 2

  def __post_init__(self):
    if self.model not in MODELS:
      raise ValueError(f"--model: unknown model {self.model!r}; choose from {', '.join(MODELS)}")
    if self.objective not in OBJECTIVES:
      raise ValueError(f"--objective: unknown objective {self.objective!r}; choose from "
                       f"{', '.join(OBJECTIVES)}")
    if (self.model == "baseline") != (self.objective == "baseline"):
      raise ValueError(f"--objective={self.objective} does not fit --model={self.model}: the "
                       "baseline trains the 'baseline' objective, MT and one-hot 'task1' or "
                       "'task1+2'")
    if self.diffkde_train_dtype not in TRAIN_DTYPES:
      raise ValueError(f"--diffkde_train_dtype: {self.diffkde_train_dtype!r} is not one of "
                       f"{', '.join(TRAIN_DTYPES)}")
    if self.out_bins not in schema.GT_BINS:
      raise ValueError(f"--out_bins: {self.out_bins} has no stored ground truth; choose from "
                       f"{schema.GT_BINS}")
    if self.max_epochs < 1 or self.batch_size < 1:
      raise ValueError(f"--max_epochs ({self.max_epochs}) and --batch_size ({self.batch_size}) "
                       "must be >= 1")
    if not self.data_dir:
      raise ValueError("AnnotatorsConfig.data_dir is empty (the launcher prepares the demo when "
                       "--data_dir is unset)")

  @property
  def effective_gt_seed(self) -> int:
    return self.seed % schema.GT_SEEDS if self.gt_seed is None else self.gt_seed

  @property
  def effective_train_dtype(self) -> str:
    if self.diffkde_train_dtype == "auto":
      return "float16" if self.mixed_precision else "float32"
    return self.diffkde_train_dtype
