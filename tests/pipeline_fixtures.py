"""Test helpers for ``tfser.data.pipeline``: the corpus writer (``tfser.testing.synthetic``) + temp dirs.

The writer lives in ``tfser/testing/`` (which the library never imports) so that
``bench/pipeline.py`` can use it without importing the tests package; re-exported here.
"""

from tfser.testing.synthetic import random_ground_truth, rated_utterance, write_corpus  # noqa: F401


def temp_dir(test_case) -> str:
  """A fresh directory removed after the test (works under pytest, unlike create_tempdir)."""
  import shutil  # pylint: disable=g-import-not-at-top
  import tempfile  # pylint: disable=g-import-not-at-top
  path = tempfile.mkdtemp(prefix="tfser-test-")
  test_case.addCleanup(shutil.rmtree, path, ignore_errors=True)
  return path
