"""The manifest of a prepared corpus (``manifest.json``), assembled from its shards' sidecars.

What it holds (counts, splits, classes, the annotators task's view, drops, feature statistics,
transcripts, ground-truth settings, shards with their sha256) is read back by
``tfser.data.manifest``; :func:`intact` checks a finished corpus's shards against it.
"""

import collections
import os
from typing import Iterable, Optional

import numpy as np

from data_prep import atomic_files
from data_prep import labels
from data_prep.errors import DropLog
from tfser.data import schema


def combine_stats(parts: Iterable[dict], dim: int) -> dict:
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


def intact(corpus_dir: str, manifest: dict) -> Optional[str]:
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
    if atomic_files.file_sha256(path) != info.get("sha256"):
      return f"shard {path} does not match its sha256 in the manifest"
  return None

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


def build_manifest(shards, sidecars, *, corpus, demo, seed, fingerprint, settings, shard_size,
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
    stats = {key: combine_stats((side["stats"][e.name][key] for side in sidecars), e.dim)
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
