# Shared by launch/annotators_table1.sh and annotators_table2.sh (sourced, not run): the
# environment defaults of both and one training run that is skipped when already finished.
#
# Reads: PYTHON [python], DATA_DIR, DEMO_DIR, SEEDS, MAX_EPOCHS, MIN_EPOCHS, EXTRA_FLAGS,
# QUICK=1 (demo preset: SEEDS="0 1", MAX_EPOCHS=3, MIN_EPOCHS=1, 100 DiffKDE samples, no
# SavedModel, no TensorBoard images) and QUICK_HARD_KDE_GRID (the hard-KDE ablation's grid under
# QUICK; 0 turns the ablation off).

PYTHON=${PYTHON:-python}
if [[ "${QUICK:-0}" == "1" ]]; then
  SEEDS=${SEEDS:-"0 1"}
  MAX_EPOCHS=${MAX_EPOCHS:-3}
  MIN_EPOCHS=${MIN_EPOCHS:-1}
  QUICK_FLAGS="--diffkde_samples=100 --noexport --image_utterances=0"
  QUICK_FLAGS+=" --hard_kde_grid_size=${QUICK_HARD_KDE_GRID:-128}"
else
  SEEDS=${SEEDS:-"0 1 2 3 4"}
  MAX_EPOCHS=${MAX_EPOCHS:-500}
  MIN_EPOCHS=${MIN_EPOCHS:-30}
  QUICK_FLAGS=""
fi
DATA_FLAGS=()
[[ -n "${DATA_DIR:-}" ]] && DATA_FLAGS+=("--data_dir=${DATA_DIR}")
# The embedded demo (no DATA_DIR) runs with --preset=synthetic_demo (standardised IS10, float32
# DiffKDE: raw IS10 diverges under SGD); prepared corpora with the paper's settings (the defaults).
[[ -z "${DATA_DIR:-}" ]] && DATA_FLAGS+=("--preset=synthetic_demo")
[[ -n "${DEMO_DIR:-}" ]] && DATA_FLAGS+=("--demo_dir=${DEMO_DIR}")

# run_annotators DIR MODEL OBJECTIVE CORPUS SEED [more flags]: one training run into DIR, skipped
# when DIR/results.json exists (a killed run resumes from its checkpoint when started again).
run_annotators() {
  local dir=$1 model=$2 objective=$3 corpus=$4 seed=$5
  shift 5
  if [[ -f "${dir}/results.json" ]]; then
    echo "== ${dir}: done already"
    return
  fi
  echo "== ${corpus}: ${model} ${objective} seed ${seed} $* -> ${dir}"
  # shellcheck disable=SC2086
  "${PYTHON}" -m tfser.launch --task=annotators --model="${model}" --objective="${objective}" \
    --corpus="${corpus}" --seed="${seed}" --out_dir="${dir}" --max_epochs="${MAX_EPOCHS}" \
    --min_epochs="${MIN_EPOCHS}" --verbose=0 "${DATA_FLAGS[@]}" ${QUICK_FLAGS} \
    ${EXTRA_FLAGS:-} "$@"
}

# experiment_rows PREFIX: "model:objective" of every named experiment under PREFIX (registry:
# python -m tfser.launch --list_experiments), space-separated, in the table's order.
experiment_rows() {
  "${PYTHON}" -m tfser.launch --list_experiments="$1" \
    | sed -n 's/.*--model=\([^ \t]*\) --objective=\([^ \t]*\).*/\1:\2/p' | tr '\n' ' '
}
