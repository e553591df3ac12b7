"""The one utterance record and its TFRecord schema (writer and tf.data parser both import this).

A corpus reader yields :class:`Utterance` records; ``data_prep`` adds features and ground-truth
distributions and serialises them with :func:`encode` (:func:`to_example`, serialised); ``tfser.data.pipeline`` parses them
back in blocks with :func:`feature_spec` (``tfser.testing.records.parse_example``: one record). Bump :data:`SCHEMA_VERSION` whenever a key, dtype or shape changes.

Units and conventions:
  * activation, valence, dominance are on tfser's common scale, floats in [-1, 1]
    (see ``data_prep.labels.scale_to_unit``); NaN means "not rated".
  * categorical labels use :data:`CLASS_NAMES` (the corpus-wise-weights paper's four classes);
    ``label_index`` is -1 when the utterance's emotion is outside those four.
  * annotator ids are strings in a reader; the writer maps them to a stable int index per corpus
    (sorted ids, listed in the manifest), stored in ``rating_annotator``.
"""

import dataclasses
import math
from typing import Dict, List, Optional, Sequence

import numpy as np

import tfser  # noqa: F401  (Keras flavour before TensorFlow)
import tensorflow as tf

SCHEMA_VERSION = 1

CLASS_NAMES = ("neutral", "happy", "sad", "angry")
CLASS_INDEX = {name: i for i, name in enumerate(CLASS_NAMES)}

# Splits as stored in the record. "all" marks corpora used whole (e.g. unlabelled speech).
SPLITS = ("train", "validation", "test", "all")

# Label provenance for ``Utterance.label_source``.
LABEL_SOURCES = ("intended", "majority", "none")

# Transcript provenance (``Utterance.transcript_source``, record key ``transcript_source``): the
# corpus's own text, or "asr:<model name>" (data_prep.transcribe); "" when there is no text. The
# key was added without a schema version bump: records written before it parse with "" (its
# default), i.e. "corpus" wherever they hold a transcript.
TRANSCRIPT_FROM_CORPUS = "corpus"
TRANSCRIPT_FROM_ASR_PREFIX = "asr:"

GT_SEEDS = 5  # ground-truth distributions stored for seeds 0..4
GT_BINS = (4, 2)  # 4x4 and 2x2 block means of the 512-grid KDE


@dataclasses.dataclass
class Rating:
  """One annotator's rating of one utterance.

  annotator: the corpus's own annotator id (string, stable across the corpus).
  activation, valence, dominance: on the common [-1, 1] scale; NaN if that annotator gave none.
  category: a tfser class name, another lower-case emotion name, or "" if no categorical vote.
  """
  annotator: str
  activation: float = math.nan
  valence: float = math.nan
  dominance: float = math.nan
  category: str = ""


@dataclasses.dataclass
class Utterance:
  """One utterance as every reader produces it.

  split: the annotators paper's split ("train" / "validation" / "test", or "all").
  cww_split: the corpus-wise-weights paper's split of the same corpus ("train" / "validation" /
    "test" / "all"); a held-out corpus is used whole whatever this says.
  label: one of CLASS_NAMES, or "" when the emotion is outside the four (raw_label keeps it).
  label_source: "intended" (the portrayed emotion), "majority" (the raters' vote), or "none".
  transcript_source: where ``transcript`` came from: "" (readers leave it empty: the corpus's own
    text, stored as TRANSCRIPT_FROM_CORPUS when there is text) or "asr:<model name>".
  annotator_excluded: "" when the annotators task may use the utterance, else why it may not
    (e.g. IEMOCAP ratings partly missing or outside 1-5, annotators paper 3.1): the record is
    kept for the categorical (CWW) task and ``tfser.data.pipeline.annotator_dataset`` skips it.
  """
  corpus: str
  utterance_id: str
  speaker: str = ""
  gender: str = ""  # "F", "M" or "" if unknown
  split: str = "train"
  cww_split: str = "train"
  audio_path: str = ""
  transcript: str = ""
  transcript_source: str = ""
  label: str = ""
  raw_label: str = ""
  label_source: str = "none"
  activation: float = math.nan
  valence: float = math.nan
  dominance: float = math.nan
  ratings: List[Rating] = dataclasses.field(default_factory=list)
  annotator_excluded: str = ""

  @property
  def label_index(self) -> int:
    return CLASS_INDEX.get(self.label, -1)


# ---------------------------------------------------------------------------------------------
# Serialisation.

def _bytes(values: Sequence[str]) -> tf.train.Feature:
  return tf.train.Feature(bytes_list=tf.train.BytesList(value=[v.encode("utf-8") for v in values]))


def _varint(n: int) -> bytes:
  """Protocol-buffer base-128 varint of a non-negative int."""
  out = bytearray()
  while n > 0x7F:
    out.append(0x80 | (n & 0x7F))
    n >>= 7
  out.append(n)
  return bytes(out)


def _floats(values) -> tf.train.Feature:
  # Parsed from the packed wire form (field 1, little-endian float32s: one copy) instead of
  # appending numpy floats one by one: ~100x faster for a 1582-wide feature vector (~0.2 ms a
  # record), the same message and so the same bytes.
  data = np.asarray(values, "<f4").ravel().tobytes()
  return tf.train.Feature(float_list=tf.train.FloatList.FromString(
      b"\n" + _varint(len(data)) + data))


def _ints(values) -> tf.train.Feature:
  return tf.train.Feature(int64_list=tf.train.Int64List(value=np.asarray(values, np.int64).ravel()))


def to_example(utt: Utterance,
               annotator_index: Dict[str, int],
               features: Optional[Dict[str, np.ndarray]] = None,
               ground_truth: Optional[Dict[int, np.ndarray]] = None) -> tf.train.Example:
  """Serialises one utterance.

  Args:
    utt: the record.
    annotator_index: corpus annotator id -> int index (the manifest's ``annotators`` order).
    features: feature name -> float vector ``[dim]`` (e.g. "is10" -> [1582]).
    ground_truth: bins (4 or 2) -> ``[GT_SEEDS, bins * bins]`` probabilities, one row per seed.
  """
  f = {
      "schema_version": _ints([SCHEMA_VERSION]),
      "corpus": _bytes([utt.corpus]),
      "utterance_id": _bytes([utt.utterance_id]),
      "speaker": _bytes([utt.speaker]),
      "gender": _bytes([utt.gender]),
      "split": _bytes([utt.split]),
      "cww_split": _bytes([utt.cww_split]),
      "audio_path": _bytes([utt.audio_path]),
      "transcript": _bytes([utt.transcript]),
      "transcript_source": _bytes([transcript_source(utt)]),
      "label": _bytes([utt.label]),
      "raw_label": _bytes([utt.raw_label]),
      "label_source": _bytes([utt.label_source]),
      "annotator_excluded": _bytes([utt.annotator_excluded]),
      "label_index": _ints([utt.label_index]),
      "activation": _floats([utt.activation]),
      "valence": _floats([utt.valence]),
      "dominance": _floats([utt.dominance]),
      "rating_annotator": _ints([annotator_index[r.annotator] for r in utt.ratings]),
      "rating_activation": _floats([r.activation for r in utt.ratings]),
      "rating_valence": _floats([r.valence for r in utt.ratings]),
      "rating_dominance": _floats([r.dominance for r in utt.ratings]),
      "rating_category": _ints([CLASS_INDEX.get(r.category, -1) for r in utt.ratings]),
  }
  for name, vec in sorted((features or {}).items()):
    f["features/" + name] = _floats(vec)
  for bins in GT_BINS:
    if ground_truth and bins in ground_truth:
      gt = np.asarray(ground_truth[bins], np.float32)
      if gt.shape != (GT_SEEDS, bins * bins):
        raise ValueError(f"utterance {utt.utterance_id}: ground truth {bins}x{bins} has shape "
                         f"{gt.shape}, expected {(GT_SEEDS, bins * bins)}")
      f[f"gt_{bins}x{bins}"] = _floats(gt)
  return tf.train.Example(features=tf.train.Features(feature=f))


def encode(utt: Utterance,
           annotator_index: Dict[str, int],
           features: Optional[Dict[str, np.ndarray]] = None,
           ground_truth: Optional[Dict[int, np.ndarray]] = None) -> bytes:
  """One TFRecord record: :func:`to_example` serialised with sorted map keys, so the same
  utterance always gives the same bytes. Every writer (``data_prep``'s shards, the generated
  corpora of ``tfser.testing``) writes these."""
  return to_example(utt, annotator_index, features, ground_truth).SerializeToString(
      deterministic=True)


def transcript_source(utt: Utterance) -> str:
  """The stored provenance of ``utt.transcript``: its transcript_source, else "corpus" if it has
  text, else ""."""
  return utt.transcript_source or (TRANSCRIPT_FROM_CORPUS if utt.transcript else "")


_SCALAR_STRINGS = ("corpus", "utterance_id", "speaker", "gender", "split", "cww_split",
                   "audio_path", "transcript", "label", "raw_label", "label_source")
_RATING_FLOATS = ("rating_activation", "rating_valence", "rating_dominance")
_RATING_INTS = ("rating_annotator", "rating_category")


def feature_spec(feature_dims: Dict[str, int], with_ground_truth: bool = True):
  """The ``tf.io.parse_single_example`` spec for records with the given features.

  feature_dims: feature name -> width, as in the manifest's ``features``.
  Ratings parse as ``tf.RaggedTensor`` rows (``tfser.data`` pads them and adds a mask).
  """
  spec = {"schema_version": tf.io.FixedLenFeature([1], tf.int64),
          "label_index": tf.io.FixedLenFeature([1], tf.int64)}
  spec.update({k: tf.io.FixedLenFeature([], tf.string) for k in _SCALAR_STRINGS})
  # Optional (added later): older records lack it.
  spec["transcript_source"] = tf.io.FixedLenFeature([], tf.string, default_value="")
  # Also optional (added in issue 15 without a version bump): a record written before it has none
  # and parses as "" (usable), which it is: the readers then dropped such utterances instead.
  spec["annotator_excluded"] = tf.io.FixedLenFeature([], tf.string, default_value="")
  spec.update({k: tf.io.FixedLenFeature([1], tf.float32)
               for k in ("activation", "valence", "dominance")})
  spec.update({k: tf.io.RaggedFeature(tf.float32) for k in _RATING_FLOATS})
  spec.update({k: tf.io.RaggedFeature(tf.int64) for k in _RATING_INTS})
  for name, dim in feature_dims.items():
    spec["features/" + name] = tf.io.FixedLenFeature([dim], tf.float32)
  if with_ground_truth:
    for bins in GT_BINS:
      spec[f"gt_{bins}x{bins}"] = tf.io.FixedLenFeature([GT_SEEDS * bins * bins], tf.float32,
                                                        default_value=[np.nan] * (GT_SEEDS * bins * bins))
  return spec
