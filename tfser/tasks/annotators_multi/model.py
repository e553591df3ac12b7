"""The annotators_multi train step: the annotators paper's objectives (``tfser.tasks.annotators
.model``), each task's loss summed over the training corpora with the CWW paper's Eq. 2.

A training batch is ``{corpus: minibatch}`` (one per corpus per step, Algorithm 1). For each task
of the objective (baseline; Task 1; Task 1 then Task 2, one SGD step each, as the annotators task)
the loss is (1/D) sum_d w_d L_d, L_d the task's loss on corpus d's minibatch alone (Task 1: the
CCC loss over that corpus's ratings; Task 2 and the baseline: the cross-entropy against its ground
truth) and w the ``corpus_weights`` variable ``[D]`` (Eq. 3, assigned by
``tfser.core.corpus_weights.CorpusWeightsCallback`` at every epoch end; all 1 for
``weighting="equal"``). With ``weighting="merged"`` the batch is ``{"merged": minibatch}`` of
every corpus's utterances mixed, one stream of weight 1: the plain loss. The variable is tracked
by the model, so checkpoints carry it.

Validation and evaluation see one corpus's batch at a time: the inherited ``test_step``.
"""

from typing import Sequence

import numpy as np

import tfser  # noqa: F401  (Keras flavour before TensorFlow)
import tensorflow as tf

from tfser.tasks.annotators.model import AnnotatorTaskModel
from tfser.tasks.cww.equations import corpus_weighted_loss


class MultiCorpusAnnotatorModel(AnnotatorTaskModel):
  """An AnnotatorTaskModel whose train step takes ``{corpus: batch}`` and weights the corpora.

  corpora: the training stream's names (the training corpora, or ("merged",)), in the order of
  ``corpus_weights``. Other arguments: as
  AnnotatorTaskModel.
  """

  def __init__(self, network: tf.keras.Model, objective: str, corpora: Sequence[str], **kwargs):
    super().__init__(network, objective, **kwargs)
    self.corpora = tuple(corpora)
    self.corpus_weights = tf.Variable(np.ones([len(self.corpora)], np.float32), trainable=False,
                                      name="corpus_weights")
    per_corpus = dict(self._loss_fns)
    self._loss_fns = {task: self._weighted(fn) for task, fn in per_corpus.items()}

  def _weighted(self, loss_fn):
    def loss(batches):
      return corpus_weighted_loss([loss_fn(batches[c]) for c in self.corpora],
                                  self.corpus_weights)
    return loss
