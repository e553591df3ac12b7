"""What a corpus's shards will hold, decided before anything is written.

* :func:`validate`: whether one reader record can be written (and why not, for the manifest).
* :func:`plan_shards`: which utterance goes to which shard, per split and sorted by utterance id,
  so the plan depends only on the utterances and the shard size, never on timing.
* :func:`setting_problems`: the writer's settings checked before anything is read or written.
"""

import collections
import dataclasses
import math
from typing import Dict, Iterable, List, Optional, Sequence, Tuple

import numpy as np

from data_prep import labels
from data_prep.errors import CorpusError, DropLog
from data_prep.ground_truth import GroundTruthConfig
from tfser.data import schema
from tfser.data.manifest import shard_name

DEFAULT_SHARD_SIZE = 512


@dataclasses.dataclass
class Shard:
  """One planned shard: its file name, split and the utterances (sorted by id) it holds."""
  name: str
  split: str
  utterances: List[schema.Utterance]


def _check_value(value: float, what: str) -> Optional[str]:
  if math.isnan(value):
    return None
  if math.isinf(value) or not -1.0 <= value <= 1.0:
    return f"{what} {value} outside [-1, 1] (readers scale with data_prep.labels.scale_to_unit)"
  return None


def validate(utt: schema.Utterance, corpus: str) -> Optional[Tuple[str, str]]:
  """None if ``utt`` can be written, else (reason for the manifest, detailed message)."""
  if not utt.utterance_id:
    return "empty utterance id", "the utterance id is empty"
  if utt.corpus != corpus:
    return "wrong corpus", f"corpus {utt.corpus!r} differs from the one being written ({corpus!r})"
  for field in ("split", "cww_split"):
    if getattr(utt, field) not in schema.SPLITS:
      return (f"unknown {field}",
              f"{field} {getattr(utt, field)!r} is not one of {', '.join(schema.SPLITS)}")
  if utt.label and utt.label not in schema.CLASS_NAMES:
    return ("unknown label", f"label {utt.label!r} is not one of {', '.join(schema.CLASS_NAMES)} "
            "(other emotions go to raw_label with label '')")
  if not isinstance(utt.annotator_excluded, str):
    return ("bad annotator_excluded",
            f"annotator_excluded {utt.annotator_excluded!r} is not a string (a reason or '')")
  if utt.label_source not in schema.LABEL_SOURCES:
    return ("unknown label source",
            f"label_source {utt.label_source!r} is not one of {', '.join(schema.LABEL_SOURCES)}")
  for what in ("activation", "valence", "dominance"):
    try:
      problem = _check_value(float(getattr(utt, what)), "consensus " + what)
    except (TypeError, ValueError):
      problem = f"consensus {what} {getattr(utt, what)!r} is not a number"
    if problem:
      return "rating out of scale or not finite", problem
  for r in utt.ratings:
    if not isinstance(r.annotator, str) or not r.annotator:
      return "empty annotator id", f"a rating has annotator id {r.annotator!r}"
    for what in ("activation", "valence", "dominance"):
      try:
        problem = _check_value(float(getattr(r, what)), f"annotator {r.annotator} {what}")
      except (TypeError, ValueError):
        problem = f"annotator {r.annotator} {what} {getattr(r, what)!r} is not a number"
      if problem:
        return "rating out of scale or not finite", problem
  return None


def plan_shards(utterances: Sequence[schema.Utterance], shard_size: int) -> List[Shard]:
  """Splits utterances into shards: per split (schema.SPLITS order), sorted by utterance id."""
  if shard_size < 1:
    raise ValueError(f"shard_size must be >= 1, got {shard_size}")
  by_split = collections.defaultdict(list)
  for utt in utterances:
    by_split[utt.split].append(utt)
  shards = []
  for split in schema.SPLITS:
    items = sorted(by_split.get(split, ()), key=lambda u: u.utterance_id)
    if not items:
      continue
    count = -(-len(items) // shard_size)
    for i in range(count):
      shards.append(Shard(shard_name(split, i, count), split,
                          items[i * shard_size:(i + 1) * shard_size]))
  return shards



# Settings the writer checks before anything is read or written: {name: (minimum, meaning)}.
# The names are prepare's flags (--shard_size, --gt_samples, --gt_grid, --gt_batch).
_MINIMUM = {"shard_size": (1, "utterances per shard"),
            "gt_samples": (2, "upsampled points per utterance (the paper: 200)"),
            "gt_grid": (16, "KDE grid points per axis (the paper: 512; rounded up to a power of 2)"),
            "gt_batch": (1, "rows per batched KDE call")}


def setting_problems(shard_size: int, gt_config: Optional[GroundTruthConfig]) -> Dict[str, str]:
  """{setting: what is wrong} for out-of-range writer settings; empty when all are usable."""
  values = {"shard_size": shard_size}
  if gt_config is not None:
    values.update(gt_samples=gt_config.samples, gt_grid=gt_config.grid_size,
                  gt_batch=gt_config.kde_batch)
  problems = {}
  for name, value in values.items():
    if value is None and name == "gt_batch":  # chosen from the grid and row count (gt_plan)
      continue
    minimum, meaning = _MINIMUM[name]
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
      problems[name] = f"{value!r} is not a valid number of {meaning}: use an integer >= {minimum}"
  return problems


def read_valid(utterances: Iterable[schema.Utterance], corpus: str, skip_bad: bool,
               reader_log: DropLog) -> Tuple[List[schema.Utterance], int, DropLog, DropLog,
                                             List[str]]:
  """Reads a reader's records once, validates them and merges duplicate raters (copies).

  Returns (the records to write, how many were read, the writer's drops, a copy of the reader's
  drops taken after reading, the sorted ids whose duplicate raters were merged). A bad record
  raises CorpusError naming it (its source file from ``reader_log``) unless ``skip_bad``.
  """
  writer_drops = DropLog()
  kept, seen, merged_ids, n_read = [], set(), set(), 0
  for utt in utterances:
    n_read += 1
    problem = validate(utt, corpus)
    if problem is None and utt.utterance_id in seen:
      problem = ("duplicate utterance id", "the utterance id occurs twice in the corpus")
    if problem:
      reason, message = problem
      if not skip_bad:
        raise CorpusError(message + " (pass --skip_bad to drop and count it)",
                          path=reader_log.sources.get(utt.utterance_id),
                          utterance=f"{utt.corpus}/{utt.utterance_id}", kind=reason)
      writer_drops.add(reason, utt.utterance_id, message)
      continue
    seen.add(utt.utterance_id)
    if labels.has_duplicate_annotators(utt.ratings):
      utt = dataclasses.replace(utt)  # the caller's record stays as it was
      labels.merge_duplicate_raters(utt)
      merged_ids.add(utt.utterance_id)
    kept.append(utt)
  # The reader fills its DropLog while it is iterated: copy it only now.
  reader_drops = DropLog()
  reader_drops.extend(reader_log)
  reader_drops.layout = dict(reader_log.layout)
  merged_ids = sorted((merged_ids | set(reader_log.merged)) & seen)
  return kept, n_read, writer_drops, reader_drops, merged_ids
