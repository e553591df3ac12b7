"""Label preparation shared by every corpus reader and the writer.

* :func:`scale_to_unit`: a corpus's rating scale to tfser's common [-1, 1] (annotators paper, 3.1).
* :func:`merge_duplicate_ratings`: one rating per annotator per utterance; an annotator who rated
  the same utterance twice is averaged into one evaluation (annotators paper, 3.1: "In few samples
  (28) the same annotator has annotated more than once ... averaged their annotations").
  :func:`merge_duplicate_raters` applies it to an utterance and adjusts its consensus: the one
  de-duplication rule every reader and the writer use.
* :func:`majority_vote`: the most frequent categorical vote, ties going to the vote seen first.
* :func:`canonical_emotion` / :func:`cww_class`: corpus emotion names and codes to one vocabulary,
  and to the corpus-wise-weights paper's four classes (neutral, happy, sad, angry); IEMOCAP's
  "excited" merges into happy when asked (CWW paper, section 3). Every other known emotion is
  excluded from the CWW task (and counted by the writer); an unknown name raises ValueError.
* :func:`count_annotators` / :func:`has_min_annotators`: annotators with a valid (activation,
  valence) pair; the annotator task and its ground truth need at least :data:`MIN_ANNOTATORS`.
"""

import collections
import math
from typing import Iterable, List, Optional, Sequence, Tuple

from tfser.data.schema import CLASS_NAMES, Rating, Utterance

# The annotator task drops utterances with fewer annotators than this (annotators paper, 3.1).
MIN_ANNOTATORS = 2


def scale_to_unit(value: float, lo: float, hi: float, reverse: bool = False) -> float:
  """Min-max scales a rating on the corpus scale [lo, hi] to [-1, 1] (the annotators paper, 3.1).

  reverse=True flips the direction (for a scale whose low end means high activation or
  positive valence, so that +1 always means high activation / positive valence).
  A NaN stays NaN; a value outside [lo, hi] raises ValueError (callers add the file and line).
  """
  value = float(value)
  if math.isnan(value):
    return value
  if not lo <= value <= hi:
    raise ValueError(f"rating {value} outside the corpus scale [{lo}, {hi}]")
  unit = 2.0 * (value - lo) / (hi - lo) - 1.0
  return -unit if reverse else unit


def nan_mean(values: Iterable[float]) -> float:
  """Mean of the non-NaN values; NaN when there are none."""
  kept = [float(v) for v in values if not math.isnan(float(v))]
  return math.fsum(kept) / len(kept) if kept else math.nan


def majority_vote(votes: Sequence[str]) -> str:
  """The most frequent non-empty vote; a tie goes to the tied vote that appears first; "" if none.

  >>> majority_vote(["sad", "happy", "happy", "sad"])
  'sad'
  """
  counts = collections.Counter(v for v in votes if v)
  if not counts:
    return ""
  best = max(counts.values())
  return next(v for v in votes if v and counts[v] == best)


def merge_duplicate_ratings(ratings: Sequence[Rating]) -> List[Rating]:
  """One rating per annotator: repeated ratings by one annotator of one utterance are averaged.

  Activation, valence and dominance are each the mean of that annotator's non-NaN values (NaN if
  none); the categorical vote is :func:`majority_vote` of their votes. Annotators keep the order of
  their first rating. Ratings without duplicates come back unchanged (equal values).
  """
  groups = collections.OrderedDict()
  for rating in ratings:
    groups.setdefault(rating.annotator, []).append(rating)
  merged = []
  for annotator, group in groups.items():
    if len(group) == 1:
      merged.append(Rating(**vars(group[0])))
      continue
    merged.append(Rating(annotator=annotator,
                         activation=nan_mean(r.activation for r in group),
                         valence=nan_mean(r.valence for r in group),
                         dominance=nan_mean(r.dominance for r in group),
                         category=majority_vote([r.category for r in group])))
  return merged


def has_duplicate_annotators(ratings: Sequence[Rating]) -> bool:
  ids = [r.annotator for r in ratings]
  return len(ids) != len(set(ids))


def merge_duplicate_raters(utt: Utterance) -> bool:
  """De-duplicates an utterance's raters in place; returns whether anything was merged.

  The annotators paper (3.1): "the same annotator has annotated more than once ... we have
  averaged their annotations into one evaluation, and adjusted the mean ground truth for these
  samples". So where an annotator repeats, the ratings become :func:`merge_duplicate_ratings` of
  them and the consensus (activation, valence, dominance) becomes their :func:`consensus`; an
  utterance without repeats is left exactly as it is (its consensus may come from the corpus's
  own label file). Every reader (``data_prep.corpora.common.apply_ratings``) and the writer (for
  records that reach it unmerged) call this, and the writer counts the merges in the manifest.
  """
  if not has_duplicate_annotators(utt.ratings):
    return False
  utt.ratings = merge_duplicate_ratings(utt.ratings)
  utt.activation, utt.valence, utt.dominance = consensus(utt.ratings)
  return True


def consensus(ratings: Sequence[Rating]) -> Tuple[float, float, float]:
  """(activation, valence, dominance) means over the ratings, each ignoring NaNs."""
  return (nan_mean(r.activation for r in ratings), nan_mean(r.valence for r in ratings),
          nan_mean(r.dominance for r in ratings))


def count_annotators(ratings: Sequence[Rating]) -> int:
  """Distinct annotators who gave both an activation and a valence value."""
  return len({r.annotator for r in ratings
              if not math.isnan(r.activation) and not math.isnan(r.valence)})


def has_min_annotators(ratings: Sequence[Rating], minimum: int = MIN_ANNOTATORS) -> bool:
  """Whether the utterance is usable for the annotator task and its ground truth."""
  return count_annotators(ratings) >= minimum


# -------------------------------------------------------------------------------------------------
# Emotion vocabulary.

# Canonical name -> spellings used by the corpora (compared lower-case, stripped). Single letters
# are the MSP-Podcast / MSP-Improv codes (A angry, S sad, H happy, U surprise, F fear, D disgust,
# C contempt, N neutral, O other, X no agreement); three-letter codes are IEMOCAP's and CREMA-D's.
_SPELLINGS = {
    "neutral": ("neutral", "neu", "n", "neutral state", "neutrality"),
    "happy": ("happy", "hap", "h", "happiness", "joy", "joyful"),
    "sad": ("sad", "s", "sadness"),
    "angry": ("angry", "ang", "a", "anger"),
    "excited": ("excited", "exc", "excitement"),
    "frustrated": ("frustrated", "fru", "frustration"),
    "surprised": ("surprised", "sur", "u", "surprise"),
    "fearful": ("fearful", "fea", "f", "fear"),
    "disgusted": ("disgusted", "dis", "d", "disgust"),
    "contempt": ("contempt", "c", "con"),
    "other": ("other", "oth", "o", "others"),
    "no agreement": ("no agreement", "xxx", "x", "no_agreement"),
}
_CANONICAL = {s: name for name, spellings in _SPELLINGS.items() for s in spellings}

EMOTIONS = tuple(_SPELLINGS)  # every canonical emotion name tfser knows


def canonical_emotion(raw: str, extra: Optional[dict] = None) -> str:
  """A corpus's emotion name or code to tfser's vocabulary (:data:`EMOTIONS`).

  Args:
    raw: e.g. "Neutral state", "ANG", "hap", "H". Compared case-insensitively, stripped.
    extra: optional corpus-specific spellings, lower-case spelling -> canonical name.
  Raises:
    ValueError: an unknown emotion name (callers add the file, line and utterance).
  """
  key = " ".join(str(raw).strip().lower().split())
  if extra and key in extra:
    return extra[key]
  if key in _CANONICAL:
    return _CANONICAL[key]
  raise ValueError(f"unknown emotion label {raw!r} (known: {', '.join(EMOTIONS)})")


def cww_class(raw: str, merge_excited: bool = False, extra: Optional[dict] = None) -> str:
  """The corpus-wise-weights paper's class (one of CLASS_NAMES) or "" when excluded.

  merge_excited: IEMOCAP's excited counts as happy (the CWW paper merges them to balance IEM).
  Raises ValueError for an unknown emotion name (see :func:`canonical_emotion`).
  """
  name = canonical_emotion(raw, extra)
  if merge_excited and name == "excited":
    name = "happy"
  return name if name in CLASS_NAMES else ""
