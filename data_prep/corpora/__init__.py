"""One reader module per corpus; each yields ``tfser.data.schema.Utterance`` records.

Reader contract (every module here): ``NAME`` (the corpus code, e.g. "IMP") and
``read(root, *, skip_bad=False, dropped=None) -> Iterator[Utterance]`` with ratings already on
[-1, 1] (``data_prep.labels.scale_to_unit``); bad input raises ``data_prep.errors.CorpusError`` or,
with skip_bad, is logged in the ``DropLog``. A reader records what it detected about the copy it
read (release, label and audio folders) in ``dropped.layout`` (the manifest's ``layout``). A
reader may also accept ``seed=`` (a seeded split), the generic CSV reader ``name=`` (the corpus
code to store) and the MuSE reader ``annotator_table=`` (``--muse_annotators``).

This registry maps ``--corpus`` names (codes and lower-case aliases) to modules and imports them
lazily, so a missing or broken reader module only breaks its own corpus.
"""

import importlib
import inspect
import os
from typing import Iterator, List, Optional

from data_prep.errors import CorpusError, DropLog
from tfser.data.schema import Utterance

# Corpus code -> reader module (in data_prep.corpora).
MODULES = {
    "IMP": "msp_improv",
    "IEM": "iemocap",
    "POD": "msp_podcast",
    "MuSE": "muse",
    "CRE": "crema_d",
    "LIBRI": "librispeech",
    "CSV": "csv_manifest",
}

# The embedded demo: synthetic stand-ins for these codes (data_prep.corpora.demo).
DEMO = "demo"

_ALIASES = {
    "msp-improv": "IMP", "mspimprov": "IMP",
    "msp-podcast": "POD", "msppodcast": "POD",
    "crema-d": "CRE", "cremad": "CRE",
    "libri": "LIBRI", "libri_speech": "LIBRI",
    "csv": "CSV", "manifest": "CSV",
}


def _alias_table():
  table = {}
  for code, module in MODULES.items():
    table[code.lower()] = code
    table[module.lower()] = code
  table.update(_ALIASES)
  return table


def names() -> List[str]:
  """The valid ``--corpus`` values as "module (CODE)", plus "demo" (aliases work too)."""
  return [f"{module} ({code})" for code, module in MODULES.items()] + [DEMO]


def resolve(name: str) -> str:
  """A ``--corpus`` value (code or alias, any case) to its code, or "demo".

  Raises CorpusError listing the valid names for an unknown one.
  """
  key = str(name).strip().lower()
  if key == DEMO:
    return DEMO
  code = _alias_table().get(key)
  if code is None:
    raise CorpusError(f"unknown corpus {name!r}; valid names: {', '.join(names())}")
  return code


def load(name: str):
  """The reader module for a corpus name (imported now), or CorpusError saying why not."""
  code = resolve(name)
  module_name = "data_prep.corpora." + ("demo" if code == DEMO else MODULES[code])
  try:
    return importlib.import_module(module_name)
  except ImportError as e:
    raise CorpusError(f"the reader for corpus {code} ({module_name}) cannot be imported: "
                      f"{e}") from e


def read(name: str, root: str, *, skip_bad: bool = False, dropped: Optional[DropLog] = None,
         seed: int = 0, csv_name: Optional[str] = None,
         muse_annotators: Optional[str] = None) -> Iterator[Utterance]:
  """Reads one (non-demo) corpus from ``root`` with its registered reader.

  seed goes to readers that take one (seeded splits); csv_name to the generic CSV reader;
  muse_annotators (the authors' muse_annotators.csv) to the MuSE reader.
  """
  code = resolve(name)
  if code == DEMO:
    raise CorpusError("the demo holds several corpora: read each with "
                      "data_prep.corpora.demo.read(root, corpus)")
  if not os.path.exists(root):  # a directory, or for csv also the manifest file itself
    raise CorpusError(f"corpus root {root!r} for {code} does not exist", path=root)
  module = load(code)
  kwargs = {"skip_bad": skip_bad, "dropped": dropped}
  params = inspect.signature(module.read).parameters
  if "seed" in params:
    kwargs["seed"] = seed
  if csv_name is not None:
    if "name" not in params:
      raise CorpusError(f"corpus {code}: its reader takes no corpus name (only csv does)")
    kwargs["name"] = csv_name
  if muse_annotators:
    if "annotator_table" not in params:
      raise CorpusError(f"corpus {code}: --muse_annotators is for --corpus=muse only")
    kwargs["annotator_table"] = muse_annotators
  return module.read(root, **kwargs)


def corpus_code(name: str, csv_name: Optional[str] = None) -> str:
  """The code stored in records and used as the output folder for a ``--corpus`` value."""
  code = resolve(name)
  return csv_name if code == "CSV" and csv_name else code
