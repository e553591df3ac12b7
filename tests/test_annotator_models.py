"""Annotator models (baseline, MT, one-hot): built from configs, shapes, the one-hot batching's
equivalence with a Dense on the concatenated one-hot input, and a few training steps."""

from absl.testing import parameterized
import numpy as np

import tfser  # noqa: F401
import tensorflow as tf

from tfser.testing.annotator_arrays import make_corpus
from tfser.tasks.annotators.model import AnnotatorTaskModel
from tfser.metrics import consensus_from_distribution
from tfser.models.annotator_builder import build_annotator_model
from tfser.models.annotator_config import AnnotatorModelConfig

_CORPUS = None


def corpus():
  global _CORPUS
  if _CORPUS is None:
    _CORPUS = make_corpus(num_annotators=12, input_dim=8,
                          sizes=(("train", 96), ("validation", 32), ("test", 32)), gt_grid=64)
  return _CORPUS


def _inputs(batch=3, slots=4, dim=8, num=12, seed=0):
  rng = np.random.default_rng(seed)
  mask = np.ones([batch, slots], bool)
  mask[0, 2:] = False
  ids = np.where(mask, rng.integers(0, num, [batch, slots]), 0).astype(np.int32)
  return {"features": rng.normal(size=[batch, dim]).astype(np.float32), "annotator_ids": ids,
          "rating_mask": mask}


class ModelsTest(tf.test.TestCase, parameterized.TestCase):

  def test_config_errors_name_the_field(self):
    with self.assertRaisesRegex(ValueError, "unknown model 'cnn'"):
      AnnotatorModelConfig(model="cnn")
    with self.assertRaisesRegex(ValueError, "num_annotators"):
      AnnotatorModelConfig(model="mt", num_annotators=0)

  @parameterized.parameters((4,), (2,))
  def test_baseline_shapes_and_layers(self, bins):
    model = build_annotator_model(AnnotatorModelConfig(model="baseline", input_dim=8,
                                                       out_bins=bins))
    out = model(_inputs())["distribution_logits"]
    self.assertEqual(out.shape, (3, bins * bins))
    # The paper's baseline: 3 hidden Dense(256) layers, then the logits.
    dense = [l for l in model.layers if isinstance(l, tf.keras.layers.Dense)]
    self.assertEqual([l.units for l in dense], [256, 256, 256, bins * bins])

  @parameterized.parameters("mt", "onehot")
  def test_annotator_models_shapes_mask_and_all_heads(self, kind):
    model = build_annotator_model(AnnotatorModelConfig(model=kind, input_dim=8,
                                                       num_annotators=12))
    inputs = _inputs()
    out = model(inputs)["annotator_predictions"].numpy()
    self.assertEqual(out.shape, (3, 4, 2))
    self.assertAllEqual(out[0, 2:], np.zeros([2, 2]))  # masked slots are 0
    every = model.all_annotators(inputs["features"]).numpy()
    self.assertEqual(every.shape, (3, 12, 2))
    # A gathered prediction equals that annotator's row of the all-heads output.
    for b in range(3):
      for a in range(4):
        if inputs["rating_mask"][b, a]:
          self.assertAllClose(out[b, a], every[b, inputs["annotator_ids"][b, a]], atol=1e-5)
    self.assertAllClose(model.mean_of_all_annotators(inputs["features"]), every.mean(axis=1),
                        atol=1e-5)

  def test_one_hot_equals_dense_on_concatenated_one_hot(self):
    config = AnnotatorModelConfig(model="onehot", input_dim=8, num_annotators=12)
    model = build_annotator_model(config)
    inputs = _inputs()
    out = model(inputs)["annotator_predictions"].numpy()
    # The explicit formulation: one row per (utterance, annotator), input [features, one_hot].
    kernel = np.concatenate([model.first_features.kernel.numpy(),
                             model.first_one_hot.embeddings.numpy()], axis=0)
    bias = model.first_features.bias.numpy()
    for b in range(3):
      for a in range(4):
        if not inputs["rating_mask"][b, a]:
          continue
        row = np.concatenate([inputs["features"][b], np.eye(12)[inputs["annotator_ids"][b, a]]])
        h = np.maximum(row @ kernel + bias, 0)[None]
        act, val = h, h
        for layer in model.activation_branch:
          act = layer(act)
        for layer in model.valence_branch:
          val = layer(val)
        expected = [model.activation_head(act)[0, 0], model.valence_head(val)[0, 0]]
        self.assertAllClose(out[b, a], expected, atol=1e-5)

  @parameterized.parameters("baseline", "mt", "onehot")
  def test_config_round_trip(self, kind):
    model = build_annotator_model(AnnotatorModelConfig(model=kind, input_dim=8,
                                                       num_annotators=12))
    clone = model.__class__.from_config(model.get_config())
    self.assertEqual(clone.config, model.config)

  @parameterized.parameters(("baseline", "baseline", False, False),
                            ("mt", "task1", False, False), ("onehot", "task1", False, False),
                            ("mt", "task1", True, False), ("mt", "task1", False, True))
  def test_trains_a_few_steps(self, kind, objective, jit, mixed):
    if mixed:
      tf.keras.mixed_precision.set_global_policy("mixed_float16")
    try:
      tf.keras.utils.set_random_seed(0)
      data = corpus()
      model = build_annotator_model(AnnotatorModelConfig(model=kind, input_dim=8,
                                                         num_annotators=12))
      task = AnnotatorTaskModel(model, objective, jit=jit)
      task.compile(optimizer=tf.keras.optimizers.legacy.SGD(1e-2, momentum=0.9))
      before = [w.numpy().copy() for w in model.trainable_weights]
      history = task.fit(data.dataset("train", 16), epochs=3, verbose=0).history
      losses = history["loss"]
      self.assertTrue(np.all(np.isfinite(losses)), losses)
      self.assertLess(losses[-1], losses[0])
      changed = [not np.allclose(b, w.numpy()) for b, w in zip(before, model.trainable_weights)]
      self.assertTrue(all(changed))
    finally:
      tf.keras.mixed_precision.set_global_policy("float32")

  def test_objective_must_fit_model(self):
    model = build_annotator_model(AnnotatorModelConfig(model="mt", input_dim=8,
                                                       num_annotators=12))
    with self.assertRaisesRegex(ValueError, "does not fit model 'mt'"):
      AnnotatorTaskModel(model, "baseline")
    with self.assertRaisesRegex(ValueError, "unknown objective"):
      AnnotatorTaskModel(model, "task3")

  def test_consensus_from_distribution_matches_paper_weights(self):
    rng = np.random.default_rng(0)
    p = rng.random([5, 16])
    p /= p.sum(1, keepdims=True)
    grid = p.reshape(5, 4, 4)  # [activation, valence]
    w = np.array([-1, -0.5, 0.5, 1])
    expected = np.stack([grid.sum(2) @ w, grid.sum(1) @ w], axis=-1)
    self.assertAllClose(consensus_from_distribution(p, 4), expected)


if __name__ == "__main__":
  tf.test.main()
