"""The studies tfser implements, one folder each with the same rooms.

``tfser/tasks/<task>/``: ``config`` (the run's frozen dataclass), ``data`` (datasets), ``model``
(the Keras train-step model), ``train`` (one run: data, model, callbacks, the shared resumable
fit of ``tfser.core.resumable``, evaluation, export, results.json), ``evaluate``, ``export``,
``report`` (the paper's tables from runs) and ``experiments`` (the tables' rows, named, for
``tfser.core.registry``). Its flags are read only by ``tfser/launchers/<task>.py``.

A new task is a new folder here, a launcher ``tfser/launchers/<task>.py`` and its name in
:data:`TASKS`.
"""

from tfser.core import registry

TASKS = ("cww", "annotators", "annotators_multi")


def experiments() -> registry.Registry:
  """Every task's named experiments (``tfser.tasks.<task>.experiments.EXPERIMENTS``), then
  those a task's ``tuned_experiments()`` finds (tuned values written back by a sweep)."""
  import importlib  # pylint: disable=g-import-not-at-top
  rows = []
  for task in TASKS:
    module = importlib.import_module(f"tfser.tasks.{task}.experiments")
    rows.extend(module.EXPERIMENTS)
    rows.extend(getattr(module, "tuned_experiments", tuple)())
  return registry.Registry(rows)
