"""CREMA-D reader (Cao et al., 2014), from the layout of its GitHub repository.

Layout under ``root`` (CheyneyComputerScience/CREMA-D)::

  AudioWAV/1001_DFA_ANG_XX.wav          (git-LFS; optional here, see below)
  VideoDemographics.csv                 (ActorID, Age, Sex, Race, Ethnicity)
  processedResults/tabulatedVotes.csv
  processedResults/summaryTable.csv

(The two processedResults files are also accepted directly under ``root``.)

A clip ``AAAA_SSS_EEE_LL`` is actor AAAA speaking sentence SSS with the intended emotion EEE (ANG,
DIS, FEA, HAP, NEU, SAD) at level LL: the label is the intended emotion (label_source
"intended"), as in the CWW paper's Table 1. summaryTable.csv lists the clips (one row each);
tabulatedVotes.csv has three rows per clip, named ``100000 * queryType + clipNum``; queryType 1 is
voice only, the rows read here.

Crowd votes: tabulatedVotes.csv gives per-clip counts per emotion (A, D, F, H, N, S), not the
individual raters. Each vote becomes a categorical-only Rating (no dimensions) with a synthetic
id "vote<k>", k = 1..numResponses in A, D, F, H, N, S order: the ids keep the vote distribution
(for soft labels) but name no person and mean nothing across clips.

Audio: when ``AudioWAV/`` is present, a clip whose file is missing, unreadable, empty (0 bytes)
or a bare WAV header without samples (<= 44 bytes) is skipped and recorded under ``dropped``. One
distributed clip is empty, which is why the CWW paper's Table 1 lists 1,270 sad clips; without
audio the reader yields all 7,442 clips (neutral 1,087, happy/sad/angry 1,271 each). When every
clip is dropped, the "empty corpus" error says how many were dropped and why.

Copies cloned without git-lfs: the repository keeps its audio in git-LFS (CheyneyComputerScience/
CREMA-D ``.gitattributes``: ``*.wav filter=lfs diff=lfs merge=lfs -text``, also ``*.WAV``,
``*.mp3``, ``*.flv``), so a clone without ``git lfs`` leaves each ``AudioWAV/*.wav`` as a pointer
file of ~130 bytes (as the repository stores e.g. ``AudioMP3/1001_DFA_ANG_XX.mp3``): ``version
https://git-lfs.github.com/spec/v1``, ``oid sha256:<hex>``, ``size <bytes>`` (the Git LFS
specification, https://github.com/git-lfs/git-lfs/blob/main/docs/spec.md: pointer files are
under 1024 bytes and their first key is always ``version``). Such files pass the empty-file
check and fail only at decoding, so they are detected by that first line: any pointer is a
CorpusError "AudioWAV/ holds git-lfs pointers; run git lfs pull" with their count; with
``skip_bad`` each pointer clip is dropped under ``LFS_POINTER`` instead.

Splits: the annotators paper does not use CREMA-D (``split`` "all"); the CWW paper splits the 91
actors into 58 training and 33 validation speakers, drawn here from ``seed``.
"""

import csv
import os
import random
import re
from typing import Dict, Iterator, Optional

from data_prep import errors
from data_prep.corpora import common
from tfser.data import schema

NAME = "CRE"
CWW_TRAIN_SPEAKERS = 58
VOTE_LETTERS = ("A", "D", "F", "H", "N", "S")
INTENDED = ("ANG", "DIS", "FEA", "HAP", "NEU", "SAD")
# The 12 sentences (the CREMA-D README).
SENTENCES = {
    "IEO": "It's eleven o'clock.", "TIE": "That is exactly what happened.",
    "IOM": "I'm on my way to the meeting.", "IWW": "I wonder what this is about.",
    "TAI": "The airplane is almost full.", "MTI": "Maybe tomorrow it will be cold.",
    "IWL": "I would like a new alarm clock.", "ITH": "I think I have a doctor's appointment.",
    "DFA": "Don't forget a jacket.", "ITS": "I think I've seen this before.",
    "TSI": "The surface is slick.", "WSI": "We'll stop in a couple of minutes.",
}
EMPTY_WAV_BYTES = 44  # a RIFF/WAVE header with an empty data chunk
EMPTY_AUDIO = "empty or header-only audio file"
MISSING_AUDIO = "missing or unreadable audio file"
LFS_POINTER = "git-lfs pointer file, not audio (AudioWAV/ holds git-lfs pointers; run git lfs pull)"
LFS_POINTER_MAX_BYTES = 1024  # the Git LFS specification: pointer files are smaller than this
LFS_VERSION_PREFIX = b"version https://git-lfs"
_CLIP = re.compile(r"^(?P<actor>\d{4})_(?P<sentence>[A-Z]{3})_(?P<emotion>[A-Z]{3})_"
                   r"(?P<level>[A-Z]{1,2})$")


def _csv_path(root: str, name: str) -> str:
  return common.first_existing(root, (os.path.join("processedResults", name), name),
                               f"CREMA-D {name}")


def cww_speaker_split(speakers, seed: int = 0, train_speakers: int = CWW_TRAIN_SPEAKERS
                      ) -> Dict[str, str]:
  """speaker -> "train" / "validation": a seeded shuffle of the sorted ids, the first
  ``train_speakers`` train (the CWW paper: 58 and 33 of 91)."""
  order = sorted(speakers)
  random.Random(seed).shuffle(order)
  return {s: ("train" if i < train_speakers else "validation") for i, s in enumerate(order)}


def read(root: str, *, skip_bad: bool = False, dropped: Optional[errors.DropLog] = None,
         seed: int = 0, cww_train_speakers: int = CWW_TRAIN_SPEAKERS
         ) -> Iterator[schema.Utterance]:
  """Yields CREMA-D clips in summaryTable order with intended labels and voice-only votes.

  Args:
    root: the repository directory (see the module docstring).
    skip_bad: log and count bad clips under ``dropped`` instead of raising CorpusError.
    dropped: receives skips, including empty or missing audio when AudioWAV/ is present.
    seed: draws the CWW 58/33 speaker split.
    cww_train_speakers: how many actors the CWW split trains on.
  """
  problems = common.Problems(skip_bad, dropped)
  summary_path = _csv_path(root, "summaryTable.csv")
  votes_path = _csv_path(root, "tabulatedVotes.csv")
  demo_path = common.first_existing(root, ("VideoDemographics.csv",), "CREMA-D demographics")
  genders = _demographics(demo_path)
  votes, bad_votes = _voice_votes(votes_path, problems)
  split = cww_speaker_split(genders, seed, cww_train_speakers)
  audio_dir = os.path.join(root, "AudioWAV")
  check_audio = os.path.isdir(audio_dir)
  if check_audio:
    pointers = lfs_pointers(audio_dir)
    problems.dropped.layout["audio"] = (f"AudioWAV/ ({len(pointers)} git-lfs pointers)"
                                        if pointers else "AudioWAV/")
    if pointers and not skip_bad:
      raise errors.CorpusError(
          f"AudioWAV/ holds git-lfs pointers; run git lfs pull in the CREMA-D clone "
          f"({len(pointers)} of {_count_wavs(audio_dir)} .wav files are pointer files, e.g. "
          f"{os.path.basename(pointers[0])})", path=audio_dir)
  else:
    pointers = []
    problems.dropped.layout["audio"] = "none (labels only)"
  pointers = set(pointers)
  count = 0
  for line, row in common.csv_rows(summary_path, ("FileName",)):
    clip = row["FileName"].strip()
    match = _CLIP.match(clip)
    if match is None:
      problems.bad("clip name is not AAAA_SSS_EEE_LL", summary_path, line, clip or None)
      continue
    actor, emotion = match.group("actor"), match.group("emotion")
    if emotion not in INTENDED:
      problems.bad(f"unknown emotion label {emotion!r}", summary_path, line, clip)
      continue
    if actor not in genders:
      problems.bad(f"actor {actor} missing from VideoDemographics.csv", summary_path, line, clip)
      continue
    if clip in bad_votes:
      continue  # already skipped (and counted) at its tabulatedVotes.csv row
    if clip not in votes:
      problems.bad("no voice-only row (queryType 1) in tabulatedVotes.csv", summary_path, line,
                   clip)
      continue
    audio_path = os.path.abspath(os.path.join(audio_dir, clip + ".wav"))
    if check_audio:
      if not os.path.isfile(audio_path) or not os.access(audio_path, os.R_OK):
        problems.filtered(MISSING_AUDIO, clip)
        continue
      if os.path.getsize(audio_path) <= EMPTY_WAV_BYTES:
        problems.filtered(EMPTY_AUDIO, clip)
        continue
      if audio_path in pointers:
        problems.filtered(LFS_POINTER, clip)
        continue
    category = common.emotion(emotion)
    count += 1
    yield schema.Utterance(
        corpus=NAME, utterance_id=clip, speaker=actor, gender=genders[actor], split="all",
        cww_split=split[actor], audio_path=audio_path,
        transcript=SENTENCES.get(match.group("sentence"), ""),
        label=common.label_of(category), raw_label=emotion, label_source="intended",
        ratings=votes[clip])
  common.require_nonempty(count, summary_path, problems.dropped)


def is_lfs_pointer(path: str) -> bool:
  """Whether ``path`` is a git-lfs pointer file (small, first line ``version https://git-lfs``)."""
  try:
    if os.path.getsize(path) >= LFS_POINTER_MAX_BYTES:
      return False
    with open(path, "rb") as f:
      return f.read(len(LFS_VERSION_PREFIX)) == LFS_VERSION_PREFIX
  except OSError:
    return False


def _wav_names(audio_dir: str) -> list:
  return sorted(n for n in os.listdir(audio_dir) if n.lower().endswith(".wav"))


def _count_wavs(audio_dir: str) -> int:
  return len(_wav_names(audio_dir))


def lfs_pointers(audio_dir: str) -> list:
  """Absolute paths of the git-lfs pointer files among ``audio_dir/*.wav``, sorted."""
  paths = [os.path.abspath(os.path.join(audio_dir, n)) for n in _wav_names(audio_dir)]
  return [p for p in paths if is_lfs_pointer(p)]


def _demographics(path: str) -> Dict[str, str]:
  out = {}
  for line, row in common.csv_rows(path, ("ActorID", "Sex")):
    sex = row["Sex"].strip().lower()
    if sex not in ("male", "female"):
      raise errors.CorpusError(f"unknown Sex {row['Sex']!r}", path=path, line=line)
    out[row["ActorID"].strip()] = "M" if sex == "male" else "F"
  if not out:
    raise errors.CorpusError("no actors", path=path)
  return out


def _voice_votes(path: str, problems: common.Problems):
  """(clip -> categorical-only Ratings from the queryType-1 rows, clips skipped as bad)."""
  out, bad = {}, set()
  with open(path, newline="", encoding="utf-8-sig") as f:
    reader = csv.reader(f)
    header = next(reader, [])
    needed = VOTE_LETTERS + ("fileName", "numResponses")
    if any(c not in header for c in needed):
      raise errors.CorpusError(f"expected columns {list(needed)}", path=path, line=1)
    col = {c: header.index(c) for c in needed}
    for row in reader:
      line = reader.line_num
      try:
        query_type = int(row[0]) // 100000
      except (ValueError, IndexError):
        problems.bad("row name is not 100000*queryType+clipNum", path, line)
        continue
      if query_type != 1:
        continue
      clip = row[col["fileName"]].strip()
      try:
        counts = [int(row[col[c]]) for c in VOTE_LETTERS]
        total = int(row[col["numResponses"]])
        if min(counts) < 0 or sum(counts) != total:
          raise ValueError(f"vote counts {counts} do not sum to numResponses {total}")
      except (ValueError, IndexError) as e:
        problems.bad(str(e), path, line, clip)
        bad.add(clip)
        continue
      ratings = []
      for letter, n in zip(VOTE_LETTERS, counts):
        ratings += [schema.Rating(annotator=f"vote{len(ratings) + k + 1}",
                                  category=common.emotion(letter)) for k in range(n)]
      out[clip] = ratings
  return out, bad
