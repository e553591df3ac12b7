"""The CWW classifier F, its layers, and the compiled train step's use of the corpus weights."""

import os
import subprocess
import sys
import textwrap

import numpy as np
from absl.testing import parameterized

import tfser  # noqa: F401
import tensorflow as tf

from tfser.core import resumable
from tfser.tasks.cww import equations as corpus_weights
from tfser.tasks.cww import evaluate as cww_evaluate
from tfser.layers.seeded_dropout import SeededDropout
from tfser.tasks.cww import model as cww_classifier

DIM = 12
CORPORA = ("A", "B", "C")


def _network(dropout=0.0, reconstruction=None, mean=None, std=None):
  return cww_classifier.build_classifier(
      DIM, hidden_units=(16, 16, 8, 8), dropout=dropout, reconstruction_units=reconstruction,
      feature_mean=mean, feature_std=std, seed=1)


def _step_data(seed=0, m=8, unlabelled=False):
  rng = np.random.default_rng(seed)
  labelled = {}
  for c in CORPORA:
    labelled[c] = {"features": rng.normal(0, 1, [m, DIM]).astype(np.float32),
                   "label": rng.integers(0, 4, m).astype(np.int32),
                   "votes": np.zeros([m, 4], np.float32)}
  data = {"labelled": labelled}
  if unlabelled:
    data["unlabelled"] = {"features": rng.normal(0, 1, [m, DIM]).astype(np.float32)}
  return data


class LayersTest(tf.test.TestCase, parameterized.TestCase):

  def test_outputs_and_normalisation(self):
    mean = np.arange(DIM, dtype=np.float32)
    std = np.full([DIM], 2.0, np.float32)
    std[0] = 0.0  # constant feature: divided by 1, not 0
    net = _network(reconstruction=(16, DIM), mean=mean, std=std)
    x = np.random.default_rng(0).normal(0, 1, [5, DIM]).astype(np.float32)
    out = net(x)
    self.assertEqual(out["logits"].shape, (5, 4))
    self.assertEqual(out["reconstruction"].shape, (5, DIM))
    expected = (x - mean) / np.where(std > 0, std, 1.0)
    self.assertAllClose(out["normalized"], expected, rtol=1e-6)
    self.assertEqual([l.units for l in net.layers if l.name.startswith("fc")], [16, 16, 8, 8])

  def test_paper_architecture(self):
    net = cww_classifier.build_classifier(reconstruction_units=(1024, 1582))
    dense = {l.name: l.units for l in net.layers if isinstance(l, tf.keras.layers.Dense)}
    self.assertEqual(dense, {"fc1": 1024, "fc2": 1024, "fc3": 512, "fc4": 512, "logits": 4,
                             "rec1": 1024, "reconstruction": 1582})
    rec1 = net.get_layer("rec1")
    self.assertIs(rec1.input._keras_history.layer, net.get_layer("fc2"))  # attached to layer 2
    self.assertEqual([l.rate for l in net.layers if "dropout" in l.name], [0.5] * 4)

  def test_wrong_width_is_a_clear_error(self):
    net = _network()
    with self.assertRaisesRegex(ValueError, "expected shape|incompatible"):
      net(np.zeros([2, DIM + 1], np.float32))
    with self.assertRaisesRegex(ValueError, "width 7, the model expects 12"):
      cww_classifier.FeatureNormalization(DIM).build([None, 7])

  def test_layer_configs_round_trip(self):
    for layer in (cww_classifier.FeatureNormalization(DIM, min_std=1e-3),
                  SeededDropout(0.3, seed=5)):
      clone = type(layer).from_config(layer.get_config())
      self.assertEqual(clone.get_config(), layer.get_config())

  def test_seeded_dropout_state_is_checkpointed(self):
    layer = SeededDropout(0.5, seed=3)
    x = tf.ones([4, 64])
    self.assertAllEqual(layer(x, training=False), x)
    first = layer(x, training=True)
    self.assertAllInSet(first.numpy(), [0.0, 2.0])
    ckpt = tf.train.Checkpoint(layer=layer)
    path = ckpt.write(os.path.join(self.get_temp_dir(), "drop"))
    second = layer(x, training=True)
    self.assertNotAllEqual(first, second)
    ckpt.read(path)
    self.assertAllEqual(layer(x, training=True), second)  # same state -> same mask


class TrainStepTest(tf.test.TestCase, parameterized.TestCase):

  def _model(self, jit=False, **kwargs):
    tf.keras.utils.set_random_seed(0)
    model = cww_classifier.CwwModel(_network(), CORPORA, **kwargs)
    model.compile(optimizer=tf.keras.optimizers.Adam(2e-4), jit_compile=jit)
    return model

  @parameterized.parameters(False, True)
  def test_compiled_step_reads_weights_set_by_callback(self, jit):
    model = self._model(jit=jit)
    data = _step_data()
    loss_fn = tf.function(lambda d: model.compute_loss_terms(d, training=False), jit_compile=jit)
    loss_1, terms = loss_fn(data)
    self.assertAllClose(loss_1, np.mean([t.numpy() for t in terms]), rtol=1e-6)
    # The callback scores each corpus and assigns Eq. 3's weights to the variable.
    datasets = {c: tf.data.Dataset.from_tensor_slices(data["labelled"][c]).batch(4)
                for c in CORPORA}
    callback = corpus_weights.CorpusWeightsCallback(
        model.corpus_weights, lambda x: model(x, training=False), datasets, CORPORA, lambda_w=4)
    logs = {}
    callback.on_epoch_end(0, logs)
    uas = [logs[f"train_ua_{c}"] for c in CORPORA]
    expected_w = corpus_weights.corpus_weights(uas, 4)
    self.assertAllClose(model.corpus_weights, expected_w, rtol=1e-6)
    self.assertAllClose([logs[f"cww_{c}"] for c in CORPORA], expected_w, rtol=1e-6)
    # Force unequal weights too (the UAs of a random model may be nearly equal).
    model.corpus_weights.assign([2.5, 0.25, 0.25])
    loss_2, terms_2 = loss_fn(data)  # same traced function, new variable value
    self.assertAllClose(loss_2, np.mean(np.array([2.5, 0.25, 0.25]) *
                                        np.array([t.numpy() for t in terms_2])), rtol=1e-6)

  @parameterized.parameters(False, True)
  def test_fit_step_loss_uses_corpus_weights(self, jit):
    model = self._model(jit=jit)
    data = _step_data(1)
    model.corpus_weights.assign([0.1, 0.2, 2.7])
    expected, _ = model.compute_loss_terms(data, training=False)  # dropout 0: same as training
    ds = tf.data.Dataset.from_tensors(data).repeat()
    history = model.fit(ds, steps_per_epoch=1, epochs=1, verbose=0)
    self.assertAllClose(history.history["loss"][0], expected, rtol=1e-5)
    self.assertEqual(int(model.optimizer.iterations.numpy()), 1)

  def test_pel_and_reconstruction_terms_enter_the_loss(self):
    tf.keras.utils.set_random_seed(0)
    net = _network(reconstruction=(16, DIM))
    data = _step_data(2, unlabelled=True)
    plain = cww_classifier.CwwModel(net, CORPORA, reconstruction_weight=2.0)
    with_pel = cww_classifier.CwwModel(net, CORPORA, pel="all", lambda_l=0.5,
                                       reconstruction_weight=2.0)
    self.assertTrue(plain.uses_unlabelled)
    base, terms = plain.compute_loss_terms(data, training=False)
    # Reconstruction: mean squared error of the normalised input over every sample in the step.
    out = net(np.concatenate([data["labelled"][c]["features"] for c in CORPORA] +
                             [data["unlabelled"]["features"]]))
    recon = np.mean(np.mean((out["reconstruction"].numpy() - out["normalized"].numpy()) ** 2, -1))
    self.assertAllClose(base - np.mean([t.numpy() for t in terms]), 2.0 * recon, rtol=1e-4)
    # Eq. 4 with PEL_AL: -(lambda_L / M) sum_i sum_c log p_ic on the unlabelled minibatch.
    logits = net(data["unlabelled"]["features"])["logits"].numpy().astype(np.float64)
    logp = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
    loss_pel, _ = with_pel.compute_loss_terms(data, training=False)
    self.assertAllClose(loss_pel - base, -0.5 * logp.sum() / len(logp), rtol=1e-4)

  def test_mixed_precision_step(self):
    tf.keras.mixed_precision.set_global_policy("mixed_float16")
    try:
      model = self._model()
      self.assertIsInstance(model.optimizer, tf.keras.mixed_precision.LossScaleOptimizer)
      ds = tf.data.Dataset.from_tensors(_step_data(3)).repeat()
      history = model.fit(ds, steps_per_epoch=2, epochs=1, verbose=0)
      self.assertTrue(np.isfinite(history.history["loss"][0]))
      self.assertEqual(model.network.get_layer("fc1").compute_dtype, "float16")
    finally:
      tf.keras.mixed_precision.set_global_policy("float32")


class CallbackStateTest(tf.test.TestCase):

  def test_early_stopping_state_survives_a_restart(self):
    before = resumable.ResumableEarlyStopping(monitor="val_ua_mean", mode="max", patience=5)
    before.set_model(tf.keras.Sequential())
    before.on_train_begin()
    for epoch, value in enumerate([0.5, 0.6, 0.55, 0.58]):
      before.on_epoch_end(epoch, {"val_ua_mean": value})
    state = before.get_state()
    self.assertEqual((state["wait"], state["best"]), (2, 0.6))
    after = resumable.ResumableEarlyStopping(monitor="val_ua_mean", mode="max", patience=5)
    after.set_model(tf.keras.Sequential())
    after.set_state(state)
    after.on_train_begin()  # Keras resets the counters here; the saved state is applied after
    self.assertEqual((after.wait, after.best), (2, 0.6))

  def test_fresh_state_is_json_safe(self):
    callback = resumable.ResumableReduceLROnPlateau(monitor="val_ua_mean", mode="max")
    callback.on_train_begin()
    self.assertIsNone(callback.get_state()["best"])  # -inf is stored as null

  def test_empty_dataset_has_nan_ua(self):
    empty = tf.data.Dataset.from_tensor_slices(
        {"features": np.zeros([0, DIM], np.float32), "label": np.zeros([0], np.int32)}).batch(4)
    uas = cww_evaluate.corpus_uas(lambda x: tf.zeros([tf.shape(x)[0], 4]), {"A": empty})
    self.assertTrue(np.isnan(uas["A"]))


_MIRRORED_SCRIPT = textwrap.dedent("""
    import numpy as np, tfser, tensorflow as tf
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    from tfser.tasks.cww import model as cww_classifier
    from tests.test_cww_model import _network, _step_data, CORPORA
    from tfser.tasks.cww import train as cww_train
    strategy = cww_train.strategy("mirrored")  # the trainer's: every logical CPU
    with strategy.scope():
      model = cww_classifier.CwwModel(_network(), CORPORA, pel="all", lambda_l=0.3)
      model.compile(optimizer=tf.keras.optimizers.Adam(2e-4))
    model.corpus_weights.assign([0.5, 1.0, 1.5])
    data = _step_data(4, m=8, unlabelled=True)
    single, _ = model.compute_loss_terms(data, training=False)
    dist = strategy.experimental_distribute_dataset(tf.data.Dataset.from_tensors(data))
    batch = next(iter(dist))
    per_replica = strategy.run(lambda d: model.compute_loss_terms(d, training=False)[0], (batch,))
    total = strategy.reduce(tf.distribute.ReduceOp.SUM, per_replica, axis=None)
    assert strategy.num_replicas_in_sync == 2
    np.testing.assert_allclose(total.numpy(), single.numpy(), rtol=1e-5)
    history = model.fit(tf.data.Dataset.from_tensors(data).repeat(), steps_per_epoch=2, epochs=1,
                        verbose=0)
    assert np.isfinite(history.history["loss"][0])
    # The trainer under --distribute=mirrored: both logical devices, checkpoints and export.
    import tempfile
    from tfser.testing import cww_arrays
    from tfser.tasks.cww.config import CwwConfig
    source = cww_arrays.synthetic_corpora(dim=12, sizes={"CRE": 60, "IEM": 60, "IMP": 60,
                                                       "POD": 60}, unlabelled=None)
    results = cww_train.train(CwwConfig(
        holdout="POD", out_dir=tempfile.mkdtemp(), feature_dim=12, hidden_units=(8,) * 4,
        max_epochs=1, batch_size=8, distribute="mirrored", checkpoint_every_steps=2), source)
    assert np.isfinite(results["holdout_ua"]), results
    print("MIRRORED_OK", total.numpy(), single.numpy())
""")


_MULTI_WORKER_SCRIPT = textwrap.dedent("""
    import json, os, socket, tempfile
    sock = socket.socket(); sock.bind(("localhost", 0)); port = sock.getsockname()[1]; sock.close()
    os.environ["TF_CONFIG"] = json.dumps({"cluster": {"worker": [f"localhost:{port}"]},
                                          "task": {"type": "worker", "index": 0}})
    import numpy as np, tfser, tensorflow as tf
    from tfser.tasks.cww import train as cww_train
    from tfser.testing import cww_arrays
    from tfser.tasks.cww.config import CwwConfig
    # First, as the launcher does: collective ops are configured before the runtime starts.
    strategy = cww_train.strategy("multi_worker")
    assert isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy), strategy
    assert strategy.cluster_resolver.task_type == "worker", strategy.cluster_resolver
    assert strategy.num_replicas_in_sync == 1

    class Losses(tf.keras.callbacks.Callback):
      def __init__(self):
        super().__init__()
        self.losses = []
      def on_epoch_end(self, epoch, logs=None):
        self.losses.append(float(logs["loss"]))

    source = cww_arrays.synthetic_corpora(dim=12, sizes={"CRE": 60, "IEM": 60, "IMP": 60,
                                                       "POD": 60}, unlabelled=None)
    def run(distribute, dropout):
      losses = Losses()
      results = cww_train.train(CwwConfig(
          holdout="POD", out_dir=tempfile.mkdtemp(), feature_dim=12, hidden_units=(8,) * 4,
          dropout=dropout, max_epochs=2, batch_size=8, distribute=distribute,
          checkpoint_every_steps=2, export=False), source, extra_callbacks=[losses])
      return losses.losses, results
    # Without dropout the one-worker strategy trains exactly as the default one. (With dropout
    # the masks differ by design: under a strategy tf.random.Generator mixes in the replica id.)
    default, default_results = run("none", 0.0)
    multi, multi_results = run("multi_worker", 0.0)
    assert len(default) == 2 and np.isfinite(default).all(), default
    np.testing.assert_allclose(multi, default, rtol=1e-6)
    for key in ("holdout_ua", "val_ua", "corpus_weights_history"):
      assert multi_results[key] == default_results[key], key
    dropped, _ = run("multi_worker", 0.5)
    assert np.isfinite(dropped).all(), dropped
    print("MULTI_WORKER_OK", default, multi)
""")


class MirroredTest(tf.test.TestCase):

  def test_two_logical_cpus_give_the_single_device_loss(self):
    # Logical devices must be configured before TensorFlow initialises: a fresh process.
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", PYTHONPATH=root)
    proc = subprocess.run([sys.executable, "-c", _MIRRORED_SCRIPT], cwd=root, env=env,
                          capture_output=True, text=True, timeout=240, check=False)
    self.assertEqual(proc.returncode, 0, proc.stderr[-3000:])
    self.assertIn("MIRRORED_OK", proc.stdout)

  def test_one_worker_multi_worker_strategy_gives_the_default_loss(self):
    # MultiWorkerMirroredStrategy with a one-worker TF_CONFIG (its gRPC server on a free local
    # port) must exist before TensorFlow's runtime starts: a fresh process.
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", PYTHONPATH=root)
    env.pop("TF_CONFIG", None)
    proc = subprocess.run([sys.executable, "-c", _MULTI_WORKER_SCRIPT], cwd=root, env=env,
                          capture_output=True, text=True, timeout=240, check=False)
    self.assertEqual(proc.returncode, 0, proc.stderr[-3000:])
    self.assertIn("MULTI_WORKER_OK", proc.stdout)


if __name__ == "__main__":
  tf.test.main()
