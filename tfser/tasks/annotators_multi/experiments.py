"""The annotators_multi comparison's rows as named experiments (``tfser.core.registry``).

``annotators_multi/table/<mode>_<model row>``: mode ``single`` (one training corpus: the
annotators paper's setting; the launch script adds ``--training_corpora=<corpus>``), ``merged``
(every training corpus merged into one shuffled stream, no weights), ``equal`` (one minibatch per
corpus per step, every weight 1), ``weighted`` (CWW Eq. 3 weights from 1 - TVD) and
``weighted_ccc`` (from the consensus CCC); model rows as the annotators task's Table 2 columns
(baseline, MT-1, MT-12). ``launch/annotators_multi_table.sh`` and
``tfser.tasks.annotators_multi.report`` read them from here.
"""

from tfser.core.registry import Experiment
from tfser.tasks.annotators.experiments import TABLE2_COLUMNS
from tfser.tasks.annotators.experiments import row_name

# (mode, flags, title)
MODES = (("single", ("--weighting=equal",), "Single corpus"),
         ("merged", ("--weighting=merged",), "Merged"),
         ("equal", ("--weighting=equal",), "Zipped, equal weights"),
         ("weighted", ("--weighting=cww", "--fit_metric=tvd"), "Weighted (1 - TVD)"),
         ("weighted_ccc", ("--weighting=cww", "--fit_metric=ccc"), "Weighted (CCC)"))

EXPERIMENTS = tuple(
    Experiment(f"annotators_multi/table/{mode}_{row_name(model, objective)}",
               (f"--model={model}", f"--objective={objective}") + mode_flags,
               f"{mode_title}, {label}")
    for model, objective, label in TABLE2_COLUMNS for mode, mode_flags, mode_title in MODES)
