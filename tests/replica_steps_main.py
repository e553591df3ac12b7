"""The annotator models' training and validation steps on two replicas vs one (issue 17).

    python -m tests.replica_steps_main    # prints RESULT {json}; tests/test_multi_worker.py runs it

A process of its own: the two replicas are two logical CPU devices under MirroredStrategy, which
must be configured before TensorFlow's runtime starts. By default the baseline (its own
cross-entropy objective) and one-hot with Task 1 (the minibatch CCC; Task 1+2, the costly DiffKDE
trace, is trained with MT on two real workers in tests/test_multi_worker.py) each train one epoch
of three global minibatches (13, 13 and 4 utterances: slices of 7/6 and 2/2 rows) without and
with the strategy from the same initial weights and seed, then validate; RESULT holds, per model,
the largest difference of the trained weights (relative to their scale) and both runs' validation
logs. Without the all-gather the difference is 5e-2 (baseline) and 0.9 (one-hot), with it 1e-7
to 1e-5. ``--models=baseline,mt,onehot`` picks others.
"""

import argparse
import json
import types

import numpy as np

import tfser  # noqa: F401
import tensorflow as tf

OBJECTIVES = {"baseline": "baseline", "mt": "task1+2", "onehot": "task1"}


def _train(model, objective, strategy, corpus):
  # pylint: disable=g-import-not-at-top
  from tfser.core import distribute
  from tfser.tasks.annotators import train as annotators
  # pylint: enable=g-import-not-at-top
  tf.keras.utils.set_random_seed(0)
  config = annotators.AnnotatorsConfig(
      model=model, objective=objective, data_dir="synthetic", hidden_units=8, dropout=0.0,
      diffkde_grid_size=32, diffkde_samples=20, diffkde_train_dtype="float32",
      learning_rate=0.05)
  shape = types.SimpleNamespace(input_dim=corpus.input_dim, num_annotators=corpus.num_annotators)
  with strategy.scope():
    task = annotators.build_task_model(config, shape)
  task.fit(distribute.shard_by_data(corpus.dataset("train", 13)), epochs=1, verbose=0)
  logs = task.evaluate(distribute.shard_by_data(corpus.dataset("validation", 13)), verbose=0,
                       return_dict=True)
  return [np.asarray(w.numpy(), np.float64) for w in task.network.weights], logs


def main():
  parser = argparse.ArgumentParser()
  parser.add_argument("--models", default="baseline,onehot", help="comma-separated: baseline, mt, onehot")
  models = parser.parse_args().models.split(",")
  cpu = tf.config.list_physical_devices("CPU")[0]
  tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
  from tfser.testing.annotator_arrays import make_corpus  # pylint: disable=g-import-not-at-top
  corpus = make_corpus(num_annotators=6, input_dim=5, gt_grid=16, seed=5,
                       sizes=(("train", 30), ("validation", 17), ("test", 1)))
  mirrored = tf.distribute.MirroredStrategy([d.name for d in tf.config.list_logical_devices("CPU")])
  results = {}
  for model in models:
    objective = OBJECTIVES[model]
    one, one_logs = _train(model, objective, tf.distribute.get_strategy(), corpus)
    two, two_logs = _train(model, objective, mirrored, corpus)
    results[model] = {
        "replicas": mirrored.num_replicas_in_sync,
        "max_relative_difference": max(float(np.max(np.abs(a - b)) / (np.max(np.abs(a)) + 1e-12))
                                       for a, b in zip(one, two)),
        "weight_scale": max(float(np.max(np.abs(a))) for a in one),
        "validation": {"one": {k: float(v) for k, v in one_logs.items()},
                       "two": {k: float(v) for k, v in two_logs.items()}}}
  print("RESULT " + json.dumps(results), flush=True)


if __name__ == "__main__":
  main()
