"""The tfser entry point: ``python -m tfser.launch --task=cww|annotators [task flags]``.

``--task`` is read from the command line before absl parses the rest, so that only the chosen
task's flags are defined: ``python -m tfser.launch --task=cww --helpfull`` lists exactly the
flags of that task (with the papers' defaults) plus the common ones.

Named experiments (``tfser.core.registry``; every row of the papers' tables):

    python -m tfser.launch --list_experiments             # name, flags and title of each
    python -m tfser.launch --list_experiments=cww/table2/ --names   # just the names under a prefix
    python -m tfser.launch --experiment=cww/table2/focal_loss --holdout=IEM

``--experiment=NAME`` stands for the row's ``--task`` and flags, placed before the rest of the
command line, so an explicit flag overrides the row's.
"""

import importlib
import sys

import tfser  # noqa: F401  (Keras flavour before TensorFlow)

from tfser.tasks import TASKS  # noqa: E402  (the task folders under tfser/tasks/)


def _value(argv, name):
  """The value of --name (``--name=X`` or ``--name X``; the last one given), or None."""
  value = None
  for i, arg in enumerate(argv):
    if arg.startswith(f"--{name}="):
      value = arg.split("=", 1)[1]
    elif arg == f"--{name}" and i + 1 < len(argv):
      value = argv[i + 1]
  return value


def _task_from_argv(argv):
  """Returns the value of --task (``--task=X`` or ``--task X``), or None."""
  return _value(argv, "task")


def _strip(argv, name):
  out, skip = [], False
  for i, arg in enumerate(argv):
    if skip:
      skip = False
      continue
    if arg.startswith(f"--{name}="):
      continue
    if arg == f"--{name}":
      skip = i + 1 < len(argv)
      continue
    out.append(arg)
  return out


def _strip_task(argv):
  return _strip(argv, "task")


def _list_experiments(argv) -> int:
  """--list_experiments[=PREFIX] [--names]: prints the registry's experiments; exit status."""
  from tfser import tasks  # pylint: disable=g-import-not-at-top
  prefix = ""
  for arg in argv:
    if arg.startswith("--list_experiments="):
      prefix = arg.split("=", 1)[1]
  try:
    found = tasks.experiments().under(prefix)
  except ValueError as e:  # e.g. a damaged tuned file (tfser.tasks.cww.tuned), named
    print(f"tfser.launch: {e}", file=sys.stderr)
    return 1
  if not found:
    print(f"tfser.launch: no experiment starts with {prefix!r}", file=sys.stderr)
    return 2
  for e in found:
    print(e.name if "--names" in argv else f"{e.name}\t{' '.join(e.flags)}\t{e.label}")
  return 0


def _expand_experiment(argv):
  """argv with --experiment=NAME replaced by the row's --task and flags (before the others)."""
  name = _value(argv[1:], "experiment")
  if name is None:
    return argv
  from tfser import tasks  # pylint: disable=g-import-not-at-top
  try:
    experiment = tasks.experiments().get(name)
  except ValueError as e:
    sys.exit(f"tfser.launch: --experiment: {e}")
  task = _task_from_argv(argv[1:])
  if task is not None and task != experiment.task:
    sys.exit(f"tfser.launch: --experiment={name} is a {experiment.task} experiment, but "
             f"--task={task}")
  rest = _strip(_strip_task(argv[1:]), "experiment")
  return [argv[0], f"--task={experiment.task}", *experiment.flags, *rest]


def run_main(argv=None):
  argv = list(sys.argv if argv is None else argv)
  if any(a == "--list_experiments" or a.startswith("--list_experiments=") for a in argv[1:]):
    sys.exit(_list_experiments(argv[1:]))
  argv = _expand_experiment(argv)
  task = _task_from_argv(argv[1:])
  if task not in TASKS:
    got = "no --task" if task is None else f"--task={task}"
    sys.exit(f"tfser.launch: {got}; choose --task from {', '.join(TASKS)} "
             f"(e.g. python -m tfser.launch --task=cww --holdout=POD), or a named experiment: "
             "--experiment=NAME (python -m tfser.launch --list_experiments)")
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
