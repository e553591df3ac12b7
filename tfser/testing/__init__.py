"""Helpers for tests and benchmarks: generated corpora, in-memory sources, reference parsers.

Nothing in the tfser library imports this package (tests/test_import_direction.py checks it);
tests, ``bench/`` and entry points that offer synthetic data (``--synthetic``) do.
"""
