#!/usr/bin/env bash
# Table 2 of the annotators paper (Tavernor et al.): zero-shot cross-corpus results.
#
# For every training corpus: trains the baseline, MT with Task 1 (MT-1) and MT with Task 1+2
# (MT-12) for every seed and tests each zero-shot on the other corpora (whole corpus; MT uses
# every head: DiffKDE of all heads' predictions, the mean of all heads), then writes
# $OUT/table2.md|csv (one file per training corpus, _<CORPUS> suffix, when there are several).
#
#   launch/annotators_table2.sh                      # the embedded demo (train IMP; test POD IEM)
#   QUICK=1 launch/annotators_table2.sh              # the demo in minutes
#   DATA_DIR=/data/tfser launch/annotators_table2.sh # the paper: train IMP, test POD IEM MuSE
#
# Environment (defaults in brackets):
#   DATA_DIR      prepared data directory [unset: the demo under DEMO_DIR]
#   DEMO_DIR      [~/.cache/tfser/demo]
#   TRAIN_CORPORA training corpora [IMP]
#   TEST_CORPORA  zero-shot corpora [demo: POD IEM; with DATA_DIR: POD IEM MuSE]; a training
#                 corpus is never its own zero-shot test. (The demo's CRE, like CREMA-D, has
#                 categorical votes only: no activation/valence ratings to test against.)
#   SEEDS [0 1 2 3 4]  MAX_EPOCHS [500]  MIN_EPOCHS [30]  OUT [runs/annotators_table2]
#   PYTHON [python]    EXTRA_FLAGS (more flags for every run)
#   QUICK=1       demo preset: SEEDS="0 1", MAX_EPOCHS=3, MIN_EPOCHS=1, 100 DiffKDE samples, no
#                 SavedModel or images, no hard-KDE ablation (numbers reproduce nothing)
# Runs with a results.json are skipped (start a killed script again to continue).
set -euo pipefail

TRAIN_CORPORA=${TRAIN_CORPORA:-IMP}
OUT=${OUT:-runs/annotators_table2}
if [[ -n "${DATA_DIR:-}" ]]; then
  TEST_CORPORA=${TEST_CORPORA:-"POD IEM MuSE"}
else
  TEST_CORPORA=${TEST_CORPORA:-"POD IEM"}
fi
QUICK_HARD_KDE_GRID=0  # Table 2 has no hard-KDE ablation.
# shellcheck source=launch/annotators_common.sh
source "$(dirname "$0")/annotators_common.sh"
# The table's rows (model:objective), from the registry of named experiments.
ROWS=$(experiment_rows annotators/table2/)

for train in ${TRAIN_CORPORA}; do
  zero_shot=""
  for other in ${TEST_CORPORA}; do
    [[ "${other}" == "${train}" ]] && continue
    zero_shot="${zero_shot:+${zero_shot},}${other}"
  done
  for seed in ${SEEDS}; do
    for run in ${ROWS}; do
      model=${run%%:*}
      objective=${run#*:}
      run_annotators "${OUT}/${train}/${model}_${objective/+/plus}/seed${seed}" \
        "${model}" "${objective}" "${train}" "${seed}" --zero_shot="${zero_shot}"
    done
  done
done

"${PYTHON}" -m tfser.tasks.annotators.report --table=2 --runs="${OUT}" --out="${OUT}/table2"
