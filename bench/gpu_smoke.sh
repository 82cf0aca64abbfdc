#!/usr/bin/env bash
# GPU smoke run: the generation / sweep benchmarks on a lent GPU machine, for the embedded default's
# architecture with random weights (speed does not depend on the weights). Never a test dependency.
#
# The GPU machine reaches no package registry and takes at most 64 MiB beside the checkout, so the work is
# split in two:
#
#   here (a checkout with the embedded default and a venv):
#     bench/gpu_smoke.sh prepare [--no-wheels]
#       -> .gpu_smoke/model/   the embedded default's config.json, generation_config.json and tokenizer files
#                              (no weights; ~7 MiB)
#       -> .gpu_smoke/whl/     wheels (Python 3.12, manylinux x86_64) of the packages the benches import that
#                              the GPU image lacks or holds in another version (lm-eval and its needs,
#                              transformers/tokenizers at this venv's versions, ...); --no-wheels skips them
#       .gpu_smoke/ is added to .git/info/exclude; it travels when a run names it in `carry`.
#   there (device tool: run(command="bash bench/gpu_smoke.sh run", carry=[".gpu_smoke"], timeout_s=540)):
#     bench/gpu_smoke.sh run
#       installs the wheels into /tmp/site (no index), builds the model from .gpu_smoke/model/config.json with
#       random bfloat16 weights into /tmp/gpu-smoke-model, then runs, each under a time limit and writing its
#       output to $OUT (or /tmp/gpu-smoke-out):
#         1. bench/throughput.py --skip-score --device cuda --dtype bfloat16 (generation at batch 1 and 32 vs
#            HF generate, against the GPU's matmul peak and copy bandwidth)
#         2. bench/sweep_vs_naive.py --mode cot (CoT sweep vs separate steered-hf runs)
#         3. bench/sweep_vs_naive.py (LL sweep vs separate runs)
#       and prints a summary. Record the figures in bench/RESULTS.md with the machine's description.
set -euo pipefail
cd "$(dirname "$0")/.."
STATE=.gpu_smoke
MODE=${1:-}

prepare() {
    local wheels=1
    [[ "${2:-}" == "--no-wheels" ]] && wheels=0
    mkdir -p "$STATE/model" "$STATE/whl"
    local exclude
    exclude=$(git rev-parse --git-path info/exclude)
    mkdir -p "$(dirname "$exclude")"
    grep -qx "/$STATE/" "$exclude" 2>/dev/null || echo "/$STATE/" >> "$exclude"
    python - "$STATE/model" <<'EOF'
import shutil, sys
from pathlib import Path
from steering_models.default_model import resolve_pretrained
src, dst = Path(str(resolve_pretrained("default"))), Path(sys.argv[1])
for name in ("config.json", "generation_config.json", "tokenizer.json", "tokenizer_config.json",
             "chat_template.jinja", "special_tokens_map.json"):
    if (src / name).is_file():
        shutil.copy(src / name, dst / name)
print(f"copied the embedded default's config and tokenizer from {src} to {dst}")
EOF
    if [[ $wheels == 1 ]]; then
        # the distributions the benches import (measured by importing them here), minus the GPU image's own
        python - > "$STATE/requirements.txt" <<'EOF'
import importlib.metadata as md, sys
import steering_models._bootstrap, steering_models.lm, steering_models.sweep, steering_models.generation  # noqa
import lm_eval.evaluator, lm_eval.tasks  # noqa
import re
dists = md.packages_distributions()
names = {d for mod in list(sys.modules) for d in dists.get(mod.split(".")[0], [])}
# and everything lm-eval and transformers need at run time (their Requires-Dist, recursively, no extras)
todo = ["lm_eval", "transformers", "datasets", "evaluate"]
while todo:
    name = todo.pop()
    try:
        reqs = md.requires(name) or []
    except md.PackageNotFoundError:
        continue
    names.add(md.metadata(name)["Name"])
    for req in reqs:
        if "extra ==" in req:
            continue
        dep = re.split(r"[ ;<>=!~\[(]", req, maxsplit=1)[0]
        if dep and dep not in names:
            todo.append(dep)
# present on the GPU image in a compatible version (bench/gpu_smoke.sh: KINDS.md's package list); torch is
# the image's CUDA build and must not be replaced
image = {"torch", "numpy", "scipy", "pandas", "pyarrow", "scikit-learn", "safetensors", "pyyaml", "PyYAML",
         "jinja2", "Jinja2", "MarkupSafe", "markupsafe", "filelock", "fsspec", "packaging", "requests", "urllib3",
         "idna", "certifi", "charset-normalizer", "tqdm", "regex", "psutil", "typing_extensions",
         "typing-extensions", "sympy", "mpmath", "networkx", "triton", "xxhash", "sacrebleu", "portalocker",
         "tabulate", "colorama", "lxml", "joblib", "threadpoolctl", "six", "python-dateutil", "pytz", "tzdata",
         "attrs", "aiohttp", "multidict", "yarl", "frozenlist", "aiosignal", "propcache", "aiohappyeyeballs",
         "hf-xet", "huggingface-hub", "huggingface_hub", "httpx", "httpcore", "h11", "anyio", "sniffio",
         "pygments", "rich", "markdown-it-py", "mdurl", "click", "typer", "shellingham", "matplotlib", "pillow",
         "contourpy", "cycler", "fonttools", "kiwisolver", "pyparsing", "setuptools", "pip", "wheel"}
def norm(n: str) -> str:
    return re.sub(r"[-_.]+", "-", n).lower()
image = {norm(n) for n in image} | {"absl-py", "narwhals", "protobuf", "pygments", "pydantic", "pydantic-core",
                                   "annotated-types", "typing-inspection", "annotated-doc"}
for name in sorted(names, key=str.lower):
    if norm(name) in image or norm(name) in {"value-steering-eval"} or norm(name).startswith("nvidia"):
        continue
    print(f"{name}=={md.version(name)}")
EOF
        echo "wheels for: $(tr '\n' ' ' < "$STATE/requirements.txt")"
        # binary wheels for Python 3.12 / manylinux x86_64 where the project has them, else pure-Python ones
        # (an sdist where the project publishes no wheel: pure-Python, built there without an index)
        while read -r req; do
            python -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
                --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
                --platform any -d "$STATE/whl" "$req" 2>/dev/null \
            || python -m pip download -q --no-deps --no-binary=:all: -d "$STATE/whl" "$req" \
            || echo "WARNING: nothing downloaded for $req (the run may miss it)"
        done < "$STATE/requirements.txt"
    fi
    du -sh "$STATE" | awk '{print "prepared " $2 ": " $1 " (the device tool carries at most 64 MiB)"}'
}

run() {
    local out=${OUT:-/tmp/gpu-smoke-out}
    mkdir -p "$out"
    if [[ ! -f $STATE/model/config.json ]]; then
        echo "bench/gpu_smoke.sh run: $STATE/model/config.json is missing: run 'bench/gpu_smoke.sh prepare' on a" \
             "machine with the embedded default and carry $STATE." >&2
        exit 2
    fi
    if compgen -G "$STATE/whl/*" > /dev/null; then
        python3 -m pip install -q --no-index --no-deps --no-build-isolation --no-compile --no-cache-dir --upgrade \
            --target /tmp/site "$STATE"/whl/*
        export PYTHONPATH=/tmp/site:$PWD
    else
        export PYTHONPATH=$PWD
    fi
    export PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 TOKENIZERS_PARALLELISM=false
    python3 - <<'EOF'
import sys
import torch
if not torch.cuda.is_available():
    sys.exit("bench/gpu_smoke.sh run: torch sees no CUDA GPU; run it on the lent GPU machine.")
from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer
config = AutoConfig.from_pretrained(".gpu_smoke/model")
torch.manual_seed(0)
model = AutoModelForCausalLM.from_config(config, dtype=torch.bfloat16)  # random weights
model.save_pretrained("/tmp/gpu-smoke-model")
AutoTokenizer.from_pretrained(".gpu_smoke/model").save_pretrained("/tmp/gpu-smoke-model")
for name in ("generation_config.json",):
    import shutil
    shutil.copy(f".gpu_smoke/model/{name}", f"/tmp/gpu-smoke-model/{name}")
print(f"random {config.model_type} ({config.num_hidden_layers} layers, d={config.hidden_size}) on "
      f"{torch.cuda.get_device_name()}, torch {torch.__version__}")
EOF
    local model=/tmp/gpu-smoke-model status=0
    timeout 150 python3 bench/throughput.py --pretrained "$model" --skip-score --device cuda --dtype bfloat16 \
        --gen-batches 1,32,128 --max-gen-toks 64 --repeats 2 --peak-sizes 4096,8192 --copy-mb 2048 \
        2>&1 | tee "$out/throughput.txt" || status=1
    timeout 200 python3 bench/sweep_vs_naive.py --pretrained "$model" --device cuda --dtype bfloat16 --mode cot \
        --configs 26 --naive-configs 2 --num-roles 2 --limit 2 --batch-size 64 --max-gen-toks 64 \
        2>&1 | tee "$out/sweep_cot.txt" || status=1
    timeout 120 python3 bench/sweep_vs_naive.py --pretrained "$model" --device cuda --dtype bfloat16 \
        --configs 26 --naive-configs 2 --num-roles 2 --limit 4 --batch-size 64 \
        2>&1 | tee "$out/sweep_ll.txt" || status=1
    echo "outputs in $out"
    exit $status
}

case "$MODE" in
    prepare) prepare "$@" ;;
    run) run ;;
    *) echo "usage: bench/gpu_smoke.sh prepare [--no-wheels] | run (see the comments at the top)" >&2; exit 2 ;;
esac
