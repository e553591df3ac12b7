"""Generic CSV manifest reader: bring any corpus without code.

One row per rating (RFC-4180 CSV with a header)::

  utterance,audio_path,speaker,split,annotator,activation,valence,dominance,category
  u1,wav/u1.wav,s1,train,r1,4,2,3,happy
  u1,wav/u1.wav,s1,train,r2,5,3,,happy

Required columns: utterance, audio_path, speaker, split, annotator, activation, valence,
dominance, category. Optional: gender (F/M/""), transcript, cww_split (default: split),
scale_min and scale_max, label, label_source.

* Ratings: activation/valence/dominance are on [scale_min, scale_max] when those columns are
  given (min-max scaled to [-1, 1], +1 = high activation / positive valence / dominant: flip the
  numbers before writing the CSV if your scale runs the other way); without them they are assumed
  to be on [-1, 1] already. An empty cell is "not rated" (NaN); a row with an empty annotator
  carries no rating (an unlabelled utterance).
* category: a tfser class name (neutral, happy, sad, angry) or any other emotion word (kept,
  lower-cased, label "").
* The utterance label is the ``label`` column if given, else the raters' majority category (a tie
  gives ""); label_source is the ``label_source`` column, else "majority" when a label was voted,
  else "none". The consensus is the mean of the (de-duplicated) ratings.
* audio_path relative to the CSV's directory is resolved against it.
* Rows of one utterance must agree on audio_path, speaker, split and the optional per-utterance
  columns.
* The corpus code (``--csv_name``, default CSV) names the output folder: 1-32 letters, digits,
  ``_`` or ``-``, starting with a letter (no path), and none of the registered corpora's codes
  (a CSV corpus must not overwrite, say, the IEM folder): :func:`check_name`.
"""

import collections
import math
import os
import re
from typing import Dict, Iterator, List, Optional

from data_prep import errors
from data_prep import labels
from data_prep.corpora import common
from tfser.data import schema

NAME = "CSV"
REQUIRED = ("utterance", "audio_path", "speaker", "split", "annotator", "activation", "valence",
            "dominance", "category")
PER_UTTERANCE = ("audio_path", "speaker", "split", "gender", "transcript", "cww_split", "label",
                 "label_source")
_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_-]{0,31}$")


def check_name(name: str) -> str:
  """Returns ``name`` if it can be a CSV corpus's code; CorpusError naming --csv_name if not."""
  from data_prep import corpora  # pylint: disable=g-import-not-at-top  (the registry imports us)
  if not isinstance(name, str) or not _NAME.match(name):
    raise errors.CorpusError(
        f"--csv_name={name!r} is not a corpus code: use 1-32 letters, digits, '_' or '-', "
        "starting with a letter (it names the folder under --out_dir, so no path)")
  taken = {code.lower(): code for code in corpora.MODULES if code != NAME}
  taken[corpora.DEMO] = corpora.DEMO
  if name.lower() in taken:
    raise errors.CorpusError(
        f"--csv_name={name!r} is the code of the registered corpus {taken[name.lower()]}: a CSV "
        "corpus must not overwrite its folder; choose another name")
  return name


def read(root: str, *, skip_bad: bool = False, dropped: Optional[errors.DropLog] = None,
         name: str = NAME, manifest: Optional[str] = None) -> Iterator[schema.Utterance]:
  """Yields one Utterance per distinct ``utterance`` value, in first-appearance order.

  Args:
    root: the manifest CSV, or a directory holding ``manifest.csv``.
    skip_bad: log and count bad utterances under ``dropped`` instead of raising CorpusError.
    dropped: the DropLog that receives skips.
    name: the corpus code written into each record.
    manifest: the manifest path (overrides ``root``).
  """
  check_name(name)
  problems = common.Problems(skip_bad, dropped)
  path = manifest or (os.path.join(root, "manifest.csv") if os.path.isdir(root) else root)
  common.require_file(path, "CSV manifest")
  base = os.path.dirname(os.path.abspath(path))
  rows: Dict[str, List[tuple]] = collections.OrderedDict()
  for line, row in common.csv_rows(path, REQUIRED):
    utt_id = (row["utterance"] or "").strip()
    if not utt_id:
      problems.bad("empty utterance id", path, line)
      continue
    rows.setdefault(utt_id, []).append((line, row))
  count = 0
  for utt_id, group in rows.items():
    try:
      utt = _utterance(name, utt_id, group, base, path, problems)
    except errors.CorpusError as e:
      problems.bad(e.reason, path, e.line, utt_id)
      continue
    problems.source(utt_id, path, group[0][0])
    count += 1
    yield utt
  common.require_nonempty(count, path)


def _cell(row, key) -> str:
  return (row.get(key) or "").strip()


def _utterance(name, utt_id, group, base, path, problems) -> schema.Utterance:
  first_line, first = group[0]
  for line, row in group[1:]:
    for key in PER_UTTERANCE:
      if _cell(row, key) != _cell(first, key):
        raise errors.CorpusError(f"column {key!r} differs between rows of one utterance "
                                 f"({_cell(first, key)!r} on line {first_line})", path, line)
  split = _cell(first, "split")
  cww_split = _cell(first, "cww_split") or split
  for key, value in (("split", split), ("cww_split", cww_split)):
    if value not in schema.SPLITS:
      raise errors.CorpusError(f"{key} {value!r} is not one of {schema.SPLITS}", path, first_line)
  gender = _cell(first, "gender").upper()
  if gender not in ("", "F", "M"):
    raise errors.CorpusError(f"gender {gender!r} is not F, M or empty", path, first_line)
  ratings = []
  for line, row in group:
    annotator = _cell(row, "annotator")
    if not annotator:
      continue
    try:
      values = [_rating(row, key) for key in ("activation", "valence", "dominance")]
    except ValueError as e:
      raise errors.CorpusError(str(e), path, line) from e
    ratings.append(schema.Rating(annotator, *values, category=_cell(row, "category").lower()))
  audio = _cell(first, "audio_path")
  utt = schema.Utterance(
      corpus=name, utterance_id=utt_id, speaker=_cell(first, "speaker"), gender=gender,
      split=split, cww_split=cww_split,
      audio_path=os.path.normpath(os.path.join(base, audio)) if audio else "",
      transcript=_cell(first, "transcript"))
  common.apply_ratings(utt, ratings, problems)
  utt.activation, utt.valence, utt.dominance = labels.consensus(utt.ratings)
  label = _cell(first, "label").lower()
  if label:
    utt.raw_label, source = label, _cell(first, "label_source") or "majority"
  else:
    votes = collections.Counter(r.category for r in utt.ratings if r.category)
    top = votes.most_common(2)
    voted = top[0][0] if top and (len(top) == 1 or top[0][1] > top[1][1]) else ""
    utt.raw_label, source = voted, _cell(first, "label_source") or ("majority" if voted else "none")
  if source not in schema.LABEL_SOURCES:
    raise errors.CorpusError(f"label_source {source!r} is not one of {schema.LABEL_SOURCES}",
                             path, first_line)
  utt.label, utt.label_source = common.label_of(utt.raw_label), source
  return utt


def _rating(row, key) -> float:
  """One rating cell on [-1, 1] (NaN when empty)."""
  text = _cell(row, key)
  if not text:
    return math.nan
  value = common.parse_number(text)
  lo_text, hi_text = _cell(row, "scale_min"), _cell(row, "scale_max")
  if bool(lo_text) != bool(hi_text):
    raise ValueError("give both scale_min and scale_max, or neither")
  lo, hi = (float(lo_text), float(hi_text)) if lo_text else (-1.0, 1.0)
  if not lo < hi:
    raise ValueError(f"scale_min {lo} is not below scale_max {hi}")
  try:
    return common.scale(value, lo, hi)
  except ValueError as e:
    raise ValueError(f"{key}: {e}") from e
