"""A prepared data directory: corpus manifests, shard files, feature widths and statistics.

``data_prep.prepare`` writes ``<data_dir>/<CORPUS>/manifest.json`` beside the corpus's shards
``<split>-NNNNN-of-MMMMM.tfrecord``. The manifest (JSON) holds: schema_version, corpus, demo,
utterances, speakers, annotators (position = the int index in ``rating_annotator``),
class_counts, split_counts, cww_split_counts, dropped, features {name: {dim, mean, std[, count]}}
(mean and std over split == "train"), ground_truth {seeds, bins, grid, samples, std_ddof, ...} and shards
{filename: {sha256, records, split}}.
"""

import json
import os
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from tfser.data import schema

MANIFEST = "manifest.json"


def list_corpora(data_dir: str) -> List[str]:
  """The corpora prepared in ``data_dir`` (sub-directories holding a manifest), sorted."""
  if not os.path.isdir(data_dir):
    raise FileNotFoundError(f"data directory {data_dir} does not exist")
  return sorted(name for name in os.listdir(data_dir)
                if os.path.isfile(os.path.join(data_dir, name, MANIFEST)))


def load_manifest(data_dir: str, corpus: str) -> dict:
  """Reads ``<data_dir>/<corpus>/manifest.json``.

  Raises:
    FileNotFoundError: no such corpus (the message lists the corpora that are there).
    ValueError: unreadable JSON, or a schema version other than this tfser's.
  """
  path = os.path.join(data_dir, corpus, MANIFEST)
  if not os.path.isfile(path):
    present = list_corpora(data_dir)
    raise FileNotFoundError(
        f"corpus {corpus!r} is not prepared in {data_dir} (no {path}); corpora present: "
        f"{', '.join(present) or 'none'}")
  with open(path) as f:
    try:
      manifest = json.load(f)
    except ValueError as e:
      raise ValueError(f"{path}: not a valid manifest: {e}") from None
  version = manifest.get("schema_version")
  if version != schema.SCHEMA_VERSION:
    raise ValueError(f"{path}: schema_version {version}, but this tfser reads version "
                     f"{schema.SCHEMA_VERSION}; re-run data_prep.prepare for {corpus}")
  return manifest


def feature_dims(manifest: dict, names: Sequence[str]) -> Dict[str, int]:
  """Feature name -> width for the requested names (in order); a missing name raises ValueError."""
  available = manifest.get("features") or {}
  missing = [n for n in names if n not in available]
  if missing:
    raise ValueError(
        f"feature {', '.join(missing)} not prepared for corpus {manifest.get('corpus')}; "
        f"available: {', '.join(sorted(available)) or 'none'} (re-run data_prep.prepare with "
        f"--features)")
  return {n: int(available[n]["dim"]) for n in names}


def shard_name(split: str, index: int, count: int) -> str:
  """The file name of shard ``index`` (0-based) of the ``count`` shards of a split."""
  return f"{split}-{index:05d}-of-{count:05d}.tfrecord"


def shard_split(filename: str, entry: dict) -> str:
  """A shard's split: from its manifest entry, else its name ``<split>-NNNNN-of-MMMMM``."""
  return entry.get("split") or os.path.basename(filename).split("-", 1)[0]


def shard_paths(data_dir: str, manifest: dict, split: Optional[str] = None) -> List[str]:
  """Paths of the corpus's shards for ``split`` (None or "all": every shard), sorted by name.

  Raises FileNotFoundError naming a shard the manifest lists but the directory lacks, and
  ``integrity.ShardIntegrityError`` (a ValueError) naming a shard that differs from the manifest.
  """
  corpus_dir = os.path.join(data_dir, manifest["corpus"])
  paths, checked = [], {}
  for filename, entry in sorted((manifest.get("shards") or {}).items()):
    if split not in (None, "all") and shard_split(filename, entry) != split:
      continue
    path = os.path.join(corpus_dir, filename)
    if not os.path.isfile(path):
      raise FileNotFoundError(f"{path}: shard listed in {MANIFEST} is missing; re-run "
                              "data_prep.prepare")
    paths.append(path)
    checked[filename] = entry
  # issue 11 hook: each shard against the manifest (records and size always, sha256 on first use).
  from tfser.data import integrity  # pylint: disable=g-import-not-at-top
  integrity.verify_shards(data_dir, manifest["corpus"], checked)
  return paths


def split_size(manifest: dict, split: str, key: str = "split_counts") -> int:
  """Utterances in ``split`` by the manifest (``key``: split_counts or cww_split_counts)."""
  if split == "all":
    return int(manifest.get("utterances", 0))
  return int((manifest.get(key) or {}).get(split, 0))


def feature_statistics(data_dir: str, corpora: Sequence[str], feature_name: str, *,
                       statistics: str = "train") -> Tuple[np.ndarray, np.ndarray]:
  """Mean and std ``[D]`` (float64) of a feature pooled over the corpora's training sets.

  statistics: "train" pools each manifest's ``features[name]`` mean/std/count (split == "train",
    the annotator task's); "cww_train" pools ``features[name]["cww_train"]`` (cww_split ==
    "train", the CWW paper's normalisation) where the writer stored it.
  Each corpus is weighted by its training count n_d (``count``, else ``split_counts["train"]``):
  mean = sum n_d mu_d / N and var = sum n_d (sd_d^2 + mu_d^2) / N - mean^2, exactly the
  (population) statistics of the union of the training sets. A corpus without training
  utterances (e.g. an unlabelled corpus used whole) contributes nothing.
  """
  if not corpora:
    raise ValueError("feature_statistics needs at least one corpus")
  if statistics not in ("train", "cww_train"):
    raise ValueError(f"statistics must be 'train' or 'cww_train', got {statistics!r}")
  sums = sq_sums = None
  total = 0
  for corpus in corpora:
    manifest = load_manifest(data_dir, corpus)
    dim = feature_dims(manifest, [feature_name])[feature_name]
    entry = manifest["features"][feature_name]
    if statistics == "cww_train":
      if not isinstance(entry.get("cww_train"), dict):
        raise ValueError(f"corpus {corpus}: feature {feature_name} has no cww_train statistics "
                         "in its manifest; re-run data_prep.prepare")
      entry = entry["cww_train"]
      count = int(entry.get("count") or 0)
    else:
      count = int(entry.get("count", split_size(manifest, "train")) or 0)
    if count <= 0:
      continue
    mean = np.asarray(entry.get("mean"), np.float64)
    std = np.asarray(entry.get("std"), np.float64)
    if mean.shape != (dim,) or std.shape != (dim,):
      raise ValueError(f"corpus {corpus}: feature {feature_name} statistics have shapes "
                       f"{mean.shape} and {std.shape}, expected ({dim},)")
    if sums is not None and sums.shape != mean.shape:
      raise ValueError(f"corpus {corpus}: feature {feature_name} has width {dim}, other corpora "
                       f"{sums.shape[0]}")
    sums = count * mean if sums is None else sums + count * mean
    sq_sums = (count * (std ** 2 + mean ** 2) if sq_sums is None
               else sq_sums + count * (std ** 2 + mean ** 2))
    total += count
  if not total:
    raise ValueError(f"no training utterances in {', '.join(corpora)} to take {feature_name} "
                     f"statistics ({statistics}) from")
  mean = sums / total
  return mean, np.sqrt(np.maximum(sq_sums / total - mean ** 2, 0.0))


def check_ground_truth_settings(manifest: dict, *, std_ddof: int, where: str = "") -> None:
  """Raises ValueError when the corpus's ground truth was made with another noise std ddof.

  The manifest's ``ground_truth.std_ddof`` (``data_prep.ground_truth.GroundTruthConfig``) must
  equal ``std_ddof`` (the run's ``--gt_std_ddof``): distributions made with the population std
  (0) and the sample std (1, the authors' code) differ, and so would every TVD/JSD. Ground truth
  that records no ``std_ddof`` (generated test corpora, not made by upsampling) is not checked.
  """
  recorded = (manifest.get("ground_truth") or {}).get("std_ddof")
  if recorded is None or int(recorded) == int(std_ddof):
    return
  corpus = manifest.get("corpus", "?")
  raise ValueError(
      f"{where or 'corpus ' + corpus}: its ground truth was made with std_ddof={recorded} "
      f"(manifest ground_truth.std_ddof) but the run asks for --gt_std_ddof={std_ddof}; "
      f"re-run data_prep.prepare for {corpus} with --gt_std_ddof={std_ddof}, or run with "
      f"--gt_std_ddof={recorded}")
