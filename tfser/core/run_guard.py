"""A run directory resumes only the run that wrote it.

A trainer restores the latest checkpoint of ``--out_dir`` and continues from it. Without a
check, a second run with other settings (another ``--holdout``, ``--seed``, ``--method``) in the
same directory would restore the first run's finished checkpoint, train nothing and report the
old model under the new flags. So the trainer records the run's settings beside its checkpoints
(``<out_dir>/checkpoints/run_config.json``) and, when that directory already holds a run,
compares them first:

* same settings: resume (a finished run only evaluates and exports again);
* other settings, or checkpoints without a record: :class:`RunMismatchError` naming every
  differing setting with both values, and the two ways out: another ``--out_dir``, or
  ``--restart``, which deletes that run's own outputs (:func:`start_over`) and starts again.

What is compared: the run's configuration (a dataclass) except the settings that cannot change
its result, which each task lists (``RESUME_IGNORES``): where outputs go (``out_dir``), whether a
SavedModel is exported, log verbosity and the checkpoint interval (a resumed run ends with the
same result whatever the interval: tfser's resume is exact, see ``tfser.core.resumable``), and the
data directory's *path* (``data_dir``, ``demo_dir``): the data's identity is compared instead,
as the sha256 of each used corpus's ``manifest.json`` (which lists every shard's sha256), so a
moved data directory resumes and a re-prepared corpus does not. ``max_epochs`` is compared:
training a finished run further is a new run (use ``--restart`` or another ``--out_dir``).
"""

import dataclasses
import json
import os
import shutil
import tempfile
from typing import Any, Dict, Iterable, List, Mapping, Optional
from tfser.core import atomic

RUN_CONFIG = "run_config.json"
FORMAT_VERSION = 1
# A run directory's own outputs (tfser.core.run.RunDirectory): what start_over deletes.
RUN_OUTPUTS = ("checkpoints", "tensorboard", "saved_model", "results.json")
RESTART_FLAG = "--restart"


class RunMismatchError(ValueError):
  """The run directory holds a run with other settings (or one whose settings are unknown)."""

  def __init__(self, message: str, differences: Mapping[str, tuple] = None):
    super().__init__(message)
    self.differences = dict(differences or {})


def _jsonable(value: Any) -> Any:
  """JSON round trip of a setting: tuples become lists, so a stored record compares equal."""
  return json.loads(json.dumps(value, sort_keys=True, default=str))


def settings_of(config: Any, ignore: Iterable[str] = ()) -> Dict[str, Any]:
  """The settings of a config dataclass (or dict) that decide its result: ``ignore`` left out."""
  values = dataclasses.asdict(config) if dataclasses.is_dataclass(config) else dict(config)
  ignored = set(ignore)
  return _jsonable({k: v for k, v in sorted(values.items()) if k not in ignored})


def config_path(checkpoints_dir: str) -> str:
  return os.path.join(checkpoints_dir, RUN_CONFIG)


def _holds_run(checkpoints_dir: str) -> bool:
  """Whether ``checkpoints_dir`` holds checkpoint files (anything besides the run record)."""
  if not os.path.isdir(checkpoints_dir):
    return False
  for base, _, names in os.walk(checkpoints_dir):
    for name in names:
      if not (base == checkpoints_dir and name in (RUN_CONFIG,) or name.endswith(".tmp")):
        return True
  return False


def _read(path: str) -> Optional[dict]:
  try:
    with open(path) as f:
      record = json.load(f)
  except (OSError, ValueError):
    return None
  return record if isinstance(record, dict) else None


def _write_atomic(path: str, record: dict) -> None:
  atomic.write_json(path, record, indent=2, sort_keys=True)


def _show(value: Any) -> str:
  if isinstance(value, list):
    return ",".join(str(v) for v in value) or "(none)"
  return "(unset)" if value is None else str(value)


def differences(saved: Mapping[str, Any], current: Mapping[str, Any]) -> Dict[str, tuple]:
  """{key: (saved value, current value)} for every key whose values differ (missing = None)."""
  return {k: (saved.get(k), current.get(k)) for k in sorted(set(saved) | set(current))
          if saved.get(k) != current.get(k)}


def check_and_record(run_root: str, checkpoints_dir: str, task: str, settings: Mapping[str, Any],
                     *, data: Optional[Mapping[str, Any]] = None,
                     flag_names: Optional[Mapping[str, str]] = None) -> bool:
  """Records this run's settings, or checks them against the run already in ``checkpoints_dir``.

  task: "cww" or "annotators". settings: :func:`settings_of` the run's config. data: the data's
  identity (e.g. {corpus: manifest sha256}); None when the data has none (in-memory data).
  flag_names: config field -> the launcher's flag (default ``--<field>``), for the message.
  Returns True when an existing run with the same settings will be resumed.
  Raises RunMismatchError (see the module docstring).
  """
  current = {"task": task, "settings": _jsonable(dict(settings)),
             "data": _jsonable(dict(data)) if data is not None else None}
  path = config_path(checkpoints_dir)
  if not _holds_run(checkpoints_dir):
    _write_atomic(path, dict(current, format=FORMAT_VERSION))
    return False
  saved = _read(path)
  ways_out = (f"Use another --out_dir for this run, or add {RESTART_FLAG} to delete the run in "
              f"{run_root} (its checkpoints, TensorBoard events, results.json and saved_model) "
              "and start over.")
  if saved is None or "settings" not in saved:
    raise RunMismatchError(
        f"--out_dir={run_root} holds checkpoints without a readable record of their run's "
        f"settings ({path}), so this run cannot know whether resuming them is right. {ways_out}")
  names = dict(flag_names or {})
  found = {}
  if saved.get("task") != task:
    found["--task"] = (saved.get("task"), task)
  else:
    for key, pair in differences(saved["settings"], current["settings"]).items():
      found[names.get(key, f"--{key}")] = pair
    saved_data, data_now = saved.get("data"), current["data"]
    if saved_data is not None and data_now is not None:
      for corpus, pair in differences(saved_data, data_now).items():
        found[f"data of corpus {corpus} (manifest.json)"] = tuple(
            "(absent)" if v is None else f"sha256 {str(v)[:12]}..." for v in pair)
  if not found:
    return True
  lines = "\n".join(f"  {name}: {_show(old)} in the saved run, {_show(new)} now"
                    for name, (old, new) in found.items())
  raise RunMismatchError(
      f"--out_dir={run_root} holds a run with other settings; resuming it would report that "
      f"run's model under this run's settings. Differences:\n{lines}\n{ways_out}", found)


def start_over(run_root: str) -> List[str]:
  """Deletes a run directory's own outputs (``RUN_OUTPUTS``); returns the paths deleted.

  Only those entries go: other files in ``run_root`` stay, and ``run_root`` itself stays (it may
  be a directory the user made, or hold other things). A symlink is unlinked, never followed.
  """
  removed = []
  if not os.path.isdir(run_root):
    return removed
  for name in RUN_OUTPUTS:
    path = os.path.join(run_root, name)
    if os.path.islink(path) or os.path.isfile(path):
      os.remove(path)
    elif os.path.isdir(path):
      shutil.rmtree(path)
    else:
      continue
    removed.append(path)
  return removed


def check_out_dir(out_dir: str, flag: str = "--out_dir") -> str:
  """Makes ``out_dir`` (parents too) and proves it writable; returns its absolute path.

  Raises ValueError naming the flag: a path component that is a file, a directory that cannot
  be created or written (permissions, read-only file system, full disk).
  """
  path = os.path.abspath(out_dir)  # as the trainers use it (no ~ expansion)
  probe = path
  while probe and not os.path.exists(probe):
    parent = os.path.dirname(probe)
    if parent == probe:
      break
    probe = parent
  if os.path.exists(probe) and not os.path.isdir(probe):
    what = "is a file" if probe == path else f"is inside {probe}, which is a file"
    raise ValueError(f"{flag}={out_dir} {what}, not a directory; choose a directory for the run")
  try:
    os.makedirs(path, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path, prefix=".tfser-write-test-")
    os.close(fd)
    os.remove(tmp)
  except OSError as e:
    raise ValueError(f"{flag}={out_dir}: cannot write there ({e.strerror or e}); choose a "
                     "writable directory") from None
  return path


def data_identity(data_dir: str, corpora: Iterable[str]) -> Dict[str, Optional[str]]:
  """{corpus: sha256 of its manifest.json} for the corpora a run reads from ``data_dir``."""
  from tfser.data import integrity  # pylint: disable=g-import-not-at-top
  return {c: integrity.manifest_digest(data_dir, c) for c in dict.fromkeys(corpora)}
