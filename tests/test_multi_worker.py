"""Two workers on localhost (issue 17): MultiWorkerMirroredStrategy from TF_CONFIG, for real.

The test starts worker processes (tests/multi_worker_main.py; TF_CONFIG with two "worker"
addresses on free localhost ports; strict timeouts; every process killed in teardown) for a tiny
CWW run. To stay near a minute on 2 cores, one two-worker run carries every check: (d) worker 1 is
killed mid-run (after the chief's second checkpoint), the chief stopped, both started again; the
resumed run then shows (a) both workers finish with the same weights (digest), (b) the chief's
weights equal a one-worker run's with the same global batch and seed within float tolerance
(dropout off: under a strategy the dropout masks mix in the replica id by design), (c) only the
chief wrote results.json, TensorBoard events, checkpoints and the SavedModel, and the other
worker's temporary directory is gone. The annotators task gets the same checks in one run of
its own (Task 1+2 of the MT model: the batch CCC and DiffKDE on the all-gathered global
minibatch, uneven last slices in training and validation).
"""

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time


import tfser  # noqa: F401
import tensorflow as tf

from tests import test_cww_launch
from tfser.testing import cww_arrays

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TIMEOUT_S = int(os.environ.get("MW_TIMEOUT", 120))


def _free_ports(n):
  sockets = [socket.socket() for _ in range(n)]
  try:
    for s in sockets:
      s.bind(("localhost", 0))
    return [s.getsockname()[1] for s in sockets]
  finally:
    for s in sockets:
      s.close()


class Cluster:
  """Worker processes of one run; ``kill`` ends those still running (always, in teardown)."""

  def __init__(self, task, fields, workers, tmp, sleep_per_step=0.0):
    ports = _free_ports(workers)
    self.procs, self.logs = [], []
    for index in range(workers):
      env = dict(os.environ, PYTHONPATH=ROOT, TF_CPP_MIN_LOG_LEVEL="2", TMPDIR=tmp,
                 CUDA_VISIBLE_DEVICES="")
      if fields.get("distribute") == "multi_worker":
        env["TF_CONFIG"] = json.dumps({
            "cluster": {"worker": [f"localhost:{p}" for p in ports]},
            "task": {"type": "worker", "index": index}})
      log = tempfile.TemporaryFile(mode="w+", dir=tmp)
      self.logs.append(log)
      self.procs.append(subprocess.Popen(
          [sys.executable, "-m", "tests.multi_worker_main", f"--task={task}",
           "--config=" + json.dumps(fields), f"--sleep_per_step={sleep_per_step}"],
          cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True))

  def output(self, index):
    self.logs[index].seek(0)
    return self.logs[index].read()

  def wait(self, timeout=TIMEOUT_S):
    """The RESULT of each worker; fails (with the logs' ends) on a timeout or an error."""
    deadline = time.time() + timeout
    for i, proc in enumerate(self.procs):
      try:
        proc.wait(max(1.0, deadline - time.time()))
      except subprocess.TimeoutExpired:
        self.kill()
        raise AssertionError(f"worker {i} timed out:\n{self.output(i)[-3000:]}") from None
      if proc.returncode:
        self.kill()
        raise AssertionError(f"worker {i} exited {proc.returncode}:\n{self.output(i)[-3000:]}")
    results = []
    for i in range(len(self.procs)):
      lines = [l for l in self.output(i).splitlines() if l.startswith("RESULT ")]
      assert lines, self.output(i)[-3000:]
      results.append(json.loads(lines[-1][len("RESULT "):]))
    return results

  def kill(self):
    for proc in self.procs:
      if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(10)


def _network_weights(out_dir, checkpoint=None, prefix="model/network/"):
  """{name: value} of the network's float variables in ``checkpoints/<checkpoint>`` (default:
  the latest resumable checkpoint)."""
  path = (os.path.join(out_dir, "checkpoints", checkpoint) if checkpoint else
          tf.train.latest_checkpoint(os.path.join(out_dir, "checkpoints")))
  reader = tf.train.load_checkpoint(path)
  return {k: reader.get_tensor(k) for k in reader.get_variable_to_shape_map()
          if k.startswith(prefix) and "OPTIMIZER" not in k
          and reader.get_tensor(k).dtype.kind == "f"}


def _results(out_dir):
  with open(os.path.join(out_dir, "results.json")) as f:
    return json.load(f)


class MultiWorkerTest(tf.test.TestCase):

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    cls.data_dir = tempfile.mkdtemp(prefix="tfser-mw-data-")
    source = cww_arrays.synthetic_corpora(
        dim=test_cww_launch.DIM, sizes={"CRE": 100, "IEM": 100, "IMP": 100, "POD": 60,
                                        "LIBRI": 40}, seed=1)
    cww_arrays.write_tfrecords(source, cls.data_dir)

  @classmethod
  def tearDownClass(cls):
    shutil.rmtree(cls.data_dir, ignore_errors=True)
    super().tearDownClass()

  def setUp(self):
    super().setUp()
    self.tmp = tempfile.mkdtemp(prefix="tfser-mw-", dir=self.get_temp_dir())
    self.clusters = []
    self.addCleanup(lambda: [c.kill() for c in self.clusters])

  def _start(self, task, fields, workers=2, sleep_per_step=0.0):
    worker_tmp = tempfile.mkdtemp(dir=self.tmp)
    cluster = Cluster(task, fields, workers, worker_tmp, sleep_per_step)
    self.clusters.append(cluster)
    return cluster, worker_tmp

  def _kill_after_two_checkpoints(self, task, fields, state):
    """(d) Two workers started with ``fields``; worker 1 killed once the chief has written two
    checkpoints into ``state`` (a second per step leaves the time), then the chief stopped, as a
    cluster manager would: neither finished."""
    killed, _ = self._start(task, fields, sleep_per_step=1.0)
    deadline = time.time() + TIMEOUT_S
    while not (tf.io.gfile.exists(os.path.join(state, "checkpoint")) and len(
        tf.train.get_checkpoint_state(state).all_model_checkpoint_paths) >= 2):
      self.assertLess(time.time(), deadline, killed.output(0)[-3000:])
      self.assertIsNone(killed.procs[0].poll(), killed.output(0)[-3000:])
      time.sleep(0.2)
    os.killpg(killed.procs[1].pid, signal.SIGKILL)
    killed.kill()
    self.assertFalse(os.path.exists(os.path.join(fields["out_dir"], "results.json")))

  def test_cww_two_workers_kill_restart_equal_one_worker(self):
    fields = dict(data_dir=self.data_dir, holdout="POD", feature_dim=test_cww_launch.DIM,
                  max_epochs=2, batch_size=16, unlabelled_batch_size=16, dropout=0.0,
                  checkpoint_every_steps=1, export=False)
    multi_out, single_out = os.path.join(self.tmp, "multi"), os.path.join(self.tmp, "single")
    multi = dict(fields, out_dir=multi_out, distribute="multi_worker")
    # The one-worker reference (same global batch and seed) runs beside the two workers.
    single, _ = self._start("cww", dict(fields, out_dir=single_out), workers=1)
    # (d) Worker 1 is killed mid-run (after the chief's second checkpoint; a second per step
    # leaves the time), the chief stopped as a cluster manager would, both started again.
    self._kill_after_two_checkpoints("cww", multi, os.path.join(multi_out, "checkpoints"))
    restarted, worker_tmp = self._start("cww", dict(multi, export=True))
    chief, other = restarted.wait()
    (alone,) = single.wait()
    with open(os.path.join(multi_out, "results.json")) as f:
      results = json.load(f)
    self.assertIsNotNone(results["resumed_from"])
    self.assertGreater(results["resumed_from"]["epoch"] * 100
                       + results["resumed_from"]["step_in_epoch"], 0)
    self.assertEqual(results["epochs_run"], 2)
    # (a) Both finish, know their roles and agree on the weights.
    self.assertEqual((chief["worker"]["chief"], other["worker"]["chief"]), (True, False))
    self.assertEqual((chief["worker"]["num_workers"], alone["worker"]["num_workers"]), (2, 1))
    self.assertEqual(chief["weights_sha256"], other["weights_sha256"])
    # (b) The resumed two-worker run equals one worker with the same global batch and seed.
    multi_w, single_w = (_network_weights(d) for d in (multi_out, single_out))
    self.assertEqual(sorted(multi_w), sorted(single_w))
    self.assertLen(multi_w, 12)  # 6 dense layers' kernels and biases (+ the normaliser's)
    for name, value in multi_w.items():
      self.assertAllClose(value, single_w[name], rtol=1e-4, atol=1e-5, msg=name)
    # (c) Only the chief wrote its outputs; the other worker's temporary directory is gone.
    self.assertTrue(results["worker"]["chief"])
    self._assert_chief_only_outputs(multi_out, worker_tmp, (
        "checkpoints/checkpoint", "checkpoints/best/best.index", "saved_model/saved_model.pb"))

  def _assert_chief_only_outputs(self, out_dir, worker_tmp, paths):
    """The chief's out_dir holds ``paths`` and TensorBoard events; the non-chief's temp dir is gone."""
    for path in paths:
      self.assertTrue(tf.io.gfile.exists(os.path.join(out_dir, path)), path)
    self.assertNotEmpty(tf.io.gfile.glob(os.path.join(out_dir, "tensorboard", "train",
                                                      "events.*")))
    self.assertEqual(os.listdir(worker_tmp), [], "the non-chief's temporary directory remains")

  def test_annotators_two_workers_kill_restart_equal_one_worker(self):
    # Train 45 and validation 21 utterances in global batches of 16: the last batches split
    # unevenly (7/6 and 3/2 rows), so the gathered CCC and DiffKDE see slices of unequal size.
    fields = dict(model="mt", objective="task1+2", data_dir="synthetic", corpus_seed=3,
                  max_epochs=2, min_epochs=1, batch_size=16, dropout=0.0, hidden_units=8,
                  learning_rate=1e-2, hard_kde_grid_size=0, diffkde_grid_size=32,
                  diffkde_samples=20, diffkde_train_dtype="float32", image_utterances=0,
                  checkpoint_every_batches=1, export=False, verbose=0)
    multi_out, single_out = os.path.join(self.tmp, "multi"), os.path.join(self.tmp, "single")
    multi = dict(fields, out_dir=multi_out, distribute="multi_worker")
    single, _ = self._start("annotators", dict(fields, out_dir=single_out), workers=1)
    self._kill_after_two_checkpoints("annotators", multi,
                                     os.path.join(multi_out, "checkpoints", "resume"))
    restarted, worker_tmp = self._start("annotators", dict(multi, export=True))
    chief, other = restarted.wait()
    (alone,) = single.wait()
    results, reference = (_results(d) for d in (multi_out, single_out))
    self.assertIsNotNone(results["resumed_from"])
    self.assertEqual((results["epochs"], results["steps_per_epoch"]), (2, 3))
    # (a) Both finish, know their roles and agree on the weights.
    self.assertEqual((chief["worker"]["chief"], other["worker"]["chief"]), (True, False))
    self.assertEqual((chief["worker"]["num_workers"], alone["worker"]["num_workers"]), (2, 1))
    self.assertEqual(chief["weights_sha256"], other["weights_sha256"])
    # (b) Equal to one worker with the same global batch and seed: the trained network, every
    # epoch's validation losses (which drive the learning rate and early stopping) and the
    # evaluation.
    multi_w, single_w = (_network_weights(d, "final", "network/") for d in (multi_out,
                                                                             single_out))
    self.assertEqual(sorted(multi_w), sorted(single_w))
    self.assertGreaterEqual(len(multi_w), 8)  # shared and branch kernels/biases, the head table
    for name, value in multi_w.items():
      self.assertAllClose(value, single_w[name], rtol=1e-4, atol=1e-5, msg=name)
    for key in ("val_loss_task1", "val_loss_task2", "val_tvd"):
      self.assertAllClose(results["history"][key], reference["history"][key], rtol=1e-4,
                          msg=key)
    self.assertAllClose(results["test"]["tvd"], reference["test"]["tvd"], rtol=1e-4)
    # (c) Only the chief wrote its outputs; the other worker's temporary directory is gone.
    self._assert_chief_only_outputs(multi_out, worker_tmp, (
        "results.json", "checkpoints/resume/checkpoint", "checkpoints/final.index",
        "saved_model/saved_model.pb"))

  def test_baseline_and_one_hot_steps_on_two_replicas_equal_one(self):
    """The baseline's cross-entropy and one-hot's Task 1 (tests/replica_steps_main.py)."""
    env = dict(os.environ, PYTHONPATH=ROOT, TF_CPP_MIN_LOG_LEVEL="2", CUDA_VISIBLE_DEVICES="")
    env.pop("TF_CONFIG", None)
    proc = subprocess.run([sys.executable, "-m", "tests.replica_steps_main"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=TIMEOUT_S * 2, check=False)
    lines = [l for l in proc.stdout.splitlines() if l.startswith("RESULT ")]
    self.assertTrue(lines, proc.stderr[-3000:])
    results = json.loads(lines[-1][len("RESULT "):])
    self.assertEqual(sorted(results), ["baseline", "onehot"])
    for model, result in results.items():
      self.assertEqual(result["replicas"], 2)
      self.assertGreater(result["weight_scale"], 0.1, model)  # trained weights, not zeros
      self.assertLess(result["max_relative_difference"], 1e-4, model)
      one, two = result["validation"]["one"], result["validation"]["two"]
      self.assertEqual(sorted(one), sorted(two))
      for key, value in one.items():
        self.assertAllClose(two[key], value, rtol=1e-4, atol=1e-6, msg=f"{model} {key}")


if __name__ == "__main__":
  tf.test.main()
