"""Dependencies point one way (issue 14): checked on the import statements of every module.

* data_prep uses tfser (schema, ops); the tfser library never imports data_prep. Entry points
  (``tfser/launchers/``) are the only tfser modules that may: they prepare the embedded demo.
* ``tfser.testing`` (generated corpora, in-memory sources) serves tests and benchmarks; the
  library never imports it (entry points may, for ``--synthetic``).
* launchers -> tasks -> core, data, ops, layers, models, losses, metrics: nothing below the
  tasks imports them, nothing but launch.py imports the launchers.
"""

import ast
import os
import unittest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TFSER = os.path.join(ROOT, "tfser")


def imported_modules(path):
  """Absolute module names imported anywhere in the file (also inside functions)."""
  with open(path, encoding="utf-8") as f:
    tree = ast.parse(f.read(), path)
  names = set()
  for node in ast.walk(tree):
    if isinstance(node, ast.Import):
      names.update(alias.name for alias in node.names)
    elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
      names.add(node.module)
      names.update(f"{node.module}.{alias.name}" for alias in node.names)
  return names


def library_modules():
  """(path relative to the repository, imported names) of every tfser module."""
  for folder, _, files in os.walk(TFSER):
    for name in sorted(files):
      if name.endswith(".py"):
        path = os.path.join(folder, name)
        yield os.path.relpath(path, ROOT), imported_modules(path)


def _under(path, package):
  return path.startswith(os.path.join("tfser", package) + os.sep)


class ImportDirectionTest(unittest.TestCase):

  def test_only_entry_points_import_data_prep(self):
    offenders = [path for path, names in library_modules()
                 if not _under(path, "launchers")
                 and any(n == "data_prep" or n.startswith("data_prep.") for n in names)]
    self.assertEqual(offenders, [], "tfser modules importing data_prep (only tfser/launchers/ "
                     "may, to prepare the demo)")

  def test_library_never_imports_the_testing_helpers(self):
    offenders = [path for path, names in library_modules()
                 if not _under(path, "launchers") and not _under(path, "testing")
                 and any(n == "tfser.testing" or n.startswith("tfser.testing.") for n in names)]
    self.assertEqual(offenders, [])

  def test_no_module_imports_the_entry_points(self):
    offenders = [path for path, names in library_modules()
                 if not _under(path, "launchers") and not path.endswith("launch.py")
                 and any(n.startswith("tfser.launchers") or n == "tfser.launch" for n in names)]
    self.assertEqual(offenders, [])

  def test_layers_below_the_tasks_never_import_them(self):
    # launchers -> tasks -> core, data, ops, layers, models, losses, metrics (never upward).
    below = ("core", "data", "ops", "layers", "models", "losses")
    offenders = [path for path, names in library_modules()
                 if (any(_under(path, p) for p in below) or path.endswith("metrics.py"))
                 and any(n == "tfser.tasks" or n.startswith("tfser.tasks.") for n in names)]
    self.assertEqual(offenders, [])

  def test_the_check_sees_imports_inside_functions(self):
    import tempfile  # pylint: disable=g-import-not-at-top
    with tempfile.NamedTemporaryFile("w", suffix=".py", delete=False) as f:
      f.write("def f():\n  from data_prep import prepare\n  import data_prep.labels\n")
    self.addCleanup(os.remove, f.name)
    self.assertLessEqual({"data_prep", "data_prep.prepare", "data_prep.labels"},
                         imported_modules(f.name))


if __name__ == "__main__":
  unittest.main()
