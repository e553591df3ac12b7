"""The prepare progress line: per corpus and stage, utterances per second and time left.

  IEM ground truth: 1200/5000 utterances (24%), 12.3 utt/s, 5:09 left

On a terminal one line per corpus is redrawn in place (``\\r``, at most 5 times a second) with
every stage side by side; otherwise (a log file, a SLURM job) a line per stage is printed at
each further 10% and at most every ``log_seconds``. Utterances a resumed run finds already done
are counted as done but not into the rate. Thread-safe (ground truth reports from its threads).
"""

import sys
import threading
import time
from typing import Callable, Dict, Optional, TextIO


def format_duration(seconds: float) -> str:
  """``h:mm:ss`` or ``m:ss``; ``?`` when unknown (no rate yet)."""
  if seconds != seconds or seconds == float("inf"):  # NaN or inf
    return "?"
  seconds = int(round(max(seconds, 0.0)))
  hours, rest = divmod(seconds, 3600)
  minutes, secs = divmod(rest, 60)
  return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def format_stage(corpus: str, stage: str, done: int, total: int, rate: float) -> str:
  """One stage's line, e.g. ``IEM ground truth: 120/500 utterances (24%), 12.3 utt/s, 0:31 left``.

  rate: utterances per second (0 = not measured yet: the rate and time left print ``?``).
  """
  pct = 100.0 * done / total if total else 100.0
  left = (total - done) / rate if rate > 0 else float("nan")
  if done >= total:
    left = 0.0
  rate_text = f"{rate:.1f}" if rate > 0 else "?"
  return (f"{corpus} {stage}: {done}/{total} utterances ({pct:.0f}%), {rate_text} utt/s, "
          f"{format_duration(left)} left")


class _Stage:
  def __init__(self, total: int):
    self.total, self.done, self.skipped = total, 0, 0
    self.start: Optional[float] = None  # first computed utterance's report
    self.logged_decile, self.logged_at = -1, float("-inf")


class Progress:
  """Progress of one corpus's stages (name -> utterances to process)."""

  def __init__(self, corpus: str, stages: Dict[str, int], enabled: bool = True,
               stream: Optional[TextIO] = None, clock: Callable[[], float] = time.monotonic,
               log_seconds: float = 30.0, tty: Optional[bool] = None):
    self.corpus = corpus
    self.stages = {name: _Stage(int(total)) for name, total in stages.items()}
    self.enabled = enabled
    self.stream = stream or sys.stderr
    self.clock = clock
    self.log_seconds = log_seconds
    self.tty = enabled and (self.stream.isatty() if tty is None else tty)
    self._lock = threading.Lock()
    self._created = clock()
    self._drawn_at = float("-inf")

  def done(self, stage: str) -> int:
    return self.stages[stage].done

  def rate(self, stage: str) -> float:
    """Utterances per second computed (not skipped) in ``stage`` so far; 0 before any."""
    s = self.stages[stage]
    computed = s.done - s.skipped
    if computed <= 0:
      return 0.0
    elapsed = self.clock() - (s.start if s.start is not None else self._created)
    return computed / elapsed if elapsed > 0 else 0.0

  def line(self, stage: str) -> str:
    s = self.stages[stage]
    return format_stage(self.corpus, stage, s.done, s.total, self.rate(stage))

  def skip(self, stage: str, n: int) -> None:
    """``n`` utterances a previous run already finished."""
    with self._lock:
      s = self.stages[stage]
      s.done += n
      s.skipped += n
      self._report(stage)

  def advance(self, stage: str, n: int = 1) -> None:
    """``n`` more utterances of ``stage`` finished (computed, or dropped as bad)."""
    if n <= 0:
      return
    with self._lock:
      s = self.stages[stage]
      if s.start is None:
        # The rate counts from the stage's start: its first report after the run began (a
        # stage that waits for another, e.g. compilation, starts with the run).
        s.start = self._created
      s.done += n
      self._report(stage)

  def _report(self, stage: str) -> None:
    if not self.enabled:
      return
    now = self.clock()
    if self.tty:
      finished = all(s.done >= s.total for s in self.stages.values())
      if now - self._drawn_at >= 0.2 or finished:
        self._drawn_at = now
        text = " | ".join(self.line(name) if i == 0 else self.line(name)[len(self.corpus) + 1:]
                          for i, name in enumerate(self.stages))
        self.stream.write("\r" + text + " ")
        self.stream.flush()
      return
    s = self.stages[stage]
    decile = int(10 * s.done / s.total) if s.total else 10
    if decile > s.logged_decile or now - s.logged_at >= self.log_seconds:
      s.logged_decile, s.logged_at = decile, now
      self.stream.write(self.line(stage) + "\n")
      self.stream.flush()

  def close(self) -> None:
    if self.tty:
      self.stream.write("\n")
      self.stream.flush()
