"""How the ground-truth KDE runs: eager / graph / XLA, chunk size, threads (issue 13).

:func:`resolve` fills the ``None`` (automatic) fields of a ``GroundTruthConfig`` from the grid
and the number of KDE rows (utterances with ground truth x seeds) of the corpus; explicit values
(``--gt_eager``, ``--gt_jit``, ``--gt_batch``, ``--gt_threads``) are kept.

* eager: small corpora (at most ``EAGER_MAX_ROWS`` rows) run the KDE op by op, with no
  tf.function: tracing the KDE's graph takes ~3 s at grid 512 and its first call another ~4 s
  (graph optimisation and instantiation), the largest part of a 10-utterance prepare; eagerly
  each chunk costs ~0.5 s of Python op dispatch instead (~4,000 ops), which chunks of
  ``4 * 2**20`` cells amortise (50 rows at grid 512, 2 cores: ~3 s eagerly, ~10 s traced).
* kde_batch: eagerly ``4 * 2**20 // n**2`` rows (16 at grid 512), in a graph the KDE's own
  cache-sized chunk, ``2**20 // n**2`` rows (4 at grid 512, 64 at 128, 256 at 64); at most the
  corpus's rows. Chunks have one shape (the last one padded): one compiled program in a graph,
  and eagerly the same kernels and reduction splits, so that a row's numbers do not depend on
  how many rows share its chunk. A graph call of more rows than the cache-sized chunk makes
  ``tfser.ops.kde`` loop over chunks inside the graph, unrolled: at 32 rows and grid 512 that
  is 8 copies of the whole root solve to optimise and compile (434 s and 4.3 GB under XLA for a
  10-utterance corpus, issue 13), for no speed-up.
* jit: XLA only when the corpus has enough rows to pay for compiling (``_JIT_SECONDS`` once per
  process) with what it saves per row (``_JIT_SAVES_MS``), both measured on 2 CPU cores at grid
  512; smaller grids compile and run faster alike, so the same threshold in rows serves them.
* threads: one per core (``parallel.cores``): graph chunks run concurrently in threads of one
  process (TensorFlow runs a traced graph without the GIL); eager chunks run one after the
  other (their ops use every core, and dispatching them from two threads contends for the GIL).
  Every chunk is computed alone, so the numbers do not depend on the thread count.
"""

import dataclasses
import math

from data_prep import parallel

# The KDE's cache-sized chunk (tfser.ops.kde keeps one [chunk, n, n] float64 a2 near 2**20
# cells: 8 MiB).
_CHUNK_CELLS = 1 << 20
# Eager chunks: 4x as many cells (the per-chunk op dispatch, ~0.5 s, is then ~30 ms per row at
# grid 512; a 10-utterance prepare in chunks of 16 rows peaked at ~0.9 GB).
_EAGER_CHUNK_CELLS = 1 << 22
# Eagerly up to this many rows (40 utterances, 13 chunks at grid 512), whatever the grid: at 38
# utterances (190 rows, grid 512, 2 cores under load 5-6) eagerly 27-29 s against 29-32 s traced
# (before the traces lost autograph); the demo's five corpora (grid 128, 1,500-2,100 rows each)
# took ~50 s eagerly against 25-29 s traced.
EAGER_MAX_ROWS = 200
# XLA at grid 512, chunks of 4 rows, 2 cores (2026-12-06, the KDE as three programs compiled at
# once, tfser.ops.kde.KDEStages): ~7 s before the first chunk in a fresh process, and a 300-
# utterance corpus (1,500 rows) prepared in 16.3 s with XLA against 16.8 s as traced graphs:
# XLA from about there on.
_JIT_SECONDS = 7.0
_JIT_SAVES_MS = 4.7
JIT_MIN_ROWS = int(_JIT_SECONDS * 1e3 / _JIT_SAVES_MS)


def _grid_cells(grid_size: int) -> int:
  n = 2 ** math.ceil(math.log2(grid_size))  # rounded up to a power of two as kde2d
  return n * n


def chunk_rows(grid_size: int) -> int:
  """The KDE's cache-sized chunk in rows for a grid (rounded up to a power of two as kde2d)."""
  return max(1, _CHUNK_CELLS // _grid_cells(grid_size))


def eager_chunk_rows(grid_size: int) -> int:
  """The most rows of one eager chunk for a grid."""
  return max(1, _EAGER_CHUNK_CELLS // _grid_cells(grid_size))


def resolve(config, rows: int):
  """``config`` (a GroundTruthConfig) with eager / kde_batch / jit / threads filled in for
  ``rows``."""
  rows = max(1, int(rows))
  if config.eager and config.jit:
    raise ValueError("--gt_eager and --gt_jit exclude each other (XLA compiles a graph)")
  threads = config.threads if config.threads is not None else parallel.cores()
  if threads < 1:
    raise ValueError(f"--gt_threads must be >= 1, got {threads}")
  eager = config.eager
  if eager is None:
    eager = not config.jit and rows <= EAGER_MAX_ROWS
  batch = config.kde_batch
  if batch is None:
    most = eager_chunk_rows(config.grid_size) if eager else chunk_rows(config.grid_size)
    batch = max(1, min(most, rows))
  if batch < 1:
    raise ValueError(f"--gt_batch must be >= 1, got {batch}")
  jit = False if eager else (config.jit if config.jit is not None else rows >= JIT_MIN_ROWS)
  return dataclasses.replace(config, eager=bool(eager), kde_batch=int(batch), jit=bool(jit),
                             threads=int(threads))
