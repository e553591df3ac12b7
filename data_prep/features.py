"""Per-utterance features for the TFRecords, chosen by ``--features`` (issue 4, item 5).

Names (``parse_feature_flag``):
  * ``wav2vec2``: TFWav2Vec2Model's last layer, mean-pooled over time (768 for wav2vec2-base).
  * ``bert``: TFBertModel's last-layer [CLS] embedding of the transcript (768 for bert-base).
  * ``is10``: openSMILE's INTERSPEECH 2010 paralinguistic functionals (1582), the
    corpus-wise-weights paper's input, through the ``opensmile`` package.
  * ``none``: labels only; the audio is never opened.

Models load only from local directories, never from a hub: ``make_extractor("wav2vec2",
model_dir=D)`` reads ``D/wav2vec2`` and ``make_extractor("bert", model_dir=D)`` reads ``D/bert``
(or pass ``model_path=`` for the model's own directory). Accepted checkpoint forms and the
in-place conversion of PyTorch safetensors checkpoints: ``tfser.layers.encoders``. The BERT
directory must also hold its vocab.txt (and tokenizer_config.json for do_lower_case), as a
tokenizer's ``save_pretrained`` writes them; tokenisation runs in TF ops
(``tfser.layers.wordpiece``), matching transformers.BertTokenizer.

wav2vec2 and BERT run through the same Keras layers (``tfser.layers.encoders``) that the
exported SavedModels contain, so stored and served features agree.
"""

import os
from typing import Optional, Sequence, Tuple

import numpy as np

import tfser  # noqa: F401  (Keras flavour before TensorFlow)
import tensorflow as tf

from data_prep.errors import CorpusError
from tfser.data.schema import Utterance

FEATURE_NAMES = ("wav2vec2", "bert", "is10")
IS10_DIM = 1582
SAMPLE_RATE = 16000
_BERT_CHUNK = 64  # transcripts per BERT forward pass


def parse_feature_flag(flag: str) -> Tuple[str, ...]:
  """``"wav2vec2,bert"`` -> ("wav2vec2", "bert"); ``"none"`` or "" -> () (labels only).

  Names are case-insensitive, duplicates are dropped (first occurrence kept).
  Raises:
    ValueError: an unknown name (the message names the --features flag and the valid names).
  """
  names = []
  for raw in str(flag).split(","):
    name = raw.strip().lower()
    if not name or name == "none":
      continue
    if name not in FEATURE_NAMES:
      raise ValueError(f"--features={flag!r}: unknown feature {raw.strip()!r}; valid names are "
                       f"{', '.join(FEATURE_NAMES)} or none")
    if name not in names:
      names.append(name)
  if "none" in [n.strip().lower() for n in str(flag).split(",")] and names:
    raise ValueError(f"--features={flag!r}: 'none' cannot be combined with other features")
  return tuple(names)


class Extractor:
  """Base class: one feature vector per utterance.

  Attributes: name, dim, needs_audio (call with the 16 kHz waveform), needs_transcript.
  ``extractor(utterance, waveform) -> [dim] float32``; waveform is float32 mono 16 kHz
  ``[samples]`` (None when needs_audio is False). ``batch`` maps lists to ``[N, dim]``.
  """
  name = ""
  dim = 0
  needs_audio = False
  needs_transcript = False

  def __call__(self, utterance: Utterance, waveform: Optional[np.ndarray]) -> np.ndarray:
    raise NotImplementedError

  def batch(self, utterances: Sequence[Utterance],
            waveforms: Sequence[Optional[np.ndarray]]) -> np.ndarray:
    if len(utterances) != len(waveforms):
      raise ValueError(f"{len(utterances)} utterances but {len(waveforms)} waveforms")
    rows = [self(u, w) for u, w in zip(utterances, waveforms)]
    return np.stack(rows).astype(np.float32) if rows else np.zeros([0, self.dim], np.float32)

  def _waveform(self, utterance: Utterance, waveform) -> np.ndarray:
    if waveform is None:
      raise CorpusError(f"{self.name} features need the waveform", path=utterance.audio_path,
                        utterance=utterance.utterance_id)
    waveform = np.asarray(waveform, np.float32).reshape(-1)
    if waveform.size == 0:
      raise CorpusError("empty waveform", path=utterance.audio_path,
                        utterance=utterance.utterance_id)
    return waveform


class Wav2Vec2Extractor(Extractor):
  """Mean-pooled last hidden layer of a local wav2vec 2.0 model (each utterance run alone)."""
  name = "wav2vec2"
  needs_audio = True

  def __init__(self, model_path: str):
    from tfser.layers import encoders  # pylint: disable=g-import-not-at-top  (transformers)
    self.encoder = encoders.Wav2Vec2Encoder(model_path)
    self.dim = self.encoder.hidden_size
    # One trace for any length: the utterance runs unpadded, so its features do not depend on
    # what else is in a batch (group-norm encoders would see the padding otherwise).
    self._encode = tf.function(lambda w: self.encoder(w[None, :])[0],
                               input_signature=[tf.TensorSpec([None], tf.float32)])

  def __call__(self, utterance, waveform):
    waveform = self._waveform(utterance, waveform)
    frames = int(self.encoder.frame_lengths(waveform.size))
    if frames < 1:
      raise CorpusError(f"{waveform.size} samples are too short for wav2vec2 (not one frame)",
                        path=utterance.audio_path, utterance=utterance.utterance_id)
    return self._encode(tf.constant(waveform)).numpy().astype(np.float32)


class BertExtractor(Extractor):
  """Last-layer [CLS] embedding of the transcript.

  Tokenised in the graph by the encoder's BertTokenizerLayer (vocab.txt and do_lower_case /
  strip_accents from the model directory; BertTokenizer's rules), truncated to the model's
  maximum length: the exported predict_waveform signature tokenises identically.
  """
  name = "bert"
  needs_transcript = True

  def __init__(self, model_path: str):
    if os.path.isdir(model_path) and not os.path.isfile(os.path.join(model_path, "vocab.txt")):
      raise FileNotFoundError(f"BERT model directory {model_path!r} has no vocab.txt (the "
                              "WordPiece vocabulary save_pretrained writes with the tokenizer)")
    from tfser.layers import encoders  # pylint: disable=g-import-not-at-top  (transformers)
    self.encoder = encoders.BertCLSEncoder(model_path)
    self.dim = self.encoder.hidden_size
    self._encode = tf.function(self.encoder, input_signature=[tf.TensorSpec([None], tf.string)])

  def tokenize(self, transcripts: Sequence[str]):
    """Transcripts -> (input_ids, attention_mask), int32 numpy ``[N, longest]`` each."""
    ids, mask = self.encoder.tokenizer(tf.constant(list(transcripts), tf.string))
    return ids.numpy(), mask.numpy()

  def _check(self, utterance):
    if not utterance.transcript or not utterance.transcript.strip():
      raise CorpusError("bert features need a transcript and this utterance has none "
                        "(prepare --transcribe makes one with Whisper)",
                        path=utterance.audio_path, utterance=utterance.utterance_id)

  def __call__(self, utterance, waveform=None):
    return self.batch([utterance], [waveform])[0]

  def batch(self, utterances, waveforms=None):
    for utterance in utterances:
      self._check(utterance)
    if not utterances:
      return np.zeros([0, self.dim], np.float32)
    texts = [u.transcript for u in utterances]
    # Chunks bound the padded [chunk, longest, hidden] activations of a large batch.
    rows = [self._encode(tf.constant(texts[i:i + _BERT_CHUNK], tf.string)).numpy()
            for i in range(0, len(texts), _BERT_CHUNK)]
    return np.concatenate(rows).astype(np.float32)


class IS10Extractor(Extractor):
  """openSMILE IS10 paralinguistic functionals (1582 per utterance) of the 16 kHz waveform."""
  name = "is10"
  needs_audio = True
  dim = IS10_DIM

  def __init__(self):
    import opensmile  # pylint: disable=g-import-not-at-top
    self.smile = opensmile.Smile(feature_set=opensmile.FeatureSet.IS10,
                                 feature_level=opensmile.FeatureLevel.Functionals)
    if len(self.smile.feature_names) != IS10_DIM:
      raise RuntimeError(f"openSMILE IS10 gives {len(self.smile.feature_names)} features, "
                         f"expected {IS10_DIM}")

  def __call__(self, utterance, waveform):
    waveform = self._waveform(utterance, waveform)
    frame = self.smile.process_signal(waveform, SAMPLE_RATE)
    values = frame.to_numpy(np.float32).reshape(-1)
    if values.size != self.dim or not np.all(np.isfinite(values)):
      raise CorpusError(f"openSMILE IS10 gave {values.size} values "
                        f"({np.sum(~np.isfinite(values))} not finite)",
                        path=utterance.audio_path, utterance=utterance.utterance_id)
    return values


def _model_path(name: str, model_dir: Optional[str], model_path: Optional[str]) -> str:
  if model_path is not None:
    return os.fspath(model_path)
  if model_dir is None:
    raise ValueError(f"the {name} extractor needs model_dir (holding {name}/) or model_path; "
                     "tfser never downloads models")
  return os.path.join(os.fspath(model_dir), name)


def make_extractor(name: str, *, model_dir: Optional[str] = None,
                   model_path: Optional[str] = None) -> Extractor:
  """Builds the extractor for one feature name (see the module docstring for directories).

  Raises:
    ValueError: an unknown name, or no directory given for a model-based feature.
    FileNotFoundError: the model directory, its config, weights or tokenizer is missing.
  """
  if name == "wav2vec2":
    return Wav2Vec2Extractor(_model_path(name, model_dir, model_path))
  if name == "bert":
    return BertExtractor(_model_path(name, model_dir, model_path))
  if name == "is10":
    return IS10Extractor()
  raise ValueError(f"unknown feature {name!r}; valid names are {', '.join(FEATURE_NAMES)}")
