"""One shard of a corpus: transcripts, features and ground truth computed, then written atomically.

:func:`write_shard` returns the shard's sidecar (sha256, size, written ids, drops, per-split
feature statistics), which ``data_prep.write_tfrecords`` keeps in the build's ``.partial/`` so a
rerun skips finished shards (:func:`shard_finished`) and assembles the manifest from them.

Features run in one thread per core (:class:`FeatureStream`), ahead across shard boundaries:
while a shard is written (its records encoded, its file hashed and synced) the threads go on with
the next shard's utterances. The ground truth of the shard's utterances runs meanwhile in a
background thread (:func:`start_ground_truth`). Records are serialised with
``tfser.data.schema.encode`` (sorted map keys), so a rerun is byte-identical.
"""

import collections
import concurrent.futures
import os
import threading
from typing import Dict, Optional

import numpy as np

import tfser  # noqa: F401  (Keras flavour before TensorFlow)
import tensorflow as tf

from data_prep import atomic_files
from data_prep import parallel
from data_prep import progress as progress_lib
from data_prep.errors import CorpusError, DropLog, OutputError
from data_prep.ground_truth import GroundTruth
from data_prep.shard_plan import Shard
from tfser.data import schema


def default_audio_loader():
  # Imported on first need: tensorflow-io loads only when some feature needs audio.
  from data_prep import audio  # pylint: disable=g-import-not-at-top
  return audio.load_audio

def shard_finished(sidecar_path: str, shard_path: str) -> bool:
  sidecar = atomic_files.read_json(sidecar_path)
  if not isinstance(sidecar, dict) or "sha256" not in sidecar:
    return False
  if not sidecar.get("records"):  # every utterance dropped: no file
    return not os.path.exists(shard_path)
  return os.path.exists(shard_path) and atomic_files.file_sha256(shard_path) == sidecar["sha256"]


def open_records(path: str):
  """The TFRecord writer (a function, so tests can make it fail as a full disk would)."""
  return tf.io.TFRecordWriter(path)


def write_shard(shard: Shard, path: str, annotator_index: Dict[str, int], extractors,
                 gt: Optional[GroundTruth], loader, skip_bad: bool,
                 bar: progress_lib.Progress, sources: Optional[Dict[str, str]] = None,
                 transcriber=None, features: Optional["FeatureStream"] = None) -> dict:
  """Computes transcripts (``transcriber``), features and ground truth for one shard and writes
  it atomically.

  features: the run's :class:`FeatureStream`, positioned at this shard's first utterance (it
  computes ahead into the next shards); None: a stream of this shard's utterances alone (so with
  a transcriber, whose text BERT embeds).

  The ground truth of the shard's utterances runs in a background thread (its KDE in threads of
  its own) while the features are extracted; rows of utterances dropped by a feature are then
  left out. Both depend only on the shard's utterances, never on timing.

  Returns the shard's sidecar: sha256, size, written ids, drops and per-split feature
  statistics. A shard whose utterances were all dropped gets no file (records 0).
  sources: utterance id -> "file:line" it was read from (named in errors).
  """
  drops = DropLog()
  written, vectors, positions = [], [], []
  done = {name: bar.done(name) for name in bar.stages}
  stop = threading.Event()
  gt_job = start_ground_truth(gt, shard, bar, stop)
  utterances, asr_ids, asr_silent, asr_errors = shard.utterances, [], [], {}
  try:
    if transcriber is not None:  # before the features: BERT embeds the ASR text
      from data_prep import transcribe  # pylint: disable=g-import-not-at-top  (transformers)
      utterances, asr_ids, asr_silent, asr_errors = transcribe.fill_transcripts(
          utterances, transcriber, loader, progress=lambda n: bar.advance("transcripts", n))
    if features is None or transcriber is not None:
      with FeatureStream(utterances, extractors, loader, bar) as own:
        results = list(own.take(len(utterances)))
    else:
      results = features.take(len(utterances))
    for position, (utt, result) in enumerate(zip(utterances, results)):
      result = asr_errors.get(utt.utterance_id, result)
      if isinstance(result, CorpusError):
        if not skip_bad:
          source = (sources or {}).get(utt.utterance_id)
          raise CorpusError(f"{result.reason} (pass --skip_bad to drop and count it)",
                            path=result.path, line=result.line, kind=result.kind,
                            utterance=f"{utt.corpus}/{utt.utterance_id}" +
                            (f" (read from {source})" if source else "")) from None
        drops.add(result.kind, utt.utterance_id, str(result))
      else:
        vectors.append(result)
        written.append(utt)
        positions.append(position)
    if gt_job is not None:
      distributions, has_gt = gt_job.result()
      distributions = {b: d[positions] for b, d in distributions.items()}
      has_gt = has_gt[positions]
    else:
      distributions, has_gt = {}, np.zeros(len(written), bool)
  finally:
    stop.set()  # an error above: the ground-truth thread stops after its current chunk
  for name in bar.stages:  # drops, and the "writing" stage of a labels-only corpus
    bar.advance(name, done[name] + len(shard.utterances) - bar.done(name))

  sha, size = None, 0
  if written:
    tmp = atomic_files.tmp_path(path)
    try:
      with atomic_files.Writing(tmp):
        try:
          with open_records(tmp) as writer:
            for i, utt in enumerate(written):
              truth = {b: d[i] for b, d in distributions.items()} if has_gt[i] else None
              writer.write(schema.encode(utt, annotator_index, vectors[i], truth))
        except tf.errors.OpError as e:
          reason = e.message[len(tmp):].lstrip("; :") if e.message.startswith(tmp) else e.message
          raise OutputError(None, f"cannot write {tmp}: {reason}", tmp) from None
        sha, size = atomic_files.file_sha256(tmp), os.path.getsize(tmp)
        atomic_files.fsync_replace(tmp, path)
    finally:
      if os.path.exists(tmp):
        os.remove(tmp)

  asr_done, asr_none = set(asr_ids), set(asr_silent)
  stats = {}
  for e in extractors:
    stats[e.name] = {}
    for key, keep in (("train", lambda u: u.split == "train"),
                      ("cww_train", lambda u: u.cww_split == "train"),
                      ("every", lambda u: True)):
      rows = [v[e.name] for u, v in zip(written, vectors) if keep(u)]
      stats[e.name][key] = _stats(np.stack(rows) if rows else np.zeros((0, e.dim)))
  return {"name": shard.name, "split": shard.split, "sha256": sha, "bytes": size,
          "records": len(written), "ids": [u.utterance_id for u in written],
          "has_gt": [bool(x) for x in has_gt], "dropped": drops.as_manifest(), "stats": stats,
          "asr_ids": [u.utterance_id for u in written if u.utterance_id in asr_done],
          "asr_silent": [u.utterance_id for u in written if u.utterance_id in asr_none]}


def start_ground_truth(gt: Optional[GroundTruth], shard: Shard, bar: progress_lib.Progress,
                       stop: threading.Event) -> Optional[concurrent.futures.Future]:
  """The ground truth of the shard's utterances, computed in a background thread (its KDE in
  threads of its own): a future of ``gt.compute``'s (distributions, has_gt), or None without
  ground truth. ``stop`` set: it stops after its current chunk."""
  if gt is None:
    return None
  gt_pool = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="gt-shard")
  gt_job = gt_pool.submit(gt.compute, shard.utterances,
                          progress=lambda n: bar.advance("ground truth", n), stop=stop)
  gt_pool.shutdown(wait=False)
  return gt_job


# Results a FeatureStream computes ahead, per thread: enough to keep the threads busy while a
# shard is written (~0.5 ms per record to encode, then a sha256 and an fsync), and small next to
# a shard (feature vectors only: the waveforms are freed once extracted).
_AHEAD_PER_THREAD = 32


class FeatureStream:
  """Each utterance's ``_features`` (or the CorpusError it raised), in order, computed ahead in
  one thread per core (audio decoding, openSMILE and the encoders' graphs run without the GIL).

  ``utterances`` are those of every shard a run writes, in plan order; :meth:`take` hands each
  shard its results while the threads go on with the next ones (at most ``ahead`` results
  waiting), so shard boundaries and the writing of a shard leave no core idle. One core: each
  result is computed when taken, in the caller's thread. Any exception other than CorpusError
  is raised when its utterance is taken, so the shards before it are written as they would be
  without the stream. Leaving the ``with`` block cancels what has not started and waits for the
  running extractions.
  """

  def __init__(self, utterances, extractors, loader, bar: progress_lib.Progress,
               threads: Optional[int] = None, ahead: Optional[int] = None):
    self._pending = iter(utterances)
    self._extractors, self._loader, self._bar = tuple(extractors), loader, bar
    threads = parallel.cores() if threads is None else threads
    self._ahead = ahead or _AHEAD_PER_THREAD * threads
    self._queue = collections.deque()
    self._threads = threads if self._extractors else 1
    self._pool = None  # started on the first result taken

  def __enter__(self):
    return self

  def __exit__(self, *exc):
    self.close()
    return False

  def close(self) -> None:
    if self._pool is not None:
      self._pool.shutdown(wait=True, cancel_futures=True)
      self._pool = None
    self._queue.clear()

  def _one(self, utt):
    try:
      result = _features(utt, self._extractors, self._loader)
    except CorpusError as e:
      result = e
    self._bar.advance("features")
    return result

  def _fill(self) -> None:
    if self._pool is None:
      self._pool = concurrent.futures.ThreadPoolExecutor(self._threads,
                                                         thread_name_prefix="features")
    while len(self._queue) < self._ahead:
      utt = next(self._pending, None)
      if utt is None:
        return
      self._queue.append(self._pool.submit(self._one, utt))

  def take(self, n: int):
    """The next ``n`` results, in order (a generator)."""
    for _ in range(n):
      if not self._extractors:
        next(self._pending)
        yield {}
      elif self._threads <= 1:
        yield self._one(next(self._pending))
      else:
        self._fill()
        future = self._queue.popleft()
        self._fill()
        yield future.result()


# Audio decoding one file at a time: tensorflow-io's AudioIOTensor, decoding two files at once
# from the feature threads, was seen to hand one utterance the other's waveform (a changed-audio
# test read the same audio for two different files). The extractors themselves run in parallel.
_DECODE_LOCK = threading.Lock()


def _features(utt: schema.Utterance, extractors, loader) -> Dict[str, np.ndarray]:
  """Feature vectors of one utterance; CorpusError naming it for a bad vector."""
  if not extractors:
    return {}
  waveform = None
  if any(e.needs_audio for e in extractors):
    if not utt.audio_path:
      raise CorpusError("no audio path, but the features need audio",
                        utterance=f"{utt.corpus}/{utt.utterance_id}")
    with _DECODE_LOCK:
      waveform = loader(utt.audio_path)
  out = {}
  for e in extractors:
    vec = np.asarray(e(utt, waveform if e.needs_audio else None), np.float32).reshape(-1)
    if vec.shape != (e.dim,):
      raise ValueError(f"feature extractor {e.name} returned shape {vec.shape} for utterance "
                       f"{utt.utterance_id}, expected ({e.dim},)")
    if not np.all(np.isfinite(vec)):
      raise CorpusError(f"{e.name} features are not finite",
                        path=utt.audio_path or None, utterance=f"{utt.corpus}/{utt.utterance_id}",
                        kind="features not finite")
    out[e.name] = vec
  return out


def _stats(matrix: np.ndarray) -> dict:
  """Count, mean and M2 (sum of squared deviations) per column of one shard's rows
  (``corpus_manifest.combine_stats`` combines the shards' in plan order: deterministic)."""
  if not len(matrix):
    return {"n": 0, "mean": None, "m2": None}
  x = matrix.astype(np.float64)
  mean = x.mean(axis=0)
  return {"n": int(len(x)), "mean": mean.tolist(), "m2": ((x - mean) ** 2).sum(axis=0).tolist()}
