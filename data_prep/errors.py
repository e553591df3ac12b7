"""Errors and the skip log shared by every reader, the feature extractors and the writer.

A reader either raises :class:`CorpusError` (naming the file, the line and the utterance) or, when
the user passed ``--skip_bad``, records the skip in a :class:`DropLog` that ends up under
``dropped`` in the corpus manifest. Nothing is ever skipped silently.
"""

import collections
import dataclasses
from typing import Dict, List, Optional


class CorpusError(ValueError):
  """Bad corpus input. The message names the file, and the line or utterance where known."""

  def __init__(self, message: str, path: Optional[str] = None, line: Optional[int] = None,
               utterance: Optional[str] = None):
    where = []
    if path:
      where.append(str(path) + (f":{line}" if line is not None else ""))
    if utterance:
      where.append(f"utterance {utterance}")
    super().__init__(f"{', '.join(where)}: {message}" if where else message)
    self.path, self.line, self.utterance, self.reason = path, line, utterance, message


@dataclasses.dataclass
class DropLog:
  """Counts and ids of everything left out, by reason (the manifest's ``dropped``).

  layout: what the reader detected about the copy it read (release, label and audio folders),
  e.g. ``{"release": "1.6", "labels": "label/labels_concensus.csv"}``; the manifest's ``layout``.
  """
  ids: Dict[str, List[str]] = dataclasses.field(
      default_factory=lambda: collections.defaultdict(list))
  layout: Dict[str, str] = dataclasses.field(default_factory=dict)

  def add(self, reason: str, item_id: str) -> None:
    self.ids[reason].append(str(item_id))

  def skip_or_raise(self, error: CorpusError, skip_bad: bool, item_id: str) -> None:
    """With skip_bad, logs ``error`` under its reason; otherwise raises it."""
    if not skip_bad:
      raise error
    self.add(error.reason, item_id)

  def as_manifest(self) -> Dict[str, dict]:
    return {reason: {"count": len(ids), "ids": sorted(ids)}
            for reason, ids in sorted(self.ids.items())}
