"""The embedded demo: four small synthetic emotional corpora and one unlabelled corpus.

They stand in for CREMA-D (CRE), IEMOCAP (IEM), MSP-Improv (IMP), MSP-Podcast (POD) and
LibriSpeech (LIBRI) so that every task runs end to end without licensed data:

  * audio: 16 kHz mono WAV clips of 0.5-1.0 s whose acoustics follow each utterance's latent
    activation and valence (``demo_voice.py`` lists the cues), and whose corpus adds a domain shift
    (pitch scale, gain, noise level, band-limited channel; acted corpora more expressive than
    natural ones), so a model trained on three corpora must generalise to the fourth;
  * labels: latent (activation, valence, dominance) per utterance drawn around its emotion's
    centre; tens of simulated annotators per corpus, each with an offset, a scale compression, a
    noise level, a vote reliability and an activity (how often they rate); each utterance rated by
    a variable subset (a few by a single annotator), on the corpus's own integer scale and then
    mapped to [-1, 1] with ``data_prep.labels.scale_to_unit``; categorical votes from every rater;
  * class balance that differs per corpus as in the CWW paper's Table 1 (POD neutral-heavy,
    CRE balanced), plus a few emotions outside the four classes (excluded from the CWW task);
  * speakers with genders, both papers' splits (``split`` for the annotator task, ``cww_split``
    for CWW: train/validation, and test for POD) and short synthetic transcripts.

CRE is like CREMA-D: intended labels, categorical crowd votes but no dimensional ratings (so the
annotator task has nothing to train on there, as with the real corpus). IEM has 12 evaluators with
2-4 per utterance, some giving a categorical vote only (as IEMOCAP's categorical evaluators).

Usage: ``generate(root, seed)`` once (idempotent: a second call with the same seed returns at
once), then ``read(root, corpus)`` per corpus, which yields ``tfser.data.schema.Utterance``
records. Layout: ``<root>/<CORPUS>/labels.jsonl`` (one utterance per line) and
``<root>/<CORPUS>/wav/<utterance_id>.wav``; ``<root>/demo.json`` marks a finished generation.
The labels are drawn in ``data_prep.corpora.demo_records``, the audio in ``demo_voice``; this
module writes and reads the files.
"""

import io
import json
import math
import os
from typing import Dict, Iterator, Optional, Sequence

import numpy as np
from scipy.io import wavfile

from data_prep import labels
from data_prep.atomic_files import atomic_write_bytes
from data_prep.corpora import demo_voice
from data_prep.corpora.demo_records import CORPORA, SPECS
from data_prep.corpora.demo_records import LABELLED, UNLABELLED  # noqa: F401  (callers' names)
from data_prep.corpora.demo_records import corpus_records
from data_prep.errors import CorpusError, DropLog
from tfser.data import schema

DEMO_VERSION = 1  # bump when the generated data change, so an old demo directory is regenerated
SAMPLE_RATE = demo_voice.SAMPLE_RATE
MARKER = "demo.json"


def _wav_bytes(samples: np.ndarray) -> bytes:
  buffer = io.BytesIO()
  wavfile.write(buffer, SAMPLE_RATE, np.round(samples * 32767.0).astype(np.int16))
  return buffer.getvalue()


def is_generated(root: str, seed: int = 0) -> bool:
  """Whether ``root`` holds a finished demo generation for this seed and demo version."""
  try:
    with open(os.path.join(root, MARKER)) as f:
      marker = json.load(f)
  except (OSError, ValueError):
    return False
  return marker.get("version") == DEMO_VERSION and marker.get("seed") == seed


def generate(root: str, seed: int = 0, corpora: Sequence[str] = CORPORA,
             force: bool = False) -> Dict[str, int]:
  """Writes the demo corpora under ``root``; returns corpus -> number of utterances.

  Deterministic for a seed (byte-identical files). Every file is written atomically, and the
  marker ``demo.json`` last, so an interrupted run is simply redone; a finished one is skipped
  unless ``force``.
  """
  unknown = [c for c in corpora if c not in CORPORA]
  if unknown:
    raise CorpusError(f"unknown demo corpora {unknown} (demo corpora: {', '.join(CORPORA)})")
  counts = {c: SPECS[c].utterances for c in corpora}
  if not force and tuple(corpora) == CORPORA and is_generated(root, seed):
    return counts
  for name in corpora:
    wav_dir = os.path.join(root, name, "wav")
    os.makedirs(wav_dir, exist_ok=True)
    lines = []
    for rec in corpus_records(name, seed):
      rng = np.random.default_rng(rec["audio_seed"])
      voice = demo_voice.Voice(**rec["voice"])
      samples = demo_voice.synthesise(rng, voice, SPECS[name].channel, rec["latent"][0],
                                      rec["latent"][1], rec["duration_s"])
      rec["wav"] = f"wav/{rec['utterance_id']}.wav"
      atomic_write_bytes(os.path.join(root, name, rec["wav"]), _wav_bytes(samples))
      lines.append(json.dumps(rec, sort_keys=True))
    atomic_write_bytes(os.path.join(root, name, "labels.jsonl"), ("\n".join(lines) + "\n").encode())
  if tuple(corpora) == CORPORA:
    atomic_write_bytes(os.path.join(root, MARKER),
                  json.dumps({"version": DEMO_VERSION, "seed": seed, "corpora": counts},
                             sort_keys=True).encode())
  return counts


# -------------------------------------------------------------------------------------------------
# Reading.

def _rating(entry, path: str, line: int, uid: str) -> schema.Rating:
  if not (isinstance(entry, list) and len(entry) == 5 and isinstance(entry[0], str)
          and isinstance(entry[4], str)):
    raise CorpusError(f"malformed rating {entry!r} (expected [annotator, activation, valence, "
                      "dominance, category])", path, line, uid)
  values = []
  for dim, value in zip(("activation", "valence", "dominance"), entry[1:4]):
    value = math.nan if value is None else value
    if not isinstance(value, (int, float)) or not (math.isnan(value) or -1.0 <= value <= 1.0):
      raise CorpusError(f"{dim} rating {value!r} by {entry[0]} outside [-1, 1]", path, line, uid)
    values.append(float(value))
  category = ""
  if entry[4]:
    try:
      category = labels.canonical_emotion(entry[4])
    except ValueError as e:
      raise CorpusError(str(e), path, line, uid) from None
  return schema.Rating(entry[0], *values, category=category)


def _utterance(name: str, root: str, rec: dict, path: str, line: int) -> schema.Utterance:
  uid = rec.get("utterance_id") if isinstance(rec, dict) else None
  if not uid:
    raise CorpusError("record without utterance_id", path, line)
  for key in ("split", "cww_split"):
    if rec.get(key) not in schema.SPLITS:
      raise CorpusError(f"{key} {rec.get(key)!r} not one of {schema.SPLITS}", path, line, uid)
  audio = os.path.join(root, name, rec.get("wav", ""))
  if not rec.get("wav") or not os.path.isfile(audio):
    raise CorpusError("missing audio", audio, utterance=uid)
  ratings = [_rating(r, path, line, uid) for r in rec.get("ratings", [])]
  raw, source = rec.get("raw_label", ""), "none"
  try:
    if name == "CRE":  # CREMA-D: the portrayed emotion, from the file name's code
      source = "intended" if raw else "none"
    elif ratings:  # the others: the raters' majority vote
      vote = labels.majority_vote([r.category for r in ratings])
      # Keep the corpus's own code (e.g. IEM's "exc" for a happy vote) when the vote agrees.
      if vote and (not raw or labels.canonical_emotion(raw) not in (vote, "excited")
                   or (labels.canonical_emotion(raw) == "excited" and vote != "happy")):
        raw = vote
      source = "majority" if vote else "none"
    label = labels.cww_class(raw, merge_excited=(name == "IEM")) if raw else ""
  except ValueError as e:
    raise CorpusError(str(e), path, line, uid) from None
  activation, valence, dominance = labels.consensus(ratings)
  return schema.Utterance(
      corpus=name, utterance_id=uid, speaker=rec.get("speaker", ""),
      gender=rec.get("gender", ""), split=rec["split"], cww_split=rec["cww_split"],
      audio_path=audio, transcript=rec.get("transcript", ""), label=label, raw_label=raw,
      label_source=source, activation=activation, valence=valence, dominance=dominance,
      ratings=ratings)


def read(root: str, corpus: str, *, skip_bad: bool = False,
         dropped: Optional[DropLog] = None) -> Iterator[schema.Utterance]:
  """Yields the demo corpus's utterances (ratings on [-1, 1]; consensus = mean of the raters).

  Labels: CRE's is the intended emotion; the others' the raters' majority vote (IEM's excited
  counts as happy). Emotions outside the four classes get label "" (raw_label keeps the name).
  Single-rater utterances are yielded (the annotator task's writer counts and drops them).

  Raises:
    CorpusError: an unknown corpus, a root without the generated demo, a malformed line, a
      rating outside [-1, 1], an unknown emotion or a missing WAV (naming file, line, utterance);
      with skip_bad the bad utterance is recorded in ``dropped`` instead.
  """
  if corpus not in CORPORA:
    raise CorpusError(f"unknown demo corpus {corpus!r} (demo corpora: {', '.join(CORPORA)})")
  path = os.path.join(root, corpus, "labels.jsonl")
  if not os.path.isfile(path):
    raise CorpusError(f"no demo corpus here; run data_prep.corpora.demo.generate({root!r})", path)
  dropped = dropped if dropped is not None else DropLog()
  count = 0
  with open(path) as f:
    for line_no, text in enumerate(f, start=1):
      if not text.strip():
        continue
      try:
        try:
          rec = json.loads(text)
        except ValueError as e:
          raise CorpusError(f"malformed line: {e}", path, line_no) from None
        utt = _utterance(corpus, root, rec, path, line_no)
      except CorpusError as e:
        dropped.skip_or_raise(e, skip_bad, e.utterance or f"{path}:{line_no}")
        continue
      count += 1
      yield utt
  if not count:
    raise CorpusError("empty corpus: no usable utterance", path)


def latent_values(root: str, corpus: str) -> Dict[str, dict]:
  """The generator's hidden truth per utterance id: {"emotion", "latent": [a, v, d]} (for tests)."""
  with open(os.path.join(root, corpus, "labels.jsonl")) as f:
    return {r["utterance_id"]: {"emotion": r["emotion"], "latent": r["latent"]}
            for r in map(json.loads, filter(str.strip, f))}
