"""The annotators paper's table rows as named experiments.

``annotators/table1/<row>``: Table 1 (within corpus; MSP-Improv in the paper), every model and
objective. ``annotators/table2/<row>``: Table 2's columns (trained on one corpus, tested zero-shot
on the others: add ``--zero_shot=POD,IEM,MuSE``, the corpora the data holds, as
``launch/annotators_table2.sh`` does). Row names are ``<model>_<objective>`` (baseline: just
``baseline``). ``launch/annotators_table*.sh`` and ``tfser.tasks.annotators.report`` read them
from here.
"""

from typing import Tuple

from tfser.core.registry import Experiment

# (model, objective, title in the paper's table)
TABLE1_ROWS = (("baseline", "baseline", "Baseline"), ("mt", "task1", "MT (Task 1)"),
               ("mt", "task1+2", "MT (Task 1+2)"), ("onehot", "task1", "One-hot (Task 1)"),
               ("onehot", "task1+2", "One-hot (Task 1+2)"))
TABLE2_COLUMNS = (("baseline", "baseline", "Baseline"), ("mt", "task1", "MT-1"),
                  ("mt", "task1+2", "MT-12"))


def row_name(model: str, objective: str) -> str:
  return model if model == objective else f"{model}_{objective}"


def _rows(table: str, rows) -> Tuple[Experiment, ...]:
  return tuple(Experiment(f"annotators/{table}/{row_name(model, objective)}",
                          (f"--model={model}", f"--objective={objective}"), label)
               for model, objective, label in rows)


EXPERIMENTS = _rows("table1", TABLE1_ROWS) + _rows("table2", TABLE2_COLUMNS)
