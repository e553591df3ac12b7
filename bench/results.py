"""Writes one benchmark's latest table into its own section of bench/RESULTS.md.

Each benchmark owns the section between ``<!-- BEGIN name -->`` and ``<!-- END name -->``, so
benchmarks can be re-run one at a time without clobbering each other's tables.
"""

import datetime
import os
import platform
import re
import tempfile
from typing import Optional

RESULTS_PATH = os.path.join(os.path.dirname(os.path.abspath(__file__)), "RESULTS.md")


def machine_description() -> str:
  """A one-line description of where the numbers were taken: CPU model, cores, accelerators."""
  cpu = platform.processor() or platform.machine()
  try:
    with open("/proc/cpuinfo") as f:
      for line in f:
        if line.startswith("model name"):
          cpu = line.split(":", 1)[1].strip()
          break
  except OSError:
    pass
  gpus = ""
  try:
    import tensorflow as tf  # pylint: disable=g-import-not-at-top
    names = [d.name for d in tf.config.list_physical_devices("GPU")]
    gpus = f", GPUs: {', '.join(names)}" if names else ", no GPU"
  except ImportError:
    pass
  return f"{cpu}, {os.cpu_count()} cores{gpus}, Python {platform.python_version()}"


def markdown_table(header, rows) -> str:
  lines = ["| " + " | ".join(map(str, header)) + " |",
           "|" + "|".join("---" for _ in header) + "|"]
  lines += ["| " + " | ".join(map(str, row)) + " |" for row in rows]
  return "\n".join(lines)


def write_section(name: str, title: str, body: str, path: str = RESULTS_PATH,
                  after: Optional[str] = None) -> None:
  """Replaces (or adds) the section ``name`` of RESULTS.md, atomically; a new section goes right
  after the section ``after`` where there is one, else at the end."""
  stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
  section = (f"<!-- BEGIN {name} -->\n## {title}\n\n{stamp}; {machine_description()}\n\n"
             f"{body.strip()}\n<!-- END {name} -->")
  text = open(path).read() if os.path.exists(path) else "# Benchmark results\n\n"
  pattern = re.compile(rf"<!-- BEGIN {re.escape(name)} -->.*?<!-- END {re.escape(name)} -->", re.S)
  end = f"<!-- END {after} -->" if after else None
  if pattern.search(text):
    text = pattern.sub(lambda _: section, text)
  elif end and end in text:
    text = text.replace(end, end + "\n\n" + section, 1)
  else:
    text = text.rstrip("\n") + "\n\n" + section + "\n"
  fd, tmp = tempfile.mkstemp(dir=os.path.dirname(path))
  with os.fdopen(fd, "w") as f:
    f.write(text)
  os.replace(tmp, path)
