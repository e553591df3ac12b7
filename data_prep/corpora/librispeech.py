"""LibriSpeech reader (Panayotov et al., 2015): unlabelled speech for the CWW paper's
pseudo-emotion labels (it uses train-clean-100, 28,539 utterances).

Layout (as in the openslr tarball)::

  LibriSpeech/SPEAKERS.TXT
  LibriSpeech/train-clean-100/<speaker>/<chapter>/<speaker>-<chapter>-<utt>.flac
  LibriSpeech/train-clean-100/<speaker>/<chapter>/<speaker>-<chapter>.trans.txt

``root`` may be the subset directory (…/train-clean-100), the LibriSpeech directory holding it,
or the folder the tarball was unpacked in (holding ``LibriSpeech/``; the openslr tarballs, e.g.
https://www.openslr.org/12 ``train-clean-100.tar.gz``, unpack to ``LibriSpeech/<subset>/``).
Audio is FLAC, as distributed.
Each ``.trans.txt`` line is ``<speaker>-<chapter>-<utt> TRANSCRIPT``. SPEAKERS.TXT lines are
``ID | SEX | SUBSET | MINUTES | NAME`` (';' starts a comment); gender comes from it when present.

Every utterance has label "", label_source "none", no ratings, and split / cww_split "all".
"""

import glob
import os
from typing import Dict, Iterator, Optional

from data_prep import errors
from data_prep.corpora import common
from tfser.data import schema

NAME = "LIBRI"
SUBSET = "train-clean-100"


def read(root: str, *, skip_bad: bool = False, dropped: Optional[errors.DropLog] = None,
         subset: str = SUBSET) -> Iterator[schema.Utterance]:
  """Yields one unlabelled utterance per transcript line, speakers and chapters sorted.

  Args:
    root: the subset directory, the LibriSpeech directory that holds ``subset``, or the folder
      holding LibriSpeech/.
    skip_bad: log and count malformed transcript lines instead of raising CorpusError.
    dropped: the DropLog that receives skips.
    subset: the subset directory name looked for under ``root``.
  """
  problems = common.Problems(skip_bad, dropped)
  subset_dir = next((d for d in (os.path.join(root, subset),
                                 os.path.join(root, "LibriSpeech", subset)) if os.path.isdir(d)),
                    root)
  problems.dropped.layout["subset"] = os.path.basename(os.path.abspath(subset_dir))
  if not os.path.isdir(subset_dir):
    raise errors.CorpusError("no such directory", path=subset_dir)
  genders = {}
  for candidate in (os.path.join(subset_dir, "SPEAKERS.TXT"),
                    os.path.join(os.path.dirname(os.path.abspath(subset_dir)), "SPEAKERS.TXT")):
    if os.path.isfile(candidate):
      genders = _speakers(candidate, problems)
      break
  count = 0
  for trans in sorted(glob.glob(os.path.join(subset_dir, "*", "*", "*.trans.txt"))):
    chapter_dir = os.path.dirname(trans)
    with open(trans, encoding="utf-8-sig", errors="replace") as f:
      for number, line in enumerate(f, start=1):
        if not line.strip():
          continue
        utt_id, _, text = line.strip().partition(" ")
        parts = utt_id.split("-")
        if len(parts) != 3 or not all(p.isdigit() for p in parts) or not text:
          problems.bad("malformed transcript line: expected '<spk>-<chapter>-<utt> TEXT'",
                       trans, number)
          continue
        count += 1
        yield schema.Utterance(
            corpus=NAME, utterance_id=utt_id, speaker=parts[0], gender=genders.get(parts[0], ""),
            split="all", cww_split="all",
            audio_path=os.path.abspath(os.path.join(chapter_dir, utt_id + ".flac")),
            transcript=text.strip(), label="", raw_label="", label_source="none")
  common.require_nonempty(count, subset_dir, problems.dropped)


def _speakers(path: str, problems: common.Problems) -> Dict[str, str]:
  out = {}
  with open(path, encoding="utf-8-sig", errors="replace") as f:
    for number, line in enumerate(f, start=1):
      if not line.strip() or line.lstrip().startswith(";"):
        continue
      fields = [x.strip() for x in line.split("|")]
      if len(fields) < 2 or fields[1] not in ("F", "M"):
        problems.bad("malformed SPEAKERS.TXT line: expected 'ID | SEX | ...'", path, number)
        continue
      out[fields[0]] = fields[1]
  return out
