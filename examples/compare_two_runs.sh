#!/usr/bin/env bash
# Two plain `lm_eval` runs compared (what the main job was before it became one sweep, examples/main_job.sh):
# Kang et al.'s ValueBench role-play questionnaire (loglikelihood mode, test roles) on the embedded default
# model, unsteered and steered by a steering file, then the per-value orientations side by side.
#   OUT=results/compare ROLES=2 STRENGTH=8 bash examples/compare_two_runs.sh
set -euo pipefail
OUT=${OUT:-results/compare}
ROLES=${ROLES:-1}
STRENGTH=${STRENGTH:-8}
mkdir -p "$OUT"

# A steering direction you can see move the scores without a model hub: embedding(" yes") - embedding(" no")
# (an "acquiescence" direction), added to the residual stream after block 12 at every position. Kang et al.'s
# own setting adds an SAE feature's decoder row at the " your values" tokens only (examples/
# kang_sae_gemma2b_f1312.yaml); this yes-no vector at those two tokens moves p(yes) by < 0.01 on this model.
python -m steering_models.vectors token-diff --pretrained default --plus " yes" --minus " no" \
  --out "$OUT/yes_minus_no.safetensors"
cat > "$OUT/steer.yaml" <<YAML
name: yes-minus-no-x${STRENGTH}-all-positions
meta: {kind: vector}
interventions:
  - {layer: 12, op: add, strength: ${STRENGTH}, source: {vector: yes_minus_no.safetensors}, positions: all}
YAML

for run in unsteered steered; do
  args="pretrained=default"
  if [ "$run" = steered ]; then args="$args,steer=$OUT/steer.yaml"; fi
  echo "== $run: lm_eval --model steered-hf --model_args $args --tasks valuebench_ll_test"
  lm_eval --model steered-hf --model_args "$args" --tasks valuebench_ll_test \
    --metadata "{\"num_roles\": $ROLES}" --batch_size 8 --output_path "$OUT/$run" --log_samples
done

python -m analysis leaderboard "$OUT/unsteered" "$OUT/steered" --out "$OUT/leaderboard"
echo "Results: $OUT  (lm-eval output in $OUT/unsteered and $OUT/steered; comparison in $OUT/leaderboard)"
