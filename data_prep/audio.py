"""Audio decoding: any corpus clip -> float32 mono 16 kHz waveform in [-1, 1].

Two entry points:
  * :func:`load_audio` (eager, numpy out): what the feature extractors and the writer use. Decodes
    WAV, FLAC (LibriSpeech) and the other formats tensorflow-io reads with
    ``tfio.audio.AudioIOTensor``; for a WAV that tensorflow-io cannot read it falls back to core
    ``tf.audio.decode_wav`` (16-bit PCM). Channels are averaged, then the signal is resampled to
    ``target_rate`` with ``tfio.audio.resample`` (its filter delay removed). 8/16/24/32-bit
    integer and float WAV and FLAC are checked against libsndfile in tests/test_audio.py.
  * :func:`decode_and_resample` (graph mode, usable inside ``tf.data``): 16-bit WAV or FLAC
    bytes or a path tensor -> ``[samples]`` float32 at ``target_rate``. tensorflow-io's resampler takes the
    input rate as a static attribute, so the graph version supports the rates in
    :data:`GRAPH_RATES` (it raises ``InvalidArgumentError`` naming the rate for any other).

A missing, unreadable or empty (zero-sample) file raises :class:`data_prep.errors.CorpusError`
naming the file, so readers can skip it with ``--skip_bad`` and record why.
"""

import functools
import os
import re
import struct
from typing import Tuple, Union

import numpy as np

import tfser  # noqa: F401  (Keras flavour before TensorFlow)
import tensorflow as tf
import tensorflow_io as tfio

from data_prep.errors import CorpusError

TARGET_RATE = 16000

# Input rates the graph-mode decoder can resample from (tfio's resample op wants a static rate).
GRAPH_RATES = (8000, 11025, 12000, 16000, 22050, 24000, 32000, 44100, 48000, 88200, 96000)

_WAVE_FORMAT_PCM = 1
_WAVE_FORMAT_EXTENSIBLE = 0xFFFE

# Full-scale value of each integer PCM dtype: dividing by it maps samples into [-1, 1).
_FULL_SCALE = {tf.int16: 32768.0, tf.int32: 2147483648.0, tf.int8: 128.0}


def _to_unit_float(samples: tf.Tensor) -> tf.Tensor:
  """Integer PCM (or float) samples -> float32 in [-1, 1]."""
  if samples.dtype == tf.uint8:  # 8-bit WAV is unsigned, centred on 128
    return (tf.cast(samples, tf.float32) - 128.0) / 128.0
  if samples.dtype in _FULL_SCALE:
    return tf.cast(samples, tf.float32) / _FULL_SCALE[samples.dtype]
  return tf.cast(samples, tf.float32)


@functools.lru_cache(maxsize=None)
def _resampler_delay(rate_in: int, rate_out: int) -> float:
  """tfio.audio.resample's filter delay in seconds, measured once per rate pair.

  Its output lags the input by a fixed delay (32 samples at the lower of the two rates with
  tensorflow-io 0.37.1) and drops as much from the end. Measured rather than hard-coded so that
  another tensorflow-io release stays aligned: the impulse response's peak gives the delay to a
  sample, the phase of a resampled 200 Hz sine refines it below a sample.
  """
  length, position = rate_in // 5, rate_in // 10
  impulse = np.zeros(length, np.float32)
  impulse[position] = 1.0
  response = tfio.audio.resample(tf.constant(impulse[:, None]), rate_in=rate_in,
                                 rate_out=rate_out).numpy()[:, 0]
  coarse = int(np.argmax(response)) / rate_out - position / rate_in
  frequency = 200.0
  probe = np.sin(2 * np.pi * frequency * np.arange(rate_in) / rate_in).astype(np.float32)
  out = tfio.audio.resample(tf.constant(probe[:, None]), rate_in=rate_in,
                            rate_out=rate_out).numpy()[:, 0].astype(np.float64)
  times = np.arange(out.size)[out.size // 4:3 * out.size // 4] / rate_out
  basis = np.stack([np.sin(2 * np.pi * frequency * times),
                    np.cos(2 * np.pi * frequency * times)], axis=1)
  (a, b), *_ = np.linalg.lstsq(basis, out[out.size // 4:3 * out.size // 4], rcond=None)
  # out(t) = sin(2 pi f (t - delay)) = cos(2 pi f delay) sin(.) - sin(2 pi f delay) cos(.)
  fine = np.arctan2(-b, a) / (2 * np.pi * frequency)
  period = 1.0 / frequency
  return float(fine + period * np.round((coarse - fine) / period))


@functools.lru_cache(maxsize=None)
def _alignment(rate_in: int, rate_out: int) -> Tuple[int, int]:
  """(lead, drop): leading input zeros and dropped output samples that cancel the delay.

  k leading zeros add k / rate_in seconds of delay and dropping m outputs removes m / rate_out;
  the pair with the smallest residual is chosen (residual well under a sample).
  """
  with tf.init_scope():  # measure eagerly even when called while tracing a tf.function
    delay = _resampler_delay(rate_in, rate_out)
  return min(((k, int(round((delay + k / rate_in) * rate_out))) for k in range(64)),
             key=lambda km: abs(km[1] / rate_out - km[0] / rate_in - delay))


def _resample_tensor(mono: tf.Tensor, rate_in: int, rate_out: int) -> tf.Tensor:
  """``[samples]`` float32 tensor -> ``[(samples * rate_out + rate_in // 2) // rate_in]``."""
  lead, drop = _alignment(rate_in, rate_out)
  length = tf.shape(mono, out_type=tf.int64)[0]
  out_length = (length * rate_out + rate_in // 2) // rate_in
  # Zero tail so that the output samples the filter pushes past the end are produced.
  tail = int(np.ceil((drop + 1) * rate_in / rate_out)) + 1
  padded = tf.concat([tf.zeros([lead], tf.float32), mono, tf.zeros([tail], tf.float32)], 0)
  out = tfio.audio.resample(padded[:, None], rate_in=rate_in, rate_out=rate_out)[:, 0]
  return out[drop:drop + out_length]


def resample(waveform: np.ndarray, rate_in: int, rate_out: int = TARGET_RATE) -> np.ndarray:
  """Resamples a mono float waveform ``[samples]`` from ``rate_in`` Hz to ``rate_out`` Hz.

  Uses ``tfio.audio.resample`` and removes its filter delay (see :func:`_resampler_delay` and
  :func:`_alignment`), so sample ``n`` of the output lies at time ``n / rate_out`` of the
  input's timeline. Returns float32 ``[(samples * rate_out + rate_in // 2) // rate_in]``.
  """
  waveform = np.asarray(waveform, np.float32).reshape(-1)
  rate_in, rate_out = int(rate_in), int(rate_out)
  if rate_in == rate_out or waveform.size == 0:
    return waveform
  return _resample_tensor(tf.constant(waveform), rate_in, rate_out).numpy().astype(np.float32)


def _wav_format(path: str) -> Tuple[int, int]:
  """(format tag, bits per sample) from a RIFF/WAVE file's fmt chunk; (0, 0) if not a WAV."""
  with open(path, "rb") as f:
    header = f.read(12)
    if len(header) < 12 or header[:4] != b"RIFF" or header[8:12] != b"WAVE":
      return 0, 0
    while True:
      chunk = f.read(8)
      if len(chunk) < 8:
        return 0, 0
      chunk_id, size = chunk[:4], struct.unpack("<I", chunk[4:])[0]
      if chunk_id == b"fmt ":
        fmt = f.read(size)
        tag, bits = struct.unpack("<H", fmt[:2])[0], struct.unpack("<H", fmt[14:16])[0]
        if tag == _WAVE_FORMAT_EXTENSIBLE and len(fmt) >= 26:
          tag = struct.unpack("<H", fmt[24:26])[0]  # the sub-format GUID starts with the tag
        return tag, bits
      f.seek(size + (size & 1), 1)  # chunks are padded to an even size


def _decode_eager(path: str):
  """Returns (samples [frames, channels] float32 in [-1, 1], rate in Hz)."""
  try:
    audio = tfio.audio.AudioIOTensor(path)
    rate = int(audio.rate.numpy())
    samples = audio.to_tensor()
    if samples.dtype == tf.float32 and _wav_format(path) == (_WAVE_FORMAT_PCM, 32):
      # tensorflow-io 0.37.1 hands 32-bit integer PCM WAV back as float32 holding the integer
      # bits (values like 1e-30 and 1e37); reinterpret them as the integers they are.
      samples = tf.bitcast(samples, tf.int32)
    return _to_unit_float(samples).numpy(), rate
  except _DECODE_ERRORS as tfio_error:
    if not path.lower().endswith(".wav"):
      raise CorpusError(f"unreadable audio ({_first_line(tfio_error)})", path=path,
                        kind=UNREADABLE) from None
    try:  # core TF fallback: 16-bit PCM WAV only
      decoded, rate = tf.audio.decode_wav(tf.io.read_file(path))
      return decoded.numpy(), int(rate.numpy())
    except _DECODE_ERRORS as wav_error:
      raise CorpusError(
          f"unreadable audio (tensorflow-io: {_first_line(tfio_error)}; tf.audio.decode_wav: "
          f"{_first_line(wav_error)})", path=path, kind=UNREADABLE) from None


# What decoding a damaged file raises: TensorFlow op errors, and UnicodeDecodeError when an op's
# message quotes the file's bytes.
_DECODE_ERRORS = (tf.errors.OpError, ValueError, TypeError, RuntimeError)
UNREADABLE = "unreadable audio"
# TensorFlow's decoration of an eager op's message: "{{function_node __wrapped__X_device_/...}}"
# before it and " [Op:X] name: " after it. Neither means anything to a user.
_TF_NOISE = re.compile(r"\{\{function_node [^}]*\}\}\s*|\s*\[Op:[^\]]*\](\s*name:\s*\S*)?")


def _first_line(error: Exception) -> str:
  """An op error's own message, one line, without TensorFlow's function_node / [Op:] text."""
  if isinstance(error, UnicodeDecodeError):  # an op's message quoting the file's bytes
    return "malformed data (not a WAV file?)"
  text = getattr(error, "message", None) or str(error)
  text = _TF_NOISE.sub(" ", text).strip()
  return " ".join(text.splitlines()[0].split()) if text else type(error).__name__


def load_audio(path: Union[str, os.PathLike], target_rate: int = TARGET_RATE) -> np.ndarray:
  """Decodes an audio file to a mono float32 waveform ``[samples]`` in [-1, 1] at target_rate Hz.

  Multichannel audio is averaged over channels before resampling.
  Raises:
    CorpusError: the file is missing, unreadable, or holds no samples (the message names it).
  """
  path = os.fspath(path)
  if not tf.io.gfile.exists(path):
    raise CorpusError("audio file not found", path=path)
  if tf.io.gfile.isdir(path):
    raise CorpusError("audio path is a directory, not a file", path=path)
  if tf.io.gfile.stat(path).length == 0:
    raise CorpusError("empty audio file (0 bytes)", path=path)
  samples, rate = _decode_eager(path)
  if samples.size == 0:
    raise CorpusError("audio file holds no samples", path=path)
  if rate <= 0:
    raise CorpusError(f"invalid sample rate {rate}", path=path)
  mono = samples.mean(axis=1) if samples.ndim == 2 else samples.reshape(-1)
  return resample(mono.astype(np.float32), rate, target_rate)


def _flac_rate(contents: tf.Tensor) -> tf.Tensor:
  """Sample rate of FLAC bytes, read from the STREAMINFO block (20 bits at byte 18)."""
  header = tf.io.decode_raw(tf.strings.substr(contents, 18, 3), tf.uint8)
  header = tf.cast(header, tf.int32)
  return header[0] * 4096 + header[1] * 16 + header[2] // 16


def _graph_resample(mono: tf.Tensor, rate: tf.Tensor, target_rate: int) -> tf.Tensor:
  """Resamples ``[samples]`` from a rate known only at run time (one of GRAPH_RATES)."""
  def branch(rate_in):
    if rate_in == target_rate:
      return lambda: mono
    return lambda: _resample_tensor(mono, rate_in, target_rate)
  matches = tf.equal(tf.constant(GRAPH_RATES, tf.int32), rate)
  check = tf.debugging.Assert(
      tf.reduce_any(matches),
      [f"decode_and_resample: sample rate not in {GRAPH_RATES} (use load_audio):", rate])
  with tf.control_dependencies([check]):
    index = tf.argmax(tf.cast(matches, tf.int32), output_type=tf.int32)
  return tf.switch_case(index, [branch(r) for r in GRAPH_RATES])


def decode_and_resample(path_or_bytes: tf.Tensor, target_rate: int = TARGET_RATE,
                        is_bytes: bool = False) -> tf.Tensor:
  """Graph-mode decode: a scalar string tensor (a path, or file bytes with is_bytes=True) of a
  16-bit PCM WAV or 16-bit FLAC file -> float32 ``[samples]`` mono in [-1, 1] at target_rate Hz.

  Works inside ``tf.data`` and ``tf.function``. The format is chosen from the magic bytes.
  Raises (at run time) InvalidArgumentError for another format, another sample rate than
  :data:`GRAPH_RATES`, or zero samples.
  """
  contents = path_or_bytes if is_bytes else tf.io.read_file(path_or_bytes)
  magic = tf.strings.substr(contents, 0, 4)

  def wav():
    samples, rate = tf.audio.decode_wav(contents)
    return samples, rate

  def flac():
    samples = _to_unit_float(tfio.audio.decode_flac(contents, dtype=tf.int16))
    return samples, _flac_rate(contents)

  is_known = tf.logical_or(tf.equal(magic, "RIFF"), tf.equal(magic, "fLaC"))
  check = tf.debugging.Assert(is_known, ["decode_and_resample: neither RIFF/WAV nor FLAC data"])
  with tf.control_dependencies([check]):
    samples, rate = tf.cond(tf.equal(magic, "fLaC"), flac, wav)
  check = tf.debugging.Assert(tf.size(samples) > 0,
                              ["decode_and_resample: audio holds no samples"])
  with tf.control_dependencies([check]):
    mono = tf.reduce_mean(samples, axis=1)
  return _graph_resample(mono, rate, target_rate)
