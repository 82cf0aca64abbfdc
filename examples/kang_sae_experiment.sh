#!/usr/bin/env bash
# Kang et al.'s SAE experiment (§2-3: Figure 4, Tables 1 and 3) at a CPU-feasible size, from one command, on the
# embedded default model and the SAE shipped for it (steering_models/sae: blocks.12.hook_resid_post, TopK).
#   1. top-features: the K features most active at " your values" of the role-less questionnaire prompt;
#   2. sweep, train roles (r0 + TRAIN_ROLES-1, 40 % of items each): unsteered + each feature, where a feature's
#      run adds STRENGTH x W_dec[f] to the residual after block 12 at the " your values" tokens (Kang: 100 on
#      Gemma-2B-IT, whose residual norm there is far larger; 20 here is about the median residual norm at
#      block 12 of this model, ~20);
#   3. the same sweep on TEST_ROLES test roles (all their items);
#   4. the explicit value instruction (Templates 2-4, CoT) for EXPLICIT_ROLES test roles, EXPLICIT_LIMIT items
#      per value: Table 3's baseline;
#   5. python -m analysis report: causal graph (PC), Figure-4 metrics, SAE table, noise ratio, Table 3.
# Loglikelihood questionnaire (thought-free; ours, see bench/ll_vs_cot.py) for speed; CoT is the paper's mode
# (QUESTIONNAIRE=cot). Rerun the same command after a kill: sweeps resume, finished steps are skipped.
#   K=8 TRAIN_ROLES=6 TEST_ROLES=3 bash examples/kang_sae_experiment.sh [OUT]
set -euo pipefail
OUT=${1:-results/kang_sae}
K=${K:-8}
TRAIN_ROLES=${TRAIN_ROLES:-6}
TEST_ROLES=${TEST_ROLES:-3}
STRENGTH=${STRENGTH:-20}
EXPLICIT_ROLES=${EXPLICIT_ROLES:-1}
EXPLICIT_LIMIT=${EXPLICIT_LIMIT:-4}
QUESTIONNAIRE=${QUESTIONNAIRE:-ll}
SAE=${SAE:-default}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)

[ -f "$OUT/top_features.json" ] || python -m steering_models.sae top-features --pretrained default --sae "$SAE" \
  --text "your values" --k "$K" --out "$OUT/top_features.json"

sweep() {  # split, num_roles
  cat > "$OUT/sweep_$1.yaml" <<YAML
model: {pretrained: default}
tasks: [valuebench_${QUESTIONNAIRE}_$1]
metadata: {num_roles: $2}
batch_size: 16
configs_per_pass: $((K + 1))
configs:
  - unsteered
  - sae_top_features:
      sae: $SAE
      features: $OUT/top_features.json
      top_k: $K
      layer: 12
      op: add
      strength: $STRENGTH
      positions: {match: " your values"}
YAML
  echo "== sweep: $1 roles"
  python -m steering_models.sweep run "$OUT/sweep_$1.yaml" --out "$OUT/$1"
}
sweep train "$TRAIN_ROLES"
sweep test "$TEST_ROLES"

if [ "$EXPLICIT_ROLES" -gt 0 ] && [ -z "$(ls "$OUT"/explicit/*/results_*.json 2>/dev/null)" ]; then
  echo "== explicit value instruction (test roles)"
  lm_eval --model steered-hf --model_args pretrained=default,dtype=float32 --tasks valuebench_explicit \
    --metadata "{\"num_roles\": $EXPLICIT_ROLES}" --limit "$EXPLICIT_LIMIT" --batch_size 8 \
    --log_samples --output_path "$OUT/explicit"
fi

python -m analysis report "$OUT"/train/configs/* "$OUT"/test/configs/* \
  $( [ -d "$OUT/explicit" ] && echo "$OUT/explicit" ) --out "$OUT/report"
echo "Results: $OUT  (features: $OUT/top_features.json; sweeps: $OUT/train, $OUT/test; report: $OUT/report/report.html)"
