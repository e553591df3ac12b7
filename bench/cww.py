"""CWW training speed: steps per second with and without XLA, and the input pipeline vs the step.

One step = Algorithm 1's step at the paper's sizes: three corpus minibatches of 32 IS10 vectors
(1582) through F (1024-1024-512-512-4, dropout 0.5), Eq. 2's loss, Adam. Every row is a ratio
against the no-jit train step measured in the same run.

  python -m bench.cww                      # synthetic in-memory corpora
  python -m bench.cww --data_dir=DIR       # TFRecords prepared by data_prep (input-pipeline row
                                           # then measures the real parse/cache/shuffle/zip path)
"""

import argparse
import time

import numpy as np

import tfser  # noqa: F401  (Keras flavour before TensorFlow)
import tensorflow as tf

from bench import results
from tfser.tasks.cww import data as cww_data
from tfser.testing import cww_arrays
from tfser.tasks.cww import train as cww_train
from tfser.tasks.cww.config import CwwConfig


class _StepTimer(tf.keras.callbacks.Callback):
  def __init__(self):
    super().__init__()
    self.epoch_seconds = []

  def on_epoch_begin(self, epoch, logs=None):
    self._start = time.perf_counter()

  def on_epoch_end(self, epoch, logs=None):
    self.epoch_seconds.append(time.perf_counter() - self._start)


def _stream(config, source):
  counts = {c: cww_data.label_counts(source.labelled(c, "train", batch_size=256))
            for c in config.training_corpora}
  return cww_train.build_training_stream(config, source, counts)


def time_steps(config: CwwConfig, source, steps: int, repeats: int = 3) -> float:
  """Seconds per train step (median over epochs after a warm-up epoch), data already in memory."""
  dataset, corpora, _ = _stream(config, source)
  # Take the batches out of the pipeline first so only the step is timed.
  batch = next(iter(dataset))
  fixed = tf.data.Dataset.from_tensors(batch).repeat()
  dim = int(batch["labelled"][corpora[0]]["features"].shape[-1])
  tf.keras.utils.set_random_seed(0)
  _, model = cww_train.build_model(config, corpora, dim, np.zeros(dim), np.ones(dim),
                                   [0.25] * 4)
  timer = _StepTimer()
  model.fit(fixed, steps_per_epoch=steps, epochs=repeats + 1, callbacks=[timer], verbose=0)
  return float(np.median(timer.epoch_seconds[1:])) / steps


def time_pipeline(config: CwwConfig, source, steps: int) -> float:
  """Seconds per zipped element (one minibatch per corpus) of the training stream, warm cache."""
  dataset, _, _ = _stream(config, source)
  iterator = iter(dataset)
  for _ in range(steps):  # warm-up: fills caches and shuffle buffers
    next(iterator)
  start = time.perf_counter()
  for _ in range(steps):
    next(iterator)
  return (time.perf_counter() - start) / steps


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--data_dir", default=None)
  parser.add_argument("--steps", type=int, default=30)
  parser.add_argument("--no_write", action="store_true", help="Print only; leave RESULTS.md.")
  args = parser.parse_args(argv)
  config = CwwConfig(holdout="POD", data_dir=args.data_dir)
  if args.data_dir:
    source = cww_data.PipelineSource(args.data_dir)
    where = f"TFRecords in {args.data_dir}"
  else:
    source = cww_arrays.synthetic_corpora(dim=1582, sizes={"CRE": 600, "IEM": 600, "IMP": 600,
                                                         "POD": 200}, unlabelled=None)
    where = "synthetic in-memory corpora (3 x 360 training utterances, 1582 features)"
  no_jit = time_steps(config, source, args.steps)
  jit = time_steps(CwwConfig(holdout="POD", jit=True), source, args.steps)
  pipeline = time_pipeline(config, source, args.steps)
  rows = [
      ("train step, no jit (reference)", f"{no_jit * 1e3:.1f} ms", f"{1 / no_jit:.1f}", "1.00x"),
      ("train step, jit_compile=True", f"{jit * 1e3:.1f} ms", f"{1 / jit:.1f}",
       f"{no_jit / jit:.2f}x the no-jit step rate"),
      ("input pipeline, one zipped step", f"{pipeline * 1e3:.2f} ms", f"{1 / pipeline:.1f}",
       f"{no_jit / pipeline:.1f}x the no-jit step rate"),
  ]
  table = results.markdown_table(["what", "time per step", "steps/s", "ratio"], rows)
  body = (f"Data: {where}; batch 32 per corpus, 3 training corpora, float32, {args.steps} steps "
          f"per timing (median of 3 after a warm-up).\n\n{table}")
  if jit > no_jit:
    body += ("\n\nOn this CPU, XLA's compiled step is slower than TensorFlow's default kernels "
             "(oneDNN matmuls) for these dense layers, so `--jit` is off by default (not measured "
             "on a GPU here).")
  print(body)
  if not args.no_write:
    results.write_section("cww", "CWW train step: jit vs no jit, input pipeline vs step", body)


if __name__ == "__main__":
  main()
