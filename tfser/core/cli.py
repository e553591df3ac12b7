"""What the training entry points show the user: quiet libraries, and errors without tracebacks.

``python -m tfser.launch`` runs a task's ``main`` through :func:`run_task`, which

* keeps library chatter at warning level: TensorFlow's C++ INFO lines (XLA service, "Local
  rendezvous is aborting", ...) via ``TF_CPP_MIN_LOG_LEVEL=1`` (set by :func:`quiet_libraries`
  before TensorFlow is imported, unless the environment sets it), and Python INFO logging
  (absl, TensorFlow's "Sharding callback duration", tfser's own run summary) at WARNING. The
  user sees progress (data preparation, Keras's epoch lines), warnings and results.
  ``--verbosity=0`` (absl: INFO) or higher shows everything again;
* turns the errors a user can cause or fix into one message on stderr and exit status 1 (no
  traceback): errors tfser raises itself (a ``ValueError`` from tfser's or data_prep's code,
  e.g. a bad flag, a manifest of another schema version, a damaged shard, a run directory
  holding another run), file-system errors (missing file, permission, a file where a directory
  should be, full disk, read-only file system: the path named), TensorFlow's I/O errors of the
  same kinds, a run that diverged (the KDE's assert on NaN predictions), a ``DataLossError`` (every shard of the data directory is then hashed afresh to
  name the damaged file) and Ctrl-C (how to resume). Anything else is a bug and keeps its
  traceback.
"""

import errno
import logging
import os
import sys
from typing import Callable, Iterable, Optional

import tfser  # noqa: E402  (no TensorFlow import: the Keras flavour only)

_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(tfser.__file__)))
_PACKAGE_DIRS = tuple(os.path.join(_ROOT, name) + os.sep for name in ("tfser", "data_prep"))

_RESUME = "the same command resumes the run from its last checkpoint"
_OS_HINTS = {
    errno.ENOSPC: f"free some space (or use another --out_dir); {_RESUME}",
    errno.EDQUOT: f"free some space under your quota (or use another --out_dir); {_RESUME}",
    errno.EROFS: "the file system is read-only: choose a writable --out_dir",
    errno.EACCES: "no permission: choose a directory you can write (e.g. another --out_dir)",
    errno.EPERM: "not permitted: choose a directory you can write (e.g. another --out_dir)",
    errno.ENOTDIR: "a path component is a file, not a directory",
    errno.EISDIR: "a directory is where a file should be",
    errno.ENOENT: "check the path (was it moved or removed?)",
}
# The KDE's graph assert (tfser.ops.kde) on NaN/Inf points: in training these are the model's
# predictions, so the run diverged; the data itself is checked finite by data_prep.
_DIVERGED = "NaN or infinite valid points"
_DIVERGED_HINT = (
    "training diverged: the model's predictions became NaN or infinite (the KDE of the "
    "predictions got non-finite points). Usual causes: unstandardised features under SGD "
    "(--standardize_features; --preset=synthetic_demo for the embedded demo), a learning rate "
    "too high (--learning_rate), float16 overflow in DiffKDE (--diffkde_train_dtype=float32). "
    "The run directory keeps its last checkpoint; with other settings, add --restart or use "
    "another --out_dir")
_TF_IO_TEXT = (("No space left on device", errno.ENOSPC), ("Disk quota exceeded", errno.EDQUOT),
               ("Read-only file system", errno.EROFS), ("Permission denied", errno.EACCES),
               ("Not a directory", errno.ENOTDIR), ("No such file or directory", errno.ENOENT))


def _verbosity_from_argv(argv: Iterable[str]) -> Optional[int]:
  """The value of --verbosity / -v on the command line, or None."""
  args = list(argv)
  for i, arg in enumerate(args):
    for name in ("--verbosity", "-v"):
      value = None
      if arg.startswith(name + "="):
        value = arg.split("=", 1)[1]
      elif arg == name and i + 1 < len(args):
        value = args[i + 1]
      if value is not None:
        try:
          return int(value)
        except ValueError:
          return None
  return None


def quiet_libraries(argv: Iterable[str]) -> None:
  """Before TensorFlow is imported: its C++ logging at warning level unless --verbosity >= 0."""
  verbosity = _verbosity_from_argv(argv)
  if "TF_CPP_MIN_LOG_LEVEL" not in os.environ:
    os.environ["TF_CPP_MIN_LOG_LEVEL"] = "0" if verbosity is not None and verbosity >= 0 else "1"


def apply_verbosity() -> None:
  """After flag parsing: Python logging at WARNING unless --verbosity was given."""
  from absl import flags  # pylint: disable=g-import-not-at-top
  from absl import logging as absl_logging  # pylint: disable=g-import-not-at-top
  if "verbosity" in flags.FLAGS and not flags.FLAGS["verbosity"].present:
    absl_logging.set_verbosity(absl_logging.WARNING)
    logging.getLogger("tensorflow").setLevel(logging.WARNING)


def _raised_by_us(exc: BaseException) -> bool:
  """Whether the innermost frame of ``exc``'s traceback is tfser's or data_prep's code."""
  tb = exc.__traceback__
  if tb is None:
    return False
  while tb.tb_next is not None:
    tb = tb.tb_next
  return os.path.abspath(tb.tb_frame.f_code.co_filename).startswith(_PACKAGE_DIRS)


def _os_message(exc: OSError) -> str:
  if exc.errno is None or not exc.strerror:
    return str(exc)  # tfser's own FileNotFoundError etc.: a full sentence
  where = exc.filename or "a file"
  if exc.filename2:
    where = f"{where} -> {exc.filename2}"
  hint = _OS_HINTS.get(exc.errno)
  return f"{exc.strerror}: {where}" + (f" ({hint})" if hint else "")


def user_message(exc: BaseException, data_dir: Optional[str] = None) -> Optional[str]:
  """The message for an error the user can fix, or None for a bug (which keeps its traceback).

  data_dir: the run's data directory, hashed afresh to name the shard of a DataLossError.
  """
  if isinstance(exc, KeyboardInterrupt):
    return f"interrupted; {_RESUME}"
  if isinstance(exc, OSError):
    return _os_message(exc)
  if isinstance(exc, ValueError) and _raised_by_us(exc):
    return str(exc)
  try:
    import tensorflow as tf  # pylint: disable=g-import-not-at-top
  except ImportError:  # pragma: no cover
    return None
  if isinstance(exc, tf.errors.DataLossError):
    from tfser.data import integrity  # pylint: disable=g-import-not-at-top
    damaged = integrity.find_damaged(data_dir) if data_dir else []
    first_line = (exc.message or str(exc)).strip().splitlines()[0]
    if damaged:
      return "a prepared shard is damaged:\n  " + "\n  ".join(damaged)
    return (f"TensorFlow could not read a TFRecord shard ({first_line}); every shard under "
            f"{data_dir or 'the data directory'} matches its manifest, so the file changed "
            "while training or is another input: re-run data_prep.prepare for the corpora used")
  if isinstance(exc, tf.errors.InvalidArgumentError) and _DIVERGED in (exc.message or ""):
    return _DIVERGED_HINT
  if isinstance(exc, tf.errors.OpError):
    text = exc.message or str(exc)
    for needle, code in _TF_IO_TEXT:
      if needle in text:
        return f"{text.strip().splitlines()[0]} ({_OS_HINTS[code]})"
  return None


def run_task(prog: str, main: Callable[[], None],
             data_dir: Optional[Callable[[], Optional[str]]] = None) -> None:
  """Runs ``main()``; a user's error exits 1 with ``prog: message`` (see the module docstring).

  data_dir: returns the run's data directory (for naming a damaged shard), or None.
  """
  apply_verbosity()
  try:
    main()
  except (SystemExit, GeneratorExit):
    raise
  except BaseException as exc:  # pylint: disable=broad-except
    try:
      where = data_dir() if data_dir else None
    except Exception:  # pylint: disable=broad-except
      where = None
    message = user_message(exc, where)
    if message is None:
      raise
    print(f"{prog}: {message}", file=sys.stderr)
    sys.exit(130 if isinstance(exc, KeyboardInterrupt) else 1)
