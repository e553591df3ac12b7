"""MuSE reader (Jaiswal et al., 2020), from the layout the corpus is distributed in.

Layout under ``root`` (as the annotators paper's authors read it)::

  Survey Information (Questions, Data etc)/            (SurveyInformation/ on some copies)
      Emotion data from crowdsourcing (C is when annotators had access to all previous sentences).csv
  Stressed/Audio/Stressed Question Monologue Audio/<utt>.wav
  NotStressed/Audio/Non Stressed Question Monologue Audio*/<utt>.wav
  Combined/Utterance Transcripts/<utt>.txt              (optional)

The annotation CSV has one row per utterance with columns Sentence_name, Duration, Gender, Type
(S stressed / NS not stressed), Ques_Type, Activation_Mean, Activation_SD, Valence_Mean,
Valence_SD, Activation_Annotation, Valence_Annotation (the individual 1-9 ratings, ';'-separated),
the same with a C_ prefix (raters who saw the previous sentences) and S_Activation, S_Valence
(self-report). The paper uses the no-context ratings: Activation_/Valence_Annotation.

Annotator ids: the CSV lists ratings without rater ids. A companion table, when given (argument
``annotator_table``, or ``annotator_ids.csv`` next to the annotation CSV), is assumed to be a CSV
with columns Sentence_name and Annotators (';'-separated ids in the order of the ratings; an
assumption, the public layout of that table is not documented). Without it the i-th rating gets
the positional id "pos<i>", with a warning: positional ids do not name the same person across
utterances.

Scales: 1-9 with 1 = very negative valence / very calm (the MuSE paper), so nothing is reversed.
Splits: the annotators paper tests on all of MuSE (``split`` "test"); the CWW paper does not use
it (``cww_split`` "all"). There are no categorical labels (label "", label_source "none").
"""

import glob
import os
from typing import Dict, Iterator, List, Optional

from absl import logging

from data_prep import errors
from data_prep.corpora import common
from tfser.data import schema

NAME = "MuSE"
SCALE = (1.0, 9.0)
SURVEY_DIRS = ("Survey Information (Questions, Data etc)", "SurveyInformation")
LABEL_FILE = ("Emotion data from crowdsourcing (C is when annotators had access to all previous "
              "sentences).csv")
ANNOTATOR_TABLE = "annotator_ids.csv"
COLUMNS = ("Sentence_name", "Gender", "Type", "Activation_Mean", "Valence_Mean",
           "Activation_Annotation", "Valence_Annotation")
_GENDERS = {"f": "F", "female": "F", "m": "M", "male": "M"}


def _label_file(root: str) -> str:
  return common.first_existing(root, [os.path.join(d, LABEL_FILE) for d in SURVEY_DIRS],
                               "MuSE annotation CSV")


def read(root: str, *, skip_bad: bool = False, dropped: Optional[errors.DropLog] = None,
         annotator_table: Optional[str] = None) -> Iterator[schema.Utterance]:
  """Yields MuSE utterances with every no-context rating.

  Args:
    root: the corpus directory.
    skip_bad: log and count bad utterances under ``dropped`` instead of raising CorpusError.
    dropped: the DropLog that receives skips.
    annotator_table: the companion annotator-id CSV (default: annotator_ids.csv beside the
      annotation CSV, when present).
  """
  problems = common.Problems(skip_bad, dropped)
  path = _label_file(root)
  table_path = annotator_table or os.path.join(os.path.dirname(path), ANNOTATOR_TABLE)
  ids = _annotator_ids(table_path) if os.path.isfile(table_path) else None
  if annotator_table and ids is None:
    raise errors.CorpusError("missing MuSE annotator table", path=annotator_table)
  if ids is None:
    logging.warning("MuSE: no annotator table at %s; ratings get positional ids pos1, pos2, ... "
                    "that do not identify the same rater across utterances", table_path)
  audio = _audio_index(root)
  count = 0
  seen = set()
  for line, row in common.csv_rows(path, COLUMNS):
    utt_id = os.path.splitext((row["Sentence_name"] or "").strip())[0]
    try:
      if not utt_id:
        raise ValueError("empty Sentence_name")
      if utt_id in seen:
        raise ValueError("duplicate utterance")
      utt = _utterance(root, row, utt_id, audio, ids, problems)
    except (ValueError, KeyError, TypeError) as e:
      problems.bad(str(e), path, line, utt_id or None)
      continue
    seen.add(utt_id)
    count += 1
    yield utt
  common.require_nonempty(count, path)


def _utterance(root, row, utt_id, audio, ids, problems) -> schema.Utterance:
  lo, hi = SCALE
  acts = [common.scale(common.parse_number(v), lo, hi)
          for v in row["Activation_Annotation"].split(";") if v.strip()]
  vals = [common.scale(common.parse_number(v), lo, hi)
          for v in row["Valence_Annotation"].split(";") if v.strip()]
  if len(acts) != len(vals):
    raise ValueError(f"{len(acts)} activation ratings but {len(vals)} valence ratings")
  if ids is not None:
    if utt_id not in ids:
      raise ValueError("utterance missing from the annotator table")
    names = ids[utt_id]
    if len(names) != len(acts):
      raise ValueError(f"annotator table lists {len(names)} raters for {len(acts)} ratings")
  else:
    names = [f"pos{i + 1}" for i in range(len(acts))]
  ratings = [schema.Rating(annotator=n, activation=a, valence=v)
             for n, a, v in zip(names, acts, vals)]
  stress = row["Type"].strip()
  if stress not in ("S", "NS"):
    raise ValueError(f"unknown Type {stress!r} (expected S or NS)")
  gender = row["Gender"].strip()
  if gender and gender.lower() not in _GENDERS:
    raise ValueError(f"unknown Gender {gender!r}")
  if stress == "S":
    default_audio = os.path.join(root, "Stressed", "Audio", "Stressed Question Monologue Audio")
  else:
    default_audio = os.path.join(root, "NotStressed", "Audio",
                                 "Non Stressed Question Monologue Audio")
  utt = schema.Utterance(
      corpus=NAME, utterance_id=utt_id, speaker=utt_id[:2],
      gender=_GENDERS.get(gender.lower(), ""), split="test", cww_split="all",
      audio_path=os.path.abspath(audio.get(utt_id, os.path.join(default_audio, utt_id + ".wav"))),
      transcript=_transcript(root, utt_id), label="", raw_label="", label_source="none",
      activation=common.scale(common.parse_number(row["Activation_Mean"]), lo, hi),
      valence=common.scale(common.parse_number(row["Valence_Mean"]), lo, hi))
  common.apply_ratings(utt, ratings, problems)
  return utt


def _annotator_ids(path: str) -> Dict[str, List[str]]:
  out = {}
  for line, row in common.csv_rows(path, ("Sentence_name", "Annotators")):
    utt_id = os.path.splitext(row["Sentence_name"].strip())[0]
    out[utt_id] = [a.strip() for a in row["Annotators"].split(";") if a.strip()]
  return out


def _audio_index(root: str) -> Dict[str, str]:
  patterns = (
      os.path.join(root, "Stressed", "Audio", "Stressed Question Monologue Audio*", "*.wav"),
      os.path.join(root, "NotStressed", "Audio", "Non Stressed Question Monologue Audio*", "*.wav"))
  return {os.path.splitext(os.path.basename(p))[0]: p
          for pattern in patterns for p in sorted(glob.glob(pattern))}


def _transcript(root: str, utt_id: str) -> str:
  path = os.path.join(root, "Combined", "Utterance Transcripts", utt_id + ".txt")
  if os.path.isfile(path):
    with open(path, encoding="utf-8", errors="replace") as f:
      return " ".join(f.read().split())
  return ""
