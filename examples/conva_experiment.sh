#!/usr/bin/env bash
# The ConVA experiment (Jin et al. §4) at a CPU-feasible size on the embedded default model, one command:
# fit value vectors for VALUES, check the probe gate on the real prompts, then Base, ICA, CAA, ConVA w/o gate
# and ConVA on each value's dilemmas and mmlu_conva4, Fig. 4's role-prompt methods, SFT, a leaderboard and the
# per-method table (CSR, FR, MMLU, replies changed vs Base).
#   VALUES=all PAIRS=30 DILEMMAS=6 MMLU=5 G0=0.08 OUT=results/conva10_g0 bash examples/conva_experiment.sh
# (~1 h on 2 idle cores, plus ~20 min the first time for the activations; DILEMMAS=2 MMLU=1: ~25 min)
# DILEMMAS: dilemmas per value; MMLU: questions per MMLU subject (4 subjects, 5-shot) (lm-eval --limit).
# One model load per step: `fit` fits all values in one process; Base (all values' dilemmas in one run, MMLU
# in one run: neither depends on the value) and ICA run once; per value one sweep
# (`python -m steering_models.sweep`) generates CAA, ConVA w/o gate and ConVA replies to that value's
# dilemmas together in shared batches (per-row steering); one sweep scores all values' CAA/ConVA configs on
# MMLU. Resumable: a step whose results exist is skipped (rerun with the same OUT after a kill).
# The judge: VALUE_JUDGE_BASE_URL/MODEL/API_KEY if set (e.g. GPT-4o as in the paper), else the offline
# judge (VALUE_JUDGE_KIND=local: the embedded 1.5B judge with the judge-model extra, else the 0.5B default
# model, which is weak; `python -m analysis judge-bench` measures a judge).
# G0: the gated ConVA's gate threshold (default: the op's 0.5); the gate-check step prints the interval of
# g0 that separates dilemmas from MMLU questions the runs do not evaluate.
# Fig. 4 (§4.4, `fig4` step): per value one sweep runs the value's dilemmas under the negative-value role
# prompt (schwartz_dilemmas_negative_*) and the ICA prompt (schwartz_dilemmas_positive_*) with no steering,
# CAA and ConVA: the methods "negative prompt", "negative prompt + CAA", "negative prompt + ConVA" and
# "ICA + ConVA" (and, from the same shared batches, ICA again and ICA + CAA).
# SFT (§4.1, Appendix H, `sft` step): per value a LoRA adapter trained on the value's positive sentences (a
# substitute for FULCRA, which is not available offline), then its dilemmas and MMLU through steered-hf
# peft=. SFT_ARGS: the CPU-scale training flags (default below; SFT_ARGS="" = the paper's full-scale defaults).
# NICE=10 runs every model step under `nice -n 10` (shared machines). STEPS (default all) picks steps:
# fit gate base ica sweeps mmlu fig4 sft table (e.g. STEPS=sweeps VALUES=power runs one value's sweep
# beside a fit).
set -euo pipefail
ALL=achievement,benevolence,conformity,hedonism,power,security,self-direction,stimulation,tradition,universalism
VALUES=${VALUES:-all}
[ "$VALUES" = all ] && VALUES=$ALL
PAIRS=${PAIRS:-30}
DILEMMAS=${DILEMMAS:-2}
MMLU=${MMLU:-1}
BATCH=${BATCH:-16}
OUT=${OUT:-results/conva10}
N=${NICE:+nice -n $NICE}
mkdir -p "$OUT/runs" "$OUT/sweeps"
if [ -z "${VALUE_JUDGE_BASE_URL:-}" ] && [ -z "${VALUE_JUDGE_KIND:-}" ]; then
  export VALUE_JUDGE_KIND=local
  # a local judge that generates (a template without a log-probability profile) runs at batch 1 on CPU: 8
  # reply tokens hold the label the parsers read first (CSR "Yes"/"No", FR "True"/"False" + a reason the
  # score does not use) instead of the templates' 64
  export VALUE_JUDGE_MAX_TOKENS=${VALUE_JUDGE_MAX_TOKENS:-8}
fi
STEPS=${STEPS:-fit gate base ica sweeps mmlu fig4 sft table}
SFT_ARGS=${SFT_ARGS-__SFT_CPU__}
want() { [[ " $STEPS " == *" $1 "* ]]; }
stamp() { echo "== $(date -u +%H:%M:%S) $*"; }
done_run() { compgen -G "$1/*/results_*.json" > /dev/null; }  # lm-eval wrote its results JSON

todo=""  # values without steering files yet (activations are cached: a refit after a kill is cheap)
for v in ${VALUES//,/ }; do [ -f "$OUT/conva_out/steer_conva_$v.yaml" ] || todo+="$v,"; done
fit() {  # values, extra args; exit 1 = some value had no layer above the accuracy threshold (said above)
  $N python -m steering_models.conva fit --pretrained default --values "$1" "${@:2}" --gate-format chat \
    --gate-layers lowest --no-unembed ${G0:+--g0 "$G0"} --out "$OUT/conva_out" || [ $? -eq 1 ]
}
if want fit && [ -n "$todo" ]; then
  stamp "fit ${todo%,} ($PAIRS pairs${G0:+, g0 $G0})"
  fit "${todo%,}" --pairs "$PAIRS"
  retry=""  # e.g. universalism on the embedded default: best allowed layer 0.889 at 30 pairs
  for v in ${todo//,/ }; do [ -f "$OUT/conva_out/steer_conva_$v.yaml" ] || retry+="$v,"; done
  if [ -n "$retry" ]; then
    stamp "refit ${retry%,} with every pair"
    fit "${retry%,}"
  fi
fi
if want gate && [ ! -f "$OUT/gate_check/gate_check.csv" ]; then
  # on dilemmas and MMLU questions the runs do not evaluate (--offset = their --limit): pick G0 from this
  stamp "gate-check"
  $N python -m steering_models.conva gate-check --artifacts "$OUT/conva_out" --values "$VALUES" \
    --n "${GATE_N:-20}" --offset "$(( DILEMMAS > MMLU ? DILEMMAS : MMLU ))" --apply-chat-template \
    ${G0:+--g0 "$G0"} --out "$OUT/gate_check" | tee "$OUT/gate_check.txt"
fi

M=pretrained=default,dtype=float32
run() {  # name, tasks, limit[, extra model args]
  if done_run "$OUT/runs/$1"; then stamp "skip $1 (done)"; return; fi
  stamp "$1"
  $N lm_eval --model steered-hf --model_args "$M${4:+,$4}" --tasks "$2" --limit "$3" --batch_size "$BATCH" \
    --apply_chat_template --log_samples --output_path "$OUT/runs/$1"
}
dilemmas="" ica=""
for v in ${VALUES//,/ }; do dilemmas+="schwartz_dilemmas_${v//-/_},"; ica+="schwartz_dilemmas_ica_${v//-/_},"; done
want base && run base "${dilemmas%,}" "$DILEMMAS"
want ica && run ica "${ica%,}" "$DILEMMAS"

want sweeps && for v in ${VALUES//,/ }; do
  sw="$OUT/sweeps/$v"
  if [ "$(compgen -G "$sw/configs/*/*/results_*.json" | wc -l)" -ge 3 ]; then stamp "skip sweep $v (done)"; continue; fi
  mkdir -p "$sw"
  cat > "$sw/sweep.yaml" <<EOF
model: {pretrained: default, dtype: float32}
tasks: [schwartz_dilemmas_${v//-/_}]
limit: $DILEMMAS
batch_size: $BATCH
configs_per_pass: 3
apply_chat_template: true
configs:
  - ../../conva_out/steer_caa_$v.yaml
  - ../../conva_out/steer_conva_nogate_$v.yaml
  - ../../conva_out/steer_conva_$v.yaml
EOF
  stamp "sweep $v (CAA, ConVA w/o gate, ConVA)"
  $N python -m steering_models.sweep run "$sw/sweep.yaml" --out "$sw" --no-progress
done

want mmlu && run base_mmlu mmlu_conva4 "$MMLU"
sw="$OUT/sweeps/mmlu"
if want mmlu && [ "$(compgen -G "$sw/configs/*/*/results_*.json" | wc -l)" -lt $((3 * $(echo "${VALUES//,/ }" | wc -w))) ]; then
  mkdir -p "$sw"
  { printf 'model: {pretrained: default, dtype: float32}\ntasks: [mmlu_conva4]\nlimit: %s\n' "$MMLU"
    printf 'batch_size: %s\nconfigs_per_pass: 3\napply_chat_template: true\nconfigs:\n' "$BATCH"
    for v in ${VALUES//,/ }; do for s in caa conva_nogate conva; do
      echo "  - ../../conva_out/steer_${s}_$v.yaml"; done; done; } > "$sw/sweep.yaml"
  stamp "sweep mmlu (CAA, ConVA w/o gate, ConVA of every value)"
  $N python -m steering_models.sweep run "$sw/sweep.yaml" --out "$sw" --no-progress
fi

# Fig. 4: the existing steering files on the role-prompt variants, one sweep (one model load) per value
want fig4 && for v in ${VALUES//,/ }; do
  sw="$OUT/sweeps/fig4_$v" t=${v//-/_}
  if [ "$(compgen -G "$sw/configs/*/*/results_*.json" | wc -l)" -ge 3 ]; then stamp "skip fig4 $v (done)"; continue; fi
  mkdir -p "$sw"
  cat > "$sw/sweep.yaml" <<EOF
model: {pretrained: default, dtype: float32}
tasks: [schwartz_dilemmas_negative_$t, schwartz_dilemmas_positive_$t]
limit: $DILEMMAS
batch_size: $BATCH
configs_per_pass: 3
apply_chat_template: true
configs:
  - unsteered
  - ../../conva_out/steer_caa_$v.yaml
  - ../../conva_out/steer_conva_$v.yaml
EOF
  stamp "fig4 $v (negative / ICA prompt x none, CAA, ConVA)"
  $N python -m steering_models.sweep run "$sw/sweep.yaml" --out "$sw" --no-progress
done

# SFT: train per value (resumes per epoch), then its dilemmas and MMLU with the adapter (steered-hf peft=)
# CPU scale (~30 s per micro-batch of 4 chat-templated sentences on 2 busy cores): 24 sentences, 2 epochs,
# no accumulation = 12 optimizer steps, at lr 1e-3 so that 12 steps move the adapter (the paper: 1e-4 for
# 10 epochs of FULCRA on a GPU)
[ "$SFT_ARGS" = __SFT_CPU__ ] && SFT_ARGS="--sentences 24 --epochs 2 --grad-accum 1 --lr 1e-3"
want sft && for v in ${VALUES//,/ }; do
  s="$OUT/sft/$v"
  if [ -f "$s/steer_sft_$v.yaml" ]; then stamp "skip sft train $v (done)"; else
    stamp "sft train $v (${SFT_ARGS:-Appendix H defaults})"
    # shellcheck disable=SC2086  # SFT_ARGS is a list of flags
    $N python -m steering_models.conva sft --pretrained default --value "$v" --out "$s" $SFT_ARGS --no-progress
  fi
  sft_model="peft=$s/adapter,steer=$s/steer_sft_$v.yaml"
  run "sft_$v" "schwartz_dilemmas_${v//-/_}" "$DILEMMAS" "$sft_model"
  run "sft_mmlu_$v" mmlu_conva4 "$MMLU" "$sft_model"
done

want table || exit 0
stamp "leaderboard"
# one leaderboard and one table over every run: the method of each run's task comes from the run's steering meta
# and the task's prompt variant (plain, ica, negative, positive), so the Fig. 4 sweeps and SFT join the table
all_runs=()
for d in "$OUT"/runs/* "$OUT"/sweeps/*/configs/*; do [ -d "$d" ] && done_run "$d" && all_runs+=("$d"); done
if [ ${#all_runs[@]} -gt 0 ]; then
  python -m analysis leaderboard "${all_runs[@]}" --out "$OUT/leaderboard" > "$OUT/leaderboard.txt"
  python -m analysis conva-table "$OUT/leaderboard" --out "$OUT/leaderboard" \
    --runs "${all_runs[@]}" | tee "$OUT/conva_table.md"
fi
stamp "done: $OUT (lm-eval output in runs/ and sweeps/*/configs/, leaderboard/, conva_table.md, gate_check/, sft/)"
