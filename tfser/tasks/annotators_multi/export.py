"""SavedModel export of an annotators_multi model: the annotators task's signatures
(``tfser.tasks.annotators.export``: ``predict_features``, and ``predict_waveform`` with local
wav2vec2/BERT encoders), over the one head table of every training corpus.

Annotator ids: the signatures' ``annotator_ids [batch, annotators] int32`` input takes rows of the
namespaced head table, -1 for padding, ``[batch, 0]`` for every head of every corpus (zero-shot
use). Row i is the annotator the loaded object's ``annotators`` variable names at i, written
``"<corpus>/<annotator id>"`` (e.g. ``"IMP/IMP-R001"``); :func:`head_indices` maps such names to
rows. The same description is stored beside the SavedModel in ``annotator_ids.txt``, with one
namespaced id per line in row order.
"""

import os
from typing import Dict, Sequence

import tfser  # noqa: F401  (Keras flavour before TensorFlow)

from tfser.tasks.annotators import export as annotators_export
from tfser.core import atomic

ANNOTATOR_IDS_FILE = "annotator_ids.txt"
DESCRIPTION = (
    "annotator_ids: int32 [batch, annotators] rows of one head table over every training corpus "
    "(-1: padding; [batch, 0]: every head). Row i is the annotator named at line i of this file "
    "(after this header) and in the SavedModel's `annotators` variable, as \"<corpus>/<annotator "
    "id>\" (namespaced: an annotator of one corpus is never another corpus's).")


def head_indices(annotators: Sequence[str], names: Sequence[str]):
  """Rows of the namespaced ``names`` in the head table ``annotators``; ValueError names an
  unknown one (a bare id without its corpus prefix, say)."""
  index = {a: i for i, a in enumerate(annotators)}
  unknown = [n for n in names if n not in index]
  if unknown:
    raise ValueError(f"annotators not in the head table: {unknown[:5]} (ids are "
                     f"\"<corpus>/<id>\", e.g. {annotators[0]!r})")
  return [index[n] for n in names]


def export_multi_corpus_model(task_model, path: str, *, annotators: Sequence[str],
                              **kwargs) -> Dict[str, str]:
  """``annotators_export.export_annotator_model`` with the namespaced head table, plus
  ``<path>/annotator_ids.txt``. kwargs: feature_mean, feature_std, feature_names, encoders, seed.
  Returns the signatures (name -> description)."""
  signatures = annotators_export.export_annotator_model(task_model, path, annotators=annotators,
                                                        **kwargs)
  text = "# " + DESCRIPTION + "\n" + "".join(a + "\n" for a in annotators)
  atomic.write_text(os.path.join(path, ANNOTATOR_IDS_FILE), text)
  return {name: f"{description} {DESCRIPTION}" for name, description in signatures.items()}
