"""Named experiments (tfser.core.registry): every table row once, and --experiment expansion."""

import unittest

from tfser import launch
from tfser import tasks
from tfser.core import registry
from tfser.tasks.annotators import report as report_annotators
from tfser.tasks.cww import config as cww_config
from tfser.tasks.cww import report as report_cww


class RegistryTest(unittest.TestCase):

  def test_every_table_row_is_named_once(self):
    names = tasks.experiments().names()
    self.assertEqual(len(names), len(set(names)))
    self.assertEqual(tasks.experiments().names("cww/table2/"),
                     [f"cww/table2/{m}" for m in ["within", *cww_config.METHODS]])
    self.assertIn("cww/table2/focal_loss", names)
    self.assertEqual([e.row for e in tasks.experiments().under("annotators/table1/")],
                     ["baseline", "mt_task1", "mt_task1+2", "onehot_task1", "onehot_task1+2"])
    self.assertEqual([e.row for e in tasks.experiments().under("annotators/table2/")],
                     ["baseline", "mt_task1", "mt_task1+2"])

  def test_reports_read_their_rows_from_the_registry(self):
    self.assertEqual(report_cww.ROW_ORDER,
                     [e.row for e in tasks.experiments().under("cww/table2/")])
    self.assertEqual([label for _, _, label in report_annotators.TABLE1_ROWS],
                     [e.label for e in tasks.experiments().under("annotators/table1/")])

  def test_experiment_expands_to_task_and_flags_before_the_users(self):
    argv = launch._expand_experiment(  # pylint: disable=protected-access
        ["prog", "--experiment=cww/table2/focal_loss", "--holdout=IEM", "--method=ce"])
    self.assertEqual(argv, ["prog", "--task=cww", "--method=focal_loss", "--holdout=IEM",
                            "--method=ce"])  # absl: the last --method (the user's) wins
    argv = launch._expand_experiment(  # pylint: disable=protected-access
        ["prog", "--experiment", "annotators/table1/mt_task1+2", "--seed=2"])
    self.assertEqual(argv, ["prog", "--task=annotators", "--model=mt", "--objective=task1+2",
                            "--seed=2"])
    with self.assertRaises(SystemExit):
      launch._expand_experiment(["prog", "--experiment=cww/table2/nope"])  # pylint: disable=protected-access
    with self.assertRaises(SystemExit):
      launch._expand_experiment(  # pylint: disable=protected-access
          ["prog", "--task=annotators", "--experiment=cww/table2/ce"])

  def test_registry_rejects_duplicates_and_bad_names(self):
    row = registry.Experiment("t/table/r", ("--x=1",), "R")
    with self.assertRaisesRegex(ValueError, "twice"):
      registry.Registry([row, row])
    with self.assertRaisesRegex(ValueError, "<task>/<table>/<row>"):
      registry.Registry([registry.Experiment("t/r", (), "R")])
    with self.assertRaisesRegex(ValueError, "unknown experiment"):
      registry.Registry([row]).get("t/table/other")


if __name__ == "__main__":
  unittest.main()
