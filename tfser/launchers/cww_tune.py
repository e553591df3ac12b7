"""Entry point of the CWW hyper-parameter sweeps (``tfser.tasks.cww.tuning``, keras-tuner):

    python -m tfser.launchers.cww_tune --method=focal_loss                    # demo, grid search
    python -m tfser.launchers.cww_tune --method=cww --algorithm=bayesian --max_trials=8 \\
        --data_dir=/data/tfser --out_dir=runs/tune/cww

Every CWW flag (``python -m tfser.launch --task=cww --helpfull``) sets the runs' other
settings; ``--holdouts``/``--seeds`` the runs of each trial. Writes the trials table
(``<out_dir>/trials.md|csv``), the HParams dashboard (``<out_dir>/tensorboard``) and the best
values as the registry's ``cww/tuned/<method>`` (``--tuned_dir``, default $TFSER_TUNED_DIR or
./tuned), which ``launch/cww_table2.sh`` then uses. Distributed: keras-tuner's chief/worker
environment (README, "Tuning").
"""

import json
import sys

import tfser  # noqa: F401  (Keras flavour before TensorFlow)

from absl import app
from absl import flags

from tfser.core import cli
from tfser.core import flags as config_flags
from tfser.launchers import common
from tfser.launchers import cww as cww_launcher  # the CWW flags (--method, --max_epochs, ...)

FLAGS = flags.FLAGS


def define_tuning_flags():
  from tfser.tasks.cww import tuning  # pylint: disable=g-import-not-at-top
  config_flags.define_flags(tuning.TuningConfig, module_name="tfser.launchers.cww_tune")


def base_and_source(prog: str):
  """(CwwConfig from the CWW flags, data source): the demo, prepared on first use, without
  --data_dir."""
  from tfser.tasks.cww import data as cww_data  # pylint: disable=g-import-not-at-top
  try:
    base = cww_launcher.config_from_flags()
    base.validate()
  except ValueError as e:
    raise SystemExit(f"{prog}: {e}") from None
  source = None
  if not base.data_dir:
    source = cww_data.PipelineSource(
        common.demo_data_dir(base.demo_dir, (base.feature_name,)), base.feature_name)
  return base, source


def out_dir(default: str) -> str:
  """--out_dir if given, else ``default``; checked writable (ValueError naming the flag)."""
  from tfser.core import run_guard  # pylint: disable=g-import-not-at-top
  return run_guard.check_out_dir(FLAGS.out_dir if FLAGS["out_dir"].present else default)


def main():
  from tfser.tasks.cww import tuning  # pylint: disable=g-import-not-at-top
  prog = "tfser.launchers.cww_tune"
  config = tuning.TuningConfig(**config_flags.values_from_flags(tuning.TuningConfig))
  try:
    config.validate()
    tuning.search_space(FLAGS.method)
  except ValueError as e:
    raise SystemExit(f"{prog}: {e}") from None
  base, source = base_and_source(prog)
  best = tuning.tune(base, config, out_dir(f"runs/tune/{FLAGS.method}"), source=source)
  if best is not None:
    print(json.dumps(best, indent=2))


if __name__ == "__main__":
  cli.quiet_libraries(sys.argv)
  define_tuning_flags()
  app.run(lambda _: cli.run_task("tfser.launchers.cww_tune", main,
                                 data_dir=common.data_dir_in_use))
