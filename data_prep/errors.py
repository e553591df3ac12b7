"""Errors and the skip log shared by every reader, the feature extractors and the writer.

A reader either raises :class:`CorpusError` (naming the file, the line and the utterance) or, when
the user passed ``--skip_bad``, records the skip in a :class:`DropLog` that ends up under
``dropped`` in the corpus manifest. Nothing is ever skipped silently.

The manifest's ``dropped`` is keyed by a reason *class* (the message with its values taken out,
e.g. ``rating <n> outside the corpus scale [<n>, <n>]``), so that a thousand out-of-scale ratings
group under one key; the full message of each item is kept beside its id under ``details``.
"""

import collections
import dataclasses
import re
from typing import Dict, List, Optional

# Values inside a message: quoted text, then numbers (ints, floats).
_QUOTED = re.compile(r"'[^']*'|\"[^\"]*\"")
_NUMBER = re.compile(r"(?<![\w.])[-+]?(?:\d+\.?\d*(?:[eE][-+]?\d+)?|\.\d+)(?![\w.])")


def reason_class(message: str) -> str:
  """The manifest key for a skip reason: the message without its values.

  >>> reason_class("activation: rating 9.0 outside the corpus scale [1.0, 5.0]")
  'activation: rating <n> outside the corpus scale [<n>, <n>]'
  >>> reason_class("unknown emotion label 'xyz' (known: neutral, happy)")
  'unknown emotion label <value>'
  """
  text = str(message).strip().splitlines()[0] if str(message).strip() else "unknown reason"
  text = _QUOTED.sub("<value>", text)
  text = re.sub(r"\s*\(.*\)\s*$", "", text)  # a trailing parenthetical is detail
  text = _NUMBER.sub("<n>", text)
  return text.strip() or "unknown reason"


class CorpusError(ValueError):
  """Bad corpus input. The message names the file, and the line or utterance where known.

  reason: the message without the location; kind: its class for the manifest (default
  :func:`reason_class` of reason).
  """

  def __init__(self, message: str, path: Optional[str] = None, line: Optional[int] = None,
               utterance: Optional[str] = None, kind: Optional[str] = None):
    where = []
    if path:
      where.append(str(path) + (f":{line}" if line is not None else ""))
    if utterance:
      where.append(f"utterance {utterance}")
    super().__init__(f"{', '.join(where)}: {message}" if where else message)
    self.path, self.line, self.utterance, self.reason = path, line, utterance, message
    self.kind = kind or reason_class(message)


class OutputError(OSError):
  """The output cannot be written (permissions, a read-only or full disk); names the path."""

  @classmethod
  def wrap(cls, error: OSError, path: str, what: str = "write") -> "OutputError":
    path = getattr(error, "filename", None) or path
    reason = getattr(error, "strerror", None) or str(error)
    return cls(getattr(error, "errno", None), f"cannot {what} {path}: {reason}", path)

  def __str__(self):
    return self.strerror or super().__str__()


@dataclasses.dataclass
class DropLog:
  """What a reader (and the writer) report beside the utterances.

  ids: reason class -> item ids left out (the manifest's ``dropped``).
  details: reason class -> {item id: full message} (where the message says more than the class).
  merged: utterance ids whose repeated raters were merged (``labels.merge_duplicate_raters``).
  sources: utterance id -> where it came from ("file:line"), for messages about it later.
  layout: what the reader detected about the copy it read (release, label and audio folders),
  e.g. ``{"release": "1.6", "labels": "label/labels_concensus.csv"}``; the manifest's ``layout``.
  """
  ids: Dict[str, List[str]] = dataclasses.field(
      default_factory=lambda: collections.defaultdict(list))
  details: Dict[str, Dict[str, str]] = dataclasses.field(
      default_factory=lambda: collections.defaultdict(dict))
  merged: List[str] = dataclasses.field(default_factory=list)
  sources: Dict[str, str] = dataclasses.field(default_factory=dict)
  layout: Dict[str, str] = dataclasses.field(default_factory=dict)

  def add(self, reason: str, item_id: str, detail: Optional[str] = None) -> None:
    """Logs one item under ``reason`` (used as given: pass a class, see :func:`reason_class`)."""
    self.ids[reason].append(str(item_id))
    if detail and detail != reason:
      self.details[reason][str(item_id)] = str(detail)

  def add_error(self, error: CorpusError, item_id: str) -> None:
    self.add(error.kind, item_id, str(error))

  def skip_or_raise(self, error: CorpusError, skip_bad: bool, item_id: str) -> None:
    """With skip_bad, logs ``error`` under its reason class; otherwise raises it."""
    if not skip_bad:
      raise error
    self.add_error(error, item_id)

  def extend(self, other: "DropLog") -> None:
    """Adds everything ``other`` logged (dropped items, details, merges, sources)."""
    for reason, ids in other.ids.items():
      for item in ids:
        self.add(reason, item, other.details.get(reason, {}).get(item))
    self.merged.extend(other.merged)
    self.sources.update(other.sources)

  def as_manifest(self) -> Dict[str, dict]:
    """{reason class: {"count", "ids"[, "details": {id: message}]}}, sorted."""
    out = {}
    for reason, ids in sorted(self.ids.items()):
      entry = {"count": len(ids), "ids": sorted(ids)}
      details = self.details.get(reason)
      if details:
        entry["details"] = dict(sorted(details.items()))
      out[reason] = entry
    return out

  @classmethod
  def from_manifest(cls, section: Dict[str, dict]) -> "DropLog":
    log = cls()
    for reason, entry in section.items():
      details = entry.get("details", {})
      for item in entry["ids"]:
        log.add(reason, item, details.get(item))
    return log
