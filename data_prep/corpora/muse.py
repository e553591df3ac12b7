"""MuSE reader (Jaiswal et al., 2020), from the layouts the corpus is distributed in.

Layouts read under ``root`` (as the annotators paper's authors read them)::

  Survey Information (Questions, Data etc)/            (SurveyInformation/ on other copies)
      Emotion data from crowdsourcing (C is when annotators had access to all previous sentences).csv
  Stressed/Audio/Stressed Question Monologue Audio*/<utt>.wav
  NotStressed/Audio/Non Stressed Question Monologue Audio*/<utt>.wav
                                                        (Non Stressed/ on older copies)
  Combined/Utterance Transcripts/<utt>.txt              (optional)
  muse_annotators.csv                                   (optional: stable rater ids, see below)

Sources: jtavernor/SER-Datasets ``src/SERDatasets/muse.py`` ("Versions of MuSE on different
machines have different names": ``Survey Information (Questions, Data etc)`` else
``SurveyInformation``; audio globbed as ``NotStressed/Audio/Non Stressed Question Monologue
Audio*/*.wav`` and ``Stressed/Audio/Stressed Question Monologue Audio/*.wav``); the same file
before commit c13f21b ("Update muse path") globbed ``Non Stressed/Audio/...``. The trailing
``*`` of the audio folder matches suffixes such as `` [Sentence Split]``; both not-stressed
folder names are globbed here (with the root escaped, so brackets in it are literal), the
stressed folder with the same trailing ``*``. The folders found are recorded in the manifest's
``layout``.

The annotation CSV has one row per utterance with columns Sentence_name (``<utt>.wav``),
Duration, Gender, Type (S stressed / NS not stressed), Ques_Type, Activation_Mean,
Activation_SD, Valence_Mean, Valence_SD, Activation_Annotation, Valence_Annotation (the
individual 1-9 ratings, ';'-separated), the same with a C_ prefix (raters who saw the previous
sentences) and S_Activation, S_Valence (self-report), as the authors' loader splits it. The
paper uses the no-context ratings: Activation_/Valence_Annotation.

Annotator ids: the CSV lists ratings without rater ids. The only public per-rater table is the
authors' ``muse_annotators.csv`` (jtavernor/SER-Datasets ``src/SERDatasets/muse_annotators.csv``;
read by ``add_muse_helper`` in the journal successor, chailab-umich/ModelingIndividualAnnotators
``src/MIA/data/utils.py``, from a configured ``muse_annotator_info_path``): columns ``FileName,
soft_act_labels, soft_val_labels, annotators``, the last three Python list literals
(``"[3, 4, 2]"``, ``"['ABS83QIWSMZ9', 'A2I960JYUZ8KAV', 'self_report_01']"``) whose last entry
is the speaker's self-report. It is read from ``annotator_table`` (``--muse_annotators``), else
``root/muse_annotators.csv``, else beside the annotation CSV. As in the authors' loader, each
utterance's ratings then come from the table (activation, valence and rater id paired by
position). The self-report is left out, as the authors' ``add_muse_annotators_NO_SELF_REPORT``
does (it drops the last entry) and as the paper describes its MuSE labels ("the 160 individual
annotators who labeled without context"); here by its name (``self_report_*`` /
``self-report*``), so a row is never shortened by one rater by mistake.
``annotator_ids.csv`` (Sentence_name, Annotators ';'-separated in the order of the CSV's
ratings), the table earlier tfser versions assumed, is still read when no muse_annotators.csv
is found. Without a table the i-th rating gets the positional id "pos<i>", with a warning:
positional ids do not name the same person across utterances.

Scales: 1-9 with 1 = very negative valence / very calm (the MuSE paper), so nothing is reversed.
Splits: the annotators paper tests on all of MuSE (``split`` "test"); the CWW paper does not use
it (``cww_split`` "all"). There are no categorical labels (label "", label_source "none").
"""

import ast
import glob
import os
from typing import Dict, Iterator, List, Optional, Tuple

from absl import logging

from data_prep import errors
from data_prep.corpora import common
from tfser.data import schema

NAME = "MuSE"
SCALE = (1.0, 9.0)
SURVEY_DIRS = ("Survey Information (Questions, Data etc)", "SurveyInformation")
LABEL_FILE = ("Emotion data from crowdsourcing (C is when annotators had access to all previous "
              "sentences).csv")
STRESSED_AUDIO = (("Stressed", "Audio", "Stressed Question Monologue Audio"),)
NOT_STRESSED_AUDIO = (("NotStressed", "Audio", "Non Stressed Question Monologue Audio"),
                      ("Non Stressed", "Audio", "Non Stressed Question Monologue Audio"))
AUTHORS_TABLE = "muse_annotators.csv"
AUTHORS_TABLE_COLUMNS = ("FileName", "soft_act_labels", "soft_val_labels", "annotators")
SELF_REPORT_PREFIXES = ("self_report", "self-report")
ANNOTATOR_TABLE = "annotator_ids.csv"
COLUMNS = ("Sentence_name", "Gender", "Type", "Activation_Mean", "Valence_Mean",
           "Activation_Annotation", "Valence_Annotation")
_GENDERS = {"f": "F", "female": "F", "m": "M", "male": "M"}

# utterance id -> [(rater id, activation, valence) on the 1-9 scale], or None for ids only.
_Table = Dict[str, List[Tuple[str, Optional[float], Optional[float]]]]


def _label_file(root: str) -> str:
  return common.first_existing(root, [os.path.join(d, LABEL_FILE) for d in SURVEY_DIRS],
                               "MuSE annotation CSV")


def read(root: str, *, skip_bad: bool = False, dropped: Optional[errors.DropLog] = None,
         annotator_table: Optional[str] = None) -> Iterator[schema.Utterance]:
  """Yields MuSE utterances with every no-context rating.

  Args:
    root: the corpus directory.
    skip_bad: log and count bad utterances under ``dropped`` instead of raising CorpusError.
    dropped: the DropLog that receives skips and the detected ``layout``.
    annotator_table: the authors' muse_annotators.csv (default: found beside the corpus, see
      the module docstring); CorpusError when given but missing.
  """
  problems = common.Problems(skip_bad, dropped)
  path = _label_file(root)
  table_path, table = _find_table(root, path, annotator_table)
  if table is None:
    logging.warning("MuSE: no %s beside the corpus (or --muse_annotators); ratings get "
                    "positional ids pos1, pos2, ... that do not identify the same rater across "
                    "utterances", AUTHORS_TABLE)
  audio, audio_dirs = _audio_index(root)
  problems.dropped.layout.update({
      "survey": os.path.basename(os.path.dirname(path)),
      "audio": "; ".join(os.path.relpath(d, root) for d in audio_dirs) or "none found",
      "annotator_ids": os.path.basename(table_path) if table is not None else "positional"})
  not_stressed = next((os.path.join(root, *p) for p in NOT_STRESSED_AUDIO
                       if os.path.isdir(os.path.join(root, p[0]))),
                      os.path.join(root, *NOT_STRESSED_AUDIO[0]))
  count = 0
  seen, differ = set(), []
  for line, row in common.csv_rows(path, COLUMNS):
    utt_id = os.path.splitext((row["Sentence_name"] or "").strip())[0]
    try:
      if not utt_id:
        raise ValueError("empty Sentence_name")
      if utt_id in seen:
        raise ValueError("duplicate utterance")
      utt, counts_differ = _utterance(root, row, utt_id, audio, table, not_stressed, problems)
    except (ValueError, KeyError, TypeError) as e:
      problems.bad(str(e), path, line, utt_id or None)
      continue
    seen.add(utt_id)
    if counts_differ:
      differ.append(utt_id)
    count += 1
    yield utt
  if differ:
    logging.warning("MuSE: for %d utterance(s) (e.g. %s) %s lists another number of raters "
                    "(self-report left out) than the annotation CSV; its ratings are used, as "
                    "the authors' loader does", len(differ), differ[0], table_path)
  common.require_nonempty(count, path, problems.dropped)


def _utterance(root, row, utt_id, audio, table: Optional[_Table], not_stressed, problems):
  lo, hi = SCALE
  acts = [common.parse_number(v) for v in row["Activation_Annotation"].split(";") if v.strip()]
  vals = [common.parse_number(v) for v in row["Valence_Annotation"].split(";") if v.strip()]
  if len(acts) != len(vals):
    raise ValueError(f"{len(acts)} activation ratings but {len(vals)} valence ratings")
  counts_differ = False
  if table is not None:
    if utt_id not in table:
      raise ValueError("utterance missing from the annotator table")
    entries = table[utt_id]
    if entries and entries[0][1] is not None:  # muse_annotators.csv: its own values
      names = [e[0] for e in entries]
      counts_differ = len(names) != len(acts)
      acts, vals = [e[1] for e in entries], [e[2] for e in entries]
    else:  # annotator_ids.csv: ids for the CSV's ratings, in order
      names = [e[0] for e in entries]
      if len(names) != len(acts):
        raise ValueError(f"annotator table lists {len(names)} raters for {len(acts)} ratings")
  else:
    names = [f"pos{i + 1}" for i in range(len(acts))]
  ratings = [schema.Rating(annotator=n, activation=common.scale(a, lo, hi),
                           valence=common.scale(v, lo, hi))
             for n, a, v in zip(names, acts, vals)]
  stress = row["Type"].strip()
  if stress not in ("S", "NS"):
    raise ValueError(f"unknown Type {stress!r} (expected S or NS)")
  gender = row["Gender"].strip()
  if gender and gender.lower() not in _GENDERS:
    raise ValueError(f"unknown Gender {gender!r}")
  default_audio = os.path.join(root, *STRESSED_AUDIO[0]) if stress == "S" else not_stressed
  utt = schema.Utterance(
      corpus=NAME, utterance_id=utt_id, speaker=utt_id[:2],
      gender=_GENDERS.get(gender.lower(), ""), split="test", cww_split="all",
      audio_path=os.path.abspath(audio.get(utt_id, os.path.join(default_audio, utt_id + ".wav"))),
      transcript=_transcript(root, utt_id), label="", raw_label="", label_source="none",
      activation=common.scale(common.parse_number(row["Activation_Mean"]), lo, hi),
      valence=common.scale(common.parse_number(row["Valence_Mean"]), lo, hi))
  common.apply_ratings(utt, ratings, problems)
  return utt, counts_differ


def _find_table(root: str, label_path: str, given: Optional[str]):
  """``(path, table)`` of the rater-id table to use; table None (path the default) if none."""
  if given:
    if not os.path.isfile(given):
      raise errors.CorpusError("missing MuSE annotator table", path=given)
    return given, _read_table(given)
  survey = os.path.dirname(label_path)
  for path in (os.path.join(root, AUTHORS_TABLE), os.path.join(survey, AUTHORS_TABLE),
               os.path.join(survey, ANNOTATOR_TABLE)):
    if os.path.isfile(path):
      return path, _read_table(path)
  return os.path.join(root, AUTHORS_TABLE), None


def _read_table(path: str) -> _Table:
  """Either table format, by its header (CorpusError naming the file and line if malformed)."""
  with open(path, newline="", encoding="utf-8-sig") as f:
    header = f.readline()
  if "Annotators" in header and "annotators" not in header:
    return {utt: [(a, None, None) for a in ids] for utt, ids in _annotator_ids(path).items()}
  out = {}
  for line, row in common.csv_rows(path, AUTHORS_TABLE_COLUMNS):
    utt_id = os.path.splitext(row["FileName"].strip())[0]
    try:
      acts, vals, names = (_list_literal(row[c]) for c in AUTHORS_TABLE_COLUMNS[1:])
      if not len(acts) == len(vals) == len(names):
        raise ValueError(f"{len(acts)} activation, {len(vals)} valence ratings and "
                         f"{len(names)} annotators")
      entries = [(str(n).strip(), float(a), float(v)) for n, a, v in zip(names, acts, vals)
                 if not str(n).strip().lower().startswith(SELF_REPORT_PREFIXES)]
    except (ValueError, SyntaxError, TypeError) as e:
      raise errors.CorpusError(f"malformed row: {e}", path=path, line=line,
                               utterance=utt_id) from None
    if not entries:
      raise errors.CorpusError("no annotators besides the self-report", path=path, line=line,
                               utterance=utt_id)
    out[utt_id] = entries
  return out


def _list_literal(text: str) -> list:
  """``"[3, 4]"`` / ``"['A1', 'A2']"`` (a Python list literal, parsed without evaluating code)."""
  value = ast.literal_eval(text.strip())
  if not isinstance(value, (list, tuple)):
    raise ValueError(f"expected a list, got {text!r}")
  return list(value)


def _annotator_ids(path: str) -> Dict[str, List[str]]:
  out = {}
  for line, row in common.csv_rows(path, ("Sentence_name", "Annotators")):
    utt_id = os.path.splitext(row["Sentence_name"].strip())[0]
    out[utt_id] = [a.strip() for a in row["Annotators"].split(";") if a.strip()]
  return out


def _audio_index(root: str):
  """``({utterance id: wav path}, [audio folders found])`` over every known audio folder."""
  index, folders = {}, []
  for parts in STRESSED_AUDIO + NOT_STRESSED_AUDIO:
    pattern = os.path.join(glob.escape(root), *(glob.escape(p) for p in parts[:-1]),
                           glob.escape(parts[-1]) + "*")
    for folder in sorted(glob.glob(pattern)):
      if not os.path.isdir(folder):
        continue
      folders.append(folder)
      for wav in sorted(glob.glob(os.path.join(glob.escape(folder), "*.wav"))):
        index.setdefault(os.path.splitext(os.path.basename(wav))[0], wav)
  return index, folders


def _transcript(root: str, utt_id: str) -> str:
  path = os.path.join(root, "Combined", "Utterance Transcripts", utt_id + ".txt")
  if os.path.isfile(path):
    with open(path, encoding="utf-8", errors="replace") as f:
      return " ".join(f.read().split())
  return ""
