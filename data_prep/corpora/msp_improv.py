"""MSP-Improv reader (Busso et al., 2017), from the layouts the corpus is distributed in.

Layouts read under ``root`` (the release directory)::

  Evaluation.txt            (the release spells it Evalution.txt; both are accepted)
  Audio/session1/S01A/S/MSP-IMPROV-S01A-F01-S-FM01.wav      (1) audio under Audio/
  session1/S01A/S/MSP-IMPROV-S01A-F01-S-FM01.wav            (2) the original archive unpacked
  Text/MSP-IMPROV-S01A-F01-S-FM01.txt        (optional transcripts; read when present)

(1) is the layout the annotators paper's authors read: jtavernor/SER-Datasets
``src/SERDatasets/improv.py`` (and ``msp_improv.py``) glob ``Audio/**/**/**/*.wav`` and read
``Evaluation.txt`` and ``Text/<utt>.txt``. (2) is "the file structure from the original
compressed file" that Strong-AI-Lab/emotion ``datasets/MSP-IMPROV/process.py`` reads
(``Evaluation.txt``, ``session1/S01A/P/*.wav`` and ``*.avi``, globbed as
``session?/*/*/*.wav``). ``Audio/`` is used when it exists, else ``session<n>/`` folders
directly under ``root``; the layout found is recorded in the manifest's ``layout``. Without
either (labels only) the audio paths point under ``Audio/``.

``Evaluation.txt`` holds blocks separated by blank lines: one utterance header line and one line
per rater::

  UTD-IMPROV-S01A-F01-S-FM01.avi; N; A:3.000000; V:3.500000; D:3.000000 ; N:3.000000;
  <rater>; <primary emotion>; <secondary emotions>; A:3.0; V:4.0; D:3.0; N:4.0;

The header's letter is the raters' majority class (A angry, H happy, S sad, N neutral, O other),
so ``label_source`` is "majority". The utterance id is the audio name, ``MSP-IMPROV-...``.
Name fields: S01A = sentence 01 with target emotion A; F01 = the speaker (session 1, female);
S = scenario (P, R, S or T); FM01 = the dyad and turn.

Scales (1-5). The annotators paper's authors flip MSP-Improv activation (their loader: "Improv
stores activation values high to low (1 to 5)... we need to flip this"), so activation is
reversed here (+1 = high activation); valence is kept (1 = negative). Dominance has no
documented flip in their code; it is kept as stored (REVERSE_DOMINANCE below; an assumption).
"""

import os
import re
from typing import Iterator, Optional

from data_prep import errors
from data_prep.corpora import common
from tfser.data import schema

NAME = "IMP"
SCALE = (1.0, 5.0)
REVERSE_ACTIVATION = True
REVERSE_DOMINANCE = False

# The annotators paper's speaker-independent split (its repository, ModelingIndividualEvaluators:
# every validation/test annotator also rated training utterances).
TRAIN_SPEAKERS = ("F01", "F03", "F05", "F06", "M02", "M03", "M04", "M06")
VALIDATION_SPEAKERS = ("F02", "M01")
TEST_SPEAKERS = ("F04", "M05")

# The CWW paper trains on 5 sessions and validates on 1 without naming it; the last session
# validates, as for IEMOCAP (sessions 1-4 train, 5 validates) in the same paper.
CWW_VALIDATION_SESSION = 6

LABEL_FILES = ("Evaluation.txt", "Evalution.txt")
AUDIO_DIR = "Audio"
_NAME = re.compile(r"^(?:MSP|UTD)-IMPROV-(?P<sentence>S\d\d[A-Z])-(?P<speaker>(?P<gender>[FM])"
                   r"(?P<session>\d\d))-(?P<scenario>[A-Z])-(?P<turn>[A-Z0-9]+)$")


def annotators_split(speaker: str) -> str:
  if speaker in TRAIN_SPEAKERS:
    return "train"
  if speaker in VALIDATION_SPEAKERS:
    return "validation"
  if speaker in TEST_SPEAKERS:
    return "test"
  raise ValueError(f"speaker {speaker} is in no split")


class _Block:
  """One utterance being read: header fields plus raw ratings."""

  def __init__(self, utt: schema.Utterance, line: int):
    self.utt, self.line, self.ratings, self.bad = utt, line, [], False


def read(root: str, *, skip_bad: bool = False, dropped: Optional[errors.DropLog] = None,
         cww_validation_session: int = CWW_VALIDATION_SESSION) -> Iterator[schema.Utterance]:
  """Yields MSP-Improv utterances with every rater's rating, in file order.

  Args:
    root: the corpus directory (holding Evaluation.txt / Evalution.txt, and Audio/ or
      session1..session6/).
    skip_bad: log and count bad utterances under ``dropped`` instead of raising CorpusError.
    dropped: the DropLog that receives skips and the detected ``layout``.
    cww_validation_session: the session (1-6) the CWW split validates on; others train.
  """
  problems = common.Problems(skip_bad, dropped)
  path = common.first_existing(root, LABEL_FILES, "MSP-Improv evaluation file")
  audio_root, audio_layout = audio_dir(root)
  problems.dropped.layout.update({"labels": os.path.basename(path), "audio": audio_layout})
  count = 0
  for block in _blocks(root, audio_root, path, problems, cww_validation_session):
    common.apply_ratings(block.utt, block.ratings, problems)
    count += 1
    yield block.utt
  common.require_nonempty(count, path, problems.dropped)


def audio_dir(root: str):
  """``(the folder holding session1..session6, layout name)``: ``root/Audio`` when it exists,
  else ``root`` itself when it holds ``session<n>/`` folders (the original archive), else
  ``root/Audio`` (no audio in this copy)."""
  if os.path.isdir(os.path.join(root, AUDIO_DIR)):
    return os.path.join(root, AUDIO_DIR), AUDIO_DIR + "/session*/"
  if any(os.path.isdir(os.path.join(root, f"session{n}")) for n in range(1, 7)):
    return root, "session*/ (original archive)"
  return os.path.join(root, AUDIO_DIR), "none found (labels only)"


def _blocks(root, audio_root, path, problems, cww_validation_session) -> Iterator[_Block]:
  block: Optional[_Block] = None
  seen = set()
  with open(path, encoding="utf-8-sig", errors="replace") as f:
    for number, raw in enumerate(f, start=1):
      line = raw.strip()
      if not line:
        continue
      if line.startswith(("UTD-IMPROV-", "MSP-IMPROV-")):
        if block is not None and not block.bad:
          yield block
        block = _Block(None, number)
        try:
          block.utt = _header(root, audio_root, line, cww_validation_session)
        except ValueError as e:
          block.bad = True
          problems.bad(str(e), path, number)
          continue
        if block.utt.utterance_id in seen:
          block.bad = True
          problems.bad("duplicate utterance header", path, number, block.utt.utterance_id)
          continue
        seen.add(block.utt.utterance_id)
        continue
      if block is None:
        problems.bad("rater line before any utterance header", path, number)
        continue
      if block.bad:
        continue  # the rest of a skipped utterance
      try:
        block.ratings.append(common.parse_msp_entry(
            line, *SCALE, reverse_activation=REVERSE_ACTIVATION,
            reverse_dominance=REVERSE_DOMINANCE))
      except ValueError as e:
        block.bad = True
        problems.bad(str(e), path, number, block.utt.utterance_id)
  if block is not None and not block.bad:
    yield block


def _header(root: str, audio_root: str, line: str,
            cww_validation_session: int) -> schema.Utterance:
  head, dims = common.split_dims(line)
  if len(head) != 2 or not head[0].endswith(".avi"):
    raise ValueError(
        "malformed utterance header: expected '<name>.avi; <class>; A:..; V:..; D:..;'")
  stem = head[0][:-len(".avi")]
  match = _NAME.match(stem)
  if match is None:
    raise ValueError(f"utterance name {stem!r} is not UTD-IMPROV-SnnX-<F|M>nn-<type>-<turn>")
  utt_id = "MSP-IMPROV-" + stem.split("-IMPROV-", 1)[1]
  category = common.emotion(head[1])
  speaker, session = match.group("speaker"), int(match.group("session"))
  lo, hi = SCALE
  utt = schema.Utterance(
      corpus=NAME, utterance_id=utt_id, speaker=speaker, gender=match.group("gender"),
      split=annotators_split(speaker),
      cww_split="validation" if session == cww_validation_session else "train",
      audio_path=os.path.abspath(os.path.join(
          audio_root, f"session{session}", match.group("sentence"), match.group("scenario"),
          utt_id + ".wav")),
      transcript=common.text_file(os.path.join(root, "Text", utt_id + ".txt")),
      label=common.label_of(category), raw_label=head[1], label_source="majority",
      activation=common.scale(common.parse_number(dims["A"]), lo, hi, REVERSE_ACTIVATION),
      valence=common.scale(common.parse_number(dims["V"]), lo, hi),
      dominance=common.scale(common.parse_number(dims["D"]), lo, hi, REVERSE_DOMINANCE,
                             allow_nan=True))
  return utt
