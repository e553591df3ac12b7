"""tfser.core.atomic: the target holds the old file or the new one, never a torn one."""

import errno
import json
import os
import tempfile
import unittest

from tfser.core import atomic


class AtomicTest(unittest.TestCase):

  def setUp(self):
    self.dir = tempfile.mkdtemp(prefix="tfser-atomic-")
    self.addCleanup(lambda: __import__("shutil").rmtree(self.dir, ignore_errors=True))

  def test_writes_replace_and_leave_no_temporary(self):
    path = os.path.join(self.dir, "sub", "a.json")  # the directory is made
    atomic.write_json(path, {"b": 1, "a": float("nan")}, sort_keys=True)
    with open(path) as f:
      self.assertEqual(f.read(), json.dumps({"a": float("nan"), "b": 1}, sort_keys=True))
    atomic.write_text(path, "new\r\n")
    with open(path, newline="") as f:
      self.assertEqual(f.read(), "new\r\n")  # newlines kept as given
    self.assertEqual(os.listdir(os.path.dirname(path)), ["a.json"])

  def test_an_error_keeps_the_old_file_and_removes_the_temporary(self):
    path = os.path.join(self.dir, "figure.png")
    atomic.write_text(path, "old")
    with self.assertRaises(OSError):
      with atomic.replacing(path, suffix=".png") as tmp:
        self.assertTrue(tmp.endswith(".png"))
        with open(tmp, "w") as f:
          f.write("half")
        raise OSError(errno.ENOSPC, "No space left on device")
    with open(path) as f:
      self.assertEqual(f.read(), "old")
    self.assertEqual(os.listdir(self.dir), ["figure.png"])

  def test_strict_json_refuses_nan_before_touching_the_file(self):
    path = os.path.join(self.dir, "results.json")
    atomic.write_json(path, {"a": 1})
    with self.assertRaises(ValueError):
      atomic.write_json(path, {"a": float("nan")}, allow_nan=False)
    with open(path) as f:
      self.assertEqual(json.load(f), {"a": 1})
    self.assertEqual(os.listdir(self.dir), ["results.json"])


if __name__ == "__main__":
  unittest.main()
