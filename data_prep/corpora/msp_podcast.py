"""MSP-Podcast reader (Lotfian and Busso, 2019), from the layouts its releases are distributed in.

Releases and layouts read (``root`` is the release directory)::

  <labels>/labels_consensus.csv   (labels_concensus.csv up to release 1.9; 1.10 fixed the spelling)
  <labels>/labels_detailed.csv
  Audios/MSP-PODCAST_0001_0008.wav   (Audio/ in some copies; the first that exists is used)
  Transcripts/MSP-PODCAST_0001_0008.txt   (releases 1.9+; read when present)

``<labels>`` is ``label/`` in release 1.6, ``Labels/`` in 1.7, 1.8, 1.10 and later, and
``labels/`` in 1.9, and the consensus file is spelled ``labels_concensus.csv`` in 1.6-1.9: the
annotators paper's authors' journal loader, chailab-umich/ModelingIndividualAnnotators
``src/MIA/data/podcast.py`` ("label directory is named for 1.6=label, 1.7=Labels, 1.8=Labels,
1.9=labels, 1.10=Labels"; "1.10 corrected the spelling of consensus from concensus"); their
conference loader, jtavernor/SER-Datasets ``src/SERDatasets/msp_podcast.py``, reads
``Labels/labels_concensus.csv`` as release 1.8 and ``labels_consensus.csv`` as 1.11. Copies
with ``label/labels_concensus.csv`` (1.6) are also what Hex4C59/SE_IMR_MTL_KD
``scripts/check_emotion_distribution.py`` reads. Each of
the three folder names and both spellings is looked for (exact names, in that order); the one
found is recorded, with the release it implies, in the manifest's ``layout``.

``labels_consensus.csv``: header ``FileName,EmoClass,EmoAct,EmoVal,EmoDom,SpkrID,Gender,Split_Set``,
one row per utterance (``MSP-PODCAST_0001_0008.wav,N,2.2,4.0,2.6,127,Female,Test1``), as both
loaders above and Strong-AI-Lab/emotion ``datasets/MSP-PODCAST/process.py`` parse it.

``labels_detailed.csv``, one row per rating, in one of three layouts (the journal loader reads
all three):

* ``FileName,EmoDetail`` (releases 1.7-1.12): EmoDetail is the rater entry
  ``"WORKER00000001; Neutral; Neutral; A:3.0; V:4.0; D:2.0;"`` (quoted because the secondary
  emotions may contain commas; some entries omit the secondary field);
* columns ``FileName, Workers, EmoClass_Major, EmoClass_Second, EmoAct, EmoVal, EmoDom``
  (release 1.6);
* the same columns with ``WorkerID`` for ``Workers`` (release 2.0).

Scales: 1-7 SAM scales with 1 = very negative valence, very calm, very weak (the MSP-Podcast
documentation), so nothing is reversed. EmoClass letters: N H S A, and C contempt, U surprise,
F fear, D disgust, O other, X no agreement (label "" with raw_label kept).

Splits: Train -> train; the validation set is ``Validation`` in older releases and
``Development`` in later ones (both loaders accept either) -> validation. The annotators paper
evaluates on Test1 only: ``split`` is "test" for the sets in ``annotators_test_sets`` and "all"
(in the corpus, outside the paper's partitions) for other test sets, including ``Test3``
(later releases: 2,347 segments balanced over the primary emotions). The CWW paper's POD test set
(12,787 four-class utterances in release 1.8) spans Test1 and Test2: ``cww_split`` is "test"
for both.

Not read: releases before 1.6 (other label files, as the journal loader also declines), and the
``Previous_releases_information/`` copies inside later releases (point ``root`` at a release).
"""

import csv
import os
from typing import Dict, Iterator, List, Optional

from data_prep import errors
from data_prep.corpora import common
from tfser.data import schema

NAME = "POD"
SCALE = (1.0, 7.0)
LABEL_DIRS = ("Labels", "labels", "label")
CONSENSUS_NAMES = ("labels_consensus.csv", "labels_concensus.csv")
DETAILED_NAME = "labels_detailed.csv"
AUDIO_DIRS = ("Audios", "Audio")
DETAILED_WORKER_COLUMNS = ("Workers", "WorkerID", "Worker")
CONSENSUS_COLUMNS = ("FileName", "EmoClass", "EmoAct", "EmoVal", "EmoDom", "SpkrID", "Gender",
                     "Split_Set")
TRAIN_SETS = ("Train",)
VALIDATION_SETS = ("Development", "Validation")
ANNOTATORS_TEST_SETS = ("Test1",)
CWW_TEST_SETS = ("Test1", "Test2")
_GENDERS = {"female": "F", "male": "M", "unknown": "", "": ""}


def find_labels(root: str):
  """``(labels folder name, consensus path, detailed path)`` of a release copy.

  Looks for each of LABEL_DIRS and CONSENSUS_NAMES by exact name (so ``labels/`` is told from
  ``Labels/`` on case-insensitive file systems too). Raises CorpusError listing what was looked
  for, or naming the missing labels_detailed.csv beside the consensus file.
  """
  entries = set(os.listdir(root)) if os.path.isdir(root) else set()
  for folder in LABEL_DIRS:
    path = os.path.join(root, folder)
    if folder not in entries or not os.path.isdir(path):
      continue
    names = set(os.listdir(path))
    for name in CONSENSUS_NAMES:
      if name in names:
        return folder, os.path.join(path, name), common.require_file(
            os.path.join(path, DETAILED_NAME), "MSP-Podcast detailed labels")
  looked = ", ".join(f"{d}/{n}" for d in LABEL_DIRS for n in CONSENSUS_NAMES)
  raise errors.CorpusError(f"missing MSP-Podcast consensus labels (looked for {looked})",
                           path=root)


def release_of(folder: str, consensus_name: str, detailed_format: str) -> str:
  """The release(s) a layout implies (the authors' journal loader's table; see the docstring)."""
  if folder == "label":
    return "1.6"
  if folder == "labels":
    return "1.9"
  if consensus_name == "labels_concensus.csv":
    return "1.7-1.8"
  return "2.0+" if detailed_format == "WorkerID" else "1.10+"


def read(root: str, *, skip_bad: bool = False, dropped: Optional[errors.DropLog] = None,
         annotators_test_sets=ANNOTATORS_TEST_SETS,
         cww_test_sets=CWW_TEST_SETS) -> Iterator[schema.Utterance]:
  """Yields MSP-Podcast utterances with every worker's rating, in consensus-file order.

  Args:
    root: the release directory holding Labels/ (labels/, label/).
    skip_bad: log and count bad utterances under ``dropped`` instead of raising CorpusError.
    dropped: the DropLog that receives skips and the detected ``layout``.
    annotators_test_sets: Split_Set values that are the annotators paper's "test".
    cww_test_sets: Split_Set values that are the CWW paper's "test".
  """
  problems = common.Problems(skip_bad, dropped)
  folder, consensus_path, detailed_path = find_labels(root)
  audio_name = next((d for d in AUDIO_DIRS if os.path.isdir(os.path.join(root, d))),
                    AUDIO_DIRS[0])
  audio_dir = os.path.join(root, audio_name)
  utterances: Dict[str, schema.Utterance] = {}
  bad, split_sets = set(), set()
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
    split_sets.add(row["Split_Set"].strip())
  ratings: Dict[str, List[schema.Rating]] = {k: [] for k in utterances}
  with open(detailed_path, newline="", encoding="utf-8-sig") as f:
    reader = csv.reader(f)
    header = [h.strip() for h in next(reader, [])]
    parse = _detailed_parser(header, detailed_path)
    detailed_format = next((w for w in DETAILED_WORKER_COLUMNS if w in header), "EmoDetail")
    problems.dropped.layout.update({
        "release": release_of(folder, os.path.basename(consensus_path), detailed_format),
        "labels": f"{folder}/{os.path.basename(consensus_path)}",
        "detailed": ("FileName,EmoDetail" if detailed_format == "EmoDetail"
                     else f"columns ({detailed_format})"),
        "audio": audio_name + "/"})
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
  problems.dropped.layout["split_sets"] = ",".join(sorted(split_sets))
  common.require_nonempty(count, consensus_path, problems.dropped)


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
      transcript=common.text_file(os.path.join(root, "Transcripts", utt_id + ".txt")),
      label=common.label_of(category), raw_label=letter, label_source="majority",
      activation=common.scale(common.parse_number(row["EmoAct"]), lo, hi),
      valence=common.scale(common.parse_number(row["EmoVal"]), lo, hi),
      dominance=common.scale(common.parse_number(row["EmoDom"]), lo, hi, allow_nan=True))
