"""bench/gpu_check.sh on the CPU (no GPU visible), tiny sizes: its table's rows and skip marks.

The script writes into a temporary copy of bench/RESULTS.md (--results) that already holds a
stale gpu_check section: the run replaces that section and leaves the other sections as they were;
the real bench/RESULTS.md is not touched.
"""

import os
import re
import shutil
import subprocess
import sys
import tempfile
import unittest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
REAL_RESULTS = os.path.join(ROOT, "bench", "RESULTS.md")
TINY = ["--steps=3", "--repeats=1", "--annotators=50", "--annotator_objective=task1",
        "--cww_dim=32", "--cww_utterances=100", "--kde_grid=32", "--kde_rows=4",
        "--kde_ref_rows=2", "--diffkde_batches=8"]
STALE = "<!-- BEGIN gpu_check -->\n## old\n\nstale table\n<!-- END gpu_check -->\n"


def _rows(section):
  """The table's rows as lists of cells (header and rule left out)."""
  lines = [l for l in section.splitlines() if l.startswith("| ")]
  return [[c.strip() for c in l.strip("|").split("|")] for l in lines[1:]]


class GpuCheckOnCpuTest(unittest.TestCase):

  def test_runs_on_cpu_and_marks_the_gpu_rows_skipped(self):
    tmp = tempfile.mkdtemp(prefix="tfser-gpu-check-")
    self.addCleanup(shutil.rmtree, tmp, ignore_errors=True)
    results = os.path.join(tmp, "RESULTS.md")
    with open(REAL_RESULTS) as f:
      real_before = f.read()
    with open(results, "w") as f:
      f.write(real_before.rstrip("\n") + "\n\n" + STALE)
    env = dict(os.environ, CUDA_VISIBLE_DEVICES="", PYTHON=sys.executable,
               GPU_CHECK_TIMEOUT="100")
    proc = subprocess.run([os.path.join(ROOT, "bench", "gpu_check.sh"), *TINY,
                           f"--results={results}"], cwd=tmp, env=env, capture_output=True,
                          text=True, timeout=120, check=False)
    self.assertEqual(proc.returncode, 0, proc.stderr[-3000:])
    with open(results) as f:
      text = f.read()
    with open(REAL_RESULTS) as f:
      self.assertEqual(f.read(), real_before, "the real bench/RESULTS.md changed")
    # One gpu_check section, replaced; every other section as it was.
    sections = re.findall(r"<!-- BEGIN gpu_check -->.*?<!-- END gpu_check -->", text, re.S)
    self.assertEqual(len(sections), 1)
    self.assertNotIn("stale table", text)
    self.assertEqual(text.replace(sections[0], "").rstrip("\n"), real_before.rstrip("\n"))
    section = sections[0]
    self.assertIn("Device: no GPU (CPU only)", section)

    rows = {(r[0], r[1]): r for r in _rows(section)}
    expected_skips = {
        ("CWW train step (3 x 32 x 32)", "XLA + mixed_float16"): "skipped (no GPU)",
        ("CWW train step, 2-GPU MirroredStrategy (3 x 64)", "float32, no XLA"):
            "skipped (fewer than 2 GPUs)",
        ("annotators MT task1 step (50 annotators)", "XLA + mixed_float16"): "skipped (no GPU)",
        ("DiffKDE fwd+bwd, batch 8", "mixed_float16, no XLA, grid 64, 200 samples"):
            "skipped (no GPU)",
    }
    measured = [("CWW train step (3 x 32 x 32)", "float32, no XLA"),
                ("annotators MT task1 step (50 annotators)", "float32, no XLA"),
                ("DiffKDE fwd+bwd, batch 8", "float32, no XLA, grid 64, 200 samples")]
    kde = "ground-truth KDE, grid 32, 4 utterances"
    self.assertEqual(set(rows), set(expected_skips) | set(measured) | {
        (kde, "kde_diffusion.kde2d loop (timed on 2, scaled)"), (kde, "tfser float64, XLA")})
    for key, mark in expected_skips.items():
      self.assertEqual(rows[key][5], mark, key)
      self.assertEqual(rows[key][2], "-", key)
    for key in measured:
      self.assertEqual(rows[key][5], "ok", key)
      self.assertGreater(float(rows[key][2].split()[0]), 0.0, key)
    # The KDE row compares tfser with kde2d for real: float64 agreement far below the goal.
    status = rows[(kde, "tfser float64, XLA")][5]
    diff = float(re.search(r"max rel. density diff ([0-9.e+-]+)", status).group(1))
    self.assertLess(diff, 1e-6)
    self.assertIn("same rows converge: True", status)


if __name__ == "__main__":
  unittest.main()
