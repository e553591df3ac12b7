"""Helpers shared by the corpus readers: bad-input handling, MSP rating entries, emotion words,
duplicate ratings.

One piece of code for one piece of logic: the ``A:..; V:..; D:..`` rater entries that
MSP-Improv (``Evaluation.txt``) and MSP-Podcast (``labels_detailed.csv``) share are parsed by
:func:`parse_msp_entry`; per-annotator de-duplication (the annotators paper, 3.1: "the same
annotator has annotated more than once ... we have averaged their annotations into one
evaluation, and adjusted the mean ground truth") is :func:`apply_ratings`, built on
``data_prep.labels``.
"""

import csv
import math
import os
import re
from typing import Dict, Iterator, List, Optional, Sequence, Tuple

from absl import logging

from data_prep import errors
from data_prep import labels
from tfser.data import schema


class Problems:
  """Routes bad input to a CorpusError or, with ``skip_bad``, to the DropLog.

  Readers call :meth:`bad` for bad input (raises unless skip_bad) and :meth:`filtered` for a
  documented filtering step (always counted, never an error).
  """

  def __init__(self, skip_bad: bool, dropped: Optional[errors.DropLog]):
    self.skip_bad = skip_bad
    # Without a caller's log the skips are still logged (absl), never silent.
    self.dropped = dropped if dropped is not None else errors.DropLog()

  def bad(self, reason: str, path: str, line: Optional[int] = None,
          utterance: Optional[str] = None) -> None:
    error = errors.CorpusError(reason, path=path, line=line, utterance=utterance)
    item = utterance or (f"{path}:{line}" if line is not None else str(path))
    self.dropped.skip_or_raise(error, self.skip_bad, item)
    logging.warning("skipped (--skip_bad): %s", error)

  def source(self, utterance_id: str, path: str, line: int) -> None:
    """Notes where an utterance was read ("file:line"), for the writer's messages about it."""
    self.dropped.sources[str(utterance_id)] = f"{path}:{line}"

  def merged(self, utterance_id: str) -> None:
    """Reports that the utterance's repeated raters were merged (counted in the manifest)."""
    self.dropped.merged.append(str(utterance_id))

  def filtered(self, reason: str, item_id: str) -> None:
    self.dropped.add(reason, item_id)
    logging.info("dropped %s: %s", item_id, reason)


def csv_rows(path: str, columns: Sequence[str]) -> Iterator[Tuple[int, Dict[str, str]]]:
  """``(line number, row dict)`` of a CSV with a header (BOM-tolerant).

  Raises CorpusError naming the file (line 1) when the header lacks any of ``columns``.
  """
  with open(path, newline="", encoding="utf-8-sig") as f:
    reader = csv.DictReader(f)
    missing = [c for c in columns if c not in (reader.fieldnames or ())]
    if missing:
      raise errors.CorpusError(f"missing columns {missing}", path=path, line=1)
    for row in reader:
      yield reader.line_num, row


def require_file(path: str, what: str) -> str:
  """Returns ``path`` or raises CorpusError naming it (missing label files are never skipped)."""
  if not os.path.isfile(path):
    raise errors.CorpusError(f"missing {what}", path=path)
  return path


def first_existing(root: str, candidates: Sequence[str], what: str) -> str:
  """The first of ``root/candidate`` that is a file; CorpusError listing them all otherwise."""
  for name in candidates:
    path = os.path.join(root, name)
    if os.path.isfile(path):
      return path
  raise errors.CorpusError(f"missing {what} (looked for {', '.join(candidates)})", path=root)


def text_file(path: str) -> str:
  """The words of a transcript file, white space folded (UTF-8, a BOM dropped); "" if missing."""
  if os.path.isfile(path):
    with open(path, encoding="utf-8-sig", errors="replace") as f:
      return " ".join(f.read().split())
  return ""


def require_nonempty(count: int, path: str, dropped: Optional[errors.DropLog] = None) -> None:
  """CorpusError when nothing was read; the message says how many were dropped and why."""
  if count == 0:
    drops = dropped.as_manifest() if dropped is not None else {}
    why = "; ".join(f"{d['count']} {reason}" for reason, d in drops.items())
    total = sum(d["count"] for d in drops.values())
    detail = f"; {total} dropped: {why}" if total else ""
    raise errors.CorpusError(f"empty corpus: no utterances read{detail}", path=path)


def parse_number(text: str) -> float:
  """Parses a rating; ValueError for text that is no number (NaN is returned as NaN)."""
  text = text.strip()
  if not text:
    raise ValueError("empty rating")
  return float(text)


def scale(value: float, lo: float, hi: float, reverse: bool = False,
          allow_nan: bool = False) -> float:
  """``labels.scale_to_unit`` that also rejects NaN unless ``allow_nan`` (ValueError)."""
  if math.isnan(value) and not allow_nan:
    raise ValueError("NaN rating")
  return labels.scale_to_unit(value, lo, hi, reverse=reverse) + 0.0  # + 0.0: no -0.0


# ---------------------------------------------------------------------------------------------
# Emotion names: data_prep.labels holds the vocabulary; free-text "Other" answers are added here.

def emotion(word: str, merge_excited: bool = False) -> str:
  """A corpus's emotion word or code (``labels.canonical_emotion``) as a Rating category.

  "Other", "Other-<text>" and "Other: <text>" (the MSP and IEMOCAP free-text answers) all become
  "other". merge_excited: IEMOCAP's excited counts as happy (the CWW paper).
  Raises ValueError naming an unknown word.
  """
  key = " ".join(str(word).strip().lower().split())
  if key.startswith("other"):  # "Other-Curious": ~1,400 free-text variants in MSP-Podcast
    return "other"
  name = labels.canonical_emotion(str(word).strip())
  return "happy" if merge_excited and name == "excited" else name


def label_of(category: str) -> str:
  """The utterance label for a category: a tfser class name, else ""."""
  return category if category in schema.CLASS_INDEX else ""


# ---------------------------------------------------------------------------------------------
# MSP rater entries: "<rater>; <primary>; <secondary ...>; A:3.0; V:4.0; D:2.0; [N:3.0;]"

_DIMS_AT_END = re.compile(
    r";\s*A:\s*(?P<A>[^;]*?)\s*;\s*V:\s*(?P<V>[^;]*?)\s*;\s*D:\s*(?P<D>[^;]*?)\s*;"
    r"(?:\s*N:\s*(?P<N>[^;]*?)\s*;)?\s*$")


def split_dims(text: str) -> Tuple[List[str], Dict[str, str]]:
  """Splits an MSP entry into its leading ';' fields and its trailing A/V/D(/N) values.

  ``"W1; Neutral; Sad, Calm; A:3.0; V:4.0; D:2.0;"`` ->
  ``(["W1", "Neutral", "Sad, Calm"], {"A": "3.0", "V": "4.0", "D": "2.0", "N": None})``.
  The secondary-emotion field may itself contain ';' (free text): everything between the second
  field and ``A:`` is kept as one field. Raises ValueError when the A/V/D part is missing.
  """
  text = text.strip()
  if not text.endswith(";"):
    text += ";"
  match = _DIMS_AT_END.search(text)
  if match is None:
    raise ValueError("malformed line: expected '...; A:<act>; V:<val>; D:<dom>;'")
  head = [f.strip() for f in text[:match.start()].split(";")]
  if len(head) > 2:
    head = head[:2] + [";".join(head[2:]).strip()]
  return head, match.groupdict()


def parse_msp_entry(text: str, lo: float, hi: float, reverse_activation: bool,
                    reverse_dominance: bool = False) -> schema.Rating:
  """Parses one MSP rater entry into a Rating on [-1, 1].

  text: ``"<rater>; <primary>; <secondary>; A:..; V:..; D:..; [N:..;]"`` (N, naturalness, ignored).
  lo, hi: the corpus scale. Activation and valence must be numbers in [lo, hi]; dominance may be
  NaN (MSP-Improv writes "NaN" where it was not asked).
  Raises ValueError (malformed, NaN, out of scale, unknown primary emotion).
  """
  head, dims = split_dims(text)
  if len(head) < 2 or not head[0]:
    raise ValueError("malformed rater entry: expected '<rater>; <emotion>; ...'")
  annotator, primary = head[0], head[1]
  category = emotion(primary) if primary else ""
  return schema.Rating(
      annotator=annotator,
      activation=scale(parse_number(dims["A"]), lo, hi, reverse=reverse_activation),
      valence=scale(parse_number(dims["V"]), lo, hi),
      dominance=scale(parse_number(dims["D"]), lo, hi, reverse=reverse_dominance, allow_nan=True),
      category=category)


# ---------------------------------------------------------------------------------------------
# Duplicates and consensus.

def apply_ratings(utt: schema.Utterance, ratings: Sequence[schema.Rating],
                  problems: Optional[Problems] = None) -> None:
  """Stores the ratings with one rating per annotator: ``labels.merge_duplicate_raters`` (the
  annotators paper averages an annotator's repeated ratings and "adjusted the mean ground truth":
  where duplicates were merged the consensus becomes the mean of the merged ratings).

  problems: the reader's; a merge is reported to its DropLog (``merged``), so the manifest counts
  it.
  """
  utt.ratings = list(ratings)
  if labels.merge_duplicate_raters(utt) and problems is not None:
    problems.merged(utt.utterance_id)
