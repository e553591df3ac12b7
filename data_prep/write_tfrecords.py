"""The sharded, atomic, resumable TFRecord writer and its manifest (one corpus per call).

``prepare_corpus`` takes a corpus reader's utterances and writes

  <out_dir>/<corpus>/<split>-NNNNN-of-MMMMM.tfrecord   (records sorted by utterance id)
  <out_dir>/<corpus>/manifest.json                     (written last: its presence means "done")

How it stays correct when killed at any point:
  * Every file is written under a temporary name (``.<name>.tmp``) and renamed into place
    (``os.replace`` is atomic), so a final name never holds a half-written file; an exception
    removes the temporary file, and a later run removes any a killed run left behind.
  * The plan (which utterance goes to which shard) depends only on the utterances and the
    settings, never on timing; its fingerprint (sha256) is kept in ``.partial/plan.json``.
  * After each shard, a small JSON sidecar in ``.partial/`` records its sha256, which utterances
    it holds, what was dropped and its feature statistics. A rerun with the same fingerprint skips
    every shard whose sidecar and file agree (features and ground truth are not recomputed) and
    redoes the rest; the manifest is assembled from the sidecars in plan order. So an interrupted
    run, started again, ends byte-identical to an uninterrupted one.
  * The manifest is replaced only at the end; a changed plan first removes the old manifest, and
    shard files of an older plan are removed before the new manifest appears.

Several processes (``num_shards`` / ``shard_index``, data_prep.parallel) share one plan and each
writes its part of the shards; the last to finish writes the manifest (under a file lock).

Determinism: records are serialised with ``deterministic=True`` (sorted map keys); ground truth
is seeded per utterance (``data_prep.ground_truth``); nothing depends on time or paths.
"""

import collections
import concurrent.futures
import dataclasses
import glob
import hashlib
import json
import math
import os
import re
import shutil
import threading
from typing import Callable, Dict, Iterable, List, Optional, Sequence, Tuple

import numpy as np

import tfser  # noqa: F401  (Keras flavour before TensorFlow)
import tensorflow as tf

from data_prep import labels
from data_prep import parallel
from data_prep import progress as progress_lib
from data_prep.errors import CorpusError, DropLog
from data_prep.ground_truth import GroundTruth, GroundTruthConfig, get_ground_truth
from tfser.data import schema

MANIFEST = "manifest.json"
PARTIAL_DIR = ".partial"
DEFAULT_SHARD_SIZE = 512
SHARD_RE = re.compile(r"^(?P<split>[a-z]+)-(?P<index>\d{5})-of-(?P<count>\d{5})\.tfrecord$")
_TMP_SUFFIX = ".tmp"


def shard_name(split: str, index: int, count: int) -> str:
  return f"{split}-{index:05d}-of-{count:05d}.tfrecord"


@dataclasses.dataclass
class Shard:
  """One planned shard: its file name, split and the utterances (sorted by id) it holds."""
  name: str
  split: str
  utterances: List[schema.Utterance]


# -------------------------------------------------------------------------------------------------
# Atomic files.

def _tmp_path(path: str) -> str:
  head, tail = os.path.split(path)
  return os.path.join(head, "." + tail + _TMP_SUFFIX)


def _fsync_replace(tmp: str, path: str) -> None:
  with open(tmp, "rb+") as f:
    os.fsync(f.fileno())
  os.replace(tmp, path)


def atomic_write_bytes(path: str, data: bytes) -> None:
  """Writes ``data`` to ``path`` via a temporary file and a rename (never half-written)."""
  tmp = _tmp_path(path)
  try:
    with open(tmp, "wb") as f:
      f.write(data)
    _fsync_replace(tmp, path)
  finally:
    if os.path.exists(tmp):
      os.remove(tmp)


def _json_bytes(obj) -> bytes:
  return (json.dumps(obj, indent=1, sort_keys=True, allow_nan=False) + "\n").encode("utf-8")


def file_sha256(path: str) -> str:
  digest = hashlib.sha256()
  with open(path, "rb") as f:
    for block in iter(lambda: f.read(1 << 20), b""):
      digest.update(block)
  return digest.hexdigest()


def _remove_stale_tmp(directory: str, names: Optional[Sequence[str]] = None) -> None:
  """Removes temporary files a killed run may have left (``.<name>.tmp``); only those of
  ``names`` if given (the other workers of --num_shards may be writing theirs)."""
  if names is None:
    paths = glob.glob(os.path.join(glob.escape(directory), "." + "*" + _TMP_SUFFIX))
  else:
    paths = [_tmp_path(os.path.join(directory, name)) for name in names]
  for path in paths:
    if os.path.exists(path):
      os.remove(path)


# -------------------------------------------------------------------------------------------------
# Validation and planning.

def _check_value(value: float, what: str) -> Optional[str]:
  if math.isnan(value):
    return None
  if math.isinf(value) or not -1.0 <= value <= 1.0:
    return f"{what} {value} outside [-1, 1] (readers scale with data_prep.labels.scale_to_unit)"
  return None


def validate(utt: schema.Utterance, corpus: str) -> Optional[Tuple[str, str]]:
  """None if ``utt`` can be written, else (reason for the manifest, detailed message)."""
  if not utt.utterance_id:
    return "empty utterance id", "the utterance id is empty"
  if utt.corpus != corpus:
    return "wrong corpus", f"corpus {utt.corpus!r} differs from the one being written ({corpus!r})"
  for field in ("split", "cww_split"):
    if getattr(utt, field) not in schema.SPLITS:
      return (f"unknown {field}",
              f"{field} {getattr(utt, field)!r} is not one of {', '.join(schema.SPLITS)}")
  if utt.label and utt.label not in schema.CLASS_NAMES:
    return ("unknown label", f"label {utt.label!r} is not one of {', '.join(schema.CLASS_NAMES)} "
            "(other emotions go to raw_label with label '')")
  if utt.label_source not in schema.LABEL_SOURCES:
    return ("unknown label source",
            f"label_source {utt.label_source!r} is not one of {', '.join(schema.LABEL_SOURCES)}")
  for what in ("activation", "valence", "dominance"):
    try:
      problem = _check_value(float(getattr(utt, what)), "consensus " + what)
    except (TypeError, ValueError):
      problem = f"consensus {what} {getattr(utt, what)!r} is not a number"
    if problem:
      return "rating out of scale or not finite", problem
  for r in utt.ratings:
    if not isinstance(r.annotator, str) or not r.annotator:
      return "empty annotator id", f"a rating has annotator id {r.annotator!r}"
    for what in ("activation", "valence", "dominance"):
      try:
        problem = _check_value(float(getattr(r, what)), f"annotator {r.annotator} {what}")
      except (TypeError, ValueError):
        problem = f"annotator {r.annotator} {what} {getattr(r, what)!r} is not a number"
      if problem:
        return "rating out of scale or not finite", problem
  return None


def _canonical(utt: schema.Utterance) -> str:
  return json.dumps(dataclasses.asdict(utt), sort_keys=True)


def plan_shards(utterances: Sequence[schema.Utterance], shard_size: int) -> List[Shard]:
  """Splits utterances into shards: per split (schema.SPLITS order), sorted by utterance id."""
  if shard_size < 1:
    raise ValueError(f"shard_size must be >= 1, got {shard_size}")
  by_split = collections.defaultdict(list)
  for utt in utterances:
    by_split[utt.split].append(utt)
  shards = []
  for split in schema.SPLITS:
    items = sorted(by_split.get(split, ()), key=lambda u: u.utterance_id)
    if not items:
      continue
    count = -(-len(items) // shard_size)
    for i in range(count):
      shards.append(Shard(shard_name(split, i, count), split,
                          items[i * shard_size:(i + 1) * shard_size]))
  return shards


# -------------------------------------------------------------------------------------------------
# Feature statistics (mean / M2 per shard, combined in plan order: deterministic).

def _stats(matrix: np.ndarray) -> dict:
  if not len(matrix):
    return {"n": 0, "mean": None, "m2": None}
  x = matrix.astype(np.float64)
  mean = x.mean(axis=0)
  return {"n": int(len(x)), "mean": mean.tolist(), "m2": ((x - mean) ** 2).sum(axis=0).tolist()}


def _combine_stats(parts: Iterable[dict], dim: int) -> dict:
  """Chan et al.'s pairwise combination of per-shard (n, mean, M2); population std (ddof 0)."""
  n, mean, m2 = 0, np.zeros(dim), np.zeros(dim)
  for part in parts:
    if not part["n"]:
      continue
    nb, mb, m2b = part["n"], np.asarray(part["mean"]), np.asarray(part["m2"])
    delta = mb - mean
    total = n + nb
    mean = mean + delta * (nb / total)
    m2 = m2 + m2b + delta ** 2 * (n * nb / total)
    n = total
  if not n:
    return {"count": 0, "mean": None, "std": None}
  return {"count": n, "mean": mean.tolist(), "std": np.sqrt(m2 / n).tolist()}


# -------------------------------------------------------------------------------------------------
# The writer.

def _fingerprint(utterances, corpus, extractors, gt_config, shard_size, seed, demo) -> str:
  digest = hashlib.sha256()
  settings = {
      "schema_version": schema.SCHEMA_VERSION, "corpus": corpus, "shard_size": shard_size,
      "seed": seed, "demo": bool(demo),
      "ground_truth": gt_config.fingerprint() if gt_config else None,
      "features": [[e.name, int(e.dim), str(getattr(e, "fingerprint", ""))] for e in extractors],
  }
  digest.update(json.dumps(settings, sort_keys=True).encode("utf-8"))
  for utt in utterances:
    digest.update(_canonical(utt).encode("utf-8"))
    digest.update(b"\n")
  return digest.hexdigest()


def _default_audio_loader():
  # Imported on first need: tensorflow-io loads only when some feature needs audio.
  from data_prep import audio  # pylint: disable=g-import-not-at-top
  return audio.load_audio


def prepare_corpus(utterances: Iterable[schema.Utterance],
                   *,
                   corpus: str,
                   out_dir: str,
                   extractors: Sequence = (),
                   seed: int = 0,
                   shard_size: int = DEFAULT_SHARD_SIZE,
                   skip_bad: bool = False,
                   dropped: Optional[DropLog] = None,
                   progress: bool = True,
                   demo: bool = False,
                   gt_config: Optional[GroundTruthConfig] = GroundTruthConfig(),
                   audio_loader: Optional[Callable[[str], np.ndarray]] = None,
                   on_event: Optional[Callable[[str, str], None]] = None,
                   num_shards: int = 1, shard_index: int = 0) -> Optional[dict]:
  """Writes one corpus's sharded TFRecords and manifest; resumes an interrupted run.

  Args:
    utterances: a reader's records (ratings on [-1, 1]); consumed once.
    corpus: the corpus code (output folder ``<out_dir>/<corpus>``; must match each record).
    out_dir: the data directory (holds one folder per corpus).
    extractors: feature extractors (``data_prep.features.make_extractor``): ``name``, ``dim``,
      ``needs_audio`` and ``__call__(utterance, waveform) -> [dim] float32``. Empty: labels only,
      audio never opened.
    seed: recorded in the manifest and the plan fingerprint (readers use it for seeded splits;
      the ground truth always uses seeds 0..GT_SEEDS-1).
    shard_size: utterances per shard (before drops).
    skip_bad: log bad utterances under ``dropped`` instead of raising CorpusError.
    dropped: the reader's DropLog (what it skipped); merged into the manifest (not modified).
    progress: a progress line on stderr.
    demo: marks the manifest as the embedded demo.
    gt_config: ground-truth settings; None writes no ground truth.
    audio_loader: path -> float32 [samples] at 16 kHz (default ``data_prep.audio.load_audio``).
    on_event: called as ``on_event(event, shard_name)`` after "shard_written" (file renamed into
      place), "shard_done" (its sidecar written) and ("manifest_written", MANIFEST); for
      tests that interrupt a run and for launchers.
    num_shards, shard_index: this process writes only its part of the output shards (see
      data_prep.parallel); the worker that finds every shard finished writes the manifest.

  Returns:
    The manifest dict (also in ``<out_dir>/<corpus>/manifest.json``), or None for a worker of
    ``num_shards`` whose peers have not finished yet.

  Raises:
    CorpusError: bad input (naming the utterance, or the file for audio) without skip_bad, or
      an empty corpus.
  """
  extractors = tuple(extractors)
  names = [e.name for e in extractors]
  if len(set(names)) != len(names):
    raise ValueError(f"feature extractors repeat a name: {names}")
  writer_drops = DropLog()
  on_event = on_event or (lambda event, name: None)
  parallel.check_sharding(num_shards, shard_index)

  # 1. Read, validate, merge duplicate raters; fail before anything is written.
  kept, seen, merged_ids, n_read = [], set(), [], 0
  for utt in utterances:
    n_read += 1
    problem = validate(utt, corpus)
    if problem is None and utt.utterance_id in seen:
      problem = ("duplicate utterance id", "the utterance id occurs twice in the corpus")
    if problem:
      reason, message = problem
      if not skip_bad:
        raise CorpusError(message + " (pass --skip_bad to drop and count it)",
                          utterance=f"{utt.corpus}/{utt.utterance_id}")
      writer_drops.add(reason, utt.utterance_id)
      continue
    seen.add(utt.utterance_id)
    if labels.has_duplicate_annotators(utt.ratings):
      utt = _merge_duplicates(utt)
      merged_ids.append(utt.utterance_id)
    kept.append(utt)
  # The reader fills its DropLog while it is iterated: copy it only now.
  reader_drops = DropLog()
  for reason, ids in (dropped.ids.items() if dropped is not None else ()):
    for item in ids:
      reader_drops.add(reason, item)
  if not kept:
    raise CorpusError(f"corpus {corpus} is empty: the reader yielded {n_read} utterance(s), "
                      f"{n_read} dropped as bad" if n_read else
                      f"corpus {corpus} is empty: the reader yielded no utterance")

  shards = plan_shards(kept, shard_size)
  annotators = sorted({r.annotator for u in kept for r in u.ratings})
  annotator_index = {a: i for i, a in enumerate(annotators)}
  dimensional = any(labels.count_annotators(u.ratings) for u in kept)
  if gt_config is not None:  # chunk size, graph or XLA, threads: from the corpus's KDE rows
    gt_config = gt_config.resolved(gt_config.seeds * sum(
        labels.count_annotators(u.ratings) >= gt_config.min_annotators for u in kept))
  fingerprint = _fingerprint([u for s in shards for u in s.utterances], corpus, extractors,
                             gt_config, shard_size, seed, demo)

  corpus_dir = os.path.join(out_dir, corpus)
  partial_dir = os.path.join(corpus_dir, PARTIAL_DIR)
  manifest_path = os.path.join(corpus_dir, MANIFEST)
  os.makedirs(corpus_dir, exist_ok=True)
  mine = parallel.worker_items(shards, num_shards, shard_index)

  # 2. Already complete with this plan? Otherwise no stale manifest may survive this point.
  # (Under the corpus lock: workers of --num_shards start at once.)
  with parallel.corpus_lock(corpus_dir):
    old = _finished_manifest(corpus_dir, fingerprint)
    if old is not None:
      if os.path.isdir(partial_dir):  # killed after the manifest, before the clean-up
        shutil.rmtree(partial_dir)
    else:
      _remove_stale_tmp(corpus_dir, None if num_shards == 1 else [s.name for s in mine])
      if os.path.exists(manifest_path):
        os.remove(manifest_path)
      plan_path = os.path.join(partial_dir, "plan.json")
      if os.path.isdir(partial_dir):
        _remove_stale_tmp(partial_dir,
                          None if num_shards == 1 else [s.name + ".json" for s in mine])
        try:
          with open(plan_path) as f:
            same_plan = json.load(f).get("fingerprint") == fingerprint
        except (OSError, ValueError):
          same_plan = False
        if not same_plan:
          shutil.rmtree(partial_dir)
      os.makedirs(partial_dir, exist_ok=True)
      if not os.path.exists(plan_path):
        atomic_write_bytes(plan_path, _json_bytes({"fingerprint": fingerprint}))
  if old is not None:
    parallel.remove_lock(corpus_dir)
    return old

  # 3. Shards (this worker's): skip the ones a previous run finished, write the rest.
  stages = [name for name, on in (("features", bool(extractors)),
                                  ("ground truth", gt_config is not None and dimensional))
            if on] or ["writing"]
  bar = progress_lib.Progress(corpus, {name: sum(len(s.utterances) for s in mine)
                                       for name in stages}, enabled=progress)
  gt = None
  loader = audio_loader
  try:
    for shard in mine:
      sidecar_path = os.path.join(partial_dir, shard.name + ".json")
      shard_path = os.path.join(corpus_dir, shard.name)
      if _shard_finished(sidecar_path, shard_path):
        for name in stages:
          bar.skip(name, len(shard.utterances))
        continue
      if gt is None and gt_config is not None and dimensional:
        gt = get_ground_truth(gt_config)
        gt.start_warm_up()  # traces / compiles while the first shard's features are extracted
      if loader is None and any(e.needs_audio for e in extractors):
        loader = _default_audio_loader()
      sidecar = _write_shard(shard, shard_path, annotator_index, extractors, gt, loader,
                             skip_bad, bar)
      on_event("shard_written", shard.name)
      atomic_write_bytes(sidecar_path, _json_bytes(sidecar))
      on_event("shard_done", shard.name)
  finally:
    bar.close()

  # 4. The manifest, from the sidecars (as read back from disk, so a resumed run agrees), by the
  # worker that finds every shard finished.
  with parallel.corpus_lock(corpus_dir):
    done = _finished_manifest(corpus_dir, fingerprint)  # another worker was last
    if done is None:
      if not all(_shard_finished(os.path.join(partial_dir, s.name + ".json"),
                                 os.path.join(corpus_dir, s.name)) for s in shards):
        return None
      sidecars = []
      for shard in shards:
        with open(os.path.join(partial_dir, shard.name + ".json")) as f:
          sidecars.append(json.load(f))
      manifest = _manifest(shards, sidecars, corpus=corpus, demo=demo, seed=seed,
                           fingerprint=fingerprint, shard_size=shard_size,
                           annotators=annotators, extractors=extractors, gt_config=gt_config,
                           dimensional=dimensional, reader_drops=reader_drops,
                           writer_drops=writer_drops, merged_ids=merged_ids)
      planned = {s.name for s in shards}
      for path in glob.glob(os.path.join(glob.escape(corpus_dir), "*.tfrecord")):
        if SHARD_RE.match(os.path.basename(path)) and os.path.basename(path) not in planned:
          os.remove(path)  # a shard of an older plan
      atomic_write_bytes(manifest_path, _json_bytes(manifest))
      on_event("manifest_written", MANIFEST)
      shutil.rmtree(partial_dir)
      done = manifest
  parallel.remove_lock(corpus_dir)
  return done


def _finished_manifest(corpus_dir: str, fingerprint: str) -> Optional[dict]:
  """The corpus's manifest if it is complete for this plan (every shard's sha256 matches)."""
  path = os.path.join(corpus_dir, MANIFEST)
  if not os.path.exists(path):
    return None
  with open(path) as f:
    try:
      old = json.load(f)
    except ValueError:
      return None
  if old.get("fingerprint") == fingerprint and all(
      os.path.exists(os.path.join(corpus_dir, name)) and
      file_sha256(os.path.join(corpus_dir, name)) == info["sha256"]
      for name, info in old.get("shards", {}).items()):
    return old
  return None


def _merge_duplicates(utt: schema.Utterance) -> schema.Utterance:
  """Averages repeated raters; a consensus that was the plain rater mean follows the merge.

  The annotators paper (3.1) averaged duplicate annotations "and adjusted the mean ground truth";
  where a reader's consensus equals the mean of the unmerged ratings (to 1e-3), it is recomputed
  over the merged ones. A consensus from elsewhere (e.g. a corpus's own label file) is kept.
  """
  merged = labels.merge_duplicate_ratings(utt.ratings)
  old_mean, new_mean = labels.consensus(utt.ratings), labels.consensus(merged)
  values = {}
  for what, before, after in zip(("activation", "valence", "dominance"), old_mean, new_mean):
    current = getattr(utt, what)
    if not math.isnan(current) and not math.isnan(before) and abs(current - before) <= 1e-3:
      values[what] = after
  return dataclasses.replace(utt, ratings=merged, **values)


def _shard_finished(sidecar_path: str, shard_path: str) -> bool:
  if not (os.path.exists(sidecar_path) and os.path.exists(shard_path)):
    return False
  try:
    with open(sidecar_path) as f:
      expected = json.load(f)["sha256"]
  except (OSError, ValueError, KeyError):
    return False
  return file_sha256(shard_path) == expected


def _write_shard(shard: Shard, path: str, annotator_index: Dict[str, int], extractors,
                 gt: Optional[GroundTruth], loader, skip_bad: bool,
                 bar: progress_lib.Progress) -> dict:
  """Computes features and ground truth for one shard and writes it atomically.

  The ground truth of the shard's utterances runs in a background thread (its KDE in threads of
  its own) while the features are extracted; rows of utterances dropped by a feature are then
  left out. Both depend only on the shard's utterances, never on timing.

  Returns the shard's sidecar: sha256, written ids, drops and per-split feature statistics.
  """
  drops = DropLog()
  written, vectors, positions = [], [], []
  done = {name: bar.done(name) for name in bar.stages}
  gt_job, stop = None, threading.Event()
  if gt is not None:
    gt_pool = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="gt-shard")
    gt_job = gt_pool.submit(gt.compute, shard.utterances,
                            progress=lambda n: bar.advance("ground truth", n), stop=stop)
    gt_pool.shutdown(wait=False)
  try:
    for position, (utt, result) in enumerate(zip(shard.utterances, _features_in_threads(
        shard.utterances, extractors, loader, bar))):
      if isinstance(result, CorpusError):
        if not skip_bad:
          raise result
        drops.add(result.reason, utt.utterance_id)
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

  tmp = _tmp_path(path)
  try:
    with tf.io.TFRecordWriter(tmp) as writer:
      for i, utt in enumerate(written):
        truth = {b: d[i] for b, d in distributions.items()} if has_gt[i] else None
        example = schema.to_example(utt, annotator_index, vectors[i], truth)
        writer.write(example.SerializeToString(deterministic=True))
    sha = file_sha256(tmp)
    _fsync_replace(tmp, path)
  finally:
    if os.path.exists(tmp):
      os.remove(tmp)

  stats = {}
  for e in extractors:
    stats[e.name] = {}
    for key, keep in (("train", lambda u: u.split == "train"),
                      ("cww_train", lambda u: u.cww_split == "train"),
                      ("every", lambda u: True)):
      rows = [v[e.name] for u, v in zip(written, vectors) if keep(u)]
      stats[e.name][key] = _stats(np.stack(rows) if rows else np.zeros((0, e.dim)))
  return {"name": shard.name, "split": shard.split, "sha256": sha, "records": len(written),
          "ids": [u.utterance_id for u in written], "has_gt": [bool(x) for x in has_gt],
          "dropped": {reason: sorted(ids) for reason, ids in sorted(drops.ids.items())},
          "stats": stats}


def _features_in_threads(utterances, extractors, loader, bar: progress_lib.Progress):
  """Each utterance's ``_features`` (or the CorpusError it raised), in order; computed in one
  thread per core (audio decoding, openSMILE and the encoders' graphs run without the GIL).
  Any other exception propagates."""
  if not extractors:
    return [{} for _ in utterances]

  def one(utt):
    try:
      result = _features(utt, extractors, loader)
    except CorpusError as e:
      result = e
    bar.advance("features")
    return result

  threads = min(parallel.cores(), len(utterances))
  if threads <= 1:
    return [one(u) for u in utterances]
  with concurrent.futures.ThreadPoolExecutor(threads, thread_name_prefix="features") as pool:
    return list(pool.map(one, utterances))


def _features(utt: schema.Utterance, extractors, loader) -> Dict[str, np.ndarray]:
  """Feature vectors of one utterance; CorpusError naming it for a bad vector."""
  if not extractors:
    return {}
  waveform = None
  if any(e.needs_audio for e in extractors):
    if not utt.audio_path:
      raise CorpusError("no audio path, but the features need audio",
                        utterance=f"{utt.corpus}/{utt.utterance_id}")
    waveform = loader(utt.audio_path)
  out = {}
  for e in extractors:
    vec = np.asarray(e(utt, waveform if e.needs_audio else None), np.float32).reshape(-1)
    if vec.shape != (e.dim,):
      raise ValueError(f"feature extractor {e.name} returned shape {vec.shape} for utterance "
                       f"{utt.utterance_id}, expected ({e.dim},)")
    if not np.all(np.isfinite(vec)):
      raise CorpusError(f"{e.name} features are not finite",
                        path=utt.audio_path or None, utterance=f"{utt.corpus}/{utt.utterance_id}")
    out[e.name] = vec
  return out


def _manifest(shards, sidecars, *, corpus, demo, seed, fingerprint, shard_size, annotators,
              extractors, gt_config, dimensional, reader_drops, writer_drops, merged_ids) -> dict:
  by_id = {u.utterance_id: u for s in shards for u in s.utterances}
  written = [by_id[i] for side in sidecars for i in side["ids"]]
  drops = DropLog()
  for log in (reader_drops, writer_drops):
    for reason, ids in log.ids.items():
      for item in ids:
        drops.add(reason, item)
  for side in sidecars:
    for reason, ids in side["dropped"].items():
      for item in ids:
        drops.add(reason, item)
  n_gt = sum(sum(side["has_gt"]) for side in sidecars)
  if dimensional:
    few = f"fewer than {labels.MIN_ANNOTATORS} annotators (annotator task)"
    for utt in written:
      if labels.count_annotators(utt.ratings) < labels.MIN_ANNOTATORS:
        drops.add(few, utt.utterance_id)

  class_counts = {name: 0 for name in schema.CLASS_NAMES}
  excluded = collections.Counter()
  cww_classes = collections.defaultdict(lambda: {name: 0 for name in schema.CLASS_NAMES})
  for utt in written:
    if utt.label:
      class_counts[utt.label] += 1
      cww_classes[utt.cww_split][utt.label] += 1
    else:
      excluded[utt.raw_label or "(unlabelled)"] += 1

  # mean/std/count over split == "train" (None/0 for a corpus used whole, e.g. LibriSpeech);
  # cww_train over cww_split == "train"; all over every written utterance.
  features = {}
  for e in extractors:
    stats = {key: _combine_stats((side["stats"][e.name][key] for side in sidecars), e.dim)
             for key in ("train", "cww_train", "every")}
    features[e.name] = {"dim": int(e.dim), "mean": stats["train"]["mean"],
                        "std": stats["train"]["std"], "count": stats["train"]["count"],
                        "cww_train": stats["cww_train"], "all": stats["every"]}

  return {
      "schema_version": schema.SCHEMA_VERSION,
      "corpus": corpus,
      "demo": bool(demo),
      "seed": seed,
      "fingerprint": fingerprint,
      "utterances": len(written),
      "speakers": sorted({u.speaker for u in written if u.speaker}),
      "annotators": annotators,
      "max_ratings": max((len(u.ratings) for u in written), default=0),
      "class_counts": class_counts,
      "cww_excluded": {"count": sum(excluded.values()),
                       "raw_labels": dict(sorted(excluded.items()))},
      "split_counts": dict(sorted(collections.Counter(u.split for u in written).items())),
      "cww_split_counts": dict(sorted(collections.Counter(u.cww_split for u in written).items())),
      "cww_class_counts": {k: cww_classes[k] for k in sorted(cww_classes)},
      "dropped": drops.as_manifest(),
      "merged_duplicate_raters": {"count": len(merged_ids), "ids": sorted(merged_ids)},
      "features": features,
      "ground_truth": (dict(gt_config.as_manifest(), utterances=int(n_gt))
                       if gt_config is not None else None),
      "shard_size": shard_size,
      "shards": {side["name"]: {"sha256": side["sha256"], "records": side["records"],
                                "split": side["split"]} for side in sidecars},
  }
