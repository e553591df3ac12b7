"""A corpus's output is built beside the live one and switched in atomically when complete.

  <out_dir>/<corpus>/               the live output: shards + manifest.json (what training reads)
  <out_dir>/.partial/<corpus>/      a build in progress: shards, sidecars in .partial/, then its
                                    manifest.json; resumable after a kill
  <out_dir>/.partial/<corpus>.old/  only between the two renames of the fallback switch

Builds live one level down in ``.partial/`` so that nothing listing ``<out_dir>/*/manifest.json``
(``tfser.data.manifest.list_corpora``) ever takes a build or a retired output for a corpus;
``.partial/`` is removed when no build is left in it.

:func:`switch` exchanges the two directories with one ``renameat2(RENAME_EXCHANGE)`` (Linux 3.15+,
most local file systems): a reader sees the old complete output or the new complete one, never a
mix and never none. Where the file system cannot exchange (EINVAL / ENOSYS, or no renameat2 in the
C library) it falls back to two renames (live -> .old, staging -> live); :func:`recover` completes
or undoes that switch if a run was killed between them. Until the switch, a failed or killed
re-prepare leaves the previous output untouched.
"""

import ctypes
import errno
import os
import shutil
from typing import Optional

MANIFEST = "manifest.json"

_AT_FDCWD = -100
_RENAME_EXCHANGE = 2


BUILDS = ".partial"


def staging_dir(out_dir: str, corpus: str) -> str:
  return os.path.join(out_dir, BUILDS, corpus)


def retired_dir(out_dir: str, corpus: str) -> str:
  return os.path.join(out_dir, BUILDS, corpus + ".old")


def tidy(out_dir: str) -> None:
  """Removes ``<out_dir>/.partial`` once no build is left in it."""
  try:
    os.rmdir(os.path.join(out_dir, BUILDS))
  except OSError:
    pass  # missing, or another corpus is being built


def _renameat2():
  try:
    libc = ctypes.CDLL(None, use_errno=True)
    func = libc.renameat2
  except (OSError, AttributeError):
    return None
  func.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
  func.restype = ctypes.c_int
  return func


def exchange(a: str, b: str) -> bool:
  """Atomically swaps two existing paths; False where the system cannot (caller falls back)."""
  func = _renameat2()
  if func is None:
    return False
  if func(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) == 0:
    return True
  code = ctypes.get_errno()
  if code in (errno.EINVAL, errno.ENOSYS, errno.ENOTSUP, errno.EOPNOTSUPP):
    return False
  raise OSError(code, os.strerror(code), a, None, b)


def _remove(path: str) -> None:
  if os.path.isdir(path) and not os.path.islink(path):
    shutil.rmtree(path)
  elif os.path.lexists(path):
    os.remove(path)


def recover(out_dir: str, corpus: str) -> None:
  """Finishes (new output complete) or undoes a fallback switch that a kill interrupted."""
  live, staged, old = (os.path.join(out_dir, corpus), staging_dir(out_dir, corpus),
                       retired_dir(out_dir, corpus))
  if not os.path.isdir(old):
    return
  if not os.path.lexists(live):
    if os.path.isfile(os.path.join(staged, MANIFEST)):
      os.rename(staged, live)  # the new output was complete: finish the switch
    else:
      os.rename(old, live)  # roll back to the previous output
      return
  _remove(old)


def switch(staged: str, live: str, retired: str) -> Optional[str]:
  """Makes the complete output in ``staged`` the live one.

  Returns the path now holding the previous output (for the caller to delete), or None when
  there was none.
  """
  if not os.path.lexists(live):
    os.rename(staged, live)
    return None
  if exchange(staged, live):
    return staged
  _remove(retired)
  os.rename(live, retired)
  os.rename(staged, live)
  return retired


def discard(path: Optional[str]) -> None:
  """Removes a retired output or an abandoned build (a missing path is fine)."""
  if path:
    _remove(path)
