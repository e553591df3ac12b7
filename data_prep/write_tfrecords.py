"""The sharded, atomic, resumable TFRecord writer and its manifest (one corpus per call).

``prepare_corpus`` takes a corpus reader's utterances and writes

  <out_dir>/<corpus>/<split>-NNNNN-of-MMMMM.tfrecord   (records sorted by utterance id)
  <out_dir>/<corpus>/manifest.json                     (its presence means "done")
  <out_dir>/<corpus>/audio_files.json                  (where features need audio: size, mtime)

How it stays correct when killed, failing or out of disk at any point:
  * The output is built in ``<out_dir>/.partial/<corpus>/`` and switched in with one atomic
    directory exchange only when complete (``data_prep.staging``): until then the previous
    output, manifest and shards, stays valid and in use. A failed re-prepare (a bad file, a full
    disk, a kill) never costs the previous output.
  * Every file is written under a temporary name (``.<name>.tmp``) and renamed into place
    (``os.replace`` is atomic), so a final name never holds a half-written file; an exception
    removes the temporary file, and a later run removes any a killed run left behind.
  * The plan (which utterance goes to which shard) depends only on the utterances and the
    settings, never on timing; its fingerprint (``data_prep.fingerprint``: settings, records and,
    where features need audio, each audio file's size and mtime) is kept in ``.partial/plan.json``
    of the build.
  * After each shard, a small JSON sidecar in the build's ``.partial/`` records its sha256, which
    utterances it holds, what was dropped and its feature statistics. A rerun with the same
    fingerprint skips every shard whose sidecar and file agree (features and ground truth are not
    recomputed) and redoes the rest; the manifest is assembled from the sidecars in plan order. So
    an interrupted run, started again, ends byte-identical to an uninterrupted one.
  * Rerunning a finished corpus with the same fingerprint (and intact shards) does nothing; a
    changed fingerprint says why (e.g. which audio files changed) on stderr, then rebuilds.
  * A shard whose utterances were all dropped (``skip_bad``) gets no file and no manifest entry; a
    corpus dropped to nothing is an error and writes nothing.
  * OSErrors while writing (permissions, read-only or full disk) become
    :class:`data_prep.errors.OutputError` naming the path.

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
import sys
import threading
from typing import Callable, Dict, Iterable, List, Optional, Sequence, Tuple

import numpy as np

import tfser  # noqa: F401  (Keras flavour before TensorFlow)
import tensorflow as tf

from data_prep import fingerprint as fingerprints
from data_prep import labels
from data_prep import parallel
from data_prep import progress as progress_lib
from data_prep import staging
from data_prep.errors import CorpusError, DropLog, OutputError
from data_prep.ground_truth import GroundTruth, GroundTruthConfig, get_ground_truth
from tfser.data import schema

from tfser.data.manifest import MANIFEST  # noqa: E402,F401  (the file name, defined once)
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
  """Writes ``data`` to ``path`` via a temporary file and a rename (never half-written).

  Raises OutputError naming ``path`` when it cannot be written (e.g. a full disk: ENOSPC).
  """
  tmp = _tmp_path(path)
  try:
    with _Writing(path):
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
  if not isinstance(utt.annotator_excluded, str):
    return ("bad annotator_excluded",
            f"annotator_excluded {utt.annotator_excluded!r} is not a string (a reason or '')")
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

# Settings the writer checks before anything is read or written: {name: (minimum, meaning)}.
# The names are prepare's flags (--shard_size, --gt_samples, --gt_grid, --gt_batch).
_MINIMUM = {"shard_size": (1, "utterances per shard"),
            "gt_samples": (2, "upsampled points per utterance (the paper: 200)"),
            "gt_grid": (16, "KDE grid points per axis (the paper: 512; rounded up to a power of 2)"),
            "gt_batch": (1, "rows per batched KDE call")}


def setting_problems(shard_size: int, gt_config: Optional[GroundTruthConfig]) -> Dict[str, str]:
  """{setting: what is wrong} for out-of-range writer settings; empty when all are usable."""
  values = {"shard_size": shard_size}
  if gt_config is not None:
    values.update(gt_samples=gt_config.samples, gt_grid=gt_config.grid_size,
                  gt_batch=gt_config.kde_batch)
  problems = {}
  for name, value in values.items():
    if value is None and name == "gt_batch":  # chosen from the grid and row count (gt_plan)
      continue
    minimum, meaning = _MINIMUM[name]
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
      problems[name] = f"{value!r} is not a valid number of {meaning}: use an integer >= {minimum}"
  return problems


def _default_audio_loader():
  # Imported on first need: tensorflow-io loads only when some feature needs audio.
  from data_prep import audio  # pylint: disable=g-import-not-at-top
  return audio.load_audio


class _Writing:
  """Turns an OSError while writing under ``path`` into an OutputError naming the path."""

  def __init__(self, path: str):
    self.path = path

  def __enter__(self):
    return self

  def __exit__(self, kind, error, trace):
    if isinstance(error, OSError) and not isinstance(error, OutputError):
      raise OutputError.wrap(error, self.path) from None
    return False


def _notify(corpus: str, message: str, on_event) -> None:
  """A notice for the user (stderr) and for on_event ("notice", message)."""
  sys.stderr.write(f"{corpus}: {message}\n")
  sys.stderr.flush()
  on_event("notice", message)


def _read_json(path: str):
  """The JSON in ``path``, or None if it is missing or unreadable."""
  try:
    with open(path) as f:
      return json.load(f)
  except (OSError, ValueError):
    return None


def _intact(corpus_dir: str, manifest: dict) -> Optional[str]:
  """None if every shard the manifest lists is there with its size and sha256, else which not."""
  shards = manifest.get("shards")
  if not isinstance(shards, dict) or not shards:
    return "the manifest lists no shards"
  for name, info in shards.items():
    path = os.path.join(corpus_dir, name)
    if not os.path.isfile(path):
      return f"shard {path} is missing"
    if "bytes" in info and os.path.getsize(path) != info["bytes"]:
      return f"shard {path} has another size than the manifest says"
    if file_sha256(path) != info.get("sha256"):
      return f"shard {path} does not match its sha256 in the manifest"
  return None


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
                   num_shards: int = 1, shard_index: int = 0,
                   transcriber=None) -> Optional[dict]:
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
    dropped: the reader's DropLog (what it skipped, merged, and where each utterance came from);
      merged into the manifest (not modified).
    progress: a progress line on stderr.
    demo: marks the manifest as the embedded demo.
    gt_config: ground-truth settings; None writes no ground truth.
    audio_loader: path -> float32 [samples] at 16 kHz (default ``data_prep.audio.load_audio``).
    on_event: called as ``on_event(event, name)`` after "shard_written" (file renamed into
      place in the build directory), "shard_done" (its sidecar written), ("manifest_written",
      MANIFEST) (the build is complete), ("switched", corpus) (it is the live output now), and
      ("notice", message) for what the user is told on stderr (e.g. why a corpus is prepared
      again); for tests that interrupt a run and for launchers.
    num_shards, shard_index: this process writes only its part of the output shards (see
      data_prep.parallel) into the shared build directory; the worker that finds every shard
      finished writes the manifest and switches the build in.
    transcriber: a ``data_prep.transcribe.WhisperTranscriber`` (``--transcribe``) or None: ASR
      text for the utterances it ``needs``, made per shard before the features (BERT embeds
      it) and stored in the records; the manifest's ``transcripts`` lists them.

  Returns:
    The manifest dict (also in ``<out_dir>/<corpus>/manifest.json``), or None for a worker of
    ``num_shards`` whose peers have not finished yet.

  Raises:
    CorpusError: bad input (naming the utterance, or the file for audio) without skip_bad, or
      an empty corpus (also one that every utterance was dropped from).
    ValueError: a setting out of range (:func:`setting_problems`), before anything is written.
    OutputError: the output cannot be written (naming the path). In every case the previous
      output of the corpus stays as it was.
  """
  extractors = tuple(extractors)
  names = [e.name for e in extractors]
  if len(set(names)) != len(names):
    raise ValueError(f"feature extractors repeat a name: {names}")
  problems = setting_problems(shard_size, gt_config)
  if problems:
    raise ValueError("; ".join(f"{k}: {v}" for k, v in problems.items()))
  writer_drops = DropLog()
  on_event = on_event or (lambda event, name: None)
  reader_log = dropped if dropped is not None else DropLog()
  parallel.check_sharding(num_shards, shard_index)

  # 1. Read, validate, merge duplicate raters; fail before anything is written.
  kept, seen, merged_ids, n_read = [], set(), set(), 0
  for utt in utterances:
    n_read += 1
    problem = validate(utt, corpus)
    if problem is None and utt.utterance_id in seen:
      problem = ("duplicate utterance id", "the utterance id occurs twice in the corpus")
    if problem:
      reason, message = problem
      if not skip_bad:
        raise CorpusError(message + " (pass --skip_bad to drop and count it)",
                          path=reader_log.sources.get(utt.utterance_id),
                          utterance=f"{utt.corpus}/{utt.utterance_id}", kind=reason)
      writer_drops.add(reason, utt.utterance_id, message)
      continue
    seen.add(utt.utterance_id)
    if labels.has_duplicate_annotators(utt.ratings):
      utt = dataclasses.replace(utt)  # the caller's record stays as it was
      labels.merge_duplicate_raters(utt)
      merged_ids.add(utt.utterance_id)
    kept.append(utt)
  # The reader fills its DropLog while it is iterated: copy it only now.
  reader_drops = DropLog()
  reader_drops.extend(reader_log)
  reader_drops.layout = dict(reader_log.layout)
  merged_ids = sorted((merged_ids | set(reader_log.merged)) & seen)
  if not kept:
    raise CorpusError(f"corpus {corpus} is empty: the reader yielded {n_read} utterance(s), "
                      f"{n_read} dropped as bad" if n_read else
                      f"corpus {corpus} is empty: the reader yielded no utterance")

  shards = plan_shards(kept, shard_size)
  planned = [u for s in shards for u in s.utterances]
  annotators = sorted({r.annotator for u in kept for r in u.ratings})
  annotator_index = {a: i for i, a in enumerate(annotators)}
  dimensional = any(labels.count_annotators(u.ratings) for u in kept)
  if gt_config is not None:  # chunk size, graph or XLA, threads: from the corpus's KDE rows
    gt_config = gt_config.resolved(gt_config.seeds * sum(
        labels.count_annotators(u.ratings) >= gt_config.min_annotators for u in kept))
  settings = fingerprints.settings(corpus=corpus, extractors=extractors, gt_config=gt_config,
                                   shard_size=shard_size, seed=seed, demo=demo,
                                   transcriber=transcriber)
  needs_audio = any(e.needs_audio for e in extractors) or transcriber is not None
  audio = fingerprints.audio_files(planned) if needs_audio else None
  fingerprint = fingerprints.plan_fingerprint(planned, settings, audio)

  live = os.path.join(out_dir, corpus)
  build = staging.staging_dir(out_dir, corpus)
  partial_dir = os.path.join(build, PARTIAL_DIR)
  lock_dir = os.path.dirname(build)  # <out_dir>/.partial: outside both the build and the output
  mine = parallel.worker_items(shards, num_shards, shard_index)
  with _Writing(build):  # the error names the corpus's build directory
    os.makedirs(lock_dir, exist_ok=True)

  # 2. The live output already complete with this plan? Otherwise say why it is redone.
  # 3. The build directory: resume a killed build of this plan, else start it afresh.
  # (Both under the corpus lock: the workers of --num_shards start at once.)
  with parallel.corpus_lock(lock_dir, corpus):
    with _Writing(out_dir):
      staging.recover(out_dir, corpus)
    old = _read_json(os.path.join(live, MANIFEST)) if os.path.isdir(live) else None
    damage = "no manifest"
    if isinstance(old, dict) and old.get("fingerprint") == fingerprint:
      damage = _intact(live, old)
      if damage is None:
        with _Writing(live):
          staging.discard(os.path.join(live, PARTIAL_DIR))  # killed after the switch
          if num_shards == 1:
            staging.discard(build)  # an abandoned build of some other plan
      else:
        _notify(corpus, f"{damage}: preparing it again", on_event)
    elif os.path.lexists(os.path.join(live, MANIFEST)):
      why = fingerprints.describe_change(
          old if isinstance(old, dict) else None,
          _read_json(os.path.join(live, fingerprints.AUDIO_FILES)), settings, audio)
      _notify(corpus, f"the output in {live} is out of date ({why}): preparing it again; it "
              "stays valid until the new one is complete", on_event)
    if damage is not None:
      plan_path = os.path.join(partial_dir, "plan.json")
      with _Writing(build):
        if os.path.lexists(build):
          same_plan = (_read_json(plan_path) or {}).get("fingerprint") == fingerprint
          if not same_plan or not os.path.isdir(build):
            staging.discard(build)
        os.makedirs(partial_dir, exist_ok=True)
        own = None if num_shards == 1 else [s.name for s in mine]
        _remove_stale_tmp(build, own)
        _remove_stale_tmp(partial_dir, None if own is None else [n + ".json" for n in own])
        if not os.path.exists(plan_path):
          atomic_write_bytes(plan_path, _json_bytes({"fingerprint": fingerprint}))
        if audio is not None:
          atomic_write_bytes(os.path.join(build, fingerprints.AUDIO_FILES), _json_bytes(audio))
  if damage is None:
    _finish_locks(lock_dir, corpus, out_dir)
    return old

  # 4. Shards (this worker's): skip the ones a previous run finished, write the rest.
  stages = [name for name, on in (("transcripts", transcriber is not None),
                                  ("features", bool(extractors)),
                                  ("ground truth", gt_config is not None and dimensional))
            if on] or ["writing"]
  bar = progress_lib.Progress(corpus, {name: sum(len(s.utterances) for s in mine)
                                       for name in stages}, enabled=progress)
  gt = None
  loader = audio_loader
  try:
    for shard in mine:
      sidecar_path = os.path.join(partial_dir, shard.name + ".json")
      shard_path = os.path.join(build, shard.name)
      if _shard_finished(sidecar_path, shard_path):
        for name in stages:
          bar.skip(name, len(shard.utterances))
        continue
      if gt is None and gt_config is not None and dimensional:
        gt = get_ground_truth(gt_config)
        gt.start_warm_up()  # traces / compiles while the first shard's features are extracted
      if loader is None and needs_audio:
        loader = _default_audio_loader()
      sidecar = _write_shard(shard, shard_path, annotator_index, extractors, gt, loader,
                             skip_bad, bar, reader_log.sources, transcriber)
      on_event("shard_written", shard.name)
      atomic_write_bytes(sidecar_path, _json_bytes(sidecar))
      on_event("shard_done", shard.name)
  finally:
    bar.close()

  # 5. The manifest, from the sidecars (as read back from disk, so a resumed run agrees), by the
  # worker that finds every shard finished; 6. the switch: the complete build becomes the live
  # output in one step.
  with parallel.corpus_lock(lock_dir, corpus):
    done = _read_json(os.path.join(live, MANIFEST)) if os.path.isdir(live) else None
    if isinstance(done, dict) and done.get("fingerprint") == fingerprint and (
        not os.path.isdir(build)):
      return done  # another worker was last and switched it in
    if not all(_shard_finished(os.path.join(partial_dir, s.name + ".json"),
                               os.path.join(build, s.name)) for s in shards):
      return None  # the other workers' shards are not finished yet
    sidecars = []
    for shard in shards:
      with open(os.path.join(partial_dir, shard.name + ".json")) as f:
        sidecars.append(json.load(f))
    if not sum(side["records"] for side in sidecars):
      drops = DropLog()
      for side in sidecars:
        drops.extend(DropLog.from_manifest(side["dropped"]))
      staging.discard(build)
      _finish_locks(lock_dir, corpus, out_dir)
      raise CorpusError(
          f"corpus {corpus} is empty: all {len(kept)} utterance(s) were dropped ("
          + "; ".join(f"{k}: {v['count']}" for k, v in drops.as_manifest().items())
          + "); nothing was written" + (f", and {live} is unchanged" if os.path.isdir(live)
                                        else ""))
    manifest = _manifest(shards, sidecars, corpus=corpus, demo=demo, seed=seed,
                         fingerprint=fingerprint, settings=settings, shard_size=shard_size,
                         annotators=annotators, extractors=extractors, gt_config=gt_config,
                         dimensional=dimensional, reader_drops=reader_drops,
                         writer_drops=writer_drops, merged_ids=merged_ids,
                         transcriber=transcriber)
    atomic_write_bytes(os.path.join(build, MANIFEST), _json_bytes(manifest))
    on_event("manifest_written", MANIFEST)
    with _Writing(live):
      retired = staging.switch(build, live, staging.retired_dir(out_dir, corpus))
      on_event("switched", corpus)
      staging.discard(retired)
      staging.discard(os.path.join(live, PARTIAL_DIR))
  _finish_locks(lock_dir, corpus, out_dir)
  return manifest


def _finish_locks(lock_dir: str, corpus: str, out_dir: str) -> None:
  """Removes the corpus's lock file and an emptied ``<out_dir>/.partial`` (output = one run's)."""
  parallel.remove_lock(lock_dir, corpus)
  with _Writing(out_dir):
    staging.tidy(out_dir)


def _shard_finished(sidecar_path: str, shard_path: str) -> bool:
  sidecar = _read_json(sidecar_path)
  if not isinstance(sidecar, dict) or "sha256" not in sidecar:
    return False
  if not sidecar.get("records"):  # every utterance dropped: no file
    return not os.path.exists(shard_path)
  return os.path.exists(shard_path) and file_sha256(shard_path) == sidecar["sha256"]


def _open_records(path: str):
  """The TFRecord writer (a function, so tests can make it fail as a full disk would)."""
  return tf.io.TFRecordWriter(path)


def _write_shard(shard: Shard, path: str, annotator_index: Dict[str, int], extractors,
                 gt: Optional[GroundTruth], loader, skip_bad: bool,
                 bar: progress_lib.Progress, sources: Optional[Dict[str, str]] = None,
                 transcriber=None) -> dict:
  """Computes transcripts (``transcriber``), features and ground truth for one shard and writes
  it atomically.

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
  gt_job, stop = None, threading.Event()
  if gt is not None:
    gt_pool = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="gt-shard")
    gt_job = gt_pool.submit(gt.compute, shard.utterances,
                            progress=lambda n: bar.advance("ground truth", n), stop=stop)
    gt_pool.shutdown(wait=False)
  utterances, asr_ids, asr_silent, asr_errors = shard.utterances, [], [], {}
  try:
    if transcriber is not None:  # before the features: BERT embeds the ASR text
      from data_prep import transcribe  # pylint: disable=g-import-not-at-top  (transformers)
      utterances, asr_ids, asr_silent, asr_errors = transcribe.fill_transcripts(
          utterances, transcriber, loader, progress=lambda n: bar.advance("transcripts", n))
    for position, (utt, result) in enumerate(zip(utterances, _features_in_threads(
        utterances, extractors, loader, bar))):
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
    tmp = _tmp_path(path)
    try:
      with _Writing(tmp):
        try:
          with _open_records(tmp) as writer:
            for i, utt in enumerate(written):
              truth = {b: d[i] for b, d in distributions.items()} if has_gt[i] else None
              example = schema.to_example(utt, annotator_index, vectors[i], truth)
              writer.write(example.SerializeToString(deterministic=True))
        except tf.errors.OpError as e:
          reason = e.message[len(tmp):].lstrip("; :") if e.message.startswith(tmp) else e.message
          raise OutputError(None, f"cannot write {tmp}: {reason}", tmp) from None
        sha, size = file_sha256(tmp), os.path.getsize(tmp)
        _fsync_replace(tmp, path)
    finally:
      if os.path.exists(tmp):
        os.remove(tmp)

  asr_done, asr_none = set(asr_ids), set(asr_silent)
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


def _transcripts(written, sidecars, transcriber) -> dict:
  """The manifest's ``transcripts``: how many written utterances have text, from which source."""
  asr_ids = sorted(i for side in sidecars for i in side.get("asr_ids", ()))
  silent = sorted(i for side in sidecars for i in side.get("asr_silent", ()))
  asr, none = set(asr_ids), set(silent)
  sources = collections.Counter(
      transcriber.source if u.utterance_id in asr else
      "" if u.utterance_id in none else schema.transcript_source(u) for u in written)
  sources.pop("", None)
  return {"with_text": sum(sources.values()), "without": len(written) - sum(sources.values()),
          "by_source": dict(sorted(sources.items())),
          "asr": None if transcriber is None else dict(
              transcriber.settings, count=len(asr_ids), ids=asr_ids,
              no_text={"count": len(silent), "ids": silent})}


def _manifest(shards, sidecars, *, corpus, demo, seed, fingerprint, settings, shard_size,
              annotators, extractors, gt_config, dimensional, reader_drops, writer_drops,
              merged_ids, transcriber=None) -> dict:
  by_id = {u.utterance_id: u for s in shards for u in s.utterances}
  written = [by_id[i] for side in sidecars for i in side["ids"]]
  written_ids = {u.utterance_id for u in written}
  drops = DropLog()
  drops.extend(reader_drops)
  drops.extend(writer_drops)
  for side in sidecars:
    drops.extend(DropLog.from_manifest(side["dropped"]))
  n_gt = sum(sum(side["has_gt"]) for side in sidecars)
  # Written, usable for the categorical task, but too few raters for a ground truth (annotators
  # paper 3.1): kept, not dropped.
  few = sorted(u.utterance_id for u in written
               if dimensional and labels.count_annotators(u.ratings) < labels.MIN_ANNOTATORS)

  # The annotators task's view (issue 15): records kept for the categorical task only.
  annotator_excluded = [u for u in written if u.annotator_excluded]
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
      "settings": settings,
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
      # What the annotators task reads: split_counts less the records it leaves out (e.g.
      # IEMOCAP ratings partly missing or outside 1-5), which stay in the data for CWW.
      "annotator_task": {
          "utterances": len(written) - len(annotator_excluded),
          "split_counts": dict(sorted(collections.Counter(
              u.split for u in written if not u.annotator_excluded).items())),
          "excluded": {
              "count": len(annotator_excluded),
              "reasons": dict(sorted(collections.Counter(
                  u.annotator_excluded for u in annotator_excluded).items())),
              "ids": sorted(u.utterance_id for u in annotator_excluded)}},
      "dropped": drops.as_manifest(),
      "layout": dict(sorted(reader_drops.layout.items())),  # the copy the reader detected
      "kept_without_ground_truth": {
          "count": len(few), "ids": few,
          "reason": f"fewer than {labels.MIN_ANNOTATORS} annotators with activation and valence "
                    "(written for the categorical task; no annotator-task ground truth)"},
      "merged_duplicate_raters": {
          "count": len([i for i in merged_ids if i in written_ids]),
          "ids": sorted(i for i in merged_ids if i in written_ids)},
      "features": features,
      "transcripts": _transcripts(written, sidecars, transcriber),
      "ground_truth": (dict(gt_config.as_manifest(), utterances=int(n_gt))
                       if gt_config is not None else None),
      "shard_size": shard_size,
      "shards": {side["name"]: {"sha256": side["sha256"], "bytes": side["bytes"],
                                "records": side["records"], "split": side["split"]}
                 for side in sidecars if side["records"]},
  }
