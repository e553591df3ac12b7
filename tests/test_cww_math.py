"""Eq. 1-4 of the corpus-wise-weights paper: hand-computed cases and a direct numpy reference."""

import math
from typing import Sequence

import hypothesis
from hypothesis import strategies as st
import numpy as np
from absl.testing import parameterized

import tfser  # noqa: F401
import tensorflow as tf

from tfser.tasks.cww import equations as corpus_weights
from tfser.tasks.cww import equations as cww_losses


def minibatch_class_weights(labels: Sequence[int], num_classes: int = 4) -> np.ndarray:
  """Numpy reference of Eq. 1's alpha_i for one minibatch (``cww_losses.class_weights`` in TF).

  labels: int classes ``[M]``. Returns float64 ``[M]``.

  alpha_i = M / (K * n_{y_i}) with n_c the count of class c in the minibatch and K the number of
  classes present; an empty minibatch gives an empty array.
  """
  labels = np.asarray(labels, np.int64).reshape(-1)
  if labels.size == 0:
    return np.zeros([0], np.float64)
  if labels.min() < 0 or labels.max() >= num_classes:
    raise ValueError(f"labels must lie in [0, {num_classes}); got {labels.min()}..{labels.max()}")
  counts = np.bincount(labels, minlength=num_classes).astype(np.float64)
  present = float(np.count_nonzero(counts))
  return labels.size / (present * counts[labels])


class CorpusWeightsTest(tf.test.TestCase, parameterized.TestCase):

  def test_eq3_hand_computed(self):
    # U = (0.9, 0.8, 0.6), lambda_W = 4: (1-U)^4 = (1e-4, 16e-4, 256e-4); mean = 273e-4 / 3.
    w = corpus_weights.corpus_weights([0.9, 0.8, 0.6], lambda_w=4)
    self.assertAllClose(w, [3 / 273, 48 / 273, 768 / 273], rtol=1e-12)
    self.assertAllClose(w.sum(), 3.0)

  def test_eq3_lambda_one_and_two(self):
    # lambda_W = 1: (1-U) = (0.5, 0.25, 0.25), mean 1/3 -> (1.5, 0.75, 0.75).
    self.assertAllClose(corpus_weights.corpus_weights([0.5, 0.75, 0.75], 1), [1.5, 0.75, 0.75])
    # lambda_W = 2, two corpora: (0.5^2, 0.1^2) = (0.25, 0.01), mean 0.13.
    self.assertAllClose(corpus_weights.corpus_weights([0.5, 0.9], 2), [0.25 / 0.13, 0.01 / 0.13])

  def test_eq3_equal_uas_give_ones_and_lambda_zero(self):
    self.assertAllClose(corpus_weights.corpus_weights([0.4, 0.4, 0.4]), [1, 1, 1])
    self.assertAllClose(corpus_weights.corpus_weights([0.1, 0.5, 0.9], 0), [1, 1, 1])

  def test_eq3_degenerate_inputs_stay_finite(self):
    self.assertAllClose(corpus_weights.corpus_weights([1.0, 1.0]), [1, 1])  # 0/0 defined as 1
    w = corpus_weights.corpus_weights([0.5, math.nan, 0.7], 1)  # NaN -> mean of finite (0.6)
    self.assertAllClose(w, np.array([0.5, 0.4, 0.3]) / 0.4)
    self.assertAllClose(corpus_weights.corpus_weights([math.nan, math.nan]), [1, 1])
    with self.assertRaisesRegex(ValueError, r"\[0, 1\]"):
      corpus_weights.corpus_weights([1.5, 0.2])

  @hypothesis.settings(max_examples=40, deadline=None)
  @hypothesis.given(st.lists(st.floats(0.0, 0.999), min_size=1, max_size=6),
                    st.floats(0.5, 5.0))
  def test_eq3_mean_one_and_order(self, uas, lam):
    w = corpus_weights.corpus_weights(uas, lam)
    self.assertAllClose(w.mean(), 1.0, rtol=1e-9)
    order = np.argsort(uas, kind="stable")
    # Lower UA (harder corpus) -> weight at least as large.
    self.assertTrue(np.all(np.diff(w[order]) <= 1e-12))

  def test_eq1_class_weights_hand_computed(self):
    # Minibatch [0, 0, 0, 1, 2, 2]: counts (3, 1, 2), K = 3, M = 6: alpha = 6 / (3 n).
    labels = [0, 0, 0, 1, 2, 2]
    expected = [2 / 3, 2 / 3, 2 / 3, 2, 1, 1]
    self.assertAllClose(minibatch_class_weights(labels), expected)
    self.assertAllClose(cww_losses.class_weights(tf.constant(labels)), expected)
    # Each present class carries the same total weight, M / K.
    self.assertAllClose(cww_losses.class_weights(tf.constant([3, 3, 1, 3])),
                        [4 / 6, 4 / 6, 2, 4 / 6])
    self.assertAllClose(cww_losses.class_weights(tf.constant([2, 2])), [1, 1])

  @hypothesis.settings(max_examples=30, deadline=None)
  @hypothesis.given(st.lists(st.integers(0, 3), min_size=1, max_size=40))
  def test_eq1_tf_matches_numpy(self, labels):
    alpha_tf = cww_losses.class_weights(tf.constant(labels, tf.int32)).numpy()
    self.assertAllClose(alpha_tf, minibatch_class_weights(labels), rtol=1e-6)
    self.assertAllClose(alpha_tf.sum(), len(labels), rtol=1e-5)


def _log_softmax(z):
  z = z - z.max(-1, keepdims=True)
  return z - np.log(np.exp(z).sum(-1, keepdims=True))


def _reference_loss(batches, weights, *, target="onehot", eps=0.1, prior=None, gamma=0.0,
                    beta=0.0, pel=None, lambda_l=1e-3, unlabelled_logits=None):
  """Eq. 2 (+ Eq. 4) written out with numpy loops, straight from the paper's formulas."""
  total = 0.0
  for (logits, labels, votes), w in zip(batches, weights):
    m = len(labels)
    logp = _log_softmax(logits.astype(np.float64))
    counts = np.bincount(labels, minlength=4)
    k = np.count_nonzero(counts)
    s = 0.0
    for i in range(m):
      y = np.eye(4)[labels[i]]
      if target == "uniform":
        y = (1 - eps) * y + eps / 4
      elif target == "unigram":
        y = (1 - eps) * y + eps * np.asarray(prior) / np.sum(prior)
      elif target == "soft" and votes[i].sum() > 0:
        y = votes[i] / votes[i].sum()
      p = np.exp(logp[i])
      li = -np.sum(y * (1 - p) ** gamma * logp[i])
      li -= beta * -np.sum(p * logp[i])
      alpha = m / (k * counts[labels[i]])
      s += alpha * li
    total += w * s / m
  total /= len(batches)
  if pel is not None:
    y_bar = np.eye(4)[0] if pel == "neutral" else np.ones(4)
    logp = _log_softmax(unlabelled_logits.astype(np.float64))
    total += -lambda_l / len(logp) * np.sum(logp @ y_bar)
  return total


class LossTest(tf.test.TestCase, parameterized.TestCase):

  def _batches(self, seed):
    rng = np.random.default_rng(seed)
    out = []
    for m in (7, 5, 9):
      logits = rng.normal(0, 2, [m, 4]).astype(np.float32)
      labels = rng.integers(0, 4, m)
      votes = rng.integers(0, 4, [m, 4]).astype(np.float32)
      votes[0] = 0  # a row without votes falls back to one-hot
      out.append((logits, labels, votes))
    return out

  @parameterized.named_parameters(
      ("ce", {}), ("uniform", dict(target="uniform", eps=0.2)),
      ("unigram", dict(target="unigram", eps=0.1, prior=[4.0, 3.0, 2.0, 1.0])),
      ("soft", dict(target="soft")), ("focal", dict(gamma=2.0)),
      ("confidence", dict(beta=0.3)), ("pel_nl", dict(pel="neutral", lambda_l=0.5)),
      ("pel_al", dict(pel="all", lambda_l=1e-3)))
  def test_loss_matches_numpy(self, kwargs):
    batches = self._batches(0)
    weights = [0.5, 1.7, 0.8]
    unlabelled = np.random.default_rng(1).normal(0, 1, [6, 4]).astype(np.float32)
    expected = _reference_loss(batches, weights, unlabelled_logits=unlabelled, **kwargs)
    loss_fn = cww_losses.ClassificationLoss(focal_gamma=kwargs.get("gamma", 0.0),
                                            confidence_penalty=kwargs.get("beta", 0.0))
    terms = []
    for logits, labels, votes in batches:
      labels = tf.constant(labels, tf.int32)
      targets = cww_losses.make_targets(labels, target=kwargs.get("target", "onehot"),
                                        smoothing=kwargs.get("eps", 0.1),
                                        prior=kwargs.get("prior"), votes=votes)
      per_sample = loss_fn(targets, logits)
      terms.append(cww_losses.corpus_term(per_sample, cww_losses.class_weights(labels)))
    loss = cww_losses.corpus_weighted_loss(terms, tf.constant(weights))
    if "pel" in kwargs:
      loss += cww_losses.pseudo_emotion_label_loss(unlabelled, kwargs["pel"], kwargs["lambda_l"])
    self.assertAllClose(loss, expected, rtol=1e-5)

  def test_eq2_scales_each_corpus_term_by_its_weight(self):
    terms = [tf.constant(0.7), tf.constant(1.9), tf.constant(0.4)]
    self.assertAllClose(cww_losses.corpus_weighted_loss(terms, tf.ones([3])), 3.0 / 3)
    self.assertAllClose(cww_losses.corpus_weighted_loss(terms, tf.constant([2.0, 0.5, 0.5])),
                        (2 * 0.7 + 0.5 * 1.9 + 0.5 * 0.4) / 3)

  def test_loss_config_round_trip(self):
    loss = cww_losses.ClassificationLoss(focal_gamma=2.0, confidence_penalty=0.1)
    clone = cww_losses.ClassificationLoss.from_config(loss.get_config())
    self.assertEqual((clone.focal_gamma, clone.confidence_penalty), (2.0, 0.1))
    self.assertIs(tf.keras.utils.get_registered_object("tfser>ClassificationLoss"),
                  cww_losses.ClassificationLoss)

  def test_bad_arguments(self):
    with self.assertRaisesRegex(ValueError, "prior"):
      cww_losses.make_targets(tf.constant([0]), target="unigram")
    with self.assertRaisesRegex(ValueError, "unknown target"):
      cww_losses.make_targets(tf.constant([0]), target="nope")
    with self.assertRaisesRegex(ValueError, "pseudo-emotion"):
      cww_losses.pel_vector("happy")


if __name__ == "__main__":
  tf.test.main()
