"""One worker process of tests/test_multi_worker.py: trains a tiny run of a task, prints RESULT.

    TF_CONFIG=... python -m tests.multi_worker_main --task=cww --config='{"data_dir": ...}'

--task: cww (CwwConfig fields in --config; data from data_dir). The annotators task has no
multi-worker training yet (see the README, "Several workers").
--sleep_per_step: seconds slept after every training step (gives the kill test time to act).
The last stdout line is ``RESULT {json}``: the run's worker info and its weights' digest.
"""

import argparse
import json
import time

import tfser  # noqa: F401
import tensorflow as tf

from tfser.core import distribute


class _Sleep(tf.keras.callbacks.Callback):

  def __init__(self, seconds):
    super().__init__()
    self.seconds = seconds

  def on_train_batch_end(self, batch, logs=None):
    time.sleep(self.seconds)


def main():
  parser = argparse.ArgumentParser()
  parser.add_argument("--task", choices=("cww",), required=True)
  parser.add_argument("--config", required=True, help="JSON of the task config's fields")
  parser.add_argument("--sleep_per_step", type=float, default=0.0)
  args = parser.parse_args()
  fields = json.loads(args.config)
  distribute.strategy(fields.get("distribute", "none"))  # before the runtime starts
  callbacks = [_Sleep(args.sleep_per_step)] if args.sleep_per_step else []
  from tfser.tasks.cww import train as cww_train  # pylint: disable=g-import-not-at-top
  from tfser.tasks.cww.config import CwwConfig  # pylint: disable=g-import-not-at-top
  results = cww_train.train(CwwConfig(**fields), extra_callbacks=callbacks)
  print("RESULT " + json.dumps({"worker": results["worker"],
                                "weights_sha256": results["weights_sha256"]}), flush=True)


if __name__ == "__main__":
  main()
