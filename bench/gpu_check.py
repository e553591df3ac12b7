"""One GPU check (issue 17): the numbers a researcher needs before spending GPU hours on tfser.

Run by ``bench/gpu_check.sh`` (sized for under 8 minutes on one GPU). Rows of one table, written
to the ``gpu_check`` section of bench/RESULTS.md with the device's name:

1. Each task's train step, float32 without XLA ("eager": Keras's default tf.function step, no
   jit_compile) vs XLA + mixed_float16; the step-time ratio (goal >= 2x). bench.cww.time_steps
   (CWW, Algorithm 1's three corpus minibatches of 32 x 1582 through F) and
   bench.annotators.time_step (MT, task1+2, batch 32, 1280-d input).
2. DiffKDE forward + backward (bench.kde_diffkde) at batch 32 and 256, float32 and
   mixed_float16, both XLA (without a GPU: float32 without XLA, whose CPU compile is too slow).
3. The ground-truth KDE (tfser.ops.kde, float64, XLA) at grid 512 against the kde-diffusion
   ``kde2d`` loop (bench.kde): speed-up and max relative density difference.
4. A CWW train step under a 2-GPU MirroredStrategy (global batch 2 x 32 per corpus) where two
   GPUs exist.

Without a GPU it still runs (CPU, float32 rows only) and marks the rows that need one as
``skipped (no GPU)``: mixed_float16 is emulated on a CPU and its timings would mean nothing.

  python -m bench.gpu_check                     # the GPU sizes
  python -m bench.gpu_check --steps=3 --repeats=1 --annotators=50 --annotator_objective=task1 \\
      --cww_dim=32 --cww_utterances=100 --kde_grid=32 --kde_rows=4 --kde_ref_rows=2 \\
      --diffkde_batches=8 --results=/tmp/RESULTS.md   # a smoke run (tests/test_gpu_check.py)
"""

import argparse
import contextlib
import time

import numpy as np

import tfser  # noqa: F401  (Keras flavour before TensorFlow)
import tensorflow as tf

from bench import annotators as bench_annotators
from bench import cww as bench_cww
from bench import kde as bench_kde
from bench import kde_diffkde as bench_diffkde
from bench import results
from tfser.core import distribute
from tfser.layers.diffkde import DiffKDE
from tfser.ops import kde as kde_lib
from tfser.tasks.cww.config import CwwConfig
from tfser.testing import cww_arrays

HEADER = ["check", "setting", "time", "ratio", "goal", "status"]
SKIPPED_NO_GPU = "skipped (no GPU)"
SKIPPED_ONE_GPU = "skipped (fewer than 2 GPUs)"
SECTION = "gpu_check"


@contextlib.contextmanager
def _policy(name: str):
  old = tf.keras.mixed_precision.global_policy()
  tf.keras.mixed_precision.set_global_policy(name)
  try:
    yield
  finally:
    tf.keras.mixed_precision.set_global_policy(old)


def _ms(seconds: float) -> str:
  return f"{seconds * 1e3:.2f} ms"


def _speedup_rows(check: str, time_fn, gpu: bool, goal: float = 2.0):
  """Rows: float32 no XLA, then XLA + mixed_float16 (GPU only) with the ratio against the goal.

  time_fn(jit, mixed) -> seconds per step.
  """
  base = time_fn(False, False)
  rows = [[check, "float32, no XLA", _ms(base), "1.00x", "", "ok"]]
  if not gpu:
    rows.append([check, "XLA + mixed_float16", "-", "-", f">= {goal:.0f}x", SKIPPED_NO_GPU])
    return rows
  fast = time_fn(True, True)
  ratio = base / fast
  rows.append([check, "XLA + mixed_float16", _ms(fast), f"{ratio:.2f}x", f">= {goal:.0f}x",
               "met" if ratio >= goal else "missed"])
  return rows


def cww_rows(args, gpu: bool, gpus: int):
  source = cww_arrays.synthetic_corpora(
      dim=args.cww_dim, sizes={c: args.cww_utterances for c in ("CRE", "IEM", "IMP", "POD")},
      unlabelled=None)

  timed = {}

  def time_fn(jit, mixed):
    with _policy("mixed_float16" if mixed else "float32"):
      config = CwwConfig(holdout="POD", jit=jit, mixed_precision=mixed)
      timed[jit, mixed] = bench_cww.time_steps(config, source, args.steps, repeats=args.repeats)
    return timed[jit, mixed]

  rows = _speedup_rows(f"CWW train step (3 x 32 x {args.cww_dim})", time_fn, gpu)
  check = "CWW train step, 2-GPU MirroredStrategy (3 x 64)"
  if gpus < 2:
    rows.append([check, "float32, no XLA", "-", "-", "", SKIPPED_ONE_GPU])
  else:
    one = timed[False, False]
    with distribute.strategy("mirrored").scope():  # every local GPU
      config = CwwConfig(holdout="POD", batch_size=32 * gpus)
      two = bench_cww.time_steps(config, source, args.steps, repeats=args.repeats)
    # Throughput: twice the utterances per step; ratio = samples/s vs one GPU at batch 32.
    rows.append([check, f"float32, no XLA, {gpus} GPUs", _ms(two),
                 f"{gpus * one / two:.2f}x samples/s", "> 1x", "ok" if two < gpus * one
                 else "no gain"])
  return rows


def annotator_rows(args, gpu: bool):
  def time_fn(jit, mixed):
    with _policy("mixed_float16" if mixed else "float32"):
      seconds, _ = bench_annotators.time_step(args.annotators, objective=args.annotator_objective,
                                              jit=jit, steps=args.steps)
      return seconds

  return _speedup_rows(f"annotators MT {args.annotator_objective} step ({args.annotators} "
                       "annotators)", time_fn, gpu)


def diffkde_rows(args, gpu: bool):
  rows = []
  predictions, mask, targets = bench_diffkde._batch(0)  # pylint: disable=protected-access
  for batch in args.diffkde_batches:
    reps = -(-batch // bench_diffkde.BATCH)
    tiled = [tf.tile(t, [reps] + [1] * (len(t.shape) - 1))[:batch]
             for t in (predictions, mask, targets)]
    for precision in ("float32", "mixed_float16"):
      check = f"DiffKDE fwd+bwd, batch {batch}"
      # XLA on a GPU; on a CPU its compile of the KDE alone takes longer than this whole check.
      setting = (f"{precision}, {'XLA' if gpu else 'no XLA'}, grid {bench_diffkde.GRID}, "
                 f"{bench_diffkde.SAMPLES} samples")
      if precision == "mixed_float16" and not gpu:
        rows.append([check, setting, "-", "-", "", SKIPPED_NO_GPU])
        continue
      layer = DiffKDE(grid_size=bench_diffkde.GRID, out_bins=bench_diffkde.OUT_BINS,
                      samples=bench_diffkde.SAMPLES, dtype=precision, seed=0)
      ms = bench_diffkde._time_ms(  # pylint: disable=protected-access
          bench_diffkde._step_fn(layer, jit=gpu), tiled, args.repeats)  # pylint: disable=protected-access
      rows.append([check, setting, f"{ms:.2f} ms", f"{ms / batch:.3f} ms/utterance",
                   f"paper (PyTorch, batch 32): {bench_diffkde.PAPER_MS[precision]:.0f} ms",
                   "ok"])
  return rows


def kde_rows(args):
  grid = args.kde_grid
  points = bench_kde.upsampled_likert(args.kde_rows)
  ref_rows = min(args.kde_ref_rows, args.kde_rows)
  ref_density, ref_bandwidth, ref_seconds = bench_kde.reference_loop(points[:ref_rows], grid)
  ref_total = ref_seconds * args.kde_rows / ref_rows
  chunk = min(args.kde_rows, max(1, kde_lib._CHUNK_ELEMENTS // (grid * grid)))  # pylint: disable=protected-access
  result, seconds, _ = bench_kde.run_tfser(points, grid, True, chunk)
  dens, band, agree = bench_kde.compare(result, ref_density, ref_bandwidth)
  check = f"ground-truth KDE, grid {grid}, {args.kde_rows} utterances"
  speedup = ref_total / seconds
  met = speedup >= 50 and dens <= 1e-6 and agree
  return [
      [check, f"kde_diffusion.kde2d loop (timed on {ref_rows}, scaled)", f"{ref_total:.2f} s",
       "1.0x", "", "reference"],
      [check, "tfser float64, XLA", f"{seconds:.2f} s", f"{speedup:.1f}x",
       ">= 50x, density rel. diff <= 1e-6",
       f"{'met' if met else 'missed'} (max rel. density diff {dens:.1e}, bandwidth {band:.1e}, "
       f"same rows converge: {agree})"],
  ]


def parse_args(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  parser.add_argument("--steps", type=int, default=50, help="timed train steps per epoch")
  parser.add_argument("--repeats", type=int, default=3, help="timed repeats (medians)")
  parser.add_argument("--annotators", type=int, default=1000)
  parser.add_argument("--annotator_objective", default="task1+2", choices=("task1", "task1+2"))
  parser.add_argument("--cww_dim", type=int, default=1582)
  parser.add_argument("--cww_utterances", type=int, default=200)
  parser.add_argument("--diffkde_batches", default="32,256",
                      type=lambda s: [int(b) for b in s.split(",")])
  parser.add_argument("--kde_grid", type=int, default=512)
  parser.add_argument("--kde_rows", type=int, default=256)
  parser.add_argument("--kde_ref_rows", type=int, default=16)
  parser.add_argument("--results", default=results.RESULTS_PATH, help="the RESULTS.md to update")
  return parser.parse_args(argv)


def main(argv=None):
  args = parse_args(argv)
  start = time.time()
  gpus = tf.config.list_physical_devices("GPU")
  gpu = bool(gpus)
  device = (", ".join(tf.config.experimental.get_device_details(g).get("device_name", g.name)
                      for g in gpus) if gpu else "no GPU (CPU only)")
  rows = []
  for part in (lambda: cww_rows(args, gpu, len(gpus)), lambda: annotator_rows(args, gpu),
               lambda: diffkde_rows(args, gpu), lambda: kde_rows(args)):
    part_start = time.time()
    rows += part()
    print(results.markdown_table(HEADER, rows[-2:]), f"({time.time() - part_start:.0f} s)",
          flush=True)
  table = results.markdown_table(HEADER, rows)
  body = (f"Device: {device}. Whole check: {time.time() - start:.0f} s; {args.steps} steps per "
          f"timing (median of {args.repeats} after a warm-up).\n\n{table}")
  print(body)
  results.write_section(SECTION, "GPU check (bench/gpu_check.sh)", body, path=args.results)
  return rows


if __name__ == "__main__":
  main()
