"""MSP-Podcast reader (Lotfian and Busso, 2019), from the layout the corpus is distributed in.

Layout under ``root``::

  Labels/labels_consensus.csv     (labels_concensus.csv in release 1.8 and earlier)
  Labels/labels_detailed.csv
  Audios/MSP-PODCAST_0001_0008.wav   (Audio/ in older releases; the first that exists is used)
  Transcripts/MSP-PODCAST_0001_0008.txt   (releases 1.9+; read when present)

``labels_consensus.csv``: header ``FileName,EmoClass,EmoAct,EmoVal,EmoDom,SpkrID,Gender,Split_Set``,
one row per utterance (``MSP-PODCAST_0001_0008.wav,N,2.2,4.0,2.6,127,Female,Test1``).

``labels_detailed.csv``: header ``FileName,EmoDetail``, one row per rating; EmoDetail is the rater
entry ``"WORKER00000001; Neutral; Neutral; A:3.0; V:4.0; D:2.0;"`` (quoted because the secondary
emotions may contain commas; some entries omit the secondary field). This is the layout of
release 1.8 (the paper's) and later releases, as the annotators paper's authors parse it. A
columnar variant (FileName, Workers, EmoClass_Major, EmoClass_Second, EmoAct, EmoVal, EmoDom, as
in release 1.6) is also read.

Scales: 1-7 SAM scales with 1 = very negative valence, very calm, very weak (the MSP-Podcast
documentation), so nothing is reversed. EmoClass letters: N H S A, and C contempt, U surprise,
F fear, D disgust, O other, X no agreement (label "" with raw_label kept).

Splits: Train -> train, Development (or Validation) -> validation. The annotators paper evaluates
on Test1 only: ``split`` is "test" for the sets in ``annotators_test_sets`` and "all" (in the
corpus, outside the paper's partitions) for other test sets. The CWW paper's POD test set (12,787
four-class utterances in release 1.8) spans Test1 and Test2: ``cww_split`` is "test" for both.
"""

import csv
import os
from typing import Dict, Iterator, List, Optional

from data_prep import errors
from data_prep.corpora import common
from tfser.data import schema

NAME = "POD"
SCALE = (1.0, 7.0)
CONSENSUS_FILES = ("Labels/labels_consensus.csv", "Labels/labels_concensus.csv")
DETAILED_FILE = "Labels/labels_detailed.csv"
DETAILED_WORKER_COLUMNS = ("Workers", "WorkerID", "Worker")
CONSENSUS_COLUMNS = ("FileName", "EmoClass", "EmoAct", "EmoVal", "EmoDom", "SpkrID", "Gender",
                     "Split_Set")
TRAIN_SETS = ("Train",)
VALIDATION_SETS = ("Development", "Validation")
ANNOTATORS_TEST_SETS = ("Test1",)
CWW_TEST_SETS = ("Test1", "Test2")
_GENDERS = {"female": "F", "male": "M", "unknown": "", "": ""}


def read(root: str, *, skip_bad: bool = False, dropped: Optional[errors.DropLog] = None,
         annotators_test_sets=ANNOTATORS_TEST_SETS,
         cww_test_sets=CWW_TEST_SETS) -> Iterator[schema.Utterance]:
  """Yields MSP-Podcast utterances with every worker's rating, in consensus-file order.

  Args:
    root: the release directory holding Labels/.
    skip_bad: log and count bad utterances under ``dropped`` instead of raising CorpusError.
    dropped: the DropLog that receives skips.
    annotators_test_sets: Split_Set values that are the annotators paper's "test".
    cww_test_sets: Split_Set values that are the CWW paper's "test".
  """
  problems = common.Problems(skip_bad, dropped)
  consensus_path = common.first_existing(root, CONSENSUS_FILES, "MSP-Podcast consensus labels")
  detailed_path = common.require_file(os.path.join(root, DETAILED_FILE),
                                      "MSP-Podcast detailed labels")
  audio_dir = next((os.path.join(root, d) for d in ("Audios", "Audio")
                    if os.path.isdir(os.path.join(root, d))), os.path.join(root, "Audios"))
  utterances: Dict[str, schema.Utterance] = {}
  bad = set()
  for line, row in common.csv_rows(consensus_path, CONSENSUS_COLUMNS):
    utt_id = os.path.splitext(row["FileName"] or "")[0]
    try:
      utt = _consensus(row, utt_id, audio_dir, root, annotators_test_sets, cww_test_sets)
    except (ValueError, KeyError, TypeError) as e:
      bad.add(utt_id)
      problems.bad(str(e), consensus_path, line, utt_id or None)
      continue
    if utt_id in utterances:
      bad.add(utt_id)
      problems.bad("duplicate utterance", consensus_path, line, utt_id)
      continue
    utterances[utt_id] = utt
  ratings: Dict[str, List[schema.Rating]] = {k: [] for k in utterances}
  with open(detailed_path, newline="", encoding="utf-8-sig") as f:
    reader = csv.reader(f)
    parse = _detailed_parser([h.strip() for h in next(reader, [])], detailed_path)
    for row in reader:
      line = reader.line_num
      if not row or not "".join(row).strip():
        continue
      utt_id = os.path.splitext(row[0].strip())[0]
      if utt_id in bad:
        continue
      if utt_id not in utterances:
        problems.bad("rating for an utterance missing from the consensus labels",
                     detailed_path, line, utt_id)
        continue
      try:
        ratings[utt_id].append(parse(row))
      except ValueError as e:
        bad.add(utt_id)
        problems.bad(str(e), detailed_path, line, utt_id)
  count = 0
  for utt_id, utt in utterances.items():
    if utt_id in bad:
      continue
    common.apply_ratings(utt, ratings[utt_id], problems)
    count += 1
    yield utt
  common.require_nonempty(count, consensus_path)


def _detailed_parser(header: List[str], path: str):
  """A function from one labels_detailed.csv row to a Rating, for the file's layout.

  ``FileName,EmoDetail`` (release 1.8 and others): the rater entry in one quoted field.
  A columnar layout (release 1.6 style): FileName, a worker column (Workers / WorkerID /
  Worker), EmoClass_Major, EmoAct, EmoVal, EmoDom (EmoClass_Second ignored).
  """
  if header[:2] == ["FileName", "EmoDetail"]:
    def entry(row):
      if len(row) != 2:
        raise ValueError("malformed row: expected '<FileName>,\"<EmoDetail>\"'")
      return common.parse_msp_entry(row[1], *SCALE, reverse_activation=False)
    return entry
  worker = next((w for w in DETAILED_WORKER_COLUMNS if w in header), None)
  needed = ("EmoClass_Major", "EmoAct", "EmoVal", "EmoDom")
  if header[:1] != ["FileName"] or worker is None or any(c not in header for c in needed):
    raise errors.CorpusError(
        "expected header 'FileName,EmoDetail' or FileName, a worker column "
        f"({'/'.join(DETAILED_WORKER_COLUMNS)}) and {', '.join(needed)}", path=path, line=1)
  col = {c: header.index(c) for c in needed + (worker,)}
  lo, hi = SCALE

  def columns(row):
    if len(row) != len(header):
      raise ValueError(f"malformed row: {len(row)} fields, the header has {len(header)}")
    annotator, primary = row[col[worker]].strip(), row[col["EmoClass_Major"]].strip()
    if not annotator:
      raise ValueError("empty worker id")
    return schema.Rating(
        annotator=annotator,
        activation=common.scale(common.parse_number(row[col["EmoAct"]]), lo, hi),
        valence=common.scale(common.parse_number(row[col["EmoVal"]]), lo, hi),
        dominance=common.scale(common.parse_number(row[col["EmoDom"]]), lo, hi, allow_nan=True),
        category=common.emotion(primary) if primary else "")
  return columns


def _consensus(row, utt_id, audio_dir, root, annotators_test_sets, cww_test_sets):
  if not utt_id:
    raise ValueError("empty FileName")
  letter = row["EmoClass"].strip()
  category = common.emotion(letter)
  split_set = row["Split_Set"].strip()
  if split_set in TRAIN_SETS:
    split = cww_split = "train"
  elif split_set in VALIDATION_SETS:
    split = cww_split = "validation"
  elif split_set.startswith("Test"):
    split = "test" if split_set in annotators_test_sets else "all"
    cww_split = "test" if split_set in cww_test_sets else "all"
  else:
    raise ValueError(f"unknown Split_Set {split_set!r}")
  gender = row["Gender"].strip()
  if gender.lower() not in _GENDERS:
    raise ValueError(f"unknown Gender {gender!r}")
  speaker = row["SpkrID"].strip()
  lo, hi = SCALE
  return schema.Utterance(
      corpus=NAME, utterance_id=utt_id,
      speaker="" if speaker.lower() == "unknown" else speaker,
      gender=_GENDERS[gender.lower()], split=split, cww_split=cww_split,
      audio_path=os.path.abspath(os.path.join(audio_dir, utt_id + ".wav")),
      transcript=_transcript(root, utt_id),
      label=common.label_of(category), raw_label=letter, label_source="majority",
      activation=common.scale(common.parse_number(row["EmoAct"]), lo, hi),
      valence=common.scale(common.parse_number(row["EmoVal"]), lo, hi),
      dominance=common.scale(common.parse_number(row["EmoDom"]), lo, hi, allow_nan=True))


def _transcript(root: str, utt_id: str) -> str:
  path = os.path.join(root, "Transcripts", utt_id + ".txt")
  if os.path.isfile(path):
    with open(path, encoding="utf-8-sig", errors="replace") as f:
      return " ".join(f.read().split())
  return ""
