"""Each corpus's test set for each task, defined once (issue 15, item 1).

A held-out corpus (the CWW task's ``--holdout``, the annotators task's ``--zero_shot`` corpora) is
tested on the set the papers test it on; training, zero-shot evaluation, ``results.json`` and the
reports all take it from :func:`held_out_test_set`. The set is a value of the record field the task
reads (``schema.Utterance.split`` for the annotators task, ``cww_split`` for CWW), or "all" for the
whole corpus, as ``tfser.data.pipeline`` takes them:

  * annotators (Tavernor et al., 3.1, and the authors' loaders): MSP-Podcast Test1 only (the
    MSP-Podcast reader marks Test1 ``split`` "test"); IEMOCAP and MuSE the whole corpus;
    MSP-Improv its test speakers F04 and M05 (``split`` "test").
  * cww (the CWW paper, 3.2): MSP-Podcast Test1 + Test2 (the reader marks both ``cww_split``
    "test"); CREMA-D, IEMOCAP and MSP-Improv the whole corpus.

A corpus not listed (the demo's stand-ins use the real codes; a CSV corpus, LibriSpeech) is
tested whole, as both papers test an unseen corpus. Free of TensorFlow (configs import it).
"""

import dataclasses
from typing import Dict

TASKS = ("annotators", "cww")
WHOLE = "all"


@dataclasses.dataclass(frozen=True)
class TestSet:
  """One corpus's test set for one task.

  split: the pipeline's split ("test" or "all") over the task's record field.
  field: the record field it selects on ("split" or "cww_split"; any field for "all").
  name: what it is, in the papers' words (written in results.json and the reports).
  """
  corpus: str
  task: str
  split: str
  field: str
  name: str

  def as_json(self) -> Dict[str, str]:
    return {"corpus": self.corpus, "split": self.split, "field": self.field, "name": self.name}


# task -> corpus -> (split, name). Everything else: the whole corpus.
_TEST_SETS = {
    "annotators": {
        "POD": ("test", "MSP-Podcast Test1"),
        "IEM": (WHOLE, "IEMOCAP, whole corpus"),
        "MuSE": (WHOLE, "MuSE, whole corpus"),
        "IMP": ("test", "MSP-Improv test speakers (F04, M05)"),
    },
    "cww": {
        "POD": ("test", "MSP-Podcast Test1 + Test2"),
        "IEM": (WHOLE, "IEMOCAP, whole corpus"),
        "IMP": (WHOLE, "MSP-Improv, whole corpus"),
        "CRE": (WHOLE, "CREMA-D, whole corpus"),
    },
}
_FIELDS = {"annotators": "split", "cww": "cww_split"}


def held_out_test_set(task: str, corpus: str) -> TestSet:
  """The test set of ``corpus`` when ``task`` tests it unseen (held out / zero-shot)."""
  if task not in _TEST_SETS:
    raise ValueError(f"unknown task {task!r}; choose from {', '.join(TASKS)}")
  split, name = _TEST_SETS[task].get(corpus, (WHOLE, f"{corpus}, whole corpus"))
  return TestSet(corpus=corpus, task=task, split=split, field=_FIELDS[task], name=name)


def in_corpus_test_set(task: str, corpus: str) -> TestSet:
  """The test split of the corpus a run trains on (its records' "test")."""
  if task not in _TEST_SETS:
    raise ValueError(f"unknown task {task!r}; choose from {', '.join(TASKS)}")
  held_out = _TEST_SETS[task].get(corpus)
  name = held_out[1] if held_out and held_out[0] == "test" else f"{corpus} test split"
  return TestSet(corpus=corpus, task=task, split="test", field=_FIELDS[task], name=name)


def held_out_splits(task: str) -> Dict[str, str]:
  """{corpus: split} of the listed corpora (e.g. the CWW config's HOLDOUT_SPLITS)."""
  return {corpus: split for corpus, (split, _) in _TEST_SETS[task].items()}
