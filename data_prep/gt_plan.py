"""How the ground-truth KDE runs: chunk size, graph vs XLA, threads (issue 13).

:func:`resolve` fills the ``None`` (automatic) fields of a ``GroundTruthConfig`` from the grid
and the number of KDE rows (utterances with ground truth x seeds) of the corpus; explicit values
(``--gt_batch``, ``--gt_jit``, ``--gt_threads``) are kept.

* kde_batch: the KDE's own cache-sized chunk, ``2**20 // n**2`` rows (4 at grid 512, 64 at 128,
  256 at 64), at most the corpus's rows. A call of more rows than that makes
  ``tfser.ops.kde`` loop over chunks inside the graph, unrolled: at 32 rows and grid 512 that is
  8 copies of the whole root solve to optimise and compile (434 s and 4.3 GB under XLA for a
  10-utterance corpus, issue 13), for no speed-up: each chunk runs alone either way.
* jit: XLA only when the corpus has enough rows to pay for compiling (``_JIT_SECONDS`` once per
  process) with what it saves per row (``_JIT_SAVES_MS``), both measured on 2 CPU cores at grid
  512; smaller grids compile and run faster alike, so the same threshold in rows serves them.
* threads: one per core (``parallel.cores``): chunks run concurrently in threads of one
  process (TensorFlow runs a traced graph without the GIL); every chunk is computed alone, so the
  numbers do not depend on the thread count.
"""

import dataclasses
import math

from data_prep import parallel

# The KDE's cache-sized chunk (tfser.ops.kde keeps one [chunk, n, n] float64 a2 near 2**20
# cells: 8 MiB).
_CHUNK_CELLS = 1 << 20
# XLA at grid 512, chunks of 4 rows, 2 busy cores (2026-12-06): 27-28 s to trace and compile in a
# fresh process (graph mode: 9-10 s), then 9-10 ms per row instead of 18-23 ms; XLA from the
# break-even on (3,750 rows: 750 utterances with GT_SEEDS = 5).
_JIT_SECONDS = 30.0
_JIT_SAVES_MS = 8.0
JIT_MIN_ROWS = int(_JIT_SECONDS * 1e3 / _JIT_SAVES_MS)


def chunk_rows(grid_size: int) -> int:
  """The KDE's cache-sized chunk in rows for a grid (rounded up to a power of two as kde2d)."""
  n = 2 ** math.ceil(math.log2(grid_size))
  return max(1, _CHUNK_CELLS // (n * n))


def resolve(config, rows: int):
  """``config`` (a GroundTruthConfig) with kde_batch / jit / threads filled in for ``rows``."""
  batch = config.kde_batch
  if batch is None:
    batch = max(1, min(chunk_rows(config.grid_size), rows))
  if batch < 1:
    raise ValueError(f"--gt_batch must be >= 1, got {batch}")
  jit = config.jit if config.jit is not None else rows >= JIT_MIN_ROWS
  threads = config.threads if config.threads is not None else parallel.cores()
  if threads < 1:
    raise ValueError(f"--gt_threads must be >= 1, got {threads}")
  return dataclasses.replace(config, kde_batch=int(batch), jit=bool(jit), threads=int(threads))
