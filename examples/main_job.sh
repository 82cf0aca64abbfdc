#!/usr/bin/env bash
# The main job: Kang et al. in miniature, one model load, on the embedded default model (no hub, no GPU).
#   1. one sweep (python -m steering_models.sweep) of the loglikelihood questionnaire on the train roles
#      r0 (the empty role) + ROLES-1 named roles, under: unsteered; each of the shipped SAE's top features at
#      " your values" (Kang's SAE steering: add STRENGTH x W_dec[f] after block 12 at those tokens only); and one
#      vector config, the unit embedding(" yes") - embedding(" no") direction, added the same way;
#   2. python -m analysis report on it: PC value graph, Figure 4 (role and SAE steering, 95% bootstrap CIs),
#      the SAE table, orientation shifts; prints the summary and writes OUT/summary.json.
# Orientations use the soft item score agreement x (p(yes) - p(no)) (--score soft), and a value counts as changed
# when it moves by more than ATOL: this model answers " no" to every item unsteered in loglikelihood mode, so the
# hard +1/-1 score (Kang et al.'s) is constant across roles and configs and no graph could be learned from it.
# PC learns from every row (--pc-rows all: the roles under every config, unsteered included; Kang: the rows under
# the SAE features), and Figure 4's SAE units are the SAE features only (--features), not the vector.
#   OUT=results/main_job bash examples/main_job.sh              # rerun after a kill: the sweep resumes
#   ROLES=8 STRENGTH="50, 100" VERBOSE=1 OUT=... bash examples/main_job.sh
# FEATURES are the top features of `python -m steering_models.sae top-features --sae default --text
# "your values"` (README, SAE steering) that move this model's orientations most at STRENGTH 100; the SAE's
# decoder rows and the vector are unit norm (the residual norm at block 12 is ~20). STRENGTH may be a list
# ("50, 100"): the report then draws the dose-response. VERBOSE=1 keeps lm-eval's progress bars and prints its
# results tables and the report's notes. Changed settings in the same OUT are refused by the sweep: FRESH=1 starts
# the sweep over (or use another OUT).
set -euo pipefail
T0=$(date +%s)
OUT=${OUT:-results/main_job}
PRETRAINED=${PRETRAINED:-default}  # another model: a local HF folder or hub id, with SAE and LAYER to match
SAE=${SAE:-default}
LAYER=${LAYER:-12}
PLUS=${PLUS:- yes}  # the vector config: unit embedding(PLUS) - embedding(MINUS), single tokens
MINUS=${MINUS:- no}
vec_name="vec-$(echo $PLUS)-$(echo $MINUS)"
ROLES=${ROLES:-6}
ITEM_FRACTION=${ITEM_FRACTION:-0.25}
FEATURES=${FEATURES:-"3317, 804, 4014"}
STRENGTH=${STRENGTH:-100}
BOOTSTRAP=${BOOTSTRAP:-1000}
SCORE=${SCORE:-soft}
ATOL=${ATOL:-0.1}
VERBOSE=${VERBOSE:-}
FRESH=${FRESH:-}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
quiet=(env TQDM_DISABLE=1)  # lm-eval's per-subtask bars off; the sweep's own bars pass disable=False
report_flags=()
if [ -n "$VERBOSE" ]; then quiet=(env); report_flags=(--verbose); fi

[ -f "$OUT/$vec_name.safetensors" ] || python -m steering_models.vectors token-diff --pretrained "$PRETRAINED" \
  --plus "$PLUS" --minus "$MINUS" --out "$OUT/$vec_name.safetensors" > /dev/null
strengths=(${STRENGTH//,/ })
: > "$OUT/sae_features.txt"  # the SAE configs: Figure 4's SAE units (the vector is steered too, but is no SAE feature)
for f in ${FEATURES//,/ }; do
  for s in "${strengths[@]}"; do
    if [ ${#strengths[@]} -gt 1 ]; then echo "sae-f$f-s$s"; else echo "sae-f$f"; fi >> "$OUT/sae_features.txt"
  done
done
vector_configs=""
for s in "${strengths[@]}"; do
  vector_configs="$vector_configs
  - {name: $vec_name-x$s, meta: {kind: vector, key: '$(echo $PLUS)-$(echo $MINUS)', strength: $s}, interventions: [{layer: $LAYER, op: add,
     strength: $s, source: {vector: $OUT/$vec_name.safetensors}, positions: {match: ' your values'}}]}"
done
cat > "$OUT/sweep.yaml" <<YAML
model: {pretrained: $PRETRAINED}
tasks: [valuebench_ll_train]
metadata: {num_roles: $ROLES, item_fraction: $ITEM_FRACTION}
batch_size: 16
configs_per_pass: 16
configs:
  - unsteered
  - sae_top_features:
      sae: $SAE
      features: [$FEATURES]
      layer: $LAYER
      op: add
      strength: [$STRENGTH]
      positions: {match: " your values"}
$vector_configs
YAML

echo "== 1/2 sweep: $ROLES train roles (r0 + $((ROLES - 1))), unsteered + SAE features [$FEATURES] + $vec_name" \
     "at strength [$STRENGTH], one model load -> $OUT/sweep"
"${quiet[@]}" python -m steering_models.sweep run "$OUT/sweep.yaml" --out "$OUT/sweep" ${FRESH:+--fresh}
echo "== 2/2 report: python -m analysis report $OUT/sweep/configs/* --out $OUT/report"
python -m analysis report "$OUT"/sweep/configs/* --out "$OUT/report" --bootstrap "$BOOTSTRAP" --score "$SCORE" --atol "$ATOL" \
  --features "$OUT/sae_features.txt" --pc-rows all \
  --summary "$OUT/summary.json" --job-started "$T0" ${report_flags[@]+"${report_flags[@]}"}
echo "Results: $OUT  (sweep: $OUT/sweep; summary: $OUT/summary.json; report: $OUT/report/report.html)"
