"""Entry point of the CWW paper's Fig. 1 check (``tfser.tasks.cww.fig1``):

    python -m tfser.launchers.cww_fig1 --seeds=3          # on the demo (prepared on first use)
    python -m tfser.launchers.cww_fig1 --data_dir=DIR     # on prepared corpora
    python -m tfser.launchers.cww_fig1 --synthetic        # in-memory corpora of graded difficulty
"""

import argparse
import dataclasses
import json
from typing import Optional, Sequence

import tfser  # noqa: F401  (Keras flavour before TensorFlow)

from tfser.tasks.cww import fig1 as cww_fig1
from tfser.tasks.cww.config import CwwConfig
from tfser.launchers import common


def main(argv: Optional[Sequence[str]] = None):
  parser = argparse.ArgumentParser(description=cww_fig1.__doc__.split("\n")[0])
  parser.add_argument("--data_dir", default=None, help="Prepared corpora (default: the demo).")
  parser.add_argument("--demo_dir", default="~/.cache/tfser/demo")
  parser.add_argument("--holdout", default="POD")
  parser.add_argument("--seeds", type=int, default=3)
  parser.add_argument("--max_epochs", type=int, default=30)
  parser.add_argument("--synthetic", action="store_true", help="In-memory graded corpora.")
  args = parser.parse_args(argv)
  source = None
  data_dir = args.data_dir
  if not data_dir and not args.synthetic:
    data_dir = common.demo_data_dir(args.demo_dir, ("is10",))
  base = CwwConfig(holdout=args.holdout, data_dir=data_dir, demo_dir=args.demo_dir,
                   max_epochs=args.max_epochs, checkpoint_every_steps=0)
  if args.synthetic:
    from tfser.testing import cww_arrays  # pylint: disable=g-import-not-at-top
    source = cww_arrays.synthetic_corpora(dim=64, seed=0)
    base = dataclasses.replace(base, feature_dim=64)
  result = cww_fig1.compare_spread(base, range(args.seeds), source)
  print(json.dumps({k: v for k, v in result.items() if k != "train_ua"}, indent=2))


if __name__ == "__main__":
  main()
