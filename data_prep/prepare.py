r"""Prepares corpora as sharded TFRecords: ``python -m data_prep.prepare`` (or ``tfser-prepare``).

  python -m data_prep.prepare --corpus=msp_improv --root=/data/MSP-IMPROV --out_dir=/data/tfser \
      --features=wav2vec2,bert --model_dir=/models
  python -m data_prep.prepare --corpus=demo --root=/tmp/demo_audio --out_dir=/tmp/demo_data

writes ``<out_dir>/<corpus>/<split>-NNNNN-of-MMMMM.tfrecord`` and
``<out_dir>/<corpus>/manifest.json``
(see data_prep/write_tfrecords.py). A run that was killed resumes where it stopped; rerunning a
finished one does nothing. ``--corpus=demo`` generates the five synthetic demo corpora under
``--root`` and prepares them all. Launchers call :func:`ensure_demo_data`.
"""

import dataclasses
import json
import os
import sys
from typing import Optional, Sequence

from absl import app
from absl import flags

import tfser  # noqa: F401  (Keras flavour before TensorFlow)

from data_prep import corpora
from data_prep import ground_truth
from data_prep import parallel
from data_prep import write_tfrecords
from data_prep.corpora import csv_manifest
from data_prep.errors import CorpusError, DropLog

FLAGS = flags.FLAGS

# The demo's ground truth uses a 128 grid instead of the paper's 512: about 25x faster on
# 2 cores (the demo prepares in seconds, not minutes), and the 4x4 / 2x2 block means barely
# move. The manifest records the grid; --gt_grid overrides it.
DEMO_GT_CONFIG = ground_truth.GroundTruthConfig(grid_size=128)


def _define_flags():
  """Defines this tool's flags; called by run_main, not at import (launchers import this module
  for ensure_demo_data and define --seed / --out_dir themselves: existing flags are reused)."""
  def define(kind, name, default, help_text):
    if name not in FLAGS:
      getattr(flags, "DEFINE_" + kind)(name, default, help_text)

  define("string", "corpus", None, "Corpus to prepare: " + ", ".join(corpora.names()) +
         " (codes like IMP, IEM, POD, MuSE, CRE, LIBRI, CSV work too).")
  define("string", "root", None, "The corpus as its publisher distributes it (a CSV manifest "
         "may be named directly; for --corpus=demo: where the synthetic audio is generated, "
         "default <out_dir>/demo_audio).")
  define("string", "out_dir", None, "Data directory; gets one folder per corpus.")
  define("string", "features", "is10", "Comma-separated feature sets: wav2vec2, bert, is10 (the "
         "CWW paper's IS10), or 'none' for labels only (audio never opened).")
  define("string", "model_dir", None, "Local directory holding wav2vec2/ and bert/ checkpoints.")
  define("integer", "seed", 0, "Seed of seeded splits (CREMA-D's CWW split) and the demo.")
  define("bool", "skip_bad", False, "Drop bad utterances (counted under 'dropped' in the "
         "manifest) instead of stopping with an error.")
  define("integer", "shard_size", write_tfrecords.DEFAULT_SHARD_SIZE, "Utterances per shard.")
  define("string", "csv_name", None, "For --corpus=csv: the corpus code to store (default CSV).")
  define("string", "muse_annotators", None, "For --corpus=muse: the annotators paper's authors' "
         "muse_annotators.csv (default: found in --root or beside the annotation CSV).")
  define("bool", "ground_truth", True, "Compute the ground-truth distributions (Zhang et al.).")
  define("integer", "gt_samples", 200, "Upsampled points per utterance (Zhang et al.: 200).")
  define("integer", "gt_grid", None, "KDE grid per axis for the ground truth (default: the "
         "annotators paper's 512; the demo: 128).")
  define("integer", "gt_std_ddof", 1, "Degrees of freedom of the ratings' std in the upsampling "
         "noise U(-std/2, std/2): 1 = sample std, as the annotators paper's authors' code "
         "(torch.std); 0 = population std (tfser before issue 15). Recorded in the manifest; "
         "the annotators task refuses ground truth made otherwise than its --gt_std_ddof.")
  define("integer", "gt_batch", None, "Rows (utterance x seed) per batched KDE call (default: "
         "the KDE's cache-sized chunk, 4 at grid 512; see data_prep/gt_plan.py).")
  define("bool", "gt_jit", None, "Compile the ground-truth KDE with XLA (default: only when "
         "the corpus has enough rows to pay for ~30 s of compiling; --nogt_jit: never).")
  define("bool", "gt_eager", None, "Run the ground-truth KDE op by op instead of tracing it "
         "(default: for small corpora, up to 200 rows = 40 utterances x 5 seeds, where tracing "
         "takes longer than the work; --nogt_eager: never).")
  define("integer", "gt_threads", None, "KDE chunks computed at once (default: one per core).")
  define("integer", "num_shards", 1, "Prepare with this many processes (or cluster array "
         "jobs) into the same --out_dir; each gets its --shard_index.")
  define("integer", "shard_index", 0, "This worker's part, 0..num_shards-1; the worker that "
         "finishes last writes the manifest.")
  define("bool", "progress", True, "Show a progress line per corpus on stderr.")
  define("bool", "transcribe", False, "Whisper ASR text for utterances without a transcript "
         "(e.g. MSP-Podcast <= 1.8), stored as transcript_source 'asr:<model>' (before BERT).")
  define("bool", "transcribe_all", False, "With --transcribe: replace every transcript by ASR.")
  define("string", "whisper_dir", None, "Local Whisper checkpoint (save_pretrained layout, with "
         "its WhisperProcessor files); default <model_dir>/whisper.")
  define("string", "whisper_name", None, "Model name recorded as asr:<name> (default: the hub "
         "id in its config.json, else the directory's name).")
  define("string", "whisper_language", "en", "Language code or name for Whisper's prompt.")
  define("string", "whisper_task", "transcribe", "transcribe or translate.")
  define("integer", "whisper_batch", 16, "30 s windows per Whisper generate call.")
  define("integer", "whisper_max_new_tokens", 128, "Greedy decoding: most tokens per window.")
  define("bool", "whisper_xla", False, "Compile Whisper's generate with XLA (fast on a GPU).")


def parse_features(spec) -> tuple:
  """'wav2vec2,bert' or ("wav2vec2", "bert") -> names; 'none' or () -> (). ValueError if bad."""
  from data_prep import features  # pylint: disable=g-import-not-at-top  (imports transformers)
  return features.parse_feature_flag(spec if isinstance(spec, str) else ",".join(spec) or "none")


def make_extractors(names: Sequence[str], model_dir: Optional[str] = None) -> list:
  if not names:
    return []
  from data_prep import features  # pylint: disable=g-import-not-at-top  (heavy)
  from data_prep import fingerprint  # pylint: disable=g-import-not-at-top
  extractors = [features.make_extractor(name, model_dir=model_dir) for name in names]
  for e in extractors:  # the model files / openSMILE version: part of the output's fingerprint
    e.fingerprint = fingerprint.extractor_fingerprint(
        e.name, os.path.join(model_dir, e.name) if model_dir else None)
  return extractors


def make_transcriber(config):
  """A WhisperTranscriber for ``config`` (``data_prep.transcribe.TranscribeConfig``) or None;
  its fingerprint is the checkpoint's files, so another model re-prepares the corpus."""
  if config is None:
    return None
  from data_prep import fingerprint  # pylint: disable=g-import-not-at-top
  from data_prep import transcribe  # pylint: disable=g-import-not-at-top  (transformers)
  transcriber = transcribe.WhisperTranscriber(config)
  transcriber.fingerprint = fingerprint.files_fingerprint(config.model_path)
  return transcriber


def prepare(corpus: str, root: Optional[str], out_dir: str, *, features: Sequence[str] = (),
            model_dir: Optional[str] = None, seed: int = 0, skip_bad: bool = False,
            shard_size: int = write_tfrecords.DEFAULT_SHARD_SIZE,
            gt_config="default", csv_name: Optional[str] = None,
            progress: bool = True, muse_annotators: Optional[str] = None,
            num_shards: int = 1, shard_index: int = 0,
            transcriber=None) -> dict:
  """Prepares one corpus (or the demo's five) and returns {corpus code: manifest}.

  transcriber: Whisper ASR for utterances without a transcript (:func:`make_transcriber`), or
  None.

  gt_config: a GroundTruthConfig, None for no ground truth, or "default" (the paper's for a
  real corpus, DEMO_GT_CONFIG for the demo).
  num_shards, shard_index: this process's part (data_prep.parallel); a manifest is None for
  a worker whose peers have not finished.
  Raises CorpusError for a bad --corpus / --root or bad input (see write_tfrecords).
  """
  code = corpora.resolve(corpus)
  if isinstance(gt_config, str):
    gt_config = DEMO_GT_CONFIG if code == corpora.DEMO else ground_truth.GroundTruthConfig()
  extractors = make_extractors(features, model_dir)
  if code == corpora.DEMO:
    return prepare_demo(root or os.path.join(out_dir, "demo_audio"), out_dir,
                        extractors=extractors, seed=seed, shard_size=shard_size,
                        gt_config=gt_config, progress=progress, num_shards=num_shards,
                        shard_index=shard_index,
                        transcriber=transcriber)
  if not root:
    raise CorpusError(f"--root is required for --corpus={corpus}")
  if not os.path.exists(root):
    raise CorpusError(f"--root={root} does not exist (expected the {code} corpus as its "
                      "publisher distributes it)")
  if csv_name is not None:
    csv_manifest.check_name(csv_name)
  name = corpora.corpus_code(code, csv_name)
  dropped = DropLog()
  utterances = corpora.read(code, root, skip_bad=skip_bad, dropped=dropped, seed=seed,
                            csv_name=csv_name, muse_annotators=muse_annotators)
  manifest = write_tfrecords.prepare_corpus(
      utterances, corpus=name, out_dir=out_dir, extractors=extractors, seed=seed,
      shard_size=shard_size, skip_bad=skip_bad, dropped=dropped, progress=progress,
      gt_config=gt_config, num_shards=num_shards, shard_index=shard_index,
      transcriber=transcriber)
  return {name: manifest}


def prepare_demo(root: str, out_dir: str, *, extractors=(), seed: int = 0,
                 shard_size: int = write_tfrecords.DEFAULT_SHARD_SIZE,
                 gt_config: Optional[ground_truth.GroundTruthConfig] = DEMO_GT_CONFIG,
                 progress: bool = True, only: Optional[Sequence[str]] = None,
                 num_shards: int = 1, shard_index: int = 0,
                 transcriber=None) -> dict:
  """Generates the synthetic demo under ``root`` and prepares its corpora into ``out_dir``."""
  demo = corpora.load(corpora.DEMO)
  demo.generate(root, seed=seed)
  manifests = {}
  for code in demo.CORPORA:
    if only is not None and code not in only:
      continue
    dropped = DropLog()
    manifests[code] = write_tfrecords.prepare_corpus(
        demo.read(root, code, dropped=dropped), corpus=code, out_dir=out_dir,
        extractors=extractors, seed=seed, shard_size=shard_size, dropped=dropped,
        progress=progress, demo=True, gt_config=gt_config, num_shards=num_shards,
        shard_index=shard_index,
        transcriber=transcriber)
  return manifests


def _demo_ready(data_dir: str, codes: Sequence[str], features: Sequence[str], seed: int,
                gt_config: Optional[ground_truth.GroundTruthConfig] = None) -> bool:
  """Whether each corpus has a demo manifest for this seed holding at least these features
  (and, with gt_config, ground truth made with its settings, e.g. its std_ddof)."""
  for code in codes:
    path = os.path.join(data_dir, code, write_tfrecords.MANIFEST)
    try:
      with open(path) as f:
        manifest = json.load(f)
    except (OSError, ValueError):
      return False
    if (not manifest.get("demo") or manifest.get("seed") != seed or
        not set(features) <= set(manifest.get("features", {}))):
      return False
    made = manifest.get("ground_truth")
    if gt_config is not None and isinstance(made, dict) and any(
        made.get(key) != value for key, value in gt_config.as_manifest().items()):
      return False
  return True


def _locked(path: str):
  """An exclusive advisory lock, so two launchers preparing the demo at once do not collide."""
  return parallel.file_lock(path)


def ensure_demo_data(demo_dir: str, features: Sequence[str] = ("is10",), seed: int = 0,
                     progress: bool = True, model_dir: Optional[str] = None,
                     gt_config: Optional[ground_truth.GroundTruthConfig] = DEMO_GT_CONFIG
                     ) -> str:
  """The demo's data directory, prepared on first use (idempotent; safe to call concurrently).

  Synthetic audio goes to ``<demo_dir>/audio``, TFRecords to ``<demo_dir>/data`` (returned). A
  corpus is (re)prepared only when its manifest is missing or lacks a requested feature set; it
  is then prepared with the union of the feature sets it had and those requested.
  model_dir: for wav2vec2 / bert features (see data_prep.features).
  """
  demo_dir = os.path.expanduser(demo_dir)
  data_dir = os.path.join(demo_dir, "data")
  audio_dir = os.path.join(demo_dir, "audio")
  wanted = parse_features(list(features))
  demo = corpora.load(corpora.DEMO)

  def ready(codes, names):
    # A new demo version (or seed) regenerates the audio, so every manifest is stale then.
    return demo.is_generated(audio_dir, seed) and _demo_ready(data_dir, codes, names, seed,
                                                              gt_config)

  if ready(demo.CORPORA, wanted):
    return data_dir
  os.makedirs(demo_dir, exist_ok=True)
  with _locked(os.path.join(demo_dir, ".lock")):
    if ready(demo.CORPORA, wanted):  # another process finished meanwhile
      return data_dir
    have = set(wanted)
    for code in demo.CORPORA:
      try:
        with open(os.path.join(data_dir, code, write_tfrecords.MANIFEST)) as f:
          have |= set(json.load(f).get("features", {}))
      except (OSError, ValueError):
        pass
    names = tuple(sorted(have))
    todo = [c for c in demo.CORPORA if not ready([c], names)]
    prepare_demo(audio_dir, data_dir,
                 extractors=make_extractors(names, model_dir),
                 seed=seed, progress=progress, only=todo, gt_config=gt_config)
  return data_dir


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
  if not FLAGS.corpus:
    raise app.UsageError(f"--corpus is required; one of: {', '.join(corpora.names())}")
  # `.present`, not the value: a launcher module imported in the same process may have defined
  # --out_dir with its own default (runs/latest), which is no place for prepared corpora.
  if not FLAGS.out_dir or not FLAGS["out_dir"].present:
    raise app.UsageError("--out_dir is required")
  try:
    features = parse_features(FLAGS.features)
    corpora.resolve(FLAGS.corpus)
    parallel.check_sharding(FLAGS.num_shards, FLAGS.shard_index)
    for name in ("gt_batch", "gt_threads"):
      if FLAGS[name].value is not None and FLAGS[name].value < 1:
        raise ValueError(f"--{name}={FLAGS[name].value}: use an integer >= 1 (or leave it out "
                         "for the automatic choice)")
    if FLAGS.gt_eager and FLAGS.gt_jit:
      raise ValueError("--gt_eager and --gt_jit exclude each other (XLA compiles a traced graph)")
  except (ValueError, CorpusError) as e:
    raise app.UsageError(str(e if "--" in str(e) else f"--corpus: {e}")) from None
  gt_config = None
  if FLAGS.ground_truth:
    default = DEMO_GT_CONFIG if corpora.resolve(FLAGS.corpus) == corpora.DEMO else (
        ground_truth.GroundTruthConfig())
    gt_config = dataclasses.replace(
        default, samples=FLAGS.gt_samples,
        grid_size=default.grid_size if FLAGS.gt_grid is None else FLAGS.gt_grid,
        kde_batch=FLAGS.gt_batch, jit=FLAGS.gt_jit, eager=FLAGS.gt_eager,
        threads=FLAGS.gt_threads,
        std_ddof=FLAGS.gt_std_ddof)
  _check_settings(gt_config)
  try:
    transcriber = make_transcriber(_transcribe_config())
  except ValueError as e:  # a Whisper flag this checkpoint cannot do (the message names it)
    raise app.UsageError(str(e)) from None
  except OSError as e:  # the checkpoint directory or one of its files is missing
    print(f"error: --transcribe: {e}", file=sys.stderr)
    return 1
  parallel.ops_on_caller_threads()
  try:
    manifests = prepare(FLAGS.corpus, FLAGS.root, FLAGS.out_dir, features=features,
                        model_dir=FLAGS.model_dir, seed=FLAGS.seed, skip_bad=FLAGS.skip_bad,
                        shard_size=FLAGS.shard_size, gt_config=gt_config,
                        csv_name=FLAGS.csv_name, progress=FLAGS.progress,
                        muse_annotators=FLAGS.muse_annotators,
                        num_shards=FLAGS.num_shards, shard_index=FLAGS.shard_index,
                        transcriber=transcriber)
  except (CorpusError, OSError) as e:  # bad input; an output that cannot be written (named)
    print(f"error: {e}", file=sys.stderr)
    return 1
  for code, manifest in manifests.items():
    if manifest is None:
      print(f"{code}: worker {FLAGS.shard_index} of {FLAGS.num_shards} done; the last worker to "
            f"finish writes {os.path.join(FLAGS.out_dir, code, write_tfrecords.MANIFEST)}")
      continue
    dropped = sum(d["count"] for d in manifest["dropped"].values())
    few = manifest.get("kept_without_ground_truth", {}).get("count", 0)
    merged = manifest.get("merged_duplicate_raters", {}).get("count", 0)
    print(f"{code}: {manifest['utterances']} utterances in {len(manifest['shards'])} shards, "
          f"{dropped} dropped entries, {few} kept without ground truth (too few raters), "
          f"{merged} with merged duplicate raters -> {os.path.join(FLAGS.out_dir, code)}")
  return 0


def _transcribe_config():
  """--transcribe and the --whisper_* flags as a TranscribeConfig (None without --transcribe)."""
  if not FLAGS.transcribe:
    if FLAGS.transcribe_all:
      raise app.UsageError("--transcribe_all needs --transcribe")
    return None
  if not FLAGS.whisper_dir and not FLAGS.model_dir:
    raise app.UsageError("--transcribe needs --whisper_dir or --model_dir (holding whisper/); "
                         "tfser never downloads models")
  from data_prep import transcribe  # pylint: disable=g-import-not-at-top  (transformers)
  return transcribe.TranscribeConfig(
      model_path=FLAGS.whisper_dir or os.path.join(FLAGS.model_dir, "whisper"),
      model_name=FLAGS.whisper_name, language=FLAGS.whisper_language, task=FLAGS.whisper_task,
      batch_size=FLAGS.whisper_batch, max_new_tokens=FLAGS.whisper_max_new_tokens,
      every_utterance=FLAGS.transcribe_all, xla=FLAGS.whisper_xla)


def _check_settings(gt_config) -> None:
  """Usage errors for flag values that cannot work, before anything is created on disk."""
  problems = write_tfrecords.setting_problems(FLAGS.shard_size, gt_config)
  if FLAGS.gt_std_ddof not in (0, 1):
    problems["gt_std_ddof"] = "use 1 (sample std, the authors' code) or 0 (population std)"
  if problems:
    raise app.UsageError("; ".join(f"--{name}={FLAGS[name].value}: {message}"
                                   for name, message in problems.items()))
  if FLAGS.csv_name is not None:
    if corpora.resolve(FLAGS.corpus) != "CSV":
      raise app.UsageError(f"--csv_name is for --corpus=csv only (not --corpus={FLAGS.corpus})")
    try:
      csv_manifest.check_name(FLAGS.csv_name)
    except CorpusError as e:
      raise app.UsageError(str(e)) from None
  if os.path.exists(FLAGS.out_dir) and not os.path.isdir(FLAGS.out_dir):
    raise app.UsageError(f"--out_dir={FLAGS.out_dir} is a file, not a directory")


def _main_with_short_usage(argv):
  """main, with a usage error told in two lines (absl would print the whole module help)."""
  try:
    return main(argv)
  except app.UsageError as e:
    print(f"error: {e}\nRun python -m data_prep.prepare --helpshort to see the flags.",
          file=sys.stderr)
    return 2


def run_main():
  """Console entry point (setup.py: tfser-prepare)."""
  _define_flags()
  app.run(_main_with_short_usage)


if __name__ == "__main__":
  run_main()
