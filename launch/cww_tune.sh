#!/usr/bin/env bash
# The CWW paper's tuning (3.3): a keras-tuner sweep per method with a hyper-parameter, chosen by
# validation UA; each writes its best values as the named experiment cww/tuned/<method>, which
# launch/cww_table2.sh then runs. README, "Tuning".
#
#   launch/cww_tune.sh                                   # the embedded demo, every tunable method
#   DATA_DIR=/data/tfser launch/cww_tune.sh              # prepared corpora
#   METHODS="cww focal_loss" launch/cww_tune.sh --max_epochs=20 --algorithm=grid   # flags pass on
#
# Every sweep continues where it stopped when the script is run again (keras-tuner's state in
# $ROOT/<method>/keras_tuner). TFSER_TUNED_DIR (default ./tuned) receives the tuned files.
set -euo pipefail

ROOT=${ROOT:-runs/tune}
PYTHON=${PYTHON:-python}
if [[ -z "${METHODS:-}" ]]; then  # every method with a search space (tfser/tasks/cww/tuning.py)
  METHODS=$("$PYTHON" -c "from tfser.tasks.cww import tuning; print(*tuning.SEARCH_SPACES)")
fi
DATA_FLAG=()
if [[ -n "${DATA_DIR:-}" ]]; then DATA_FLAG=(--data_dir="$DATA_DIR"); fi

for method in $METHODS; do
  echo "== tuning $method -> $ROOT/$method"
  "$PYTHON" -m tfser.launchers.cww_tune --method="$method" --out_dir="$ROOT/$method" \
    "${DATA_FLAG[@]}" "$@"
done
