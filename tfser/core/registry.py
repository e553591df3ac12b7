"""Named experiments: every row of the papers' tables as a name, a task and its flags.

A task lists its rows in ``tfser/tasks/<task>/experiments.py`` (``EXPERIMENTS``, a tuple of
:class:`Experiment`); ``tfser.tasks.experiments()`` gathers those of every task in
``tfser.tasks.TASKS``. Names
are ``<task>/<table>/<row>``, e.g. ``cww/table2/focal_loss`` or ``annotators/table1/mt_task1+2``.

    python -m tfser.launch --list_experiments                 # every name, label and flags
    python -m tfser.launch --list_experiments=cww/table2/     # those under a prefix
    python -m tfser.launch --experiment=cww/table2/focal_loss --holdout=IEM

``--experiment`` is the row's task and flags, placed before the command line's own, so an
explicit flag overrides the row (as with ``--method``). The launch scripts (``launch/*.sh``) and
the report generators read their rows from here. Pure Python: listing imports no TensorFlow.
"""

import dataclasses
from typing import Dict, Iterable, List, Tuple


@dataclasses.dataclass(frozen=True)
class Experiment:
  """One named configuration.

  name: ``<task>/<table>/<row>``. flags: the row's command-line flags (``--model=mt``), applied
  before the user's. label: the row's title in the paper's table.
  """
  name: str
  flags: Tuple[str, ...]
  label: str

  @property
  def task(self) -> str:
    return self.name.split("/", 1)[0]

  @property
  def row(self) -> str:
    """The last part of the name (``focal_loss`` of ``cww/table2/focal_loss``)."""
    return self.name.rsplit("/", 1)[1]


class Registry:
  """Experiments by name, in the order the tasks list them (the tables' row order)."""

  def __init__(self, experiments: Iterable[Experiment]):
    self._by_name: Dict[str, Experiment] = {}
    for e in experiments:
      if e.name in self._by_name:
        raise ValueError(f"experiment {e.name!r} is defined twice")
      if e.name.count("/") < 2:
        raise ValueError(f"experiment name {e.name!r} is not <task>/<table>/<row>")
      self._by_name[e.name] = e

  def get(self, name: str) -> Experiment:
    """The experiment called ``name``; ValueError listing the known names otherwise."""
    if name not in self._by_name:
      raise ValueError(f"unknown experiment {name!r}; known (python -m tfser.launch "
                       f"--list_experiments): {', '.join(self._by_name)}")
    return self._by_name[name]

  def under(self, prefix: str = "") -> List[Experiment]:
    """The experiments whose name starts with ``prefix`` (all for ""), in table order."""
    return [e for n, e in self._by_name.items() if n.startswith(prefix)]

  def names(self, prefix: str = "") -> List[str]:
    return [e.name for e in self.under(prefix)]
