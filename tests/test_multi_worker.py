"""Two workers on localhost (issue 17): MultiWorkerMirroredStrategy from TF_CONFIG, for real.

Each test starts two worker processes (tests/multi_worker_main.py; TF_CONFIG with two "worker"
addresses on free localhost ports; strict timeouts; the processes are always killed in teardown)
and checks, per task, in one two-worker run: (a) both workers finish with the same weights
(digest), (b) the chief's weights equal a one-worker run's with the same global batch and seed
(dropout off: under a strategy the dropout masks mix in the replica id by design), (c) only the
chief wrote results.json, TensorBoard events, checkpoints and the SavedModel, and the other
worker's temporary directory is gone. (d) kill-and-restart is checked for CWW only (it needs two
more two-worker runs; the resume code is shared, tfser.core.resumable): worker 1 is killed
mid-run, the chief is stopped, both restart and end with the uninterrupted run's weights.
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

import numpy as np

import tfser  # noqa: F401
import tensorflow as tf

from tests import test_cww_launch
from tfser.testing import cww_arrays

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TIMEOUT_S = 120


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


def _network_weights(out_dir, checkpoint_subdir):
  """{name: value} of the network's float variables in the latest resumable checkpoint."""
  reader = tf.train.load_checkpoint(
      tf.train.latest_checkpoint(os.path.join(out_dir, "checkpoints", checkpoint_subdir)))
  return {k: reader.get_tensor(k) for k in reader.get_variable_to_shape_map()
          if k.startswith("model/network/") and "OPTIMIZER" not in k
          and reader.get_tensor(k).dtype.kind == "f"}


class MultiWorkerTest(tf.test.TestCase):

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    cls.data_dir = tempfile.mkdtemp(prefix="tfser-mw-data-")
    source = cww_arrays.synthetic_corpora(
        dim=test_cww_launch.DIM, sizes={"CRE": 100, "IEM": 100, "IMP": 100, "POD": 60,
                                        "LIBRI": 40}, seed=1)
    test_cww_launch.write_tfrecords(source, cls.data_dir)

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

  def _check_two_workers(self, task, fields, checkpoint_subdir, outputs):
    """(a)-(c) for one task; returns the two-worker out_dir and digest."""
    multi_out, single_out = os.path.join(self.tmp, "multi"), os.path.join(self.tmp, "single")
    cluster, worker_tmp = self._start(task, dict(fields, out_dir=multi_out,
                                                 distribute="multi_worker"))
    chief, other = cluster.wait()
    single, _ = self._start(task, dict(fields, out_dir=single_out), workers=1)
    (alone,) = single.wait()
    # (a) Both finish, agree on the weights and know their roles.
    self.assertEqual((chief["worker"]["chief"], other["worker"]["chief"]), (True, False))
    self.assertEqual(chief["worker"]["num_workers"], 2)
    self.assertEqual(chief["weights_sha256"], other["weights_sha256"])
    # (b) The same as one worker with the same global batch and seed, within float tolerance.
    multi_w, single_w = (_network_weights(d, checkpoint_subdir) for d in (multi_out, single_out))
    self.assertEqual(sorted(multi_w), sorted(single_w))
    self.assertNotEmpty(multi_w)
    for name, value in multi_w.items():
      self.assertAllClose(value, single_w[name], rtol=1e-4, atol=1e-5, msg=name)
    # (c) Only the chief wrote its outputs; the other worker's temporary directory is gone.
    for path in outputs:
      self.assertTrue(tf.io.gfile.exists(os.path.join(multi_out, path)), path)
    self.assertNotEmpty(tf.io.gfile.glob(os.path.join(multi_out, "tensorboard", "train",
                                                      "events.*")))
    self.assertEqual(os.listdir(worker_tmp), [], "the non-chief's temporary directory remains")
    with open(os.path.join(multi_out, "results.json")) as f:
      self.assertTrue(json.load(f)["worker"]["chief"])
    return multi_out, chief["weights_sha256"]

  def test_cww_two_workers_and_kill_restart(self):
    fields = dict(data_dir=self.data_dir, holdout="POD", feature_dim=test_cww_launch.DIM,
                  max_epochs=2, batch_size=16, unlabelled_batch_size=16, dropout=0.0,
                  checkpoint_every_steps=1)
    _, digest = self._check_two_workers(
        "cww", dict(fields, export=True), "",
        ["results.json", "checkpoints/checkpoint", "checkpoints/best/best.index",
         "saved_model/saved_model.pb"])

    # (d) Worker 1 killed mid-run (after the chief's second checkpoint), the chief stopped as a
    # cluster manager would, both restarted: the run resumes and ends with the same weights.
    out = os.path.join(self.tmp, "killed")
    killed = dict(fields, out_dir=out, distribute="multi_worker", export=False)
    cluster, _ = self._start("cww", killed, sleep_per_step=1.0)
    state = os.path.join(out, "checkpoints", "checkpoint")
    deadline = time.time() + TIMEOUT_S
    while not (os.path.exists(state) and len(tf.train.get_checkpoint_state(
        os.path.dirname(state)).all_model_checkpoint_paths) >= 2):
      self.assertLess(time.time(), deadline, cluster.output(0)[-3000:])
      self.assertIsNone(cluster.procs[0].poll(), cluster.output(0)[-3000:])
      time.sleep(0.2)
    os.killpg(cluster.procs[1].pid, signal.SIGKILL)
    cluster.kill()
    self.assertFalse(os.path.exists(os.path.join(out, "results.json")))
    restarted, _ = self._start("cww", killed)
    chief, other = restarted.wait()
    with open(os.path.join(out, "results.json")) as f:
      resumed_from = json.load(f)["resumed_from"]
    self.assertIsNotNone(resumed_from)
    self.assertGreater(resumed_from["epoch"] * 100 + resumed_from["step_in_epoch"], 0)
    self.assertEqual(chief["weights_sha256"], other["weights_sha256"])
    self.assertEqual(chief["weights_sha256"], digest)


if __name__ == "__main__":
  tf.test.main()
