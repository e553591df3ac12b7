"""IEMOCAP reader (Busso et al., 2008), from the layout the corpus is distributed in.

Release read: IEMOCAP_full_release (the one release USC distributes). ``root`` is that folder,
or the folder the archive was unpacked in (holding ``IEMOCAP_full_release/``). The audio and
transcripts are where the annotators paper's authors glob them (jtavernor/SER-Datasets
``src/SERDatasets/iemocap.py``: ``**/sentences/wav/**/*.wav``, ``**/dialog/transcriptions/*.txt``);
their labels come from a concatenated ``IEMOCAP_EmoEvaluation.txt`` of their own, so the
per-dialog EmoEvaluation files of the release are read here instead. Layout::

  Session1/dialog/EmoEvaluation/Ses01F_impro01.txt
  Session1/dialog/transcriptions/Ses01F_impro01.txt
  Session1/sentences/wav/Ses01F_impro01/Ses01F_impro01_F000.wav

Each EmoEvaluation file has one block per turn::

  [6.2901 - 8.2357]\tSes01F_impro01_F000\tneu\t[2.5000, 2.5000, 2.5000]
  C-E2:\tNeutral state;\t()
  C-F1:\tNeutral state;\t()
  A-E3:\tval 3; act 2; dom  2;\t()
  A-F1:\tval 3; act 3; dom  3;\t()

The bracket is the consensus [valence, activation, dominance]. ``A-E<k>`` / ``C-E<k>`` lines are
evaluator k's attribute and categorical answers; they become one Rating with annotator id "E<k>".
``A-F1`` / ``C-M1`` ... are the actors' self-assessments: not annotators, not kept (an A line of
theirs is still range-checked, as the paper's authors' loader does).

Scales: IEMOCAP's 1-5 SAM scales run valence 1 = negative .. 5 = positive, activation 1 = calm
.. 5 = excited, dominance 1 = weak .. 5 = strong (Busso et al., 2008), so none is reversed.

Filtering (the annotators paper, 3.1): an utterance where an attribute answer (evaluator or
self-assessment) is partially missing or outside the 1-5 labelling range is left out of the
annotators task, not of the data (issue 15): it is written with ``annotator_excluded`` set to
:data:`OUT_OF_RANGE` (the pipeline's annotator datasets skip it; the manifest counts it under
``annotator_task``), that evaluator's attribute values are NaN and every categorical vote is
kept, so the CWW task (the consensus class and the votes) still has it. The consensus class merges excited into
happy (the CWW paper); ``raw_label`` keeps "exc". Splits: the annotators paper tests on the whole
corpus, so ``split`` is "test"; the CWW paper trains on sessions 1-4 and validates on session 5.
"""

import glob
import math
import os
import re
from typing import Dict, Iterator, Optional, Tuple

from data_prep import errors
from data_prep.corpora import common
from tfser.data import schema

NAME = "IEM"
RELEASE_DIR = "IEMOCAP_full_release"
SCALE = (1.0, 5.0)
CWW_VALIDATION_SESSIONS = (5,)
OUT_OF_RANGE = "IEMOCAP evaluation partially missing or outside the 1-5 labelling range"

_TURN = re.compile(r"^\[\s*(?P<start>[\d.]+)\s*-\s*(?P<end>[\d.]+)\s*\]\s+(?P<utt>\S+)\s+"
                   r"(?P<code>\S+)\s+\[(?P<vad>[^\]]*)\]\s*$")
_UTT = re.compile(r"^Ses(?P<session>\d\d)[FM]_.*_(?P<gender>[FM])[A-Z]*\d+$")
_EVAL = re.compile(r"^(?P<kind>[AC])-(?P<who>[A-Za-z]+\d*)\s*:\s*(?P<body>.*)$")
_ATTR = re.compile(r"(?P<key>val|act|dom)\s*(?P<value>[^;]*);")


def read(root: str, *, skip_bad: bool = False, dropped: Optional[errors.DropLog] = None,
         cww_validation_sessions=CWW_VALIDATION_SESSIONS,
         merge_excited: bool = True) -> Iterator[schema.Utterance]:
  """Yields IEMOCAP turns with each evaluator's attribute and categorical rating.

  Args:
    root: the release directory holding Session1..Session5 (or the folder holding it).
    skip_bad: log and count bad utterances under ``dropped`` instead of raising CorpusError.
    dropped: receives skips and the paper's out-of-range filtering.
    cww_validation_sessions: sessions in the CWW validation split (others train).
    merge_excited: excited counts as happy in the label and in the evaluators' votes (the CWW
      paper's merge); raw_label keeps "exc" either way.
  """
  problems = common.Problems(skip_bad, dropped)
  nested = os.path.join(root, RELEASE_DIR)
  if not glob.glob(os.path.join(glob.escape(root), "Session[0-9]*")) and os.path.isdir(nested):
    root = nested
  problems.dropped.layout["release"] = RELEASE_DIR
  sessions = sorted(glob.glob(os.path.join(glob.escape(root), "Session[0-9]*")))
  files = []
  for session_dir in sessions:
    files += sorted(glob.glob(os.path.join(glob.escape(session_dir), "dialog", "EmoEvaluation",
                                           "*.txt")))
  if not files:
    raise errors.CorpusError("no Session*/dialog/EmoEvaluation/*.txt files", path=root)
  count = 0
  for path in files:
    session_dir = os.path.dirname(os.path.dirname(os.path.dirname(path)))
    dialog = os.path.splitext(os.path.basename(path))[0]
    transcripts = _transcripts(os.path.join(session_dir, "dialog", "transcriptions",
                                            dialog + ".txt"))
    for utt in _read_file(path, session_dir, dialog, transcripts, problems,
                          cww_validation_sessions, merge_excited):
      count += 1
      yield utt
  common.require_nonempty(count, root, problems.dropped)


def _read_file(path, session_dir, dialog, transcripts, problems, cww_validation_sessions,
               merge_excited):
  """Parses one EmoEvaluation file block by block."""
  utt, answers, state = None, {}, "none"  # state: none | ok | bad | filtered

  def finish():
    if utt is not None and state in ("ok", "filtered"):
      _apply_answers(utt, answers, problems)
      if state == "filtered":  # kept for the categorical task, not the annotators task's
        utt.annotator_excluded = OUT_OF_RANGE
      return utt
    return None

  with open(path, encoding="utf-8-sig", errors="replace") as f:
    for number, raw in enumerate(f, start=1):
      line = raw.strip()
      if not line or line.startswith("%"):
        continue
      if line.startswith("["):
        done = finish()
        if done is not None:
          yield done
        utt, answers, state = None, {}, "ok"
        try:
          utt = _turn(line, session_dir, dialog, transcripts, cww_validation_sessions,
                      merge_excited)
        except ValueError as e:
          state = "bad"
          problems.bad(str(e), path, number)
        continue
      if state == "bad":
        continue  # the rest of a skipped turn
      match = _EVAL.match(line)
      if match is None or utt is None:
        state = "bad"
        problems.bad("malformed evaluation line", path, number,
                     utt.utterance_id if utt is not None else None)
        continue
      who = match.group("who")
      evaluator = who.startswith("E")  # else A-F1 / C-M1 ...: the actor's self-assessment
      try:
        if match.group("kind") == "A":
          values = _attributes(match.group("body"))
          if values is None:
            # Self-assessments are range-checked too (as the paper's authors' loader does),
            # but never kept as ratings. An evaluator's invalid answer: NaN values.
            state = "filtered"
            values = (math.nan,) * 3
          if evaluator:
            answers.setdefault(who, ([], []))[0].append(values)
        elif evaluator:
          answers.setdefault(who, ([], []))[1].append(_category(match.group("body"),
                                                                 merge_excited))
      except ValueError as e:
        state = "bad"
        problems.bad(str(e), path, number, utt.utterance_id)
  done = finish()
  if done is not None:
    yield done


def _apply_answers(utt: schema.Utterance, answers, problems) -> None:
  """One Rating per evaluator: its A-line dimensions and its C-line vote (either may be absent).

  An evaluator with several A lines (or C lines) on one turn is a duplicate: the lines are
  averaged by ``common.apply_ratings``, which then recomputes the consensus.
  """
  ratings = []
  for who, (dims, votes) in answers.items():
    for i in range(max(len(dims), len(votes))):
      val, act, dom = dims[i] if i < len(dims) else (math.nan,) * 3
      ratings.append(schema.Rating(annotator=who, activation=act, valence=val, dominance=dom,
                                   category=votes[i] if i < len(votes) else ""))
  common.apply_ratings(utt, ratings, problems)


def _turn(line, session_dir, dialog, transcripts, cww_validation_sessions,
          merge_excited) -> schema.Utterance:
  match = _TURN.match(line)
  if match is None:
    raise ValueError("malformed turn line: expected '[start - end]\\t<utt>\\t<class>\\t[v, a, d]'")
  utt_id, code = match.group("utt"), match.group("code")
  name = _UTT.match(utt_id)
  if name is None:
    raise ValueError(f"utterance name {utt_id!r} is not Ses<nn><F|M>_<dialog>_<F|M><turn>")
  vad = [v.strip() for v in match.group("vad").split(",")]
  if len(vad) != 3:
    raise ValueError("malformed consensus: expected [valence, activation, dominance]")
  lo, hi = SCALE
  # NaN consensus is tolerated (a turn nobody rated); ratings carry the data.
  val, act, dom = (common.scale(common.parse_number(v), lo, hi, allow_nan=True) for v in vad)
  session = int(name.group("session"))
  gender = name.group("gender")
  # Consensus codes neu hap exc sad ang fru sur fea dis oth xxx; excited merges into happy.
  category = common.emotion(code, merge_excited=merge_excited)
  return schema.Utterance(
      corpus=NAME, utterance_id=utt_id, speaker=f"Ses{session:02d}{gender}", gender=gender,
      split="test",
      cww_split="validation" if session in cww_validation_sessions else "train",
      audio_path=os.path.abspath(os.path.join(session_dir, "sentences", "wav", dialog,
                                              utt_id + ".wav")),
      transcript=transcripts.get(utt_id, ""),
      label=common.label_of(category), raw_label=code, label_source="majority",
      activation=act, valence=val, dominance=dom)


def _attributes(body: str) -> Optional[Tuple[float, float, float]]:
  """(valence, activation, dominance) on [-1, 1] from ``val 2; act 4; dom  4;\\t()``.

  Returns None when a value is missing or outside 1-5 (the paper's filter); raises ValueError
  for text that is not the attribute format at all.
  """
  text = body.split("(")[0]
  found = {m.group("key"): m.group("value").strip() for m in _ATTR.finditer(text)}
  if not found:
    raise ValueError("malformed attribute line: expected 'val <v>; act <a>; dom <d>;'")
  lo, hi = SCALE
  out = []
  for key in ("val", "act", "dom"):
    value = found.get(key, "")
    if not value:
      return None
    try:
      number = float(value)
    except ValueError as e:
      raise ValueError(f"malformed attribute value {key} {value!r}") from e
    if not lo <= number <= hi:  # NaN fails this too
      return None
    out.append(common.scale(number, lo, hi))
  return tuple(out)


def _category(body: str, merge_excited: bool) -> str:
  """The first emotion of ``Neutral state; Other:bored;\\t(comment)`` as a tfser name."""
  text = body.split("\t")[0].split("(")[0]
  words = [w.strip() for w in text.split(";") if w.strip()]
  if not words:
    return ""
  return common.emotion(words[0], merge_excited=merge_excited)


def _transcripts(path: str) -> Dict[str, str]:
  """utterance id -> text from ``Ses01F_impro01_F000 [006.2901-008.2357]: Excuse me.`` lines."""
  out = {}
  if not os.path.isfile(path):
    return out
  with open(path, encoding="utf-8-sig", errors="replace") as f:
    for line in f:
      head, sep, text = line.partition(":")
      if not sep or "[" not in head:
        continue
      out[head.split()[0]] = text.strip()
  return out
