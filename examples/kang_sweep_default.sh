#!/usr/bin/env bash
# Kang et al.'s steering sweep at a CPU-feasible size, from one command, on the embedded default model:
#   unsteered + 5 `add` configs (unit token-difference vectors x 4 at block 12, at the " your values"
#   tokens, as Kang's SAE steering) x the loglikelihood questionnaire of 2 train roles (r0 = no role, r1).
# The paper's scale is examples/kang_sweep_gemma2b.yaml (needs a model hub for Gemma-2B-IT and its SAE).
# Rerun the same command after a kill: completed configs are kept. Usage: bash examples/kang_sweep_default.sh [OUT]
set -euo pipefail
OUT=${1:-runs/kang_sweep_default}
mkdir -p "$OUT/vectors"
configs="  - unsteered"
for pair in "yes no" "good bad" "always never" "happy sad" "money love"; do
  set -- $pair
  vec="$OUT/vectors/$1-$2.safetensors"
  [ -f "$vec" ] || python -m steering_models.vectors token-diff --plus " $1" --minus " $2" --out "$vec"
  configs="$configs
  - {name: add-$1-$2-x4, meta: {kind: vector, plus: '$1', minus: '$2'}, interventions: [{layer: 12, op: add,
     strength: 4, source: {vector: $PWD/$vec}, positions: {match: ' your values'}}]}"
done
cat > "$OUT/sweep.yaml" <<YAML
model: {pretrained: default}
tasks: [valuebench_ll_train]
metadata: {num_roles: 2}
batch_size: 16
configs_per_pass: 6
configs:
$configs
YAML
python -m steering_models.sweep run "$OUT/sweep.yaml" --out "$OUT/results"
