"""Build simple steering vectors as safetensors files for the ``add`` op.

``python -m steering_models.vectors token-diff --pretrained default --plus " yes" --minus " no" --out v.safetensors``
writes the difference of the two tokens' input-embedding rows (unit norm), read straight from the
model's safetensors (the model is not built). A crude but transparent "say yes" direction, handy for
smoke runs; the research-grade vectors are SAE decoder rows (``source: {sae: ...}``) and ConVA/CAA
vectors (``python -m steering_models.conva``).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import save_file

from steering_models.default_model import resolve_pretrained
from steering_models.errors import SpecError


def embedding_rows(model_dir: Path, token_ids: list[int]) -> torch.Tensor:
    """Rows of the input embedding matrix, read lazily from the model's safetensors shards."""
    files = sorted(model_dir.glob("*.safetensors"))
    index = model_dir / "model.safetensors.index.json"
    if index.is_file():
        weight_map = json.loads(index.read_text())["weight_map"]
    else:
        weight_map = {}
        for f in files:
            with safe_open(str(f), framework="pt") as st:
                weight_map.update({k: f.name for k in st.keys()})
    names = [k for k in weight_map if k.endswith("embed_tokens.weight") or k.endswith("wte.weight")]
    if not names:
        raise SpecError(f"model folder {model_dir} has no input embedding (…embed_tokens.weight) in its "
                        "safetensors. Pass a HF causal LM folder.")
    with safe_open(str(model_dir / weight_map[names[0]]), framework="pt") as st:
        table = st.get_slice(names[0])
        return torch.stack([table[i: i + 1][0] for i in token_ids]).float()


def token_diff(pretrained: str, plus: str, minus: str) -> torch.Tensor:
    from transformers import AutoTokenizer

    model_dir = Path(str(resolve_pretrained(pretrained)))
    tok = AutoTokenizer.from_pretrained(str(model_dir))
    ids = []
    for text in (plus, minus):
        enc = tok(text, add_special_tokens=False)["input_ids"]
        if len(enc) != 1:
            raise SpecError(f"--plus/--minus text {text!r} is {len(enc)} tokens for this tokenizer, expected 1. "
                            "Pick a single-token text (e.g. ' yes').")
        ids.append(enc[0])
    rows = embedding_rows(model_dir, ids)
    vec = rows[0] - rows[1]
    return vec / vec.norm()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m steering_models.vectors", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("token-diff", help="unit vector embedding(plus) - embedding(minus)")
    p.add_argument("--pretrained", default="default")
    p.add_argument("--plus", required=True)
    p.add_argument("--minus", required=True)
    p.add_argument("--out", required=True, type=Path)
    args = ap.parse_args(argv)
    vec = token_diff(args.pretrained, args.plus, args.minus)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    save_file({"v": vec.contiguous()}, str(args.out), metadata={"plus": args.plus, "minus": args.minus})
    print(f"wrote {args.out} (d_model={vec.numel()})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
