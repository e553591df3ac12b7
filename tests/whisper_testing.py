"""A tiny random Whisper directory, written as save_pretrained writes a real one (no download).

The tokenizer is byte-level BPE like Whisper's: the 256 byte symbols, a few merges, and Whisper's
special tokens (<|endoftext|>, <|startoftranscript|>, languages, tasks, <|notimestamps|>).
Its generation_config.json carries lang_to_id / task_to_id / no_timestamps_token_id as real
checkpoints do, so transformers' own ``generate(language=..., task=...)`` runs on it (the tests'
reference for data_prep.transcribe).
"""

import json
import os

import numpy as np

import tfser  # noqa: F401
import transformers
from transformers.models.gpt2 import tokenization_gpt2

MERGES = (("t", "h"), ("th", "e"), ("a", "t"), ("c", "at"), ("Ġ", "the"), ("Ġ", "cat"),
          ("s", "a"), ("sa", "t"), ("Ġ", "sat"))
LANGUAGES = ("en", "de", "fr")
TASKS = ("translate", "transcribe")


def _specials():
  return (["<|endoftext|>", "<|startoftranscript|>"] + [f"<|{l}|>" for l in LANGUAGES] +
          [f"<|{t}|>" for t in TASKS] +
          ["<|startoflm|>", "<|startofprev|>", "<|nocaptions|>", "<|notimestamps|>"])


def write_tokenizer(path):
  """Saves a small WhisperTokenizer + WhisperFeatureExtractor (a WhisperProcessor) to ``path``."""
  os.makedirs(path, exist_ok=True)
  symbols = list(tokenization_gpt2.bytes_to_unicode().values())
  symbols += ["".join(pair) for pair in MERGES]
  vocab = {s: i for i, s in enumerate(symbols)}
  with open(os.path.join(path, "vocab.json"), "w") as f:
    json.dump(vocab, f, ensure_ascii=False)
  with open(os.path.join(path, "merges.txt"), "w") as f:
    f.write("#version: 0.2\n" + "".join(f"{a} {b}\n" for a, b in MERGES))
  tokenizer = transformers.WhisperTokenizer(
      os.path.join(path, "vocab.json"), os.path.join(path, "merges.txt"),
      unk_token="<|endoftext|>", bos_token="<|endoftext|>", eos_token="<|endoftext|>",
      pad_token="<|endoftext|>")
  tokenizer.add_special_tokens({"additional_special_tokens": _specials()[1:]})
  extractor = transformers.WhisperFeatureExtractor(feature_size=80)
  processor = transformers.WhisperProcessor(feature_extractor=extractor, tokenizer=tokenizer)
  processor.save_pretrained(path)
  return processor


def write_whisper(path, seed=0, name_or_path=None):
  """Saves a random tiny TFWhisperForConditionalGeneration and its processor to ``path``.

  Returns (model, processor). name_or_path: recorded in config.json as a hub checkpoint's is.
  """
  transformers.set_seed(seed)
  processor = write_tokenizer(path)
  tokenizer = processor.tokenizer
  ids = lambda token: tokenizer.convert_tokens_to_ids(token)
  config = transformers.WhisperConfig(
      vocab_size=len(tokenizer), num_mel_bins=80, d_model=16, encoder_layers=1,
      decoder_layers=1, encoder_attention_heads=2, decoder_attention_heads=2,
      encoder_ffn_dim=24, decoder_ffn_dim=24, max_source_positions=1500,
      max_target_positions=64, pad_token_id=ids("<|endoftext|>"),
      bos_token_id=ids("<|endoftext|>"), eos_token_id=ids("<|endoftext|>"),
      decoder_start_token_id=ids("<|startoftranscript|>"), begin_suppress_tokens=None)
  model = transformers.TFWhisperForConditionalGeneration(config)
  model(np.zeros([1, 80, 3000], np.float32),
        decoder_input_ids=np.array([[ids("<|startoftranscript|>")]], np.int32))  # build
  generation = transformers.GenerationConfig(
      decoder_start_token_id=ids("<|startoftranscript|>"), eos_token_id=ids("<|endoftext|>"),
      pad_token_id=ids("<|endoftext|>"), bos_token_id=ids("<|endoftext|>"),
      max_length=64, is_multilingual=True,
      lang_to_id={f"<|{l}|>": ids(f"<|{l}|>") for l in LANGUAGES},
      task_to_id={t: ids(f"<|{t}|>") for t in TASKS},
      no_timestamps_token_id=ids("<|notimestamps|>"))
  model.generation_config = generation
  model.save_pretrained(path)
  if name_or_path:  # as hub checkpoints' config.json has it (save_pretrained leaves it out)
    with open(os.path.join(path, "config.json")) as f:
      config_json = json.load(f)
    config_json["_name_or_path"] = name_or_path
    with open(os.path.join(path, "config.json"), "w") as f:
      json.dump(config_json, f, indent=2)
  return model, processor
