"""Checks a prepared corpus's shard files against its manifest before training reads them.

``data_prep.prepare`` records, per shard, its sha256 and record count in ``manifest.json``
(``shards: {filename: {sha256, records, split}}``). A shard that was truncated, bit-flipped or
replaced by another valid shard (a validation shard copied over a train shard) would otherwise
train silently or fail deep inside TensorFlow with a ``DataLossError`` that names no file.

Every time a pipeline asks for a corpus's shards (``tfser.data.manifest.shard_paths``):

* record count and size, always: the TFRecord framing (``uint64 length, uint32 crc,
  data[length], uint32 crc`` per record, TensorFlow's ``tfrecord`` format) is walked from
  header to header with seeks (12 bytes read per record); the records must end exactly at the
  file's size and their number must be the manifest's;
* sha256 of the whole file, on first use of each (file, size, mtime): the digest is cached in
  ``<cache dir>/shard_sha256.json`` (``$TFSER_CACHE_DIR``, default ``~/.cache/tfser``; entries
  keyed by absolute path, valid while size and ``st_mtime_ns`` are unchanged), so a shard is
  hashed again only when it changed. A process also remembers what it verified.

A mismatch raises :class:`ShardIntegrityError` naming the file, what differs and the repair
(re-run ``data_prep.prepare`` for that corpus, which rewrites it). :func:`find_damaged` hashes
every shard of a data directory afresh (no cache): the launchers use it to name the file when
TensorFlow reports a ``DataLossError`` anyway (a shard damaged after it was cached).
"""

import hashlib
import json
import logging
import os
import struct
import threading
from typing import Dict, List, Mapping, Optional, Sequence, Tuple
from tfser.core import atomic

_LOG = logging.getLogger(__name__)

CACHE_FILE = "shard_sha256.json"
_HEADER = 12  # uint64 length + uint32 masked crc32c of the length
_FOOTER = 4  # uint32 masked crc32c of the data

_lock = threading.Lock()
# Absolute path -> (size, mtime_ns, records, sha256) verified by this process.
_verified: Dict[str, Tuple[int, int, int, str]] = {}


class ShardIntegrityError(ValueError):
  """A shard file does not match its corpus's manifest (missing, truncated, altered, replaced)."""


def cache_path() -> str:
  """The sha256 cache file: ``$TFSER_CACHE_DIR/shard_sha256.json`` (default ``~/.cache/tfser``)."""
  directory = os.environ.get("TFSER_CACHE_DIR") or os.path.join(
      os.path.expanduser("~"), ".cache", "tfser")
  return os.path.join(directory, CACHE_FILE)


def count_records(path: str) -> Tuple[int, Optional[str]]:
  """(records, problem) by walking the TFRecord framing; problem is None for a whole file.

  problem describes where the framing breaks (a cut-off header or record, trailing bytes).
  """
  size = os.path.getsize(path)
  records, offset = 0, 0
  with open(path, "rb") as f:
    while offset < size:
      if size - offset < _HEADER:
        return records, f"{size - offset} trailing bytes after record {records} (a cut-off header)"
      f.seek(offset)
      (length,) = struct.unpack("<Q", f.read(8))
      end = offset + _HEADER + length + _FOOTER
      if end > size:
        return records, (f"record {records + 1} at byte {offset} is cut off: it needs "
                         f"{end - offset} bytes, the file has {size - offset} left")
      records, offset = records + 1, end
  return records, None


def file_sha256(path: str, chunk: int = 1 << 20) -> str:
  digest = hashlib.sha256()
  with open(path, "rb") as f:
    for block in iter(lambda: f.read(chunk), b""):
      digest.update(block)
  return digest.hexdigest()


def _load_cache(path: str) -> dict:
  try:
    with open(path) as f:
      cache = json.load(f)
    return cache if isinstance(cache, dict) else {}
  except (OSError, ValueError):
    return {}


def _store_cache(path: str, updates: Mapping[str, dict]) -> None:
  """Merges ``updates`` into the cache file atomically; drops entries of vanished files.

  A cache that cannot be written (read-only home, full disk) only costs hashing again: logged.
  """
  try:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    cache = _load_cache(path)
    cache.update(updates)
    cache = {k: v for k, v in cache.items() if os.path.exists(k)}
    atomic.write_json(path, cache, sort_keys=True)
  except OSError as e:
    _LOG.debug("shard sha256 cache %s not written: %s", path, e)


def _repair(corpus: str, data_dir: str) -> str:
  return (f"the shard was damaged or replaced after preparation: re-run data_prep.prepare for "
          f"corpus {corpus} with --out_dir={data_dir} (it rewrites the shards that differ)")


def verify_shards(data_dir: str, corpus: str, shards: Mapping[str, dict], *,
                  use_cache: bool = True) -> None:
  """Checks ``<data_dir>/<corpus>/<name>`` against each manifest entry ``{sha256, records, bytes}``.

  Entries without ``records``, ``sha256`` or ``bytes`` skip that check. Raises ShardIntegrityError naming
  the first bad file (missing, framing broken, other record count, other sha256).
  """
  corpus_dir = os.path.join(data_dir, corpus)
  cache_file = cache_path()
  cache = None
  updates = {}
  try:
    for name, entry in sorted(shards.items()):
      path = os.path.abspath(os.path.join(corpus_dir, name))
      manifest = os.path.join(corpus_dir, "manifest.json")
      try:
        stat = os.stat(path)
      except FileNotFoundError:
        raise ShardIntegrityError(f"{path}: shard listed in {manifest} is missing; "
                                  f"{_repair(corpus, data_dir)}") from None
      key = (stat.st_size, stat.st_mtime_ns)
      want_records, want_sha = entry.get("records"), entry.get("sha256")
      want_bytes = entry.get("bytes")  # written by data_prep since the shard-bytes manifest field
      if want_bytes is not None and stat.st_size != int(want_bytes):
        raise ShardIntegrityError(
            f"{path}: {stat.st_size} bytes, but {manifest} lists {want_bytes} for it; "
            f"{_repair(corpus, data_dir)}")
      with _lock:
        known = _verified.get(path)
      if use_cache and known and known[:2] == key and (
          want_records is None or known[2] == want_records) and (
              want_sha is None or known[3] == want_sha):
        continue
      records, problem = count_records(path)
      if problem:
        raise ShardIntegrityError(f"{path}: truncated or corrupt TFRecord file ({problem}; "
                                  f"{stat.st_size} bytes); {_repair(corpus, data_dir)}")
      if want_records is not None and records != int(want_records):
        raise ShardIntegrityError(
            f"{path}: {records} records, but {manifest} lists {want_records} for it; "
            f"{_repair(corpus, data_dir)}")
      sha = None
      if use_cache:
        if cache is None:
          cache = _load_cache(cache_file)
        cached = cache.get(path) or {}
        if [cached.get("size"), cached.get("mtime_ns")] == list(key):
          sha = cached.get("sha256")
      if sha is None:
        sha = file_sha256(path)
        updates[path] = {"size": key[0], "mtime_ns": key[1], "sha256": sha}
      if want_sha is not None and sha != want_sha:
        raise ShardIntegrityError(
            f"{path}: sha256 {sha[:12]}... differs from {want_sha[:12]}... in {manifest} (same "
            f"record count: another or an altered shard); {_repair(corpus, data_dir)}")
      with _lock:
        _verified[path] = key + (records, sha)
  finally:
    if updates and use_cache:
      _store_cache(cache_file, updates)


def find_damaged(data_dir: str, corpora: Optional[Sequence[str]] = None) -> List[str]:
  """Every shard problem under ``data_dir`` (or the given corpora), hashing afresh: messages."""
  problems = []
  if not data_dir or not os.path.isdir(data_dir):
    return problems
  if corpora is None:
    corpora = sorted(c for c in os.listdir(data_dir)
                     if os.path.isfile(os.path.join(data_dir, c, "manifest.json")))
  for corpus in corpora:
    try:
      with open(os.path.join(data_dir, corpus, "manifest.json")) as f:
        shards = json.load(f).get("shards") or {}
    except (OSError, ValueError, AttributeError):
      continue
    for name, entry in sorted(shards.items()):
      try:
        verify_shards(data_dir, corpus, {name: entry}, use_cache=False)
      except ShardIntegrityError as e:
        problems.append(str(e))
  return problems


def manifest_digest(data_dir: str, corpus: str) -> Optional[str]:
  """sha256 of ``<data_dir>/<corpus>/manifest.json`` (None if absent): the prepared data's id."""
  path = os.path.join(data_dir, corpus, "manifest.json")
  try:
    return file_sha256(path)
  except OSError:
    return None
