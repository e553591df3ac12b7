#!/usr/bin/env bash
# The corpus-wise-weights paper's Table 2 and Table 3: four holdouts x the methods x seeds 0-4,
# then the report (markdown + CSV under $ROOT/report).
#
#   launch/cww_table2.sh                         # the embedded demo, every method, seeds 0-4
#   DATA_DIR=/data/tfser launch/cww_table2.sh    # prepared corpora (data_prep.prepare)
#   SEEDS="0 1" METHODS="ce cww" launch/cww_table2.sh --max_epochs=20   # extra flags pass through
#   METHODS=within FOLDS="0" HOLDOUTS=IEM launch/cww_table2.sh            # one fold only (quick)
#
# A finished run (its results.json exists) is skipped, and an interrupted one resumes from its
# checkpoint, so the script can be re-run after a crash. "within" is the within-single-corpus
# baseline: trained and tested on the holdout corpus itself, by the paper's speaker folds
# (tfser/tasks/cww/folds.py: CRE 10, IEM 10, IMP 12; POD 1, its fixed splits), one run per
# fold and seed under $ROOT/within/<holdout>/fold<k>/seed<s>; FOLDS (default: every fold) picks
# folds, and a holdout skips those it does not have. The report averages a seed's folds.
#
# Tuned values: a method swept by tfser.launchers.cww_tune has the named experiment
# cww/tuned/<method> (its best values, from $TFSER_TUNED_DIR or ./tuned); the script runs that
# one instead of cww/table2/<method> (same output folder). TUNED=0: the fixed values always.
set -euo pipefail

ROOT=${ROOT:-runs/table2}
SEEDS=${SEEDS:-"0 1 2 3 4"}
HOLDOUTS=${HOLDOUTS:-"CRE IEM IMP POD"}
FOLDS=${FOLDS:-}
PYTHON=${PYTHON:-python}
# Every row of Table 2, from the registry of named experiments (cww/table2/<method>).
if [[ -z "${METHODS:-}" ]]; then
  METHODS=$("$PYTHON" -m tfser.launch --list_experiments=cww/table2/ --names | sed 's#.*/##' \
    | tr '\n' ' ')
fi
TUNED=${TUNED:-1}
TUNED_ROWS=" "
if [[ "$TUNED" != 0 ]]; then
  # None tuned: --list_experiments exits 2 ("no experiment starts with"), which is no error here.
  TUNED_ROWS=" $( ("$PYTHON" -m tfser.launch --list_experiments=cww/tuned/ --names 2>/dev/null \
    || true) | tr '\n' ' ') "
fi
DATA_FLAG=()
if [[ -n "${DATA_DIR:-}" ]]; then DATA_FLAG=(--data_dir="$DATA_DIR"); fi

for method in $METHODS; do
  experiment="cww/table2/$method"
  if [[ "$TUNED_ROWS" == *" cww/tuned/$method "* ]]; then
    experiment="cww/tuned/$method"
    echo "tuned: $experiment ($("$PYTHON" -m tfser.launch --list_experiments="$experiment" \
      | awk -F'\t' -v name="$experiment" '$1 == name {print $2}'))"
  fi
  for holdout in $HOLDOUTS; do
    if [[ "$method" == within ]]; then
      num_folds=$("$PYTHON" -m tfser.tasks.cww.folds "$holdout")
      folds=${FOLDS:-$(seq -s " " 0 $((num_folds - 1)))}
    else
      folds="-"  # out of corpus: one run per holdout and seed, no fold
    fi
    for fold in $folds; do
      if [[ "$fold" != "-" ]] && (( fold >= num_folds )); then continue; fi
      for seed in $SEEDS; do
        if [[ "$fold" == "-" ]]; then
          out="$ROOT/$method/$holdout/seed$seed"
          fold_flag=()
        else
          out="$ROOT/$method/$holdout/fold$fold/seed$seed"
          fold_flag=(--fold="$fold")
        fi
        if [[ -f "$out/results.json" ]]; then continue; fi
        echo "== $method holdout=$holdout${fold_flag[*]:+ ${fold_flag[*]}} seed=$seed -> $out"
        "$PYTHON" -m tfser.launch --experiment="$experiment" --holdout="$holdout" \
          "${fold_flag[@]}" --seed="$seed" --out_dir="$out" "${DATA_FLAG[@]}" "$@"
      done
    done
  done
done

"$PYTHON" -m tfser.tasks.cww.report --runs_dir="$ROOT" --out_dir="$ROOT/report"
