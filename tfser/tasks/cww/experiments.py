"""The CWW paper's Table 2 rows as named experiments: ``cww/table2/<method>``.

Each row is a ``--method`` of ``tfser/launchers/cww.py`` (its presets: ``config.METHODS``;
"within" is the within-single-corpus baseline, one run per speaker fold). The rows' order is the
table's; ``launch/cww_table2.sh`` and ``tfser.tasks.cww.report`` read them from here.
"""

from tfser.core.registry import Experiment
from tfser.tasks.cww import config

# Table 2's row titles, by method.
LABELS = {
    "within": "Within-single-corpus (CE)", "ce": "Out-of-corpus (CE)",
    "unsup": "Unsup. learning [12]", "soft_label": "Soft label [16]",
    "label_smoothing": "Label smoothing [17]", "unigram_smoothing": "Unigram smoothing [17]",
    "focal_loss": "Focal loss [18]", "confidence_penalty": "Confidence penalty [20]",
    "ce_pel_nl": "CE+PEL_NL", "ce_pel_al": "CE+PEL_AL", "cww": "CWW",
    "cww_unsup": "CWW+Unsup. learning", "cww_unigram_smoothing": "CWW+Unigram smoothing",
    "cww_pel_al": "CWW+PEL_AL", "merged": "Merged corpora (CE)",
}

# "within" first, then the out-of-corpus methods in the table's order.
METHODS = ("within",) + tuple(config.METHODS)

EXPERIMENTS = tuple(Experiment(f"cww/table2/{method}", (f"--method={method}",), LABELS[method])
                    for method in METHODS)


def tuned_experiments():
  """``cww/tuned/<method>``: the rows a tuning sweep wrote back (``tfser.tasks.cww.tuned``)."""
  from tfser.tasks.cww import tuned  # pylint: disable=g-import-not-at-top
  return tuned.experiments(LABELS)
