"""Corpus-wise weights (Ahn et al., Eq. 3 and Algorithm 1) for any per-corpus fit measure.

Shared by the tasks that train on several corpora at once: ``tfser.tasks.cww`` measures each
training corpus's fit by its unweighted accuracy (the paper), ``tfser.tasks.annotators_multi`` by
1 - TVD or the consensus CCC of its label distributions.

* :func:`corpus_weights`: Eq. 3, w_d = (1 - U_d)^lambda_W / mean_d (1 - U_d)^lambda_W, U_d in
  [0, 1] the fit of training corpus d on its training data (1 = learnt perfectly); the weights
  average to 1 (sum to D). Degenerate inputs: every U_d == 1 gives all ones (0/0); a NaN U_d
  (a corpus with nothing to score) takes the mean of the finite ones; all NaN: all ones.
* :func:`zipped_corpus_stream`: Algorithm 1's data, one minibatch per corpus per step; an epoch
  is as many steps as the smallest corpus has minibatches.
* :func:`merged_corpus_stream`: the comparison without corpus weights, the training corpora
  merged into one shuffled stream (the CWW paper's "merged corpora" system, and
  annotators_multi's merged setting): a minibatch mixes the corpora in proportion to their sizes.
* :class:`CorpusWeightsCallback`: Algorithm 1, line 8: at every epoch end measures every
  corpus's fit, recomputes Eq. 3 into the variable the train step reads, logs both per corpus
  (``<fit_name>_<corpus>``, ``<weight_name>_<corpus>``: TensorBoard shows them per epoch) and
  keeps one dict per epoch in ``history`` (resumable: ``get_state`` / ``set_state``).
"""

from typing import Callable, Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np

import tfser  # noqa: F401  (Keras flavour before TensorFlow)
import tensorflow as tf

DEFAULT_LAMBDA_W = 4.0  # the paper's best value of lambda_W (tested over 1..5)
MERGED = "merged"  # the name of merged_corpus_stream's one stream (one entry of the weights)


def corpus_weights(fits: Sequence[float], lambda_w: float = DEFAULT_LAMBDA_W,
                   fit_name: str = "unweighted accuracies") -> np.ndarray:
  """Eq. 3: corpus weights from each training corpus's fit. Returns float64 ``[D]``, mean 1.

  fits: U_d in [0, 1], one per training corpus (NaN allowed, see the module doc).
  lambda_w: the compensation exponent lambda_W (0 gives all ones). fit_name: for the error.
  """
  u = np.asarray(fits, np.float64).reshape(-1)
  if u.size == 0:
    raise ValueError("corpus_weights needs at least one corpus")
  finite = np.isfinite(u)
  if not finite.any():
    return np.ones_like(u)
  if (u[finite] < 0).any() or (u[finite] > 1).any():
    raise ValueError(f"{fit_name} must lie in [0, 1]; got {u.tolist()}")
  u = np.where(finite, u, u[finite].mean())
  error_power = (1.0 - u) ** float(lambda_w)
  mean = error_power.mean()
  if not mean > 0:
    return np.ones_like(u)
  return error_power / mean


def zipped_corpus_stream(make_stream: Callable[[str, int], tf.data.Dataset],
                         sizes: Mapping[str, int], batch_size: int, *,
                         max_steps_per_epoch: int = 0) -> Tuple[tf.data.Dataset, int]:
  """(endless dataset of ``{corpus: minibatch}``, steps per epoch) for Algorithm 1.

  make_stream(corpus, index): corpus ``index``'s endless, shuffled minibatches of ``batch_size``
  (drop_remainder), seeded by the caller from its run seed and ``index``; sizes: training
  utterances per corpus, in the stream's corpus order. An epoch is as many steps as the smallest
  corpus has minibatches (capped by max_steps_per_epoch when > 0). Raises ValueError naming the
  corpora smaller than one minibatch.
  """
  small = {c: int(n) for c, n in sizes.items() if n < batch_size}
  if small:
    raise ValueError(f"training corpora with fewer utterances than one minibatch of "
                     f"{batch_size}: {small}")
  streams = {c: make_stream(c, d) for d, c in enumerate(sizes)}
  steps = min(int(n) // batch_size for n in sizes.values())
  if max_steps_per_epoch:
    steps = min(steps, max_steps_per_epoch)
  return tf.data.Dataset.zip(streams), steps


def merged_corpus_stream(rows: Callable[[str], tf.data.Dataset], sizes: Mapping[str, int],
                         batch_size: int, *, seed: int, max_steps_per_epoch: int = 0,
                         padded: bool = False) -> Tuple[tf.data.Dataset, int]:
  """(endless dataset of minibatches, steps per epoch) of the training corpora merged.

  rows(corpus): the corpus's training utterances one at a time (unbatched), in a fixed order;
  sizes: their counts, in the merge order. The corpora's rows are concatenated, cached, shuffled
  with a buffer of all of them (a full shuffle, reshuffled every pass, seeded by ``seed``:
  deterministic, so a resumed run skips it to its step), repeated and batched with
  drop_remainder (``padded``: ``padded_batch``, for rows of different lengths such as the
  annotator ratings). An epoch is total // batch_size steps (capped by max_steps_per_epoch when
  > 0). Raises ValueError when the corpora together hold fewer than one minibatch.
  """
  total = int(sum(sizes.values()))
  if total < batch_size:
    raise ValueError(f"the merged training corpora hold {total} utterances ({dict(sizes)}), "
                     f"fewer than one minibatch of {batch_size}")
  corpora = list(sizes)
  merged = rows(corpora[0])
  for corpus in corpora[1:]:
    merged = merged.concatenate(rows(corpus))
  merged = merged.cache().shuffle(total, seed=seed, reshuffle_each_iteration=True).repeat()
  merged = (merged.padded_batch(batch_size, drop_remainder=True) if padded
            else merged.batch(batch_size, drop_remainder=True))
  steps = total // batch_size
  if max_steps_per_epoch:
    steps = min(steps, max_steps_per_epoch)
  return merged, steps


class CorpusWeightsCallback(tf.keras.callbacks.Callback):
  """Algorithm 1, line 8: recomputes the corpus weights (Eq. 3) at every epoch end.

  measure(): {corpus: fit U_d in [0, 1]} of the current model (inference mode) on each training
  corpus's training data; the weights, mean 1, are assigned to ``weights_variable`` ``[D]`` (in
  ``corpora`` order; read by the compiled train step). With ``enabled=False`` the fits are still
  logged, the weights stay as they are (1). Logs ``<fit_name>_<corpus>`` and
  ``<weight_name>_<corpus>``; ``history`` keeps one dict per epoch.
  """

  def __init__(self, weights_variable: tf.Variable, measure: Callable[[], Dict[str, float]],
               corpora: Sequence[str], *, lambda_w: float = DEFAULT_LAMBDA_W,
               enabled: bool = True, fit_name: str = "fit", weight_name: str = "weight"):
    super().__init__()
    self.weights_variable = weights_variable
    self.measure = measure
    self.corpora = tuple(corpora)
    self.lambda_w = lambda_w
    self.enabled = enabled
    self.fit_name = fit_name
    self.weight_name = weight_name
    self.history: List[Dict[str, float]] = []

  def on_epoch_end(self, epoch, logs=None):
    logs = logs if logs is not None else {}
    fits = self.measure()
    for corpus, fit in fits.items():
      logs[f"{self.fit_name}_{corpus}"] = fit
    if self.enabled:
      weights = corpus_weights([fits[c] for c in self.corpora], self.lambda_w,
                               fit_name=f"{self.fit_name} values")
      self.weights_variable.assign(weights.astype(np.float32))
    current = self.weights_variable.numpy()
    for corpus, w in zip(self.corpora, current):
      logs[f"{self.weight_name}_{corpus}"] = float(w)
    self.history.append({"epoch": epoch, **{f"{self.fit_name}_{c}": fits[c] for c in fits},
                         **{f"{self.weight_name}_{c}": float(w)
                            for c, w in zip(self.corpora, current)}})

  def get_state(self):
    return {"history": self.history}

  def set_state(self, state: Optional[dict]):
    self.history = list((state or {}).get("history", []))
