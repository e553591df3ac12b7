#!/usr/bin/env bash
# annotators_multi: per-annotator models trained on one corpus, on every corpus merged, and on
# every corpus with CWW corpus weights; tested zero-shot on a held-out corpus.
#
# For every holdout and seed, the registry's rows (python -m tfser.launch
# --list_experiments=annotators_multi/table/): "single" runs once per training corpus
# (--training_corpora=<corpus>: the annotators paper's setting), "merged" (--weighting=merged:
# one shuffled stream of every training corpus's utterances), "weighted" (Eq. 3 from 1 - TVD) and
# "weighted_ccc" (from the consensus CCC) on every other corpus ("equal", the zipped stream with
# every weight 1, when MODES names it). Then the project report (tfser.tasks.report) in
# $OUT/report/: annotators_multi/zero_shot_<holdout>.md|csv (TVD, JSD, consensus CCC on the
# holdout) and annotators_multi/in_corpus_<holdout>.md|csv (each training corpus's test split),
# mean +- std over seeds, paired t-tests against the single-corpus runs, and figure.png.
#
#   launch/annotators_multi_table.sh                      # the demo: IMP, POD; holdout IEM
#   QUICK=1 launch/annotators_multi_table.sh              # the demo in minutes (MT-12 only)
#   DATA_DIR=/data/tfser HOLDOUTS="IEM MuSE" launch/annotators_multi_table.sh
#
# Environment (defaults in brackets; the rest as launch/annotators_common.sh):
#   CORPORA   dimensional corpora [demo: IMP POD IEM; with DATA_DIR: IMP POD IEM MuSE]
#   HOLDOUTS  corpora held out in turn [IEM]
#   ROWS      model rows of the registry [baseline mt_task1 mt_task1+2; QUICK: mt_task1+2]
#   MODES     training settings [single merged weighted weighted_ccc] (also: equal)
#   SINGLE_CORPORA  the corpora trained alone ["single" mode: every training corpus]
#   BASELINE_CORPUS  the single-corpus run the t-tests compare with [the first in CORPORA]
#   OUT [runs/annotators_multi]; SEEDS [0 1 2 3 4]; MAX_EPOCHS; MIN_EPOCHS; EXTRA_FLAGS; QUICK
# Runs with a results.json are skipped (start a killed script again to continue).
set -euo pipefail

OUT=${OUT:-runs/annotators_multi}
if [[ -n "${DATA_DIR:-}" ]]; then
  CORPORA=${CORPORA:-"IMP POD IEM MuSE"}
else
  CORPORA=${CORPORA:-"IMP POD IEM"}
fi
HOLDOUTS=${HOLDOUTS:-IEM}
MODES=${MODES:-"single merged weighted weighted_ccc"}
QUICK_HARD_KDE_GRID=0
# shellcheck source=launch/annotators_common.sh
source "$(dirname "$0")/annotators_common.sh"
if [[ "${QUICK:-0}" == "1" ]]; then
  ROWS=${ROWS:-"mt_task1+2"}
else
  ROWS=${ROWS:-"baseline mt_task1 mt_task1+2"}
fi

# run_multi DIR SEED HOLDOUT [flags]: one run into DIR, skipped when DIR/results.json exists.
run_multi() {
  local dir=$1 seed=$2 holdout=$3
  shift 3
  if [[ -f "${dir}/results.json" ]]; then
    echo "== ${dir}: done already"
    return
  fi
  echo "== holdout ${holdout} seed ${seed} $* -> ${dir}"
  # shellcheck disable=SC2086
  "${PYTHON}" -m tfser.launch --holdout="${holdout}" --seed="${seed}" --out_dir="${dir}" \
    --max_epochs="${MAX_EPOCHS}" --min_epochs="${MIN_EPOCHS}" --verbose=0 \
    "${DATA_FLAGS[@]}" ${QUICK_FLAGS} ${EXTRA_FLAGS:-} "$@"
}

for holdout in ${HOLDOUTS}; do
  training=""
  for corpus in ${CORPORA}; do
    [[ "${corpus}" == "${holdout}" ]] || training="${training:+${training},}${corpus}"
  done
  for seed in ${SEEDS}; do
    for row in ${ROWS}; do
      for mode in ${MODES}; do
        name="annotators_multi/table/${mode}_${row}"
        dir="${OUT}/${holdout}/${mode}_${row/+/plus}"
        if [[ "${mode}" == "single" ]]; then
          for corpus in ${SINGLE_CORPORA:-${training//,/ }}; do
            [[ ",${training}," == *",${corpus},"* ]] || continue
            run_multi "${dir}_${corpus}/seed${seed}" "${seed}" "${holdout}" \
              --experiment="${name}" --training_corpora="${corpus}"
          done
        else
          run_multi "${dir}/seed${seed}" "${seed}" "${holdout}" --experiment="${name}" \
            --training_corpora="${training}"
        fi
      done
    done
  done
done

BASELINE_CORPUS=${BASELINE_CORPUS:-$(for c in ${CORPORA}; do
  [[ " ${HOLDOUTS} " == *" ${c} "* ]] || { echo "${c}"; break; }; done)}
"${PYTHON}" -m tfser.tasks.report --runs_dir="${OUT}" --out_dir="${OUT}/report" \
  --baseline_corpus="${BASELINE_CORPUS}"
cat "${OUT}"/report/annotators_multi/*.md
