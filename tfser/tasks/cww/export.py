"""SavedModel export of the CWW classifier: IS10 features -> class probabilities.

The serving signature takes raw IS10 features ``[batch, 1582]`` float32 (as data_prep writes
them); the z-normalisation with the training statistics is inside the graph. It returns
"probabilities" ``[batch, 4]`` (tfser.data.schema.CLASS_NAMES order) and "class_index" ``[batch]``.

No waveform signature: IS10 comes from openSMILE's SMILExtract, a native program that cannot run
inside a TensorFlow graph (and a tf.py_function does not survive SavedModel serialisation). To
classify audio, extract IS10 on 16 kHz mono audio first (``opensmile.Smile(feature_set=
opensmile.FeatureSet.IS10, feature_level=opensmile.FeatureLevel.Functionals)``, as
data_prep.features does) and feed the features. ``tfser_export.json`` beside the model says so.
"""

import json
import os

import tfser  # noqa: F401  (Keras flavour before TensorFlow)
import tensorflow as tf

from tfser.data import schema

EXPORT_INFO = "tfser_export.json"
WAVEFORM_NOTE = ("no waveform signature: IS10 is computed by openSMILE (SMILExtract), which cannot "
                 "run inside a TensorFlow graph; extract IS10 from 16 kHz mono audio with the "
                 "opensmile package (FeatureSet.IS10, Functionals) and call the 'is10' signature")


class CwwServing(tf.Module):
  """Serving wrapper around the functional network of tfser.tasks.cww.model."""

  def __init__(self, network: tf.keras.Model, feature_dim: int):
    super().__init__(name="cww_serving")
    self.network = network
    self.feature_dim = feature_dim
    self.serve_is10 = tf.function(
        self._serve, input_signature=[tf.TensorSpec([None, feature_dim], tf.float32, name="is10")])

  def _serve(self, is10):
    logits = self.network(is10, training=False)["logits"]
    probabilities = tf.nn.softmax(tf.cast(logits, tf.float32), axis=-1)
    return {"probabilities": probabilities,
            "class_index": tf.argmax(probabilities, axis=-1, output_type=tf.int32)}


def export_saved_model(network: tf.keras.Model, path: str, *, feature_dim: int,
                       feature_name: str = "is10", extra_info: dict = None) -> str:
  """Writes the SavedModel (signatures "serving_default" and "is10") and its info file."""
  module = CwwServing(network, feature_dim)
  signatures = {"serving_default": module.serve_is10, "is10": module.serve_is10}
  tf.saved_model.save(module, path, signatures=signatures)
  info = {"input": {"name": feature_name, "shape": [None, feature_dim], "dtype": "float32",
                    "normalisation": "z-normalisation with training statistics, inside the graph"},
          "outputs": {"probabilities": list(schema.CLASS_NAMES), "class_index": "argmax"},
          "signatures": sorted(signatures), "waveform_signature": None,
          "waveform_note": WAVEFORM_NOTE, **(extra_info or {})}
  with open(os.path.join(path, EXPORT_INFO), "w") as f:
    json.dump(info, f, indent=2)
  return path
