"""Configuration of the annotators paper's three models (baseline, multi-task, one-hot).

Tavernor, El-Tawil and Mower Provost, "The Whole Is Bigger Than the Sum of Its Parts" (section
3.2): frozen wav2vec2 (768) and BERT CLS (512 in the paper's count) features, dropout 0.2,
concatenated; one shared Dense(256)+ReLU; per prediction two Dense(256)+ReLU. Every number is a
field with the paper's value as its default.
"""

import dataclasses

from tfser.core.flags import NO_FLAG
from tfser.core.flags import setting

MODELS = ("baseline", "mt", "onehot")


@dataclasses.dataclass(frozen=True)
class AnnotatorModelConfig:
  """What :func:`tfser.models.build_annotator_model` builds.

  model: "baseline" (16 logits of the 4x4 distribution), "mt" (one head per annotator, sparse
    table) or "onehot" (annotator one-hot joined to the input, one head per dimension).
  input_dim: width of the concatenated input features (wav2vec2 768 + BERT 512 = 1280 in the
    paper; the demo's IS10 gives 1582).
  num_annotators: rows of the head table / one-hot width (the corpus's annotator count; 0 is
    allowed only for the baseline).
  hidden_units: width of every hidden layer (256).
  shared_layers: Dense+ReLU layers shared by activation and valence (MT, one-hot: 1).
  branch_layers: Dense+ReLU layers per prediction (activation, valence; or the baseline's
    distribution): 2. The baseline has shared_layers + branch_layers hidden layers in a row.
  dropout: dropout on the input features (0.2).
  out_bins: bins per axis of the baseline's distribution (4 -> 16 logits; 2 -> 4 logits).
  seed: seed of the input dropout's masks (a tfser addition: their generator is saved in
    checkpoints, so a resumed run draws the same masks as an uninterrupted one).
  """
  # Each field's help is its flag's (tfser.core.flags.setting): the annotators task's config holds
  # the ones chosen per run (tfser.core.flags.same_as); input_dim and num_annotators come from
  # the data.
  model: str = setting("mt", "baseline: 4x4 distribution from the features (Zhang et al.); mt: "
                       "one linear head per annotator (sparse head table); onehot: annotator "
                       "one-hot joined to the input.", choices=MODELS)
  input_dim: int = setting(1280, "Width of the concatenated input features.", flag=NO_FLAG)
  num_annotators: int = setting(0, "The corpus's annotator count.", flag=NO_FLAG)
  hidden_units: int = setting(256, "Width of every hidden layer (paper: 256).")
  shared_layers: int = setting(1, "Shared Dense+ReLU layers (paper: 1; the baseline has "
                               "shared_layers + branch_layers in a row).")
  branch_layers: int = setting(2, "Dense+ReLU layers per prediction (paper: 2).")
  dropout: float = setting(0.2, "Dropout on the input features (paper: 0.2).")
  out_bins: int = setting(4, "Bins per axis of the distributions (4x4; 2x2).", choices=("4", "2"),
                          flag_default="4", from_flag=int)
  seed: int = setting(0, "Random seed (--seed).", flag=NO_FLAG)

  def __post_init__(self):
    if self.model not in MODELS:
      raise ValueError(f"AnnotatorModelConfig.model: unknown model {self.model!r}; choose from "
                       f"{', '.join(MODELS)}")
    if self.input_dim < 1:
      raise ValueError(f"AnnotatorModelConfig.input_dim must be >= 1, got {self.input_dim}")
    if self.model != "baseline" and self.num_annotators < 1:
      raise ValueError(f"AnnotatorModelConfig: model {self.model!r} needs num_annotators >= 1 "
                       f"(the corpus's annotators), got {self.num_annotators}")
    if not 0.0 <= self.dropout < 1.0:
      raise ValueError(f"AnnotatorModelConfig.dropout must be in [0, 1), got {self.dropout}")
    if self.out_bins < 1:
      raise ValueError(f"AnnotatorModelConfig.out_bins must be >= 1, got {self.out_bins}")
