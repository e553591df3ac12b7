"""Test helpers for ``tfser.data.pipeline``: the corpus writer (``tfser.testing.synthetic``) + temp dirs.

The writer lives in ``tfser/testing/`` (which the library never imports) so that
``bench/pipeline.py`` can use it without importing the tests package; re-exported here.
"""

from tests.testing import temp_dir  # noqa: F401
from tfser.testing.synthetic import random_ground_truth, rated_utterance, write_corpus  # noqa: F401
