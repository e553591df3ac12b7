"""Files that are never half-written: a temporary name, fsync, then an atomic rename.

Every file of a prepared corpus (shards, sidecars, the plan, the manifest) is written under a
temporary name (``.<name>.tmp``) and renamed into place (``os.replace`` is atomic), so a final name
never holds a half-written file; an exception removes the temporary file, and a later run removes
any a killed run left behind (:func:`remove_stale_tmp`). OSErrors while writing become
:class:`data_prep.errors.OutputError` naming the path (:class:`Writing`).
"""

import glob
import hashlib
import json
import os
from typing import Optional, Sequence

from data_prep.errors import OutputError

_TMP_SUFFIX = ".tmp"


def tmp_path(path: str) -> str:
  head, tail = os.path.split(path)
  return os.path.join(head, "." + tail + _TMP_SUFFIX)


def fsync_replace(tmp: str, path: str) -> None:
  with open(tmp, "rb+") as f:
    os.fsync(f.fileno())
  os.replace(tmp, path)


def atomic_write_bytes(path: str, data: bytes) -> None:
  """Writes ``data`` to ``path`` via a temporary file and a rename (never half-written).

  Raises OutputError naming ``path`` when it cannot be written (e.g. a full disk: ENOSPC).
  """
  tmp = tmp_path(path)
  try:
    with Writing(path):
      with open(tmp, "wb") as f:
        f.write(data)
      fsync_replace(tmp, path)
  finally:
    if os.path.exists(tmp):
      os.remove(tmp)


def json_bytes(obj) -> bytes:
  return (json.dumps(obj, indent=1, sort_keys=True, allow_nan=False) + "\n").encode("utf-8")


def file_sha256(path: str) -> str:
  digest = hashlib.sha256()
  with open(path, "rb") as f:
    for block in iter(lambda: f.read(1 << 20), b""):
      digest.update(block)
  return digest.hexdigest()


def remove_stale_tmp(directory: str, names: Optional[Sequence[str]] = None) -> None:
  """Removes temporary files a killed run may have left (``.<name>.tmp``); only those of
  ``names`` if given (the other workers of --num_shards may be writing theirs)."""
  if names is None:
    paths = glob.glob(os.path.join(glob.escape(directory), "." + "*" + _TMP_SUFFIX))
  else:
    paths = [tmp_path(os.path.join(directory, name)) for name in names]
  for path in paths:
    if os.path.exists(path):
      os.remove(path)


class Writing:
  """Turns an OSError while writing under ``path`` into an OutputError naming the path."""

  def __init__(self, path: str):
    self.path = path

  def __enter__(self):
    return self

  def __exit__(self, kind, error, trace):
    if isinstance(error, OSError) and not isinstance(error, OutputError):
      raise OutputError.wrap(error, self.path) from None
    return False


def read_json(path: str):
  """The JSON in ``path``, or None if it is missing or unreadable."""
  try:
    with open(path) as f:
      return json.load(f)
  except (OSError, ValueError):
    return None
