"""In-graph feature extractors: wav2vec 2.0 mean-pooled and BERT [CLS] embeddings as Keras layers.

The same layers compute the stored features in ``data_prep.features`` and sit inside the
exported SavedModels' ``predict_waveform`` signatures, so a model served from a waveform sees
exactly the features it was trained on.

Model directories (no hub downloads, ever): a directory as ``save_pretrained`` writes it, i.e.
``config.json`` plus weights in one of these forms, tried in this order:
  1. ``tf_model.h5`` (TensorFlow weights);
  2. ``model.safetensors`` (or a sharded ``model.safetensors.index.json``) saved from TensorFlow
     or from PyTorch. A PyTorch-format safetensors file loads WITHOUT torch: tfser reads it
     with ``safetensors.numpy`` and maps names/transposes with transformers' own converter
     (``load_pytorch_state_dict_in_tf2_model``; transformers' from_pretrained route for it
     fails with safetensors 0.8, see :func:`_load_pytorch_safetensors`). tfser then converts
     it in place by writing ``tf_model.h5`` beside it (atomically; skipped with a warning if the
     directory is read-only), so later loads read the TF weights directly;
  3. ``pytorch_model.bin`` only: a pickled PyTorch checkpoint needs torch to read, which tfser
     does not install. The error says how to convert it where torch is available.

BERT takes transcripts as strings: tokenisation runs in TF ops (``tfser.layers.wordpiece``,
BertTokenizer's rules without tensorflow-text), so a SavedModel signature can take text.

IS10 (openSMILE) cannot run in a TensorFlow graph: SMILExtract is a native binary driven from
Python, and a ``tf.py_function`` / ``tf.numpy_function`` body is not serialised into a
SavedModel, only a key into the saving process's callback registry (checked with TF 2.17.1: the
reloaded signature works inside the process that saved it, and in any other process fails with
"ValueError: Could not find callback with key=pyfunc_N in the registry", or would silently run
whichever Python function that process registered under the same key). So exports that use
IS10 take precomputed features only.
"""

import json
import logging
import os
from typing import Any, Dict, List, Optional, Type

import tfser  # noqa: F401  (Keras flavour before TensorFlow)
import tensorflow as tf
import transformers

from tfser.layers import wordpiece
from tfser.core import atomic

_LOG = logging.getLogger(__name__)

TF_WEIGHTS = "tf_model.h5"
SAFE_WEIGHTS = "model.safetensors"
SAFE_INDEX = "model.safetensors.index.json"
PT_WEIGHTS = "pytorch_model.bin"

# Weights a PyTorch checkpoint may lack without harm: SpecAugment's mask embedding (training
# only) and BERT's pooler (unused: the [CLS] vector is read before it).
_BENIGN_MISSING = ("masked_spec_embed", "pooler")

# Wav2Vec2FeatureExtractor's normalisation: (x - mean) / sqrt(var + 1e-7) per utterance.
_NORMALIZE_EPSILON = 1e-7


def _safetensors_files(path: str) -> List[str]:
  """The safetensors file(s) of a checkpoint directory (one file, or the shards of an index)."""
  index = os.path.join(path, SAFE_INDEX)
  if os.path.isfile(index):
    with open(index) as f:
      return [os.path.join(path, name) for name in sorted(set(json.load(f)["weight_map"].values()))]
  return [os.path.join(path, SAFE_WEIGHTS)]


def _safetensors_format(file: str) -> str:
  from safetensors import safe_open  # pylint: disable=g-import-not-at-top
  with safe_open(file, framework="np") as f:
    return (f.metadata() or {}).get("format", "")


def _load_pytorch_safetensors(model_class: Type[Any], path: str, files: List[str],
                              config_overrides: Dict[str, Any]) -> tf.keras.Model:
  """Builds the TF model and fills it from PyTorch-format safetensors, without torch.

  transformers 4.57.6's own route (from_pretrained) hands a ``safe_open`` handle to its
  converter, which iterates it; safetensors 0.8's handle is not iterable (TypeError), so the
  tensors are read as numpy here and given to the same converter as a dict.
  """
  from safetensors.numpy import load_file  # pylint: disable=g-import-not-at-top
  from transformers import modeling_tf_pytorch_utils  # pylint: disable=g-import-not-at-top
  config = model_class.config_class.from_pretrained(path, local_files_only=True,
                                                    **config_overrides)
  model = model_class(config)
  state = {}
  for file in files:
    state.update(load_file(file))
  _, info = modeling_tf_pytorch_utils.load_pytorch_state_dict_in_tf2_model(
      model, state, allow_missing_keys=True, output_loading_info=True)
  missing = [k for k in info["missing_keys"] if not any(
      benign in k for benign in _BENIGN_MISSING)]
  total = len(model.weights)
  if len(missing) > total // 2:
    raise ValueError(f"{path}: the PyTorch checkpoint does not fit {model_class.__name__} "
                     f"({len(missing)} of {total} weights missing, e.g. {missing[:3]})")
  if missing:
    _LOG.warning("%s: %d weights not in the checkpoint stay randomly initialised: %s", path,
                 len(missing), missing)
  return model


def _convert_in_place(model: tf.keras.Model, path: str) -> None:
  """Writes ``tf_model.h5`` beside a PyTorch checkpoint (atomically), or warns if it cannot."""
  target = os.path.join(path, TF_WEIGHTS)
  try:
    with atomic.replacing(target, suffix=".h5") as temporary:
      model.save_weights(temporary)  # what TFPreTrainedModel.save_pretrained writes
    _LOG.info("converted the PyTorch checkpoint in %s to %s", path, TF_WEIGHTS)
  except OSError as error:
    _LOG.warning("could not write %s (%s); the PyTorch checkpoint will be converted again on "
                 "every load", target, error)


def load_pretrained(model_class: Type[Any], path: str, **config_overrides) -> tf.keras.Model:
  """Loads a transformers TF model class from a local directory (see the module docstring).

  config_overrides: config attributes to replace (e.g. mask_time_prob=0.0).
  Raises:
    FileNotFoundError: the directory, its config.json or any weights file is missing, or only a
      pickled PyTorch checkpoint is there (the message says how to convert it).
  """
  path = os.fspath(path)
  if not os.path.isdir(path):
    raise FileNotFoundError(f"model directory {path!r} does not exist (tfser loads models only "
                            "from local directories written by save_pretrained)")
  if not os.path.isfile(os.path.join(path, "config.json")):
    raise FileNotFoundError(f"model directory {path!r} has no config.json")
  has = lambda name: os.path.isfile(os.path.join(path, name))
  kwargs = dict(config_overrides, local_files_only=True)
  if has(TF_WEIGHTS):
    return model_class.from_pretrained(path, use_safetensors=False, **kwargs)
  if has(SAFE_WEIGHTS) or has(SAFE_INDEX):
    files = _safetensors_files(path)
    if _safetensors_format(files[0]) != "pt":
      return model_class.from_pretrained(path, **kwargs)
    model = _load_pytorch_safetensors(model_class, path, files, config_overrides)
    _convert_in_place(model, path)
    return model
  if has(PT_WEIGHTS):
    raise FileNotFoundError(
        f"model directory {path!r} holds only {PT_WEIGHTS}, a pickled PyTorch checkpoint, and "
        "reading it needs torch, which tfser does not install. Convert it once where torch is "
        "installed, e.g. python -c \"from transformers import AutoModel; "
        f"AutoModel.from_pretrained('{path}').save_pretrained('{path}', "
        "safe_serialization=True)\" (writes model.safetensors, which tfser reads without torch "
        "and converts to tf_model.h5 in place).")
  raise FileNotFoundError(f"model directory {path!r} has no weights ({TF_WEIGHTS}, "
                          f"{SAFE_WEIGHTS} or {PT_WEIGHTS})")


def _read_do_normalize(path: Optional[str]) -> bool:
  """Wav2Vec2FeatureExtractor's do_normalize from preprocessor_config.json (default True)."""
  if path:
    config_file = os.path.join(path, "preprocessor_config.json")
    if os.path.isfile(config_file):
      with open(config_file) as f:
        return bool(json.load(f).get("do_normalize", True))
  return True


@tf.keras.utils.register_keras_serializable(package="tfser")
class Wav2Vec2Encoder(tf.keras.layers.Layer):
  """16 kHz waveform -> wav2vec 2.0 last hidden layer, mean-pooled over valid frames.

  Call: ``layer(waveform, lengths=None)`` with waveform ``[batch, samples]`` float32 in [-1, 1]
  at 16 kHz and lengths ``[batch]`` int (valid samples per row; None = all). Returns
  ``[batch, hidden_size]`` float32 (768 for wav2vec2-base).

  Each row is normalised to zero mean / unit variance over its valid samples when do_normalize
  (as Wav2Vec2FeatureExtractor does; read from preprocessor_config.json), padding is zeroed,
  and the mean over time counts only frames computed from valid samples. SpecAugment masking
  is switched off (mask_time_prob = mask_feature_prob = 0), which also lets the layer compile
  under XLA.

  Padding: models with layer-norm feature encoders (feat_extract_norm="layer", e.g. the large
  LV-60 models) get the attention mask and give each padded row the same result as alone.
  Group-norm encoders (wav2vec2-base) normalise the first conv over the whole padded row and
  were trained without an attention mask, so padded rows differ slightly from unpadded ones
  (as in transformers); with ``per_utterance=True`` every row is trimmed to its length and run
  alone (tf.map_fn; exact, not XLA-compilable), which data_prep uses.
  """

  def __init__(self, model_path: Optional[str] = None,
               transformer_config: Optional[Dict[str, Any]] = None,
               do_normalize: Optional[bool] = None, per_utterance: bool = False, **kwargs):
    super().__init__(**kwargs)
    overrides = dict(mask_time_prob=0.0, mask_feature_prob=0.0)
    if model_path is not None:
      self.model = load_pretrained(transformers.TFWav2Vec2Model, model_path, **overrides)
    elif transformer_config is not None:
      config = transformers.Wav2Vec2Config.from_dict(dict(transformer_config, **overrides))
      self.model = transformers.TFWav2Vec2Model(config)
    else:
      raise ValueError("Wav2Vec2Encoder needs model_path or transformer_config")
    self.do_normalize = (_read_do_normalize(model_path) if do_normalize is None
                         else bool(do_normalize))
    self.per_utterance = bool(per_utterance)
    self.hidden_size = int(self.model.config.hidden_size)

  def get_config(self):
    # Weights travel in checkpoints / SavedModels; the config rebuilds the architecture.
    return dict(super().get_config(), transformer_config=self.model.config.to_dict(),
                do_normalize=self.do_normalize, per_utterance=self.per_utterance)

  def frame_lengths(self, lengths):
    """Valid samples ``[batch]`` -> frames the conv feature encoder makes of them (0 when a
    row is shorter than its receptive field, 400 samples for wav2vec2-base)."""
    main_layer = self.model.wav2vec2
    return main_layer._get_feat_extract_output_lengths(lengths)  # pylint: disable=protected-access

  def _normalize(self, waveform, sample_mask):
    if not self.do_normalize:
      return waveform * sample_mask
    count = tf.maximum(tf.reduce_sum(sample_mask, axis=1, keepdims=True), 1.0)
    mean = tf.reduce_sum(waveform * sample_mask, axis=1, keepdims=True) / count
    variance = tf.reduce_sum(tf.square(waveform - mean) * sample_mask, axis=1,
                             keepdims=True) / count
    return (waveform - mean) / tf.sqrt(variance + _NORMALIZE_EPSILON) * sample_mask

  def _pool_batch(self, waveform, lengths):
    """waveform [batch, samples], lengths [batch] int32 -> [batch, hidden]."""
    samples = tf.shape(waveform)[1]
    sample_mask = tf.sequence_mask(lengths, samples, dtype=tf.float32)
    inputs = self._normalize(waveform, sample_mask)
    attention_mask = None
    if self.model.config.feat_extract_norm == "layer":
      attention_mask = tf.cast(sample_mask, tf.int32)
    hidden = self.model(inputs, attention_mask=attention_mask,
                        training=False).last_hidden_state  # [batch, frames, hidden]
    frame_lengths = self.frame_lengths(lengths)
    frame_mask = tf.sequence_mask(frame_lengths, tf.shape(hidden)[1], dtype=hidden.dtype)
    total = tf.reduce_sum(hidden * frame_mask[:, :, None], axis=1)
    count = tf.maximum(tf.reduce_sum(frame_mask, axis=1, keepdims=True), 1.0)
    return tf.cast(total / count, tf.float32)

  def call(self, waveform, lengths=None):
    waveform = tf.convert_to_tensor(waveform, tf.float32)
    if lengths is None:
      lengths = tf.fill([tf.shape(waveform)[0]], tf.shape(waveform)[1])
    lengths = tf.cast(lengths, tf.int32)
    if not self.per_utterance:
      return self._pool_batch(waveform, lengths)

    def one(row_and_length):
      row, length = row_and_length
      return self._pool_batch(row[None, :length], length[None])[0]
    return tf.map_fn(one, (waveform, lengths),
                     fn_output_signature=tf.TensorSpec([self.hidden_size], tf.float32))


@tf.keras.utils.register_keras_serializable(package="tfser")
class BertCLSEncoder(tf.keras.layers.Layer):
  """Transcripts (or token ids) -> BERT's last-layer [CLS] embedding.

  Call: ``layer(texts)`` with texts ``[batch]`` UTF-8 strings, tokenised in the graph by
  :class:`tfser.layers.wordpiece.BertTokenizerLayer` (BertTokenizer's rules in plain TF ops:
  tensorflow-text is not installed), truncated to the model's max_position_embeddings; or
  ``layer(input_ids, attention_mask=None)`` with int ``[batch, tokens]`` ids (rows starting with
  [CLS]) and mask (1 = real token; None = all real). Returns ``[batch, hidden_size]`` float32.

  model_path: a save_pretrained BERT directory; its vocab.txt / tokenizer_config.json give the
  tokenizer (without a vocab.txt the layer takes token ids only).
  """

  def __init__(self, model_path: Optional[str] = None,
               transformer_config: Optional[Dict[str, Any]] = None,
               tokenizer_config: Optional[Dict[str, Any]] = None, **kwargs):
    super().__init__(**kwargs)
    if model_path is not None:
      self.model = load_pretrained(transformers.TFBertModel, model_path)
    elif transformer_config is not None:
      config = transformers.BertConfig.from_dict(dict(transformer_config))
      self.model = transformers.TFBertModel(config)
    else:
      raise ValueError("BertCLSEncoder needs model_path or transformer_config")
    self.hidden_size = int(self.model.config.hidden_size)
    max_length = int(self.model.config.max_position_embeddings)
    if tokenizer_config is not None:
      self.tokenizer = wordpiece.BertTokenizerLayer.from_config(tokenizer_config)
    elif model_path is not None and os.path.isfile(os.path.join(model_path, "vocab.txt")):
      self.tokenizer = wordpiece.BertTokenizerLayer.from_model_dir(model_path, max_length)
    else:
      self.tokenizer = None

  def get_config(self):
    return dict(super().get_config(), transformer_config=self.model.config.to_dict(),
                tokenizer_config=self.tokenizer.get_config() if self.tokenizer else None)

  def call(self, inputs, attention_mask=None):
    inputs = tf.convert_to_tensor(inputs)
    if inputs.dtype == tf.string:
      if self.tokenizer is None:
        raise ValueError("this BertCLSEncoder has no tokenizer (no vocab.txt): pass token ids")
      input_ids, attention_mask = self.tokenizer(inputs)
    else:
      input_ids = tf.cast(inputs, tf.int32)
    if attention_mask is None:
      attention_mask = tf.ones_like(input_ids)
    outputs = self.model(input_ids=input_ids, attention_mask=tf.cast(attention_mask, tf.int32),
                         training=False)
    return tf.cast(outputs.last_hidden_state[:, 0], tf.float32)
