"""Training on several workers: the strategy, the input sharding and where each worker writes.

``--distribute``: "none" (the default strategy), "mirrored" (every local GPU, else every logical
CPU device) or "multi_worker" (``tf.distribute.MultiWorkerMirroredStrategy``, the cluster from
``TF_CONFIG``; see the README for N machines and SLURM).

Input sharding (:func:`shard_by_data`): the training stream is the per-corpus zipped, endless,
seeded stream of Algorithm 1 (one minibatch of every training corpus per step) and is sharded with
``AutoShardPolicy.DATA``. Its batch is the *global* batch: the strategy rebatches each global
minibatch of every corpus into per-replica slices and each worker keeps its own slices, so every
worker runs the same number of steps and a global step sees exactly the utterances a one-worker
run sees (same result for the same global batch and seed). FILE sharding is wrong here: a corpus
has few shard files (often one per split, fewer than the workers), so workers would read
different corpora or none at all, their zipped streams would differ in length and content
(issue 17: worker 1 ran out of data after 12 batches while worker 0 waited in an all-reduce),
and the per-corpus class weights of Eq. 1 would see another minibatch than a one-worker run. Each
worker reads and parses every record and drops the others' slices; the demo-sized feature
records make that cheap next to the step. (Sharding OFF would make every worker train on the
whole global batch, i.e. duplicate it.)

Where each worker writes (:func:`worker_directory`): as the tf.distribute multi-worker guides say,
every worker runs the same saving code (checkpoint saves and SavedModel exports read
synchronised variables, which takes collective ops that every worker must join), but only the
chief writes into ``out_dir``; each other worker writes into a temporary directory of its own that
is removed when its run ends. A restarted cluster restores every worker from the chief's
checkpoints (``out_dir`` must therefore be on storage every worker reads).
"""

import contextlib
import hashlib
import shutil
import tempfile
from typing import Dict, Iterator, Sequence

import numpy as np

import tfser  # noqa: F401  (Keras flavour before TensorFlow)
import tensorflow as tf

from tfser.core.strategy_names import STRATEGIES

_STRATEGIES: Dict[str, tf.distribute.Strategy] = {}


def strategy(name: str) -> tf.distribute.Strategy:
  """The tf.distribute strategy ``name`` (one of :data:`STRATEGIES`), one instance per process.

  Several MirroredStrategy instances over the same devices in one process can mix up their
  collective ops (runs in a loop share one). "multi_worker" configures collective ops, which
  TensorFlow allows only before its runtime starts ("Collective ops must be configured at program
  startup"): a launcher calls this first, and the trainer then gets the same instance.
  """
  if name not in STRATEGIES:
    raise ValueError(f"--distribute must be one of {STRATEGIES}; got {name!r}")
  if name == "none":
    return tf.distribute.get_strategy()
  if name not in _STRATEGIES:
    if name == "mirrored":
      devices = [d.name for d in tf.config.list_logical_devices("GPU")] or [
          d.name for d in tf.config.list_logical_devices("CPU")]
      _STRATEGIES[name] = tf.distribute.MirroredStrategy(devices)
    else:
      _STRATEGIES[name] = tf.distribute.MultiWorkerMirroredStrategy()
  return _STRATEGIES[name]


def shard_by_data(dataset: tf.data.Dataset) -> tf.data.Dataset:
  """``dataset`` (batched with the global batch) sharded by element slices (see module doc)."""
  options = tf.data.Options()
  options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
  return dataset.with_options(options)


def worker_info(strategy_: tf.distribute.Strategy) -> Dict[str, object]:
  """{"task_type", "task_id", "num_workers", "chief"} of this process (one worker: the chief)."""
  resolver = getattr(strategy_, "cluster_resolver", None)
  if resolver is None or not resolver.task_type:
    return {"task_type": None, "task_id": 0, "num_workers": 1, "chief": True}
  spec = resolver.cluster_spec().as_dict()
  if "chief" in spec:
    chief = resolver.task_type == "chief"
  else:
    chief = resolver.task_type == "worker" and int(resolver.task_id) == 0
  workers = sum(len(spec.get(kind, ())) for kind in ("chief", "worker"))
  return {"task_type": resolver.task_type, "task_id": int(resolver.task_id),
          "num_workers": workers, "chief": chief}


@contextlib.contextmanager
def worker_directory(out_dir: str, strategy_: tf.distribute.Strategy) -> Iterator[str]:
  """The directory this worker writes its run into: ``out_dir`` on the chief, else a fresh
  temporary directory that is removed when the block ends (however it ends)."""
  info = worker_info(strategy_)
  if info["chief"]:
    yield out_dir
    return
  path = tempfile.mkdtemp(prefix=f"tfser-{info['task_type']}{info['task_id']}-")
  try:
    yield path
  finally:
    shutil.rmtree(path, ignore_errors=True)


def weights_digest(variables: Sequence[tf.Variable]) -> str:
  """SHA-256 of the variables' values (float32 bytes, in order): equal weights, equal digest."""
  digest = hashlib.sha256()
  for v in variables:
    digest.update(np.ascontiguousarray(np.asarray(v.numpy(), np.float32)).tobytes())
  return digest.hexdigest()
