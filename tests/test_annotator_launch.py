"""The annotators launcher: bad flags fail with messages that name the flag (in a subprocess, so
that this task's flags are defined the way ``python -m tfser.launch`` defines them)."""

import os
import subprocess
import sys
import tempfile

import tfser  # noqa: F401
import tensorflow as tf

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _launch(*flags, task="annotators"):
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
  env.pop("TF_CONFIG", None)
  return subprocess.run([sys.executable, "-m", "tfser.launch", f"--task={task}", *flags],
                        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)


class LaunchTest(tf.test.TestCase):

  def test_bad_flags_name_the_flag(self):
    with tempfile.TemporaryDirectory() as data_dir:
      os.makedirs(os.path.join(data_dir, "IMP"))
      with open(os.path.join(data_dir, "IMP", "manifest.json"), "w") as f:
        f.write('{"schema_version": 1, "corpus": "IMP", "annotators": ["a"]}')
      unknown_model = _launch("--model=cnn", f"--data_dir={data_dir}")
      unknown_corpus = _launch("--corpus=XYZ", f"--data_dir={data_dir}")
      mismatched = _launch("--model=mt", "--objective=baseline", f"--data_dir={data_dir}",
                           "--corpus=IMP")
      # Several workers: no XLA step (it cannot hold the all-gather); the third task refuses.
      jit_distributed = _launch("--distribute=multi_worker", "--jit", f"--data_dir={data_dir}",
                                "--corpus=IMP")
      multi_distributed = _launch("--distribute=multi_worker", "--holdout=IMP",
                                  f"--data_dir={data_dir}", task="annotators_multi")
    self.assertNotEqual(unknown_model.returncode, 0)
    self.assertIn("--model", unknown_model.stderr)
    self.assertIn("<baseline|mt|onehot>", unknown_model.stderr)
    self.assertNotEqual(unknown_corpus.returncode, 0)
    self.assertIn("--corpus=XYZ", unknown_corpus.stderr)
    self.assertIn("corpora present: IMP", unknown_corpus.stderr)
    self.assertNotEqual(mismatched.returncode, 0)
    self.assertIn("--objective=baseline needs --model=baseline", mismatched.stderr)
    for proc, message in ((jit_distributed, "--jit with --distribute=multi_worker"),
                          (multi_distributed, "annotators_multi trains in one process only: "
                           "--distribute=multi_worker is not supported")):
      self.assertEqual(proc.returncode, 1, proc.stderr[-2000:])
      self.assertIn(message, proc.stderr)
      self.assertNotIn("Traceback", proc.stderr)


if __name__ == "__main__":
  tf.test.main()
