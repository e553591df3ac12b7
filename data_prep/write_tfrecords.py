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

The pieces: ``data_prep.shard_plan`` (validation, the plan, the settings' check),
``data_prep.shard_writer`` (one shard: features, ground truth, the atomic write, its sidecar),
``data_prep.corpus_manifest`` (the manifest from the sidecars), ``data_prep.atomic_files``
(temporary names, renames, sha256). This module runs them in order (:func:`prepare_corpus`).

Determinism: records are serialised with ``deterministic=True`` (sorted map keys); ground truth
is seeded per utterance (``data_prep.ground_truth``); nothing depends on time or paths.
"""

import json
import os
import sys
from typing import Callable, Iterable, Optional, Sequence

import numpy as np

from data_prep import atomic_files
from data_prep import fingerprint as fingerprints
from data_prep import labels
from data_prep import parallel
from data_prep import progress as progress_lib
from data_prep import shard_writer
from data_prep import staging
from data_prep.atomic_files import atomic_write_bytes, file_sha256  # noqa: F401  (callers' names)
from data_prep.corpus_manifest import build_manifest, intact
from data_prep.errors import CorpusError, DropLog
from data_prep.ground_truth import GroundTruthConfig, get_ground_truth
from data_prep.shard_plan import DEFAULT_SHARD_SIZE, plan_shards, read_valid, setting_problems
from data_prep.shard_plan import validate  # noqa: F401  (callers' name)
from tfser.data import schema
from tfser.data.manifest import MANIFEST  # the file name, defined once

PARTIAL_DIR = ".partial"



def _notify(corpus: str, message: str, on_event) -> None:
  """A notice for the user (stderr) and for on_event ("notice", message)."""
  sys.stderr.write(f"{corpus}: {message}\n")
  sys.stderr.flush()
  on_event("notice", message)


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
  on_event = on_event or (lambda event, name: None)
  reader_log = dropped if dropped is not None else DropLog()
  parallel.check_sharding(num_shards, shard_index)

  # 1. Read, validate, merge duplicate raters; fail before anything is written.
  kept, n_read, writer_drops, reader_drops, merged_ids = read_valid(
      utterances, corpus, skip_bad, reader_log)
  if not kept:
    raise CorpusError(f"corpus {corpus} is empty: the reader yielded {n_read} utterance(s), "
                      f"{n_read} dropped as bad" if n_read else
                      f"corpus {corpus} is empty: the reader yielded no utterance")

  shards = plan_shards(kept, shard_size)
  planned = [u for s in shards for u in s.utterances]
  annotators = sorted({r.annotator for u in kept for r in u.ratings})
  annotator_index = {a: i for i, a in enumerate(annotators)}
  dimensional = any(labels.count_annotators(u.ratings) for u in kept)
  gt_config = _resolve_ground_truth(gt_config, kept)
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
  with atomic_files.Writing(build):  # the error names the corpus's build directory
    os.makedirs(lock_dir, exist_ok=True)

  # 2. The live output already complete with this plan? Otherwise say why it is redone.
  # 3. The build directory: resume a killed build of this plan, else start it afresh.
  # (Both under the corpus lock: the workers of --num_shards start at once.)
  with parallel.corpus_lock(lock_dir, corpus):
    with atomic_files.Writing(out_dir):
      staging.recover(out_dir, corpus)
    old = atomic_files.read_json(os.path.join(live, MANIFEST)) if os.path.isdir(live) else None
    damage = "no manifest"
    if isinstance(old, dict) and old.get("fingerprint") == fingerprint:
      damage = intact(live, old)
      if damage is None:
        with atomic_files.Writing(live):
          staging.discard(os.path.join(live, PARTIAL_DIR))  # killed after the switch
          if num_shards == 1:
            staging.discard(build)  # an abandoned build of some other plan
      else:
        _notify(corpus, f"{damage}: preparing it again", on_event)
    elif os.path.lexists(os.path.join(live, MANIFEST)):
      why = fingerprints.describe_change(
          old if isinstance(old, dict) else None,
          atomic_files.read_json(os.path.join(live, fingerprints.AUDIO_FILES)), settings, audio)
      _notify(corpus, f"the output in {live} is out of date ({why}): preparing it again; it "
              "stays valid until the new one is complete", on_event)
    if damage is not None:
      plan_path = os.path.join(partial_dir, "plan.json")
      with atomic_files.Writing(build):
        if os.path.lexists(build):
          same_plan = (atomic_files.read_json(plan_path) or {}).get("fingerprint") == fingerprint
          if not same_plan or not os.path.isdir(build):
            staging.discard(build)
        os.makedirs(partial_dir, exist_ok=True)
        own = None if num_shards == 1 else [s.name for s in mine]
        atomic_files.remove_stale_tmp(build, own)
        atomic_files.remove_stale_tmp(partial_dir,
                                      None if own is None else [n + ".json" for n in own])
        if not os.path.exists(plan_path):
          atomic_write_bytes(plan_path, atomic_files.json_bytes({"fingerprint": fingerprint}))
        if audio is not None:
          atomic_write_bytes(os.path.join(build, fingerprints.AUDIO_FILES),
                             atomic_files.json_bytes(audio))
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
  todo = []
  for shard in mine:
    if shard_writer.shard_finished(os.path.join(partial_dir, shard.name + ".json"),
                                   os.path.join(build, shard.name)):
      for name in stages:
        bar.skip(name, len(shard.utterances))
    else:
      todo.append(shard)
  gt = None
  loader = audio_loader
  if todo and loader is None and needs_audio:
    loader = shard_writer.default_audio_loader()
  if todo and gt_config is not None and dimensional:
    gt = get_ground_truth(gt_config)
    gt.start_warm_up()  # traces / compiles while the first shard's features are extracted
  # One stream of features for every shard to write (computed ahead across shard boundaries);
  # with a transcriber each shard makes its own after its transcripts (BERT embeds them).
  with shard_writer.FeatureStream(
      [u for s in todo for u in s.utterances] if transcriber is None else (),
      extractors, loader, bar) as features:
    try:
      for shard in todo:
        sidecar_path = os.path.join(partial_dir, shard.name + ".json")
        sidecar = shard_writer.write_shard(
            shard, os.path.join(build, shard.name), annotator_index, extractors, gt, loader,
            skip_bad, bar, reader_log.sources, transcriber,
            features if transcriber is None else None)
        on_event("shard_written", shard.name)
        atomic_write_bytes(sidecar_path, atomic_files.json_bytes(sidecar))
        on_event("shard_done", shard.name)
    finally:
      bar.close()

  # 5. The manifest, from the sidecars (as read back from disk, so a resumed run agrees), by the
  # worker that finds every shard finished; 6. the switch: the complete build becomes the live
  # output in one step.
  with parallel.corpus_lock(lock_dir, corpus):
    done = atomic_files.read_json(os.path.join(live, MANIFEST)) if os.path.isdir(live) else None
    if isinstance(done, dict) and done.get("fingerprint") == fingerprint and (
        not os.path.isdir(build)):
      return done  # another worker was last and switched it in
    if not all(shard_writer.shard_finished(os.path.join(partial_dir, s.name + ".json"),
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
    manifest = build_manifest(shards, sidecars, corpus=corpus, demo=demo, seed=seed,
                         fingerprint=fingerprint, settings=settings, shard_size=shard_size,
                         annotators=annotators, extractors=extractors, gt_config=gt_config,
                         dimensional=dimensional, reader_drops=reader_drops,
                         writer_drops=writer_drops, merged_ids=merged_ids,
                         transcriber=transcriber)
    atomic_write_bytes(os.path.join(build, MANIFEST), atomic_files.json_bytes(manifest))
    on_event("manifest_written", MANIFEST)
    with atomic_files.Writing(live):
      retired = staging.switch(build, live, staging.retired_dir(out_dir, corpus))
      on_event("switched", corpus)
      staging.discard(retired)
      staging.discard(os.path.join(live, PARTIAL_DIR))
  _finish_locks(lock_dir, corpus, out_dir)
  return manifest


def _resolve_ground_truth(gt_config: Optional[GroundTruthConfig],
                          kept: Sequence[schema.Utterance]) -> Optional[GroundTruthConfig]:
  """The ground-truth settings for this corpus: chunk size, graph or XLA and threads chosen from
  its KDE rows (``data_prep.gt_plan``); None without ground truth."""
  if gt_config is None:
    return None
  return gt_config.resolved(gt_config.seeds * sum(
      labels.count_annotators(u.ratings) >= gt_config.min_annotators for u in kept))


def _finish_locks(lock_dir: str, corpus: str, out_dir: str) -> None:
  """Removes the corpus's lock file and an emptied ``<out_dir>/.partial`` (output = one run's)."""
  parallel.remove_lock(lock_dir, corpus)
  with atomic_files.Writing(out_dir):
    staging.tidy(out_dir)


