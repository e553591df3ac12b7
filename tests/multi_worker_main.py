"""One worker process of tests/test_multi_worker.py: trains a tiny run of a task, prints RESULT.

    TF_CONFIG=... python -m tests.multi_worker_main --task=cww --config='{"data_dir": ...}'

--task: cww (CwwConfig fields in --config; data from data_dir) or annotators (AnnotatorsConfig
fields in --config, plus "corpus_seed": the tiny synthetic corpus of tfser.testing.annotator_arrays,
generated alike in every process).
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


def _annotators(fields, callbacks):
  """A run of the annotators task on the synthetic corpus ``fields.pop("corpus_seed")``."""
  # pylint: disable=g-import-not-at-top
  from tfser.testing.annotator_arrays import make_corpus
  from tfser.core import run as train_common
  from tfser.tasks.annotators import train as annotators
  # pylint: enable=g-import-not-at-top
  corpus = make_corpus(num_annotators=8, input_dim=6, gt_grid=16, seed=fields.pop("corpus_seed"),
                       sizes=(("train", 45), ("validation", 21), ("test", 8)))
  config = annotators.AnnotatorsConfig(**fields)
  # Seeded before the datasets are built, as the pipeline's run is (their shuffle seeds).
  train_common.configure_runtime(config.seed, deterministic=True)
  data = annotators.AnnotatorData(
      train=corpus.dataset("train", config.batch_size, shuffle=True, seed=config.seed),
      validation=corpus.dataset("validation", config.batch_size),
      test=corpus.dataset("test", config.batch_size), num_annotators=corpus.num_annotators,
      input_dim=corpus.input_dim, feature_names=("synthetic",))
  return annotators.run(config, data=data, extra_callbacks=callbacks)


def main():
  parser = argparse.ArgumentParser()
  parser.add_argument("--task", choices=("cww", "annotators"), required=True)
  parser.add_argument("--config", required=True, help="JSON of the task config's fields")
  parser.add_argument("--sleep_per_step", type=float, default=0.0)
  args = parser.parse_args()
  fields = json.loads(args.config)
  distribute.strategy(fields.get("distribute", "none"))  # before the runtime starts
  callbacks = [_Sleep(args.sleep_per_step)] if args.sleep_per_step else []
  if args.task == "annotators":
    results = _annotators(fields, callbacks)
  else:
    from tfser.tasks.cww import train as cww_train  # pylint: disable=g-import-not-at-top
    from tfser.tasks.cww.config import CwwConfig  # pylint: disable=g-import-not-at-top
    results = cww_train.train(CwwConfig(**fields), extra_callbacks=callbacks)
  print("RESULT " + json.dumps({"worker": results["worker"],
                                "weights_sha256": results["weights_sha256"]}), flush=True)


if __name__ == "__main__":
  main()
