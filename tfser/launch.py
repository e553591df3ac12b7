"""The tfser entry point: ``python -m tfser.launch --task=cww|annotators [task flags]``.

``--task`` is read from the command line before absl parses the rest, so that only the chosen
task's flags are defined: ``python -m tfser.launch --task=cww --helpfull`` lists exactly the
flags of that task (with the papers' defaults) plus the common ones.
"""

import importlib
import sys

import tfser  # noqa: F401  (Keras flavour before TensorFlow)

TASKS = ("cww", "annotators")


def _task_from_argv(argv):
  """Returns the value of --task (``--task=X`` or ``--task X``), or None."""
  for i, arg in enumerate(argv):
    if arg.startswith("--task="):
      return arg.split("=", 1)[1]
    if arg == "--task" and i + 1 < len(argv):
      return argv[i + 1]
  return None


def _strip_task(argv):
  out, skip = [], False
  for i, arg in enumerate(argv):
    if skip:
      skip = False
      continue
    if arg.startswith("--task="):
      continue
    if arg == "--task":
      skip = i + 1 < len(argv)
      continue
    out.append(arg)
  return out


def run_main(argv=None):
  argv = list(sys.argv if argv is None else argv)
  task = _task_from_argv(argv[1:])
  if task not in TASKS:
    got = "no --task" if task is None else f"--task={task}"
    sys.exit(f"tfser.launch: {got}; choose --task from {', '.join(TASKS)} "
             f"(e.g. python -m tfser.launch --task=cww --holdout=POD)")
  # issue 11 hooks: TensorFlow's C++ INFO lines off before it is imported (unless --verbosity);
  # main() runs under cli.run_task (Python INFO at WARNING, user errors without a traceback).
  from tfser.core import cli  # pylint: disable=g-import-not-at-top
  cli.quiet_libraries(argv)
  from absl import app  # pylint: disable=g-import-not-at-top
  from tfser.launchers import common  # noqa: F401  (defines the shared flags)
  launcher = importlib.import_module(f"tfser.launchers.{task}")
  app.run(lambda _: cli.run_task(f"tfser.launch --task={task}", launcher.main,
                                 data_dir=common.data_dir_in_use),
          argv=_strip_task(argv))


if __name__ == "__main__":
  run_main()
