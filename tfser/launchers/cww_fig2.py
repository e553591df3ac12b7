"""Entry point of the CWW paper's Fig. 2 (``tfser.tasks.cww.fig2``): UA against lambda_W and
lambda_L, one line per holdout, as ``fig2.png`` and CSVs under --out_dir (default runs/fig2):

    python -m tfser.launchers.cww_fig2                                  # demo, the paper's grid
    python -m tfser.launchers.cww_fig2 --data_dir=/data/tfser --seeds=0,1,2,3,4
    python -m tfser.launchers.cww_fig2 --holdouts=POD --fig2_lambda_w=1,4 --fig2_lambda_l= \\
        --seeds=0 --max_epochs=1                                        # a quick look

Every CWW flag (``python -m tfser.launch --task=cww --helpfull``) sets the runs' other settings;
each curve's method is --lambda_w_method / --lambda_l_method.
"""

import json
import sys

import tfser  # noqa: F401  (Keras flavour before TensorFlow)

from absl import app

from tfser.core import cli
from tfser.core import flags as config_flags
from tfser.launchers import common
from tfser.launchers import cww_tune  # the CWW flags, the base config and the demo source
from tfser.tasks.cww import fig2 as cww_fig2  # no TensorFlow until a run starts


def main():
  prog = "tfser.launchers.cww_fig2"
  config = cww_fig2.Fig2Config(**config_flags.values_from_flags(cww_fig2.Fig2Config))
  try:
    config.validate()
  except ValueError as e:
    raise SystemExit(f"{prog}: {e}") from None
  base, source = cww_tune.base_and_source(prog)
  result = cww_fig2.run(config, base, cww_tune.out_dir("runs/fig2"), source=source)
  print(json.dumps({k: v for k, v in result.items() if k != "paths"}, indent=2))
  print("\n".join(result["paths"]))


if __name__ == "__main__":
  cli.quiet_libraries(sys.argv)
  config_flags.define_flags(cww_fig2.Fig2Config, module_name="tfser.launchers.cww_fig2")
  app.run(lambda _: cli.run_task("tfser.launchers.cww_fig2", main,
                                 data_dir=common.data_dir_in_use))
