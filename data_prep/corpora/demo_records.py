"""The embedded demo's labels: every utterance's speaker, splits, emotion, latent affect, ratings,
votes and transcript, generated from a seed (``data_prep.corpora.demo`` writes them with audio).

:func:`corpus_records` draws one corpus (:data:`SPECS` says what makes each one, see the module
docstring of ``data_prep.corpora.demo``): latent (activation, valence, dominance) around the
utterance's emotion centre, simulated annotators (offset, scale compression, noise, vote
reliability, activity) rating a variable subset on the corpus's own integer scale, then mapped to
[-1, 1] with ``data_prep.labels.scale_to_unit``. Deterministic for a seed.
"""

import collections
import dataclasses
import math
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from data_prep import labels
from data_prep.corpora import crema_d
from data_prep.corpora import demo_voice
from data_prep.errors import CorpusError
from tfser.data import schema

CORPORA = ("CRE", "IEM", "IMP", "POD", "LIBRI")
LABELLED = ("CRE", "IEM", "IMP", "POD")
UNLABELLED = ("LIBRI",)

# Latent (activation, valence) centre of each emotion the demo uses (canonical names of
# data_prep.labels); acted corpora scale these by their expressiveness.
_CENTRES = {
    "neutral": (0.0, 0.05), "happy": (0.45, 0.65), "sad": (-0.55, -0.5), "angry": (0.75, -0.6),
    "disgusted": (0.1, -0.55), "fearful": (0.5, -0.45), "frustrated": (0.25, -0.4),
    "surprised": (0.6, 0.3), "contempt": (0.05, -0.4), "other": (0.1, 0.0),
}


@dataclasses.dataclass(frozen=True)
class CorpusSpec:
  """What makes one demo corpus: size, class balance, expressiveness, channel and annotators.

  class_shares: fractions of neutral, happy, sad, angry; the rest is spread over ``others``.
  scale: the corpus's integer rating scale (lo, hi), or None for categorical votes only.
  raters: (min, max) raters per utterance; single_rater_share of utterances get one rater.
  category_only_share: fraction of ratings that carry a categorical vote only.
  """
  name: str
  utterances: int
  expressiveness: float
  channel: demo_voice.Channel
  class_shares: Tuple[float, float, float, float] = (1.0, 0.0, 0.0, 0.0)
  others: Tuple[str, ...] = ()
  annotators: int = 0
  raters: Tuple[int, int] = (0, 0)
  single_rater_share: float = 0.0
  category_only_share: float = 0.0
  scale: Optional[Tuple[int, int]] = None


SPECS = {
    "CRE": CorpusSpec("CRE", 360, expressiveness=1.0,
                      channel=demo_voice.Channel(1.0, 0.0, 35.0, None, 0.0),
                      class_shares=(0.22, 0.245, 0.245, 0.245), others=("disgusted", "fearful"),
                      annotators=40, raters=(5, 10), single_rater_share=0.02,
                      scale=None),
    "IEM": CorpusSpec("IEM", 320, expressiveness=0.85,
                      channel=demo_voice.Channel(0.88, -5.0, 20.0, (0, 5500), -0.5),
                      class_shares=(0.30, 0.29, 0.19, 0.17), others=("frustrated",),
                      annotators=12, raters=(2, 4), single_rater_share=0.03,
                      category_only_share=0.1, scale=(1, 5)),
    "IMP": CorpusSpec("IMP", 300, expressiveness=0.75,
                      channel=demo_voice.Channel(1.15, 4.0, 16.0, (150, 6500), 0.6),
                      class_shares=(0.44, 0.33, 0.11, 0.10), others=("other",),
                      annotators=60, raters=(4, 10), single_rater_share=0.02, scale=(1, 5)),
    "POD": CorpusSpec("POD", 420, expressiveness=0.6,
                      channel=demo_voice.Channel(0.95, -9.0, 12.0, (300, 3400), 0.3),
                      class_shares=(0.54, 0.29, 0.07, 0.07), others=("contempt", "surprised"),
                      annotators=80, raters=(3, 10), single_rater_share=0.03, scale=(1, 7)),
    "LIBRI": CorpusSpec("LIBRI", 200, expressiveness=0.3,
                        channel=demo_voice.Channel(1.0, -3.0, 28.0, (0, 7000), 0.0)),
}

# CREMA-D's twelve sentences (short, emotionally neutral); the other corpora get template text.
_CRE_SENTENCES = tuple(crema_d.SENTENCES.values())
_SUBJECTS = ("I", "we", "they", "my brother", "the neighbours", "our team", "she", "he")
_VERBS = ("talked about", "looked at", "found", "waited for", "remembered", "fixed", "moved")
_OBJECTS = ("the car", "the letter", "the old house", "the garden", "the report", "the kitchen",
            "the tickets", "the weather", "the meeting")
_TINTS = {"neutral": ("yesterday", "this morning", "after lunch"),
          "happy": ("and it was wonderful", "and we loved it", "finally, great news"),
          "sad": ("and it was over", "and nobody came", "and I miss it"),
          "angry": ("and that is ridiculous", "again, seriously", "and I am fed up")}


# -------------------------------------------------------------------------------------------------
# Speakers and splits.

def _speakers(name: str, rng: np.random.Generator) -> List[Tuple[str, str, str, str]]:
  """(speaker, gender, split, cww_split) for every speaker of a corpus."""
  if name == "CRE":  # CWW: 58/33 training/validation actors of 91 -> 15/9 of 24 here
    ids = [str(1001 + i) for i in range(24)]
    genders = ["F" if i % 2 else "M" for i in range(24)]
    order = rng.permutation(24)
    cww = {ids[i]: ("train" if rank < 15 else "validation") for rank, i in enumerate(order)}
    return [(s, g, cww[s], cww[s]) for s, g in zip(ids, genders)]
  if name == "IEM":  # 5 sessions x (F, M); annotators: 1-3/4/5; CWW: sessions 1-4 / 5
    out = []
    for session in range(1, 6):
      split = "train" if session <= 3 else ("validation" if session == 4 else "test")
      cww = "train" if session <= 4 else "validation"
      out += [(f"Ses{session:02d}{g}", g, split, cww) for g in "FM"]
    return out
  if name == "IMP":  # the annotators paper's speaker split; CWW: sessions 1-5 / 6
    split_of = {"F02": "validation", "M01": "validation", "F04": "test", "M05": "test"}
    out = []
    for session in range(1, 7):
      for g in "FM":
        spk = f"{g}{session:02d}"
        out.append((spk, g, split_of.get(spk, "train"), "train" if session <= 5 else "validation"))
    return out
  if name == "POD":  # speaker-independent predefined partitions (also CWW's)
    ids = [f"{i + 1:04d}" for i in range(36)]
    order = rng.permutation(36)
    out = []
    for rank, i in enumerate(order):
      split = "train" if rank < 24 else ("validation" if rank < 29 else "test")
      out.append((ids[i], "F" if i % 2 else "M", split, split))
    return out
  if name == "LIBRI":
    return [(str(100 + 7 * i), "F" if i % 2 else "M", "all", "all") for i in range(20)]
  raise CorpusError(f"unknown demo corpus {name!r} (demo corpora: {', '.join(CORPORA)})")


def _class_counts(n: int, spec: CorpusSpec) -> Dict[str, int]:
  """Exact emotion counts for n utterances (largest remainder), each of the four classes >= 2."""
  shares = list(spec.class_shares)
  rest = max(0.0, 1.0 - sum(shares))
  names = list(schema.CLASS_NAMES) + list(spec.others)
  shares += [rest / len(spec.others)] * len(spec.others)
  raw = np.asarray(shares) * n
  counts = np.floor(raw).astype(int)
  for i in np.argsort(-(raw - counts), kind="stable")[:n - counts.sum()]:
    counts[i] += 1
  for i in range(4):  # every class in every split cell, so per-class accuracies exist
    while counts[i] < 2 and n >= 8:
      counts[int(np.argmax(counts))] -= 1
      counts[i] += 1
  return {name: int(c) for name, c in zip(names, counts) if c}


# -------------------------------------------------------------------------------------------------
# Annotators.

@dataclasses.dataclass(frozen=True)
class _Annotator:
  ident: str
  offset: Tuple[float, float, float]  # activation, valence, dominance bias on [-1, 1]
  scale: Tuple[float, float, float]  # compression of the latent value (< 1: avoids extremes)
  noise: float
  reliability: float  # probability of voting the expressed emotion
  activity: float  # relative frequency of rating


def _annotators(spec: CorpusSpec, rng: np.random.Generator) -> List[_Annotator]:
  prefix = {"CRE": "CRE-R", "IEM": "IEM-E", "IMP": "IMP-R", "POD": "WORKER"}.get(spec.name, "")
  out = []
  for i in range(spec.annotators):
    out.append(_Annotator(
        ident=f"{prefix}{i + 1:0{8 if spec.name == 'POD' else 3}d}",
        offset=tuple(rng.normal(0.0, 0.12, 3)), scale=tuple(rng.uniform(0.55, 1.1, 3)),
        noise=float(rng.uniform(0.08, 0.25)), reliability=float(rng.uniform(0.55, 0.92)),
        activity=float(rng.lognormal(0.0, 0.7))))
  return out


def _to_scale(value: float, scale: Tuple[int, int]) -> float:
  """A perceived value on [-1, 1] -> the corpus's integer scale -> back to [-1, 1]."""
  lo, hi = scale
  point = float(np.clip(np.rint(lo + (value + 1.0) / 2.0 * (hi - lo)), lo, hi))
  return labels.scale_to_unit(point, lo, hi)


def _vote(rng, annotator: _Annotator, emotion: str, perceived: Tuple[float, float],
          vocabulary: Sequence[str]) -> str:
  """The expressed emotion with the annotator's reliability, else the nearest to what they heard."""
  if rng.random() < annotator.reliability:
    return emotion
  dist = [np.hypot(perceived[0] - _CENTRES[e][0], perceived[1] - _CENTRES[e][1])
          for e in vocabulary]
  return vocabulary[int(np.argmin(dist))]


def _ratings(rng, spec: CorpusSpec, pool: Sequence[_Annotator], latent, emotion: str,
             vocabulary: Sequence[str]) -> List[schema.Rating]:
  if rng.random() < spec.single_rater_share:
    count = 1
  else:
    count = int(rng.integers(spec.raters[0], spec.raters[1] + 1))
  weights = np.asarray([a.activity for a in pool])
  chosen = rng.choice(len(pool), size=min(count, len(pool)), replace=False,
                      p=weights / weights.sum())
  out = []
  for idx in chosen:
    ann = pool[idx]
    perceived = [float(np.clip(ann.scale[d] * latent[d] + ann.offset[d]
                               + rng.normal(0.0, ann.noise), -1.0, 1.0)) for d in range(3)]
    vote = _vote(rng, ann, emotion, perceived[:2], vocabulary)
    if spec.scale is None or rng.random() < spec.category_only_share:
      out.append(schema.Rating(ann.ident, category=vote))
    else:
      out.append(schema.Rating(ann.ident, *[_to_scale(p, spec.scale) for p in perceived],
                               category=vote))
  return out


# -------------------------------------------------------------------------------------------------
# Generation.

def _transcript(rng, name: str, emotion: str) -> str:
  if name == "CRE":
    return str(rng.choice(_CRE_SENTENCES))
  words = [rng.choice(_SUBJECTS), rng.choice(_VERBS), rng.choice(_OBJECTS)]
  if name != "LIBRI" and emotion in _TINTS and rng.random() < 0.6:
    words.append(rng.choice(_TINTS[emotion]))
  text = " ".join(str(w) for w in words)
  return text[0].upper() + text[1:] + "."


def _raw_label(name: str, emotion: str, rng) -> str:
  if name == "CRE":  # CREMA-D's file-name codes
    return {"neutral": "NEU", "happy": "HAP", "sad": "SAD", "angry": "ANG", "disgusted": "DIS",
            "fearful": "FEA"}[emotion]
  if name == "IEM":  # IEMOCAP's codes; half the happy ones are "excited" (merged for CWW)
    if emotion == "happy":
      return "exc" if rng.random() < 0.5 else "hap"
    return {"neutral": "neu", "sad": "sad", "angry": "ang", "frustrated": "fru"}[emotion]
  return emotion


def corpus_records(name: str, seed: int) -> List[dict]:
  """Every utterance of one corpus as a JSON-ready dict (labels, ratings, latent, voice)."""
  spec = SPECS[name]
  rng = np.random.default_rng([seed, CORPORA.index(name)])
  speakers = _speakers(name, rng)
  voices = {s[0]: demo_voice.random_voice(rng, s[1]) for s in speakers}
  # Utterances per speaker as even as possible; POD also has some without a speaker label.
  owners = [speakers[i % len(speakers)] for i in range(spec.utterances)]
  cells = collections.defaultdict(list)  # (split, cww_split) -> utterance indices
  for i, owner in enumerate(owners):
    cells[owner[2:]].append(i)
  emotions = [""] * spec.utterances
  for cell, members in sorted(cells.items()):
    if name == "LIBRI":
      pool = ["neutral"] * len(members)
    else:
      pool = [e for e, c in _class_counts(len(members), spec).items() for _ in range(c)]
    for i, e in zip(members, rng.permutation(pool)):
      emotions[i] = str(e)

  annotators = _annotators(spec, rng)
  vocabulary = list(schema.CLASS_NAMES) + list(spec.others)
  # Annotators of validation/test utterances all rated some training utterance (as the
  # annotators paper's MSP-Improv split guarantees), so rate the training utterances first.
  in_train = set()
  order = sorted(range(spec.utterances), key=lambda i: owners[i][2] != "train")
  records = [None] * spec.utterances
  for i in order:
    speaker, gender, split, cww_split = owners[i]
    emotion = emotions[i]
    centre = np.asarray(_CENTRES[emotion]) * spec.expressiveness
    spread = 0.12 if name == "LIBRI" else 0.15
    a, v = np.clip(centre + rng.normal(0.0, spread, 2), -0.95, 0.95)
    d = float(np.clip(0.6 * a + 0.2 * (emotion == "angry") - 0.2 * (emotion == "sad")
                      + rng.normal(0.0, 0.1), -0.95, 0.95))
    latent = (float(a), float(v), d)
    ratings = []
    if name != "LIBRI":
      pool = annotators if split == "train" else [x for x in annotators if x.ident in in_train]
      ratings = _ratings(rng, spec, pool, latent, emotion, vocabulary)
      if split == "train":
        in_train.update(r.annotator for r in ratings)
    unknown_speaker = name == "POD" and rng.random() < 0.05
    records[i] = {
        "utterance_id": f"{name}-{speaker}-{i:04d}",
        "speaker": "" if unknown_speaker else speaker,
        "gender": "" if unknown_speaker else gender,
        "split": split, "cww_split": cww_split,
        "transcript": _transcript(rng, name, emotion),
        "raw_label": "" if name == "LIBRI" else _raw_label(name, emotion, rng),
        "ratings": [[r.annotator] + [None if math.isnan(x) else round(x, 6)
                                     for x in (r.activation, r.valence, r.dominance)]
                    + [r.category] for r in ratings],
        "emotion": "" if name == "LIBRI" else emotion,
        "latent": [round(x, 6) for x in latent],
        "duration_s": round(float(rng.uniform(0.5, 1.0)), 4),
        "audio_seed": int(rng.integers(2 ** 31)),
        "voice": dataclasses.asdict(voices[speaker]),
    }
  return records

