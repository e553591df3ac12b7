"""SavedModel export of an annotators-task model, with serving signatures.

``export_annotator_model(task_model, path, ...)`` writes a SavedModel whose signatures are:

``predict_features``
  inputs: ``features [batch, input_dim] float32`` (the stored features, concatenated in the
  training order, un-standardised: the training standardisation is inside), ``annotator_ids
  [batch, annotators] int32``: head indices (the training corpus manifest's ``annotators`` order),
  -1 for padding; a ``[batch, 0]`` tensor means "every head" (zero-shot use).
  outputs: ``annotator_predictions [batch, annotators, 2]`` (activation, valence; 0 at padding;
  every head when no ids were given), ``annotator_mask [batch, annotators] bool``, ``consensus
  [batch, 2]`` (the mean of those annotators' predictions), ``distribution [batch, bins*bins]``
  (float64 DiffKDE of those predictions, the evaluation's layer with a fixed upsampling seed),
  ``consensus_from_distribution [batch, 2]`` (the paper's consensus, 3.4).
  For the baseline, ``distribution`` is its softmax, ``consensus`` equals
  ``consensus_from_distribution``, and the annotator outputs have zero annotators.
  An id outside ``[-1, num_annotators)`` fails the call with an InvalidArgumentError that names
  the head table's size.

``predict_waveform`` (only when every training feature has an in-graph extractor, i.e. features
  from {"wav2vec2", "bert"} and the encoders are passed): ``waveform [batch, samples] float32`` at
  16 kHz, ``waveform_lengths [batch] int32`` (valid samples per row), with BERT also
  ``transcript [batch] string`` (UTF-8 text, WordPiece-tokenised inside the graph by the BERT
  encoder's own vocabulary, see ``tfser.layers.encoders``), and ``annotator_ids`` as above; the
  same outputs. IS10 features (the demo's) come from openSMILE, which cannot run in a
  graph: those exports have ``predict_features`` only.

The exported object's ``predict_features(features, annotator_ids)`` is also callable directly, and
its ``annotators`` variable holds the corpus's annotator id of every head (head i = annotators[i]).
"""

from typing import Dict, Mapping, Optional, Sequence

import numpy as np

import tfser  # noqa: F401  (Keras flavour before TensorFlow)
import tensorflow as tf

from tfser.data import standardize as standardize_lib
from tfser.tasks.annotators.model import AnnotatorTaskModel
from tfser.metrics import consensus_from_distribution

WAVEFORM_FEATURES = ("wav2vec2", "bert")


class AnnotatorServingModule(tf.Module):
  """The exported object: network, evaluation DiffKDE, standardisation constants, encoders."""

  def __init__(self, task_model: AnnotatorTaskModel, *, feature_mean=None, feature_std=None,
               feature_names: Sequence[str] = (), encoders: Optional[Mapping] = None,
               seed: int = 0, annotators: Sequence[str] = ()):
    super().__init__(name="annotator_serving")
    self.network = task_model.network
    self.diffkde = task_model.eval_diffkde
    self.is_baseline = task_model.objective == "baseline"
    self.bins = task_model.out_bins
    self.input_dim = int(self.network.config.input_dim)
    self.num_annotators = int(self.network.config.num_annotators)
    mean = np.zeros([self.input_dim]) if feature_mean is None else feature_mean
    std = np.ones([self.input_dim]) if feature_std is None else feature_std
    self.feature_mean = tf.constant(np.asarray(mean, np.float32))
    self.feature_std = tf.constant(np.asarray(std, np.float32))
    self.feature_names = tuple(feature_names)
    self.encoders = dict(encoders or {})
    self.seed = tf.constant([seed, 0], tf.int64)
    # The corpus's annotator id of every head (head i = annotators[i]), saved with the model.
    self.annotators = tf.Variable(tf.constant(list(annotators), tf.string), trainable=False,
                                  name="annotators")

  def _outputs(self, features, annotator_ids):
    features = standardize_lib.standardize(features, self.feature_mean, self.feature_std)
    batch = tf.shape(features)[0]
    annotator_ids = tf.cast(annotator_ids, tf.int32)
    if self.is_baseline:
      logits = self.network({"features": features}, training=False)["distribution_logits"]
      distribution = tf.cast(tf.nn.softmax(logits), tf.float64)
      from_distribution = consensus_from_distribution(distribution, self.bins)
      return {"annotator_predictions": tf.zeros([batch, 0, 2]),
              "annotator_mask": tf.zeros([batch, 0], tf.bool),
              "consensus": tf.cast(from_distribution, tf.float32),
              "distribution": distribution,
              "consensus_from_distribution": tf.cast(from_distribution, tf.float32)}
    with tf.control_dependencies([
        tf.debugging.assert_less(
            annotator_ids, tf.constant(self.num_annotators, tf.int32),
            message=f"annotator_ids: an id is outside the head table of "
                    f"{self.num_annotators} annotators (valid: 0..{self.num_annotators - 1}, "
                    "-1 for padding)"),
        tf.debugging.assert_greater_equal(
            annotator_ids, tf.constant(-1, tf.int32),
            message="annotator_ids: negative id other than -1 (padding)")]):
      annotator_ids = tf.identity(annotator_ids)

    def given():
      mask = annotator_ids >= 0
      predictions = self.network(
          {"features": features, "annotator_ids": tf.maximum(annotator_ids, 0),
           "rating_mask": mask}, training=False)["annotator_predictions"]
      return tf.cast(predictions, tf.float32), mask

    def every_head():
      predictions = tf.cast(self.network.all_annotators(features, training=False), tf.float32)
      return predictions, tf.ones(tf.shape(predictions)[:2], tf.bool)

    predictions, mask = tf.cond(tf.equal(tf.shape(annotator_ids)[1], 0), every_head, given)
    weights = tf.cast(mask, tf.float32)
    count = tf.maximum(tf.reduce_sum(weights, axis=1), 1.0)
    consensus = tf.reduce_sum(predictions * weights[..., None], axis=1) / count[:, None]
    distribution = tf.cast(self.diffkde(tf.cast(predictions, tf.float64), mask=mask,
                                        seed=self.seed), tf.float64)
    return {"annotator_predictions": predictions, "annotator_mask": mask,
            "consensus": consensus, "distribution": distribution,
            "consensus_from_distribution": tf.cast(
                consensus_from_distribution(distribution, self.bins), tf.float32)}

  @tf.function
  def predict_features(self, features, annotator_ids):
    return self._outputs(features, annotator_ids)

  def waveform_features(self, waveform, waveform_lengths, transcript=None):
    parts = []
    for name in self.feature_names:
      if name == "wav2vec2":
        parts.append(self.encoders["wav2vec2"](waveform, waveform_lengths))
      elif name == "bert":
        parts.append(self.encoders["bert"](transcript))
    return tf.concat(parts, axis=-1)


def waveform_signature_possible(feature_names: Sequence[str],
                                encoders: Optional[Mapping]) -> bool:
  """True when every feature has an in-graph encoder among ``encoders``."""
  return bool(feature_names) and all(
      name in WAVEFORM_FEATURES and name in (encoders or {}) for name in feature_names)


def export_annotator_model(task_model: AnnotatorTaskModel, path: str, *,
                           feature_mean: Optional[np.ndarray] = None,
                           feature_std: Optional[np.ndarray] = None,
                           feature_names: Sequence[str] = (),
                           encoders: Optional[Dict[str, tf.keras.layers.Layer]] = None,
                           seed: int = 0, annotators: Sequence[str] = ()) -> Dict[str, str]:
  """Writes the SavedModel (see the module docstring); returns {signature: description}.

  encoders: {"wav2vec2": Wav2Vec2Encoder, "bert": BertCLSEncoder} for ``predict_waveform``.
  annotators: the training corpus's annotator ids by head index (the manifest's order); saved
    as the loaded object's ``annotators`` variable, to map a corpus id to its head.
  """
  module = AnnotatorServingModule(task_model, feature_mean=feature_mean, feature_std=feature_std,
                                  feature_names=feature_names, encoders=encoders, seed=seed,
                                  annotators=annotators)
  features_spec = tf.TensorSpec([None, module.input_dim], tf.float32, name="features")
  ids_spec = tf.TensorSpec([None, None], tf.int32, name="annotator_ids")
  signatures = {"predict_features": module.predict_features.get_concrete_function(
      features_spec, ids_spec)}
  described = {"predict_features": "features, annotator_ids -> predictions, consensus, "
                                   "distribution"}
  if waveform_signature_possible(feature_names, encoders):
    uses_bert = "bert" in feature_names
    if uses_bert and getattr(encoders["bert"], "tokenizer", None) is None:
      raise ValueError("predict_waveform takes transcript text, so the BERT encoder needs its "
                       "tokenizer: build BertCLSEncoder from a model directory with vocab.txt")

    if uses_bert:
      @tf.function(input_signature=[
          tf.TensorSpec([None, None], tf.float32, name="waveform"),
          tf.TensorSpec([None], tf.int32, name="waveform_lengths"),
          tf.TensorSpec([None], tf.string, name="transcript"), ids_spec])
      def predict_waveform(waveform, waveform_lengths, transcript, annotator_ids):
        features = module.waveform_features(waveform, waveform_lengths, transcript)
        return module._outputs(features, annotator_ids)  # pylint: disable=protected-access
    else:
      @tf.function(input_signature=[
          tf.TensorSpec([None, None], tf.float32, name="waveform"),
          tf.TensorSpec([None], tf.int32, name="waveform_lengths"), ids_spec])
      def predict_waveform(waveform, waveform_lengths, annotator_ids):
        features = module.waveform_features(waveform, waveform_lengths)
        return module._outputs(features, annotator_ids)  # pylint: disable=protected-access
    module.predict_waveform = predict_waveform
    signatures["predict_waveform"] = predict_waveform.get_concrete_function()
    described["predict_waveform"] = "16 kHz waveform (+ transcript text) -> the same"
  tf.saved_model.save(module, path, signatures=signatures)
  return described
