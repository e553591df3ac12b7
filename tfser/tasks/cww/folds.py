"""Speaker folds of the CWW paper's within-single-corpus benchmark (Ahn et al., section 3.2).

The "Within-single-corpus (CE)" row of Table 2 trains and tests inside one corpus with a
speaker-independent cross-validation whose rule depends on the corpus:

* ``"speakers"`` (CRE, and any corpus without a rule of its own): 10-fold leave-ten-speakers-out.
  The sorted speaker ids are shuffled with a fixed seed (:data:`FOLD_SEED`, the same for every
  training seed, so that seeds 0-4 repeat the same folds) and cut into 10 consecutive test groups
  of as equal sizes as possible (``np.array_split``: the first ``n % 10`` groups get one speaker
  more). Fold k tests group k, validates on the first ``n // 10`` speakers of group k + 1 (mod
  10) and trains on the rest. Every speaker is tested exactly once. With CREMA-D's 91 actors fold
  0 is the paper's 10 test / 9 validation / 72 training speakers; folds 1-9 are 9 / 9 / 73, since
  ten disjoint test groups cannot all hold 10 of 91 speakers (the paper does not say how it
  resolved this). A corpus with fewer speakers uses the same rule scaled (the demo's CRE, 24
  speakers: 3 or 2 test, 2 validation, 19 or 20 training); one with fewer than 10 speakers has
  one fold per speaker (leave-one-speaker-out, 1 validation speaker); at least 3 are needed.
* ``"sessions"`` (IEM: 5 sessions x 2 speakers, 10 folds; IMP: 6 x 2, 12 folds):
  leave-one-speaker-out. One fold per speaker, in order of (session, speaker id): the speaker is
  tested, the other speaker(s) of its session validate, and the speakers of every other session
  train (IEM: 8 speakers of 4 sessions). The session is parsed from the speaker id (IEMOCAP
  ``Ses01F``, MSP-Improv ``F01``: session 1). The demo's IEM and IMP have the paper's speakers and
  sessions, hence the paper's folds. Every session needs at least 2 speakers, and there must be
  at least 2 sessions.
* ``"splits"`` (POD): no cross-validation; one fold, the corpus's fixed CWW train / validation /
  test splits (the speaker sets of the returned fold are empty).

Utterances without a speaker id (``""``, some of POD's) belong to no speaker fold and are left
out of the speaker rules. This module is pure Python + NumPy (the launch script imports it).
"""

import dataclasses
import re
from typing import Dict, Iterable, List, Mapping, Optional, Tuple

import numpy as np

# Paper 3.2: folds per corpus (CRE 10-fold leave-ten-speakers-out, IEM 10-fold and IMP 12-fold
# leave-one-speaker-out, POD its fixed splits).
NUM_FOLDS = {"CRE": 10, "IEM": 10, "IMP": 12, "POD": 1}
RULES = {"CRE": "speakers", "IEM": "sessions", "IMP": "sessions", "POD": "splits"}
DEFAULT_RULE = "speakers"
SPEAKER_FOLDS = 10  # the "speakers" rule's folds (fewer when a corpus has fewer speakers)
FOLD_SEED = 0  # the "speakers" rule's shuffle; fixed, independent of the training seed

# Session number from the speaker id (IEMOCAP: Ses01F; MSP-Improv: F01).
_SESSION_PATTERNS = {"IEM": re.compile(r"^Ses(\d+)[FM]$"), "IMP": re.compile(r"^[FM](\d+)$")}


@dataclasses.dataclass(frozen=True)
class Fold:
  """One fold: the speakers of each part (empty tuples for the ``"splits"`` rule)."""
  corpus: str
  index: int
  num_folds: int
  rule: str
  train: Tuple[str, ...] = ()
  validation: Tuple[str, ...] = ()
  test: Tuple[str, ...] = ()

  @property
  def by_speaker(self) -> bool:
    """True when the parts are speaker sets; False: the corpus's own CWW splits."""
    return self.rule != "splits"

  def speakers(self, part: str) -> Tuple[str, ...]:
    """The speakers of "train", "validation" or "test"."""
    if part not in ("train", "validation", "test"):
      raise ValueError(f"part must be train, validation or test; got {part!r}")
    return getattr(self, part)

  def as_dict(self) -> Dict:
    """JSON-ready: index, num_folds, rule and the speaker lists of the three parts."""
    return {"index": self.index, "num_folds": self.num_folds, "rule": self.rule,
            "train": list(self.train), "validation": list(self.validation),
            "test": list(self.test)}


def rule(corpus: str) -> str:
  """The fold rule of a corpus: "speakers", "sessions" or "splits"."""
  return RULES.get(corpus, DEFAULT_RULE)


def max_folds(corpus: str) -> int:
  """The paper's fold count for the corpus (an upper bound: fewer speakers give fewer folds)."""
  return NUM_FOLDS.get(corpus, SPEAKER_FOLDS)


def session_of(corpus: str, speaker: str) -> int:
  """The recording session of an IEM or IMP speaker id (ValueError for an id of another form)."""
  pattern = _SESSION_PATTERNS.get(corpus)
  match = pattern.match(speaker) if pattern else None
  if not match:
    raise ValueError(f"cannot read the session of {corpus} speaker {speaker!r} (expected "
                     f"{'Ses01F' if corpus == 'IEM' else 'F01'}-style ids)")
  return int(match.group(1))


def _unique(speakers: Iterable[str]) -> List[str]:
  return sorted({s for s in speakers if s})


def _speaker_groups(corpus: str, speakers: List[str], seed: int) -> List[np.ndarray]:
  if len(speakers) < 3:
    raise ValueError(f"{corpus}: the within-corpus speaker folds need at least 3 speakers "
                     f"(test, validation, training); it has {len(speakers)}")
  order = np.asarray(speakers)[np.random.default_rng(seed).permutation(len(speakers))]
  return np.array_split(order, min(SPEAKER_FOLDS, len(speakers)))


def _sessions(corpus: str, speakers: List[str],
              sessions: Optional[Mapping[str, int]]) -> Dict[int, List[str]]:
  by_session: Dict[int, List[str]] = {}
  for s in speakers:
    by_session.setdefault(sessions[s] if sessions else session_of(corpus, s), []).append(s)
  single = sorted(s for members in by_session.values() if len(members) < 2 for s in members)
  if len(by_session) < 2 or single:
    raise ValueError(f"{corpus}: leave-one-speaker-out folds need at least 2 sessions of at "
                     f"least 2 speakers each; sessions: {dict(sorted(by_session.items()))}")
  return dict(sorted(by_session.items()))


def num_folds(corpus: str, speakers: Iterable[str],
              sessions: Optional[Mapping[str, int]] = None) -> int:
  """How many folds the corpus's rule gives for these speakers (ids may repeat; "" is ignored)."""
  kind = rule(corpus)
  if kind == "splits":
    return 1
  unique = _unique(speakers)
  if kind == "sessions":
    return sum(len(m) for m in _sessions(corpus, unique, sessions).values())
  return len(_speaker_groups(corpus, unique, FOLD_SEED))


def make_fold(corpus: str, speakers: Iterable[str], fold: int,
              sessions: Optional[Mapping[str, int]] = None, seed: int = FOLD_SEED) -> Fold:
  """Fold ``fold`` (0-based) of the corpus's within-corpus cross-validation.

  Args:
    corpus: the corpus name (picks the rule, see the module docstring).
    speakers: the speaker id of every utterance, or each speaker once; "" (unknown) is ignored.
    fold: the fold index, 0 <= fold < num_folds (ValueError naming --fold otherwise).
    sessions: speaker -> session for the "sessions" rule (default: parsed from the ids).
    seed: the "speakers" rule's shuffle (default :data:`FOLD_SEED`).
  """
  kind = rule(corpus)
  unique = [] if kind == "splits" else _unique(speakers)
  if kind == "splits":
    n = 1
  elif kind == "sessions":
    by_session = _sessions(corpus, unique, sessions)
    order = [(session, s) for session, members in by_session.items() for s in members]
    n = len(order)
  else:
    groups = _speaker_groups(corpus, unique, seed)
    n = len(groups)
  if not 0 <= fold < n:
    raise ValueError(f"--fold={fold} is out of range for {corpus}: its within-corpus "
                     f"cross-validation ({kind} rule) has {n} fold(s), 0..{n - 1}")
  if kind == "splits":
    return Fold(corpus, fold, n, kind)
  if kind == "sessions":
    session, test = order[fold]
    validation = [s for s in by_session[session] if s != test]
    train = [s for s in unique if s not in by_session[session]]
    return Fold(corpus, fold, n, kind, tuple(train), tuple(validation), (test,))
  test = sorted(groups[fold].tolist())
  validation = sorted(groups[(fold + 1) % n][:len(unique) // n].tolist())
  held = set(test) | set(validation)
  return Fold(corpus, fold, n, kind, tuple(s for s in unique if s not in held),
              tuple(validation), tuple(test))


def all_folds(corpus: str, speakers: Iterable[str],
              sessions: Optional[Mapping[str, int]] = None, seed: int = FOLD_SEED) -> List[Fold]:
  """Every fold of the corpus, in order."""
  speakers = list(speakers)
  return [make_fold(corpus, speakers, k, sessions, seed)
          for k in range(num_folds(corpus, speakers, sessions))]


if __name__ == "__main__":  # launch/cww_table2.sh: the paper's fold count of each corpus given
  import sys
  print(" ".join(str(max_folds(c)) for c in sys.argv[1:]))
