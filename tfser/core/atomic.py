"""Files that are never half-written: a temporary file beside the target, renamed over it.

``os.replace`` is atomic on one file system, so a reader (or a run killed mid-write, or a full
disk) sees the old file or the new one, never a torn one. data_prep has its own variant
(``data_prep.atomic_files``: fixed temporary names for its resumable clean-up, fsync, errors
naming the corpus output).
"""

import contextlib
import json
import os
import tempfile
from typing import Any, Iterator


@contextlib.contextmanager
def replacing(path: str, suffix: str = ".tmp") -> Iterator[str]:
  """Yields a fresh temporary path beside ``path`` (its directory made if missing); when the
  block ends without an error the file written there replaces ``path``, otherwise it is removed.

  suffix: the temporary name's ending; writers that pick the format from it (matplotlib's
  ``savefig``, Keras's ``save_weights``) need the real extension, e.g. ".png", ".h5".
  """
  directory = os.path.dirname(os.path.abspath(path))
  os.makedirs(directory, exist_ok=True)
  fd, tmp = tempfile.mkstemp(dir=directory, prefix=f".{os.path.basename(path)}.", suffix=suffix)
  os.close(fd)
  try:
    yield tmp
    os.replace(tmp, path)
  except BaseException:
    if os.path.exists(tmp):
      os.remove(tmp)
    raise


def write_text(path: str, text: str) -> str:
  """Writes ``text`` (UTF-8, newlines as given) to ``path`` atomically; returns ``path``."""
  with replacing(path) as tmp:
    with open(tmp, "w", newline="", encoding="utf-8") as f:
      f.write(text)
  return path


def write_json(path: str, payload: Any, **dump_options) -> str:
  """``json.dumps(payload, **dump_options)`` written to ``path`` atomically; returns ``path``."""
  return write_text(path, json.dumps(payload, **dump_options))
