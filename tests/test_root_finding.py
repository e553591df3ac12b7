"""tfser.ops.root_finding.batched_brentq against scipy.optimize.brentq, in float64 and float32."""

import numpy as np
import scipy.optimize

import tfser  # noqa: F401  (Keras flavour before TensorFlow)
import tensorflow as tf

from tfser.ops import root_finding

TARGETS = np.array([0.3, 2.0, 7.5, 1e-6, 1.0])


def _cubic(x, c):
  return x ** 3 - c


class BatchedBrentqTest(tf.test.TestCase):

  def test_float64_takes_scipys_steps(self):
    c = tf.constant(TARGETS)
    result = root_finding.batched_brentq(lambda x: _cubic(x, c), tf.zeros(5, tf.float64),
                                         tf.fill([5], tf.constant(3.0, tf.float64)))
    expected = [scipy.optimize.brentq(_cubic, 0.0, 3.0, args=(v,)) for v in TARGETS]
    self.assertTrue(np.all(result.converged.numpy()))
    self.assertAllEqual(result.root, expected)

  def test_float32_converges_at_its_own_precision(self):
    # scipy's default rtol (4 eps of float64) is below float32's spacing: a copy of its steps
    # in float32 stalled (every row ran all 100 iterations, unconverged). rtol is raised to
    # 4 eps of float32, so the rows converge in a few steps, to float32 accuracy.
    c = tf.constant(TARGETS, tf.float32)
    result = root_finding.batched_brentq(lambda x: _cubic(x, c), tf.zeros(5, tf.float32),
                                         tf.fill([5], 3.0))
    self.assertTrue(np.all(result.converged.numpy()))
    self.assertLess(int(result.evaluations), 40)
    expected = np.cbrt(TARGETS)
    self.assertAllClose(result.root, expected, rtol=1e-5, atol=2e-12)
    # An explicit looser rtol is kept.
    loose = root_finding.batched_brentq(lambda x: _cubic(x, c), tf.zeros(5, tf.float32),
                                        tf.fill([5], 3.0), rtol=1e-2, xtol=0.0)
    self.assertTrue(np.all(loose.converged.numpy()))
    self.assertLessEqual(int(loose.evaluations), int(result.evaluations))
    self.assertAllClose(loose.root, expected, rtol=2e-2)


if __name__ == "__main__":
  tf.test.main()
