#!/usr/bin/env bash
# Table 1 of the annotators paper (Tavernor et al.): within-corpus distributions and consensus CCC.
#
# Trains the baseline, MT and one-hot models (MT and one-hot with Task 1 and with Task 1+2) for
# every seed, then writes the table (mean +- std over seeds, paired t-tests against the baseline)
# as Markdown and CSV: $OUT/table1.md|csv (Table 1) and $OUT/table1_individual.md|csv
# (individual-annotator CCC and the Task 1 ablation with hard KDE, section 4).
#
#   launch/annotators_table1.sh                       # the embedded demo, paper settings
#   QUICK=1 launch/annotators_table1.sh               # the demo in minutes (see below)
#   DATA_DIR=/data/tfser CORPUS=IMP launch/annotators_table1.sh   # MSP-Improv, the paper's table
#
# Environment (defaults in brackets):
#   DATA_DIR    prepared data directory [unset: the demo, prepared under DEMO_DIR]
#   DEMO_DIR    [~/.cache/tfser/demo]
#   CORPUS      training corpus [IMP]
#   SEEDS       seeds [0 1 2 3 4]
#   MAX_EPOCHS  [500]   MIN_EPOCHS [30]   (the paper's)
#   OUT         output root [runs/annotators_table1]
#   PYTHON      [python]
#   EXTRA_FLAGS more flags for every run, e.g. "--jit --mixed_precision"
#   QUICK=1     demo preset: SEEDS="0 1", MAX_EPOCHS=3, MIN_EPOCHS=1, 100 DiffKDE samples, no
#               SavedModel, no TensorBoard images, hard-KDE ablation on a 128 grid. Numbers
#               from it only show that the pipeline runs; they reproduce nothing.
# A run whose results.json exists is skipped, so a killed script can simply be started again
# (a killed run resumes from its checkpoint).
set -euo pipefail

CORPUS=${CORPUS:-IMP}
OUT=${OUT:-runs/annotators_table1}
# shellcheck source=launch/annotators_common.sh
source "$(dirname "$0")/annotators_common.sh"
# The table's rows (model:objective), from the registry of named experiments.
ROWS=$(experiment_rows annotators/table1/)

for seed in ${SEEDS}; do
  for run in ${ROWS}; do
    model=${run%%:*}
    objective=${run#*:}
    run_annotators "${OUT}/${CORPUS}/${model}_${objective/+/plus}/seed${seed}" \
      "${model}" "${objective}" "${CORPUS}" "${seed}"
  done
done

"${PYTHON}" -m tfser.tasks.annotators.report --table=1 --corpus="${CORPUS}" --runs="${OUT}/${CORPUS}" \
  --out="${OUT}/table1"
