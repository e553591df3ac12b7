"""Several processes preparing one corpus: ``--num_shards=N --shard_index=i`` (issue 13).

Every worker reads the whole corpus and makes the same plan (``shard_plan.plan_shards``:
it depends only on the utterances and the settings), then writes only its own output shards:
shard ``j`` of the plan (in plan order) belongs to worker ``j % N``. Each shard is computed
exactly as a single process computes it (features per utterance, ground truth in chunks of the
shard's own rows), so the files are the same bytes whoever writes them. The worker that finds
every shard finished writes the one manifest (under :func:`corpus_lock`) and switches the
shared build directory in as the corpus's output (``data_prep.staging``); the others return
without one. A plain run (no --num_shards) afterwards is the "final step": it skips every
finished shard, writes any a failed worker left, and then the manifest.
"""

import contextlib
import fcntl
import os
from typing import List, Sequence, TypeVar

T = TypeVar("T")
LOCK_SUFFIX = ".lock"  # <out_dir>/.partial/<corpus>.lock, beside the corpus's build


def cores() -> int:
  """CPU cores this process may use (its affinity mask where the OS has one)."""
  try:
    return max(1, len(os.sched_getaffinity(0)))
  except AttributeError:  # not on Linux
    return max(1, os.cpu_count() or 1)


def ops_on_caller_threads() -> None:
  """TensorFlow runs each op on the thread that calls it (an intra-op pool of 1).

  Preparation runs its own threads, one per core (ground-truth chunks, feature extraction), and
  TensorFlow's intra-op pool on top of them only contended: the ground truth of 2,000 utterances
  at grid 512 on 2 cores took ~60 s with TensorFlow's default pools and ~50 s with this
  (measured 2026-12-06). Must run before TensorFlow executes its first op (prepare's main does);
  later TensorFlow refuses the change and this does nothing.
  """
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  try:
    tf.config.threading.set_intra_op_parallelism_threads(1)
  except RuntimeError:  # the runtime is already initialised
    pass


def check_sharding(num_shards: int, shard_index: int) -> None:
  """ValueError naming the flags unless ``0 <= shard_index < num_shards``."""
  if num_shards < 1:
    raise ValueError(f"--num_shards must be >= 1, got {num_shards}")
  if not 0 <= shard_index < num_shards:
    raise ValueError(f"--shard_index must be in [0, --num_shards={num_shards}), "
                     f"got {shard_index}")


def worker_items(items: Sequence[T], num_shards: int, shard_index: int) -> List[T]:
  """The items (planned output shards, in plan order) worker ``shard_index`` of ``num_shards``
  writes: every ``num_shards``-th from ``shard_index`` on (round robin balances the splits)."""
  check_sharding(num_shards, shard_index)
  return [item for j, item in enumerate(items) if j % num_shards == shard_index]


@contextlib.contextmanager
def file_lock(path: str):
  """An exclusive advisory lock on the file ``path`` (created if missing; fcntl: works across
  processes and, where the file system supports it, across the nodes of a cluster)."""
  with open(path, "a") as f:
    fcntl.flock(f.fileno(), fcntl.LOCK_EX)
    try:
      yield
    finally:
      fcntl.flock(f.fileno(), fcntl.LOCK_UN)


def corpus_lock(lock_dir: str, corpus: str):
  """The corpus's lock, ``<lock_dir>/<corpus>.lock``: outside the build directory and the live
  output, which are switched by renames."""
  return file_lock(lock_path(lock_dir, corpus))


def lock_path(lock_dir: str, corpus: str) -> str:
  return os.path.join(lock_dir, corpus + LOCK_SUFFIX)


def remove_lock(lock_dir: str, corpus: str) -> None:
  """Removes the lock file once the manifest is written (the output equals a single run's)."""
  try:
    os.remove(lock_path(lock_dir, corpus))
  except FileNotFoundError:
    pass
