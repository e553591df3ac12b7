"""Corpus-wise weights (CWW paper, Eq. 3) as a plain function (Eq. 1 is ``tfser.losses.cww``).

These are the numbers the training loop uses, kept free of Keras so they can be checked by hand:

* Eq. 1 class weight: alpha_i is inversely proportional to how many samples of sample i's class
  are in the same minibatch. The paper fixes only the proportionality; tfser uses the "balanced"
  constant alpha_i = M / (K * n_{y_i}) (M samples, K classes present in the minibatch), so the
  weights average to 1 over the minibatch and every class present contributes equally.
* Eq. 3 corpus weight: w_d = (1 - U_d)^lambda_W / mean_d (1 - U_d)^lambda_W, U_d the unweighted
  accuracy (UA) of training corpus d on its training data; the weights average to 1 (sum to D).

Degenerate inputs (defined here, documented in the task's results):
* every U_d == 1 (all corpora learnt perfectly): the denominator is 0, all weights are 1.
* a NaN U_d (a corpus with no labelled utterance to score): it is given the mean of the finite
  UAs before Eq. 3, i.e. treated as an average corpus; all NaN: all weights are 1.
A corpus lacking one of the four classes has a finite UA (classes absent from the labels are left
out of the mean recall, see tfser.metrics.unweighted_accuracy), so its weight is finite too.
"""

from typing import Sequence

import numpy as np

DEFAULT_LAMBDA_W = 4.0  # the paper's best value of lambda_W (tested over 1..5)


def corpus_weights(unweighted_accuracies: Sequence[float],
                   lambda_w: float = DEFAULT_LAMBDA_W) -> np.ndarray:
  """Eq. 3: corpus weights from each training corpus's UA. Returns float64 ``[D]``, mean 1.

  unweighted_accuracies: U_d in [0, 1], one per training corpus (NaN allowed, see module doc).
  lambda_w: the compensation exponent lambda_W (0 gives all ones).
  """
  u = np.asarray(unweighted_accuracies, np.float64).reshape(-1)
  if u.size == 0:
    raise ValueError("corpus_weights needs at least one corpus")
  finite = np.isfinite(u)
  if not finite.any():
    return np.ones_like(u)
  if (u[finite] < 0).any() or (u[finite] > 1).any():
    raise ValueError(f"unweighted accuracies must lie in [0, 1]; got {u.tolist()}")
  u = np.where(finite, u, u[finite].mean())
  error_power = (1.0 - u) ** float(lambda_w)
  mean = error_power.mean()
  if not mean > 0:
    return np.ones_like(u)
  return error_power / mean
