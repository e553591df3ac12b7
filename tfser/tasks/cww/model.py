"""The corpus-wise-weights paper's classifier F and its training model.

F (paper, 3.3): IS10 features ``[batch, 1582]`` -> z-normalisation with training statistics ->
FC 1024-1024-512-512 (ReLU, dropout 0.5) -> FC 4 -> softmax. The optional unsupervised branch
(Neumann and Vu; paper 3.3) reconstructs the normalised input from the second hidden layer
through FC 1024 (ReLU) and FC 1582 (linear).

``CwwModel`` wraps F with the custom ``train_step`` of Algorithm 1: one minibatch per training
corpus per step, the class- and corpus-weighted loss (Eq. 1-2) reading the corpus weights from a
non-trainable variable, and the optional pseudo-emotion-label (Eq. 4) and reconstruction terms.
"""

from typing import Dict, Optional, Sequence

import numpy as np

import tfser  # noqa: F401  (Keras flavour before TensorFlow)
import tensorflow as tf

from tfser.core import resumable
from tfser.data import standardize as standardize_lib
from tfser.layers.seeded_dropout import SeededDropout
from tfser.tasks.cww import equations as cww_losses


@tf.keras.utils.register_keras_serializable(package="tfser")
class FeatureNormalization(tf.keras.layers.Layer):
  """z-normalisation (x - mean) / std with fixed training statistics ``[dim]``, in the graph.

  The statistics are non-trainable weights, so a SavedModel carries them; std below
  ``min_std`` (constant features) is replaced by 1 so no feature divides by zero.
  """

  def __init__(self, dim: int, mean=None, std=None, min_std: float = standardize_lib.MIN_STD,
               **kwargs):
    super().__init__(**kwargs)
    self.dim = int(dim)
    self.min_std = float(min_std)
    self._init_mean = np.zeros([self.dim], np.float32) if mean is None else np.asarray(mean, np.float32)
    self._init_std = np.ones([self.dim], np.float32) if std is None else np.asarray(std, np.float32)
    if self._init_mean.shape != (self.dim,) or self._init_std.shape != (self.dim,):
      raise ValueError(f"normalisation statistics must have shape ({self.dim},); got mean "
                       f"{self._init_mean.shape}, std {self._init_std.shape}")

  def build(self, input_shape):
    if input_shape[-1] is not None and int(input_shape[-1]) != self.dim:
      raise ValueError(f"features have width {input_shape[-1]}, the model expects {self.dim}")
    std = standardize_lib.safe_std(self._init_std, self.min_std).astype(np.float32)
    self.mean = self.add_weight("mean", [self.dim], dtype=tf.float32, trainable=False,
                                initializer=tf.constant_initializer(self._init_mean))
    self.std = self.add_weight("std", [self.dim], dtype=tf.float32, trainable=False,
                               initializer=tf.constant_initializer(std))
    super().build(input_shape)

  def call(self, inputs):
    x = standardize_lib.standardize(inputs, self.mean, self.std)
    return tf.cast(x, self.compute_dtype)

  def get_config(self):
    return {**super().get_config(), "dim": self.dim, "min_std": self.min_std}


def build_classifier(input_dim: int = 1582, *, hidden_units: Sequence[int] = (1024, 1024, 512, 512),
                     num_classes: int = 4, dropout: float = 0.5,
                     reconstruction_units: Optional[Sequence[int]] = None,
                     reconstruction_layer: int = 2, feature_mean=None, feature_std=None,
                     seed: int = 0, name: str = "cww_classifier") -> tf.keras.Model:
  """F as a functional model: features ``[batch, input_dim]`` -> dict of outputs.

  Outputs: "logits" ``[batch, num_classes]`` (float32; softmax gives F(x)), "normalized" (the
  z-normalised input, the reconstruction target), and with ``reconstruction_units`` (paper:
  (1024, 1582)) "reconstruction" ``[batch, input_dim]`` from hidden layer ``reconstruction_layer``
  (1-based; paper: 2). The last reconstruction width must equal input_dim.
  """
  features = tf.keras.Input([input_dim], name="features")
  # Normalisation runs in float32 under any policy (raw IS10 values overflow float16).
  x = normalized = FeatureNormalization(input_dim, feature_mean, feature_std, dtype="float32",
                                        name="normalization")(features)
  taps = []
  for i, units in enumerate(hidden_units):
    x = tf.keras.layers.Dense(units, activation="relu", name=f"fc{i + 1}")(x)
    taps.append(x)
    x = SeededDropout(dropout, seed=seed * 1000 + i, name=f"dropout{i + 1}")(x)
  logits = tf.keras.layers.Dense(num_classes, dtype="float32", name="logits")(x)
  outputs = {"logits": logits,
             "normalized": tf.keras.layers.Activation("linear", dtype="float32",
                                                      name="normalized_f32")(normalized)}
  if reconstruction_units:
    if int(reconstruction_units[-1]) != input_dim:
      raise ValueError(f"the reconstruction must end in {input_dim} units (the input width); got "
                       f"{list(reconstruction_units)}")
    if not 1 <= reconstruction_layer <= len(hidden_units):
      raise ValueError(f"reconstruction_layer must be in 1..{len(hidden_units)}")
    r = taps[reconstruction_layer - 1]
    for j, units in enumerate(reconstruction_units[:-1]):
      r = tf.keras.layers.Dense(units, activation="relu", name=f"rec{j + 1}")(r)
    outputs["reconstruction"] = tf.keras.layers.Dense(
        input_dim, dtype="float32", name="reconstruction")(r)
  return tf.keras.Model(features, outputs, name=name)


class CwwModel(resumable.ResumesMidEpoch, tf.keras.Model):
  """Algorithm 1's training model around F (``network``, from :func:`build_classifier`).

  Data: dicts ``{"labelled": {corpus: {"features" [M, F], "label" [M], "votes" [M, C]}},
  "unlabelled": {"features" [M_u, F]}}`` ("unlabelled" only when used), one minibatch per
  training corpus per step, keyed by the names in ``corpora``.

  ``corpus_weights`` ``[D]`` is a non-trainable variable (initialised to 1, Algorithm 1 line 1)
  that the compiled step reads on every call; :class:`tfser.tasks.cww.equations.CorpusWeightsCallback`
  assigns it at epoch ends. It is tracked by checkpoints of this model.

  Under a tf.distribute strategy each replica sees a slice of every minibatch; the per-class
  counts and minibatch sizes are all-reduced so the loss equals the single-device loss (Eq. 1's
  alpha is defined over the whole minibatch).
  """

  def __init__(self, network: tf.keras.Model, corpora: Sequence[str], *, num_classes: int = 4,
               target: str = "onehot", smoothing: float = 0.1,
               prior: Optional[Sequence[float]] = None, focal_gamma: float = 0.0,
               confidence_penalty: float = 0.0, pel: str = "none", lambda_l: float = 1e-3,
               reconstruction_weight: float = 1.0, **kwargs):
    super().__init__(**kwargs)
    if target not in cww_losses.TARGETS:
      raise ValueError(f"unknown target {target!r}; choose from {cww_losses.TARGETS}")
    if pel not in cww_losses.PEL_KINDS:
      raise ValueError(f"unknown pseudo-emotion label {pel!r}; choose from {cww_losses.PEL_KINDS}")
    self.network = network
    self.corpora = tuple(corpora)
    self.num_classes = num_classes
    self.target = target
    self.smoothing = smoothing
    self.prior = None if prior is None else [float(p) for p in prior]
    self.pel = pel
    self.lambda_l = lambda_l
    self.reconstruction_weight = reconstruction_weight
    self.has_reconstruction = "reconstruction" in network.output
    self.classification_loss = cww_losses.ClassificationLoss(
        focal_gamma=focal_gamma, confidence_penalty=confidence_penalty)
    self.corpus_weights = tf.Variable(tf.ones([len(self.corpora)], tf.float32), trainable=False,
                                      name="corpus_weights")
    self.loss_tracker = tf.keras.metrics.Mean(name="loss")
    self.term_trackers = [tf.keras.metrics.Mean(name=f"ce_{c}") for c in self.corpora]

  @property
  def uses_unlabelled(self) -> bool:
    return self.pel != "none" or self.has_reconstruction

  @property
  def metrics(self):
    return [self.loss_tracker] + self.term_trackers

  def call(self, features, training=False):
    """Class probabilities F(x) ``[batch, C]``."""
    return tf.nn.softmax(self.network(features, training=training)["logits"])

  def compute_loss_terms(self, data: Dict, training: bool = True):
    """The loss of Eq. 2 (+ Eq. 4, + reconstruction) for one step. Returns (loss, corpus terms)."""
    ctx = tf.distribute.get_replica_context()

    def global_sum(value):
      if ctx is None or ctx.num_replicas_in_sync == 1:
        return value
      return ctx.all_reduce(tf.distribute.ReduceOp.SUM, value)

    labelled = data["labelled"]
    pieces = [labelled[c]["features"] for c in self.corpora]
    if self.uses_unlabelled:
      pieces.append(data["unlabelled"]["features"])
    sizes = [tf.shape(p)[0] for p in pieces]
    outputs = self.network(tf.concat(pieces, axis=0), training=training)
    logits = tf.split(outputs["logits"], sizes, axis=0)

    terms = []
    for d, corpus in enumerate(self.corpora):
      batch = labelled[corpus]
      labels = tf.cast(batch["label"], tf.int32)
      counts = global_sum(cww_losses.class_counts(labels, self.num_classes))
      alpha = cww_losses.class_weights(labels, self.num_classes, counts=counts)
      targets = cww_losses.make_targets(labels, num_classes=self.num_classes, target=self.target,
                                        smoothing=self.smoothing, prior=self.prior,
                                        votes=batch.get("votes"))
      per_sample = self.classification_loss(targets, logits[d])
      terms.append(cww_losses.corpus_term(per_sample, alpha, tf.reduce_sum(counts)))
    loss = cww_losses.corpus_weighted_loss(terms, self.corpus_weights)

    if self.pel != "none":
      m_u = global_sum(tf.cast(sizes[-1], tf.float32))
      loss += cww_losses.pseudo_emotion_label_loss(logits[-1], self.pel, self.lambda_l, m_u)
    if self.has_reconstruction:
      m_all = global_sum(tf.cast(tf.reduce_sum(tf.stack(sizes)), tf.float32))
      loss += self.reconstruction_weight * cww_losses.reconstruction_loss(
          outputs["reconstruction"], outputs["normalized"], m_all)
    return loss, terms

  def train_step(self, data):
    with tf.GradientTape() as tape:
      loss, terms = self.compute_loss_terms(data, training=True)
    # minimize() applies the LossScaleOptimizer's scaling under mixed precision, as Keras does.
    self.optimizer.minimize(loss, self.network.trainable_variables, tape=tape)
    ctx = tf.distribute.get_replica_context()
    replicas = float(ctx.num_replicas_in_sync) if ctx is not None else 1.0
    # Each replica holds its share of the global loss; Mean averages replicas, so scale back.
    self.loss_tracker.update_state(loss * replicas)
    for tracker, term in zip(self.term_trackers, terms):
      tracker.update_state(term * replicas)
    return {m.name: m.result() for m in self.metrics}

  def test_step(self, data):
    loss, terms = self.compute_loss_terms(data, training=False)
    self.loss_tracker.update_state(loss)
    return {m.name: m.result() for m in self.metrics}

