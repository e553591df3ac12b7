"""The annotators paper's one-hot model (Kocon et al.): the annotator's one-hot id joined to the
input, one activation head and one valence head.

Batching: one row per (utterance, annotator slot), i.e. the utterance's features tiled once per
annotator who rated it, as the authors' ``OneHotLayer`` does. The one-hot vector is never
materialised: a Dense layer on ``concat(features, one_hot(id))`` equals
``Dense(features) + W_onehot[id]``, so the first shared layer is a Dense on the features (computed
once per utterance) plus a gathered row of an embedding table ``[num_annotators, 256]`` (the
one-hot block of that Dense's kernel; a sparse IndexedSlices gradient), broadcast over the
annotator slots. Both parts are initialised like the concatenated kernel would be (Glorot uniform
over fan-in ``input_dim + num_annotators``). From there on every layer runs on
``[batch, annotators, 256]``. Input dropout 0.2 applies to the features, not the one-hot part.
"""

import math

import tfser  # noqa: F401  (Keras flavour before TensorFlow)
import tensorflow as tf

from tfser.layers.seeded_dropout import SeededDropout
from tfser.models.annotator_base import AnnotatorModelBase
from tfser.models.annotator_config import AnnotatorModelConfig


@tf.keras.utils.register_keras_serializable(package="tfser")
class OneHotAnnotatorModel(AnnotatorModelBase):
  """Same interface as :class:`tfser.models.multi_task.MultiTaskAnnotatorModel`.

  ``call({"features", "annotator_ids", "rating_mask"})`` -> ``{"annotator_predictions":
  [batch, annotators, 2]}``; ``all_annotators(features)`` -> ``[batch, num_annotators, 2]``
  (every annotator's row, costs num_annotators forward passes per utterance);
  ``mean_of_all_annotators(features)`` -> ``[batch, 2]``.
  """

  def __init__(self, config: AnnotatorModelConfig, **kwargs):
    super().__init__(**kwargs)
    self.config = config
    limit = math.sqrt(6.0 / (config.input_dim + config.num_annotators + config.hidden_units))
    init = lambda: tf.keras.initializers.RandomUniform(-limit, limit)  # noqa: E731  (fresh each)
    self.input_dropout = SeededDropout(config.dropout, seed=config.seed, name="input_dropout")
    self.first_features = tf.keras.layers.Dense(config.hidden_units, kernel_initializer=init(),
                                                name="shared_0_features")
    self.first_one_hot = tf.keras.layers.Embedding(config.num_annotators, config.hidden_units,
                                                   embeddings_initializer=init(),
                                                   name="shared_0_one_hot")
    self.shared = [tf.keras.layers.Dense(config.hidden_units, activation="relu",
                                         name=f"shared_{i}")
                   for i in range(1, config.shared_layers)]
    self.activation_branch = [
        tf.keras.layers.Dense(config.hidden_units, activation="relu", name=f"activation_{i}")
        for i in range(config.branch_layers)]
    self.valence_branch = [
        tf.keras.layers.Dense(config.hidden_units, activation="relu", name=f"valence_{i}")
        for i in range(config.branch_layers)]
    self.activation_head = tf.keras.layers.Dense(1, dtype="float32", name="activation_head")
    self.valence_head = tf.keras.layers.Dense(1, dtype="float32", name="valence_head")

  def _predict(self, features, ids, training):
    """features [batch, input_dim], ids [batch, annotators] -> [batch, annotators, 2]."""
    x = self.first_features(self.input_dropout(features, training=training))  # [b, hidden]
    x = tf.nn.relu(x[:, None, :] + tf.cast(self.first_one_hot(ids), x.dtype))  # [b, a, hidden]
    act, val = self._activation_valence_branches(x)
    return tf.concat([self.activation_head(act), self.valence_head(val)], axis=-1)

  def call(self, inputs, training=False):
    ids = tf.cast(inputs["annotator_ids"], tf.int32)
    mask = inputs.get("rating_mask")
    mask = tf.ones_like(ids, tf.bool) if mask is None else tf.cast(mask, tf.bool)
    safe_ids = tf.where(mask, ids, tf.zeros_like(ids))
    predictions = self._predict(inputs["features"], safe_ids, training)
    return {"annotator_predictions": tf.where(mask[..., None], predictions,
                                              tf.zeros_like(predictions))}

  def all_annotators(self, features, training=False):
    batch = tf.shape(features)[0]
    ids = tf.tile(tf.range(self.config.num_annotators)[None, :], [batch, 1])
    return self._predict(features, ids, training)

  def mean_of_all_annotators(self, features, training=False):
    return tf.reduce_mean(self.all_annotators(features, training=training), axis=1)


def build_one_hot(config: AnnotatorModelConfig) -> OneHotAnnotatorModel:
  """Builds (and creates the variables of) the one-hot model for ``config``."""
  return OneHotAnnotatorModel.build_from_config(config, "one_hot")
