"""SavedModel export of the annotators task: reload with tf.saved_model.load, call both
signatures, compare with the in-process model, and reject annotator ids outside the head table."""

import shutil
import tempfile

import numpy as np

import tfser  # noqa: F401
import tensorflow as tf

from tests import encoders_testing
from tfser.tasks.annotators import export
from tfser.tasks.annotators.model import AnnotatorTaskModel
from tfser.metrics import consensus_from_distribution
from tfser.layers.diffkde import DiffKDE
from tfser.layers.encoders import BertCLSEncoder
from tfser.layers.encoders import Wav2Vec2Encoder
from tfser.models.annotator_builder import build_annotator_model
from tfser.models.annotator_config import AnnotatorModelConfig


def _task_model(model, input_dim, num_annotators=10):
  tf.keras.utils.set_random_seed(0)
  network = build_annotator_model(AnnotatorModelConfig(
      model=model, input_dim=input_dim, num_annotators=num_annotators))
  objective = "baseline" if model == "baseline" else "task1+2"
  small = dict(grid_size=32, samples=50)
  return AnnotatorTaskModel(network, objective, train_diffkde=DiffKDE(**small),
                            eval_diffkde=DiffKDE(dtype="float64", **small))


class ExportTest(tf.test.TestCase):

  def _make_tempdir(self):
    path = tempfile.mkdtemp(prefix="tfser_export_")
    self.addCleanup(shutil.rmtree, path, ignore_errors=True)
    return path

  def test_mt_round_trip_predict_features(self):
    task = _task_model("mt", 6)
    rng = np.random.default_rng(0)
    mean = rng.normal(size=6).astype(np.float32)
    std = rng.uniform(0.5, 2, size=6).astype(np.float32)
    path = self._make_tempdir()
    names = [f"worker{i:02d}" for i in range(10)]
    signatures = export.export_annotator_model(task, path, feature_mean=mean, feature_std=std,
                                               feature_names=("is10",), annotators=names)
    self.assertEqual(set(signatures), {"predict_features"})  # IS10: no in-graph extractor
    loaded = tf.saved_model.load(path)
    self.assertEqual([a.decode() for a in loaded.annotators.numpy()], names)
    features = rng.normal(size=[2, 6]).astype(np.float32)
    ids = np.array([[0, 3, -1], [9, 1, 2]], np.int32)
    out = loaded.signatures["predict_features"](features=tf.constant(features),
                                                annotator_ids=tf.constant(ids))
    expected = task.network({"features": (features - mean) / std, "annotator_ids":
                             np.maximum(ids, 0), "rating_mask": ids >= 0})
    expected = expected["annotator_predictions"].numpy()
    self.assertAllClose(out["annotator_predictions"], expected, atol=1e-5)
    self.assertAllEqual(out["annotator_mask"], ids >= 0)
    self.assertAllClose(out["consensus"], [expected[0, :2].mean(0), expected[1].mean(0)],
                        atol=1e-5)
    self.assertAllClose(tf.reduce_sum(out["distribution"], -1), [1.0, 1.0])
    self.assertAllClose(out["consensus_from_distribution"],
                        consensus_from_distribution(out["distribution"], 4), atol=1e-6)
    # The evaluation DiffKDE with the export's fixed seed gives the same distribution.
    in_process = task.eval_diffkde(tf.cast(expected, tf.float64), mask=ids >= 0, seed=[0, 0])
    self.assertAllClose(out["distribution"], in_process, atol=1e-9)

    # No ids: every head (zero-shot use).
    every = loaded.signatures["predict_features"](
        features=tf.constant(features), annotator_ids=tf.zeros([2, 0], tf.int32))
    self.assertEqual(every["annotator_predictions"].shape, (2, 10, 2))
    self.assertAllClose(every["consensus"], task.network.mean_of_all_annotators(
        (features - mean) / std), atol=1e-5)

    with self.assertRaisesRegex(tf.errors.InvalidArgumentError,
                                "outside the head table of 10 annotators"):
      loaded.signatures["predict_features"](features=tf.constant(features),
                                            annotator_ids=tf.constant([[10], [0]], tf.int32))

  def test_predict_waveform_with_in_graph_encoders(self):
    w2v = Wav2Vec2Encoder(transformer_config=encoders_testing.wav2vec2_config().to_dict())
    bert_dir = self._make_tempdir()
    encoders_testing.write_bert(bert_dir)
    bert = BertCLSEncoder(model_path=bert_dir)  # with its vocab: the signature takes text
    # The baseline keeps this test about the encoders (no DiffKDE in its graph).
    task = _task_model("baseline", w2v.hidden_size + bert.hidden_size)
    path = self._make_tempdir()
    signatures = export.export_annotator_model(
        task, path, feature_names=("wav2vec2", "bert"), encoders={"wav2vec2": w2v, "bert": bert})
    self.assertEqual(set(signatures), {"predict_features", "predict_waveform"})
    loaded = tf.saved_model.load(path)
    self.assertEqual(set(loaded.signatures), {"predict_features", "predict_waveform"})
    rng = np.random.default_rng(0)
    waveform = rng.uniform(-0.5, 0.5, size=[2, 1600]).astype(np.float32)
    lengths = np.array([1600, 1200], np.int32)
    transcript = tf.constant(["the cat sat", "a dog"])
    features = tf.concat([w2v(waveform, lengths), bert(transcript)], axis=-1)
    no_ids = tf.zeros([2, 0], tf.int32)
    from_features = loaded.signatures["predict_features"](features=features,
                                                          annotator_ids=no_ids)
    from_waveform = loaded.signatures["predict_waveform"](
        waveform=tf.constant(waveform), waveform_lengths=tf.constant(lengths),
        transcript=transcript, annotator_ids=no_ids)
    for key in ("consensus", "distribution"):
      self.assertAllClose(from_waveform[key], from_features[key], atol=1e-5)


if __name__ == "__main__":
  tf.test.main()
