"""Transcripts where a corpus has none: Whisper ASR for ``prepare --transcribe`` (issue 15, item 5).

MSP-Podcast up to release 1.8 ships no transcripts (the annotators paper used a commercial ASR),
so its BERT features need machine transcripts. :class:`WhisperTranscriber` runs transformers'
TensorFlow Whisper (``TFWhisperForConditionalGeneration``) from a local checkpoint directory as
``save_pretrained`` writes it (config.json, weights, and the WhisperProcessor's files:
preprocessor_config.json, vocab.json, merges.txt, tokenizer_config.json / added_tokens.json).
Weights load through ``tfser.layers.encoders.load_pretrained`` (tf_model.h5, or a PyTorch
safetensors checkpoint converted in place, without torch). Never downloads anything.

Decoding (the choices Whisper leaves to the caller):
  * 16 kHz mono audio as ``data_prep.audio.load_audio`` decodes it, cut into consecutive 30 s
    windows (Whisper's fixed input: WhisperFeatureExtractor pads / truncates to 30 s; an
    utterance longer than that is transcribed window by window and the texts joined by a space).
  * Greedy (one beam, no sampling), at most ``max_new_tokens`` tokens per window.
  * The decoder prompt is ``<|startoftranscript|> <|lang|> <|task|> <|notimestamps|>`` (an
    English-only checkpoint, generation_config is_multilingual false as the *.en ones have it:
    ``<|startoftranscript|> <|notimestamps|>``, and only English transcription), the ids
    taken from the tokenizer's special tokens (so a checkpoint whose generation_config lacks
    lang_to_id works too) and forced as transformers' ``generate(language=, task=)`` forces them
    (forced_decoder_ids; the checkpoint's own are replaced). Passing the prompt as
    decoder_input_ids instead would be simpler, but TF generate then decodes another sequence
    than greedy (checked with transformers 4.57.6: its first step already differs from the
    argmax of the model's logits after the prompt). Default: English, transcribe. The
    checkpoint's suppress_tokens / begin_suppress_tokens apply as in transformers.
  * The text is the decoded tokens without special tokens, whitespace-stripped.
  * Each window is independent of the others in its batch (Whisper's encoder sees a fixed 30 s
    input with no padding mask), so the batch size changes speed, not text.

Where it runs: ``data_prep.shard_writer`` calls :func:`fill_transcripts` per shard, before the
features, so BERT embeds the ASR text, the text is stored in the shard's records with
``transcript_source`` ``"asr:<model name>"`` (``tfser.data.schema``) and a resumed prepare never
transcribes a finished shard again (its records hold the text). The manifest's ``transcripts``
says which utterances got ASR text and from which model.
"""

import dataclasses
import json
import os
import re
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np

import tfser  # noqa: F401  (Keras flavour before TensorFlow)
import tensorflow as tf

from data_prep.errors import CorpusError
from tfser.data import schema

SAMPLE_RATE = 16000
WINDOW_SECONDS = 30  # Whisper's input length (WhisperFeatureExtractor's chunk_length)
ASR_PREFIX = "asr:"
TASKS = ("transcribe", "translate")
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*(/[\w.-]+)?$")


@dataclasses.dataclass(frozen=True)
class TranscribeConfig:
  """Settings of ``prepare --transcribe`` (each is a prepare flag of the same meaning).

  model_path: the Whisper checkpoint directory (--whisper_dir; default <model_dir>/whisper).
  model_name: the name recorded as "asr:<model_name>" (default: the hub id in the checkpoint's
    config.json ``_name_or_path`` if it has one, else the directory's name).
  language: a Whisper language code or name ("en", "english"); task: transcribe or translate.
  batch_size: 30 s windows per generate call; max_new_tokens: per window (greedy).
  every_utterance: transcribe all utterances (replacing the corpus's transcripts), not only
    those without one.
  xla: compile generate with XLA (one compilation per batch shape; the last batch is padded).
  """
  model_path: str
  model_name: Optional[str] = None
  language: str = "en"
  task: str = "transcribe"
  batch_size: int = 16
  max_new_tokens: int = 128
  every_utterance: bool = False
  xla: bool = False


def _language_token(language: str) -> str:
  """'en' / 'English' -> '<|en|>' (Whisper's codes, as transformers' tokenizer lists them)."""
  # pylint: disable-next=g-import-not-at-top
  from transformers.models.whisper.tokenization_whisper import LANGUAGES, TO_LANGUAGE_CODE
  key = str(language).strip().lower()
  if key in LANGUAGES:
    return f"<|{key}|>"
  if key in TO_LANGUAGE_CODE:
    return f"<|{TO_LANGUAGE_CODE[key]}|>"
  raise ValueError(f"--whisper_language={language!r} is not a Whisper language (a code such as "
                   "en, de, zh or a name such as english)")


def _model_name(path: str) -> str:
  try:
    with open(os.path.join(path, "config.json")) as f:
      name = str(json.load(f).get("_name_or_path") or "")
  except (OSError, ValueError):
    name = ""
  if name and _HUB_ID.match(name) and not os.path.isabs(name):
    return name
  return os.path.basename(os.path.normpath(path))


class WhisperTranscriber:
  """Batched greedy Whisper ASR of 16 kHz waveforms (see the module docstring).

  Attributes: name (the model name), source ("asr:<name>"), every_utterance, fingerprint (set by
  prepare: the checkpoint files), settings (JSON-able, for the manifest and the fingerprint).
  Raises (constructor) FileNotFoundError for a missing directory, config, weights or tokenizer;
  ValueError for a bad language, task or size.
  """

  def __init__(self, config: TranscribeConfig):
    import transformers  # pylint: disable=g-import-not-at-top
    from tfser.layers import encoders  # pylint: disable=g-import-not-at-top
    path = os.fspath(config.model_path)
    if config.task not in TASKS:
      raise ValueError(f"--whisper_task={config.task!r}: one of {', '.join(TASKS)}")
    for flag, value in (("whisper_batch", config.batch_size),
                        ("whisper_max_new_tokens", config.max_new_tokens)):
      if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"--{flag}={value!r}: use an integer >= 1")
    for needed in ("preprocessor_config.json", "vocab.json"):
      if os.path.isdir(path) and not os.path.isfile(os.path.join(path, needed)):
        raise FileNotFoundError(f"Whisper directory {path!r} has no {needed} (a WhisperProcessor's "
                                "save_pretrained writes it beside the model)")
    self.model = encoders.load_pretrained(transformers.TFWhisperForConditionalGeneration, path)
    self.processor = transformers.WhisperProcessor.from_pretrained(path, local_files_only=True)
    tokenizer = self.processor.tokenizer
    multilingual = getattr(self.model.generation_config, "is_multilingual", None) is not False
    if multilingual:
      prompt_tokens = ["<|startoftranscript|>", _language_token(config.language),
                       f"<|{config.task}|>", "<|notimestamps|>"]
    else:  # an English-only checkpoint (*.en): no language or task token in its prompt
      if _language_token(config.language) != "<|en|>" or config.task != "transcribe":
        raise ValueError(f"--whisper_language={config.language!r} --whisper_task={config.task!r}:"
                         f" {path!r} is an English-only Whisper (it transcribes English only)")
      prompt_tokens = ["<|startoftranscript|>", "<|notimestamps|>"]
    prompt = [tokenizer.convert_tokens_to_ids(t) for t in prompt_tokens]
    missing = [t for t, i in zip(prompt_tokens, prompt) if i is None or i == tokenizer.unk_token_id]
    if missing:
      raise ValueError(f"--whisper_language={config.language!r}: the Whisper tokenizer in "
                       f"{path!r} lacks {', '.join(missing)}")
    limit = int(self.model.config.max_target_positions) - len(prompt)
    if config.max_new_tokens > limit:
      raise ValueError(f"--whisper_max_new_tokens={config.max_new_tokens}: this model decodes at "
                       f"most {limit} tokens after its {len(prompt)}-token prompt")
    # The prompt above replaces the checkpoint's forced ids (language / task / timestamps);
    # generate reads them from the generation config when config.forced_decoder_ids is None.
    self.model.config.forced_decoder_ids = None
    self.model.generation_config.forced_decoder_ids = [[i, t] for i, t in enumerate(prompt)][1:]
    self.config = config
    self.name = config.model_name or _model_name(path)
    self.source = ASR_PREFIX + self.name
    self.every_utterance = bool(config.every_utterance)
    self.fingerprint = ""
    self._prompt = prompt
    self._window = WINDOW_SECONDS * SAMPLE_RATE
    # The forced tokens count as new tokens for generate.
    generate = lambda features: self.model.generate(
        features, max_new_tokens=config.max_new_tokens + len(prompt) - 1, do_sample=False,
        num_beams=1, return_dict_in_generate=False)
    self._generate = tf.function(generate, jit_compile=True) if config.xla else generate

  @property
  def settings(self) -> dict:
    """What the text depends on (besides the audio): recorded in the manifest and fingerprint."""
    return {"model": self.name, "source": self.source, "fingerprint": str(self.fingerprint),
            "language": _language_token(self.config.language).strip("<|>"),
            "prompt": self.processor.tokenizer.convert_ids_to_tokens(self._prompt),
            "task": self.config.task, "max_new_tokens": self.config.max_new_tokens,
            "decoding": "greedy", "every_utterance": self.every_utterance}

  def needs(self, utt: schema.Utterance) -> bool:
    """Whether ``utt`` gets ASR text: always with every_utterance, else when it has none."""
    return self.every_utterance or not utt.transcript.strip()

  def transcribe(self, waveforms: Sequence[np.ndarray]) -> List[str]:
    """Texts of float32 mono 16 kHz waveforms ``[samples]`` (each non-empty), in order."""
    windows, owner = [], []
    for i, waveform in enumerate(waveforms):
      waveform = np.asarray(waveform, np.float32).reshape(-1)
      if not waveform.size:
        raise ValueError(f"waveform {i} is empty")
      for start in range(0, waveform.size, self._window):
        windows.append(waveform[start:start + self._window])
        owner.append(i)
    texts = []
    size = self.config.batch_size
    for start in range(0, len(windows), size):
      batch = windows[start:start + size]
      count = len(batch)
      if self.config.xla:  # one compiled shape
        batch = batch + [np.zeros(1, np.float32)] * (size - count)
      features = self.processor.feature_extractor(
          batch, sampling_rate=SAMPLE_RATE, return_tensors="np").input_features
      tokens = np.asarray(self._generate(tf.constant(features)))
      texts += self.processor.tokenizer.batch_decode(tokens[:count], skip_special_tokens=True)
    joined = [[] for _ in waveforms]
    for i, text in zip(owner, texts):
      if text.strip():
        joined[i].append(text.strip())
    return [" ".join(parts) for parts in joined]


def fill_transcripts(utterances: Sequence[schema.Utterance], transcriber: WhisperTranscriber,
                     loader: Callable[[str], np.ndarray],
                     progress: Callable[[int], None] = lambda n: None
                     ) -> Tuple[List[schema.Utterance], List[str], List[str],
                                Dict[str, CorpusError]]:
  """ASR text for the utterances that need it (``transcriber.needs``), a batch at a time.

  Returns (utterances, ids given ASR text, ids the model gave no text (e.g. silence), {id:
  CorpusError} for those whose audio is missing or unreadable). The returned utterances are
  copies with ``transcript`` and ``transcript_source`` (``transcriber.source``) set where
  transcribed (transcript "" and source "" where no text came out: a transcript of the corpus
  is then replaced by nothing only with every_utterance); the others are the records passed in. The
  caller drops or raises for the failed ones (as for a feature error). loader: path -> float32
  ``[samples]`` at 16 kHz (``data_prep.audio.load_audio``).
  """
  out = list(utterances)
  todo = [i for i, u in enumerate(out) if transcriber.needs(u)]
  done, silent, errors = [], [], {}
  step = transcriber.config.batch_size
  for start in range(0, len(todo), step):
    batch, waveforms = [], []
    for i in todo[start:start + step]:
      utt = out[i]
      try:
        if not utt.audio_path:
          raise CorpusError("no audio path, but --transcribe needs the audio",
                            utterance=f"{utt.corpus}/{utt.utterance_id}")
        waveform = np.asarray(loader(utt.audio_path), np.float32).reshape(-1)
        if not waveform.size:
          raise CorpusError("empty waveform", path=utt.audio_path,
                            utterance=f"{utt.corpus}/{utt.utterance_id}")
      except CorpusError as e:
        errors[utt.utterance_id] = e
        continue
      batch.append(i)
      waveforms.append(waveform)
    for i, text in zip(batch, transcriber.transcribe(waveforms) if waveforms else []):
      out[i] = dataclasses.replace(out[i], transcript=text,
                                   transcript_source=transcriber.source if text else "")
      (done if text else silent).append(out[i].utterance_id)
    progress(len(todo[start:start + step]))
  return out, done, silent, errors
