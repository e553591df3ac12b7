"""The annotators paper's training step: Baseline, Task 1, Task 2 and interleaved Task 1+2.

:class:`AnnotatorTaskModel` wraps a built network (``tfser.models``) and gives it the paper's
objectives as a custom ``train_step`` for ``tf.keras.Model.fit``:

* ``baseline``: softmax cross-entropy of the network's 16 logits against the KDE ground truth of
  the run's seed (PyTorch ``CrossEntropyLoss`` with probability targets, as the authors).
* ``task1``: ``2 - CCC_act - CCC_val`` over every (utterance, annotator) rating in the batch.
* ``task1+2``: per batch, Task 1 (forward, backward, one SGD step), then Task 2 on the same
  batch with the updated weights (a fresh forward, the DiffKDE distribution of the utterance's own
  annotators' predictions, cross-entropy against the ground truth, one SGD step). That is the
  authors' ``ModelTrainer.training_step``: a loop over the task losses, each with its own
  ``backward(); optimizer.step(); zero_grad(set_to_none=True)``. Two optimiser steps per batch.

Optimiser: ``tf.keras.optimizers.legacy.SGD`` (momentum 0.9). Its sparse update
(``ResourceSparseApplyKerasMomentum``) touches only the gathered head rows and their momentum, so
a step's cost does not grow with the number of annotators; the new Keras SGD decays the whole
momentum table every step (measured: 0.4 ms vs 63 ms for a 10^5-row table). The lazy update is
what the authors' PyTorch code does too: heads absent from a batch have ``grad=None`` and
``torch.optim.SGD`` skips them, momentum included.

XLA: with ``jit=True`` the forward and backward pass (including DiffKDE) of each task is one
``tf.function(jit_compile=True)``; the optimiser update stays outside it (the sparse momentum
kernel has no XLA lowering).

Several replicas (``tfser.core.distribute``: ``--distribute=mirrored`` or ``multi_worker``): each
replica holds a slice of the global minibatch, but Task 1's CCC pools the whole minibatch (not a
sum of per-example terms) and Task 2's DiffKDE draws its upsampling noise for the whole minibatch
from one seed. So every loss (baseline, Task 1, Task 2) is computed on the global minibatch:
:func:`global_batch` all-gathers the replicas' predictions and targets (in replica order, which
is the global batch's row order under ``AutoShardPolicy.DATA``) and every replica computes the
same loss a single worker computes. TensorFlow's gradient of ``all_gather`` sums the replicas'
upstream gradients and keeps this replica's rows, i.e. num_replicas times this replica's share
of the gradient; the optimizer then sums the replicas' gradients, so the loss is divided by
``num_replicas_in_sync`` before differentiation (``_loss_and_gradients``) and the update equals the
single-worker one. Validation updates its metrics with the gathered batch on every replica too
(each replica's metrics are then the global ones: a worker's logs, its early stopping and
learning-rate decisions agree with every other worker's; the summed read-out of N equal copies
has the same ratios). The DiffKDE call counters advance once per call (``ONLY_FIRST_REPLICA``).
XLA (``jit``) compiles no collectives here: it is refused with several replicas.

Validation (``test_step``) mirrors the training losses over the whole validation set: Task 1's
CCC is accumulated over all ratings of the epoch (as the authors compute it on the concatenated
validation outputs), Task 2 uses a float64 DiffKDE. ``val_loss`` = the objective's losses summed
(baseline: its cross-entropy; task1: the CCC loss; task1+2: CCC loss + DiffKDE cross-entropy), the
quantity that drives ReduceLROnPlateau and early stopping ("the relevant task's validation
losses").
"""

from typing import Callable, Dict, Optional

import tfser  # noqa: F401  (Keras flavour before TensorFlow)
import tensorflow as tf

from tfser.core import resumable
from tfser.losses import ccc as ccc_losses
from tfser.metrics import consensus_from_distribution
from tfser.tasks.annotators.config import OBJECTIVES
from tfser import metrics as metrics_lib
from tfser.layers.diffkde import DiffKDE
from tfser.losses.ccc import annotator_ccc_loss
from tfser.losses.distribution import distribution_cross_entropy


# The paper (3.4): consensus from a 4x4 distribution = its marginals times these bin values.
def _numeric(batch):
  """The batch without its string utterance ids (XLA compiles no strings); nested dicts too
  (annotators_multi's ``{corpus: batch}``)."""
  return {k: _numeric(v) if isinstance(v, dict) else v for k, v in batch.items()
          if isinstance(v, dict) or v.dtype != tf.string}


# What validation compares the predictions with (rows of the batch).
_TARGETS = ("ratings", "rating_mask", "ground_truth", "consensus")


def _replica_context_with_peers():
  """The replica context when several replicas run this step in sync, else None."""
  ctx = tf.distribute.get_replica_context()
  if ctx is None or ctx.num_replicas_in_sync == 1:
    return None
  return ctx


def global_batch(*tensors):
  """The global minibatch of each ``[rows, ...]`` tensor (a tuple, as given).

  Under a strategy with several replicas in sync, every replica's slice concatenated along the
  rows in replica order (``ReplicaContext.all_gather``; bool tensors travel as float32); with one
  replica, or outside a replica context, the tensors themselves. Differentiable (see the module
  docstring for the gradient's scale).
  """
  ctx = _replica_context_with_peers()
  if ctx is None:
    return tensors
  is_bool = [t.dtype == tf.bool for t in tensors]
  # tf.identity places the input pipeline's tensors (no device in the step's graph, which
  # MultiWorkerMirroredStrategy's all_gather refuses: "destinations can not be empty") on
  # the replica's device.
  gathered = ctx.all_gather([tf.identity(tf.cast(t, tf.float32) if b else t)
                             for t, b in zip(tensors, is_bool)], axis=0)
  return tuple(g > 0.5 if b else g for g, b in zip(gathered, is_bool))


def replicas_in_sync() -> int:
  """Replicas computing this step together (1 without a strategy)."""
  ctx = _replica_context_with_peers()
  return 1 if ctx is None else int(ctx.num_replicas_in_sync)


class AnnotatorTaskModel(resumable.ResumesMidEpoch, tf.keras.Model):
  """A network plus the paper's objective; train with ``compile(optimizer)`` and ``fit``.

  Args:
    network: a built baseline / MT / one-hot model (``tfser.models``).
    objective: "baseline" (the baseline network only), "task1" or "task1+2".
    out_bins: bins per axis of the distributions (4).
    train_diffkde: the DiffKDE layer of Task 2 (float16 compute under the paper's setting).
    eval_diffkde: the float64 DiffKDE layer of validation and evaluation.
    jit: compile each task's forward+backward with XLA.
  Batches are dicts as ``tfser.data.pipeline.annotator_dataset`` yields them.
  """

  def __init__(self, network: tf.keras.Model, objective: str, *, out_bins: int = 4,
               train_diffkde: Optional[DiffKDE] = None, eval_diffkde: Optional[DiffKDE] = None,
               jit: bool = False, **kwargs):
    super().__init__(**kwargs)
    if objective not in OBJECTIVES:
      raise ValueError(f"unknown objective {objective!r}; choose from {', '.join(OBJECTIVES)}")
    is_baseline = network.config.model == "baseline"
    if is_baseline != (objective == "baseline"):
      raise ValueError(f"objective {objective!r} does not fit model {network.config.model!r} "
                       "(the baseline trains only the 'baseline' objective; MT and one-hot "
                       "train 'task1' or 'task1+2')")
    self.network = network
    # Several replicas: every replica's step returns the global values (module docstring), so
    # fit's logs take the first replica's instead of Keras's default sum over the replicas.
    self.distribute_reduction_method = "first"
    self.objective = objective
    self.out_bins = out_bins
    self.train_diffkde = train_diffkde or DiffKDE(out_bins=out_bins, name="diffkde_train")
    self.eval_diffkde = eval_diffkde or DiffKDE(out_bins=out_bins, dtype="float64",
                                                name="diffkde_eval")
    # Build now, so that a checkpoint restored before fit (ResumableCheckpoint) sets their call
    # counters (the upsampling seeds) at once, not deferred to a build inside a traced step.
    for layer in (self.train_diffkde, self.eval_diffkde):
      if not layer.built:
        layer.build(tf.TensorShape([None, None, 2]))
    self.jit = jit
    self._loss_fns: Dict[str, Callable] = {
        "baseline": self._baseline_loss, "task1": self._task1_loss, "task2": self._task2_loss}
    self._gradient_fns: Dict[str, Callable] = {}
    tasks = {"baseline": ("baseline",), "task1": ("task1",),
             "task1+2": ("task1", "task2")}[objective]
    self.tasks = tasks
    self._train_metrics = {t: tf.keras.metrics.Mean(name=f"loss_{t}") for t in tasks}
    self._train_total = tf.keras.metrics.Mean(name="loss")
    self._val_task1 = ccc_losses.Task1LossMetric()
    self._val_task2 = tf.keras.metrics.Mean(name="loss_task2")
    self._val_baseline = tf.keras.metrics.Mean(name="loss_baseline")
    self._val_tvd = metrics_lib.TotalVariationDistance(name="tvd")
    self._val_jsd = metrics_lib.JensenShannonDivergence(name="jsd")
    self._val_consensus = [metrics_lib.ConcordanceCorrelation(name="consensus_ccc_act"),
                           metrics_lib.ConcordanceCorrelation(name="consensus_ccc_val")]

  # -- forward passes ----------------------------------------------------------------------------

  def call(self, inputs, training=False):
    return self.network(inputs, training=training)

  def annotator_predictions(self, batch, training=False):
    return self.network(batch, training=training)["annotator_predictions"]

  def predicted_distribution(self, batch, *, diffkde: Optional[DiffKDE] = None, seed=None,
                             all_heads: bool = False):
    """``[batch, bins*bins]``: softmax of the baseline's logits, or DiffKDE of the annotators.

    all_heads: MT/one-hot use every head (zero-shot) instead of the utterance's own annotators.
    """
    if self.objective == "baseline":
      return tf.nn.softmax(self.network(batch, training=False)["distribution_logits"])
    diffkde = diffkde or self.eval_diffkde
    if all_heads:
      predictions = self.network.all_annotators(batch["features"], training=False)
      mask = tf.ones(tf.shape(predictions)[:2], tf.bool)
    else:
      predictions = self.annotator_predictions(batch)
      mask = batch["rating_mask"]
    return diffkde(predictions, mask=mask, seed=seed)

  # -- losses ------------------------------------------------------------------------------------

  # Each loss is the loss of the global minibatch (global_batch: the replicas' slices gathered;
  # the targets in a call of their own, outside the gradient's path).

  def _baseline_loss(self, batch):
    logits = tf.cast(self.network(batch, training=True)["distribution_logits"], tf.float32)
    (logits,) = global_batch(logits)
    (truth,) = global_batch(tf.cast(batch["ground_truth"], tf.float32))
    return tf.reduce_mean(tf.nn.softmax_cross_entropy_with_logits(labels=truth, logits=logits))

  def _task1_loss(self, batch):
    (predictions,) = global_batch(self.annotator_predictions(batch, training=True))
    ratings, mask = global_batch(batch["ratings"], batch["rating_mask"])
    return annotator_ccc_loss(ratings, predictions, mask)

  def _task2_loss(self, batch):
    (predictions,) = global_batch(self.annotator_predictions(batch, training=True))
    truth, mask = global_batch(batch["ground_truth"], batch["rating_mask"])
    distribution = self.train_diffkde(predictions, mask=mask)
    return tf.reduce_mean(distribution_cross_entropy(truth, distribution))

  # -- training ----------------------------------------------------------------------------------

  def _loss_and_gradients(self, task: str, batch):
    variables = self.network.trainable_variables
    with tf.GradientTape() as tape:
      loss = tf.cast(self._loss_fns[task](batch), tf.float32)
      # Several replicas: each holds the global loss; 1/N makes the summed update the global
      # gradient (module docstring).
      scaled = loss / replicas_in_sync() if replicas_in_sync() > 1 else loss
      if isinstance(self.optimizer, tf.keras.mixed_precision.LossScaleOptimizer):
        scaled = self.optimizer.get_scaled_loss(scaled)
    gradients = tape.gradient(scaled, variables)
    if isinstance(self.optimizer, tf.keras.mixed_precision.LossScaleOptimizer):
      gradients = self.optimizer.get_unscaled_gradients(gradients)
    return loss, gradients

  def _gradient_fn(self, task: str):
    if task not in self._gradient_fns:
      fn = lambda batch: self._loss_and_gradients(task, batch)  # noqa: E731
      self._gradient_fns[task] = tf.function(fn, jit_compile=True) if self.jit else fn
    return self._gradient_fns[task]

  def train_step(self, data):
    batch = _numeric(data)
    total = 0.0
    for task in self.tasks:  # Task 1, then Task 2 on the updated weights: one step each
      loss, gradients = self._gradient_fn(task)(batch)
      pairs = [(g, v) for g, v in zip(gradients, self.network.trainable_variables)
               if g is not None]
      self.optimizer.apply_gradients(pairs)
      self._train_metrics[task].update_state(loss)
      total += loss
    self._train_total.update_state(total)
    return {m.name: m.result() for m in [self._train_total, *self._train_metrics.values()]}

  # -- validation --------------------------------------------------------------------------------

  def test_step(self, data):
    batch = _numeric(data)
    # The network's outputs and the targets of the global minibatch on every replica (module
    # docstring): each replica's metrics are the global ones.
    targets = dict(zip(_TARGETS, global_batch(*(batch[k] for k in _TARGETS))))
    logs = {}
    distribution = None
    if self.objective == "baseline":
      (logits,) = global_batch(tf.cast(
          self.network(batch, training=False)["distribution_logits"], tf.float32))
      self._val_baseline.update_state(tf.nn.softmax_cross_entropy_with_logits(
          labels=tf.cast(targets["ground_truth"], tf.float32), logits=logits))
      distribution = tf.nn.softmax(logits)
      loss = self._val_baseline.result()
      logs["loss_baseline"] = loss
    else:
      (predictions,) = global_batch(self.annotator_predictions(batch))
      self._val_task1.update_state(targets["ratings"], predictions, targets["rating_mask"])
      loss = self._val_task1.result()
      logs["loss_task1"] = loss
      if "task2" in self.tasks:
        distribution = self.eval_diffkde(predictions, mask=targets["rating_mask"])
        self._val_task2.update_state(
            distribution_cross_entropy(targets["ground_truth"], distribution))
        logs["loss_task2"] = self._val_task2.result()
        loss = loss + logs["loss_task2"]
    logs["loss"] = loss
    if distribution is not None:
      ground_truth = tf.cast(targets["ground_truth"], distribution.dtype)
      self._val_tvd.update_state(ground_truth, distribution)
      self._val_jsd.update_state(ground_truth, distribution)
      consensus = consensus_from_distribution(distribution, self.out_bins)
      for d, metric in enumerate(self._val_consensus):
        metric.update_state(targets["consensus"][:, d], consensus[:, d])
      for metric in [self._val_tvd, self._val_jsd, *self._val_consensus]:
        logs[metric.name] = metric.result()
    return logs

  @property
  def metrics(self):
    return [self._train_total, *self._train_metrics.values(), self._val_task1, self._val_task2,
            self._val_baseline, self._val_tvd, self._val_jsd, *self._val_consensus]
