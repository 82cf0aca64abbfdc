#!/usr/bin/env bash
# The ConVA experiment (Jin et al. §4) at a CPU-feasible size on the embedded default model:
# fit value vectors, then Base, ICA, CAA, ConVA w/o gate and ConVA on the value's dilemmas and mmlu_conva4,
# and one leaderboard with CSR, FR (judge) and MMLU accuracy.
#   VALUES=power PAIRS=30 LIMIT=5 OUT=results/conva_small bash examples/conva_experiment.sh
# LIMIT is lm-eval's --limit (per task: LIMIT dilemmas, LIMIT questions of each MMLU subject).
# The judge: VALUE_JUDGE_BASE_URL/MODEL/API_KEY if set (e.g. GPT-4o as in the paper), else the embedded
# default model as a local judge (weak: compare judges with `python -m analysis judge-agreement`).
set -euo pipefail
VALUES=${VALUES:-power}
PAIRS=${PAIRS:-30}
LIMIT=${LIMIT:-5}
OUT=${OUT:-results/conva_small}
mkdir -p "$OUT"
if [ -z "${VALUE_JUDGE_BASE_URL:-}" ] && [ -z "${VALUE_JUDGE_KIND:-}" ]; then
  export VALUE_JUDGE_KIND=local VALUE_JUDGE_PRETRAINED=default
fi

python -m steering_models.conva fit --pretrained default --values "$VALUES" --pairs "$PAIRS" \
  --gate-format chat --no-unembed --out "$OUT/conva_out"

M=pretrained=default,dtype=float32
run() {  # name, extra model args, tasks
  echo "== $1"
  lm_eval --model steered-hf --model_args "$M$2" --tasks "$3" --limit "$LIMIT" --batch_size 4 \
    --apply_chat_template --log_samples --output_path "$OUT/runs/$1"
}
for v in ${VALUES//,/ }; do
  t=${v//-/_}
  run "base_$t" "" "schwartz_dilemmas_$t,mmlu_conva4"
  run "ica_$t" "" "schwartz_dilemmas_ica_$t"
  for s in caa conva_nogate conva; do
    run "${s}_$t" ",steer=$OUT/conva_out/steer_${s}_$v.yaml" "schwartz_dilemmas_$t,mmlu_conva4"
  done
done
python -m analysis leaderboard "$OUT"/runs/* --out "$OUT/leaderboard"
echo "Results: $OUT  (lm-eval output in $OUT/runs/*, table in $OUT/leaderboard)"
