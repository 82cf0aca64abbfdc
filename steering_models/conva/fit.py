"""``fit``: value vectors (probes), the probe gate and the CAA vector for each value, plus steering files.

For every value: pooled residual embeddings of its positive and negative sentences at every block
(cached), one logistic-regression probe per layer with a held-out split over pairs, the selected
layers, the CAA mean difference, and (unless ``gate_negatives`` is None) the offline probe gate.
Writes into ``out``: ``<value>.json`` + ``<value>.safetensors`` (the artifact), ``caa_<value>.safetensors``,
``steer_conva_<value>.yaml`` (gated), ``steer_conva_nogate_<value>.yaml``, ``steer_caa_<value>.yaml``,
and once ``unembed.safetensors`` + ``vocab.json`` (the unembedding matrix, float16, with the final
norm's scale, for ``python -m analysis logit-lens``, which never loads a language model).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml

from steering_models.conva import artifacts, caa, probes
from steering_models.conva.activations import cached_collect
from steering_models.conva.data import (
    ConvaDataError,
    Pairs,
    load_pairs,
    mmlu_questions,
    texts_digest,
)
from steering_models.conva.defaults import ACC_THRESHOLD, EXCLUDE_LAST, MIN_PAIRS, TEST_FRACTION
from steering_models.model_helpers import load_lm


class FitError(ValueError):
    """A value could not be fitted (the message says why and what to change)."""


GATE_LAYERS = ("all", "lowest")


@dataclass
class FitSettings:
    pooling: str = "last"
    pairs: int | None = None
    pair_set: str = "context_controlled"
    test_fraction: float = TEST_FRACTION
    seed: int = 0
    threshold: float = ACC_THRESHOLD
    exclude_last: int = EXCLUDE_LAST
    c: float = 1.0
    batch_size: int = 8
    max_length: int = 256
    gate_negatives_n: int = 200
    gate_format: str = "raw"  # raw | chat: the gate's training texts as user turns of the chat template
    # the gate reads the mean over the prompt's tokens: a last-token gate reads the chat template's tail
    # (embedded default, power: g = 0.82 on a dilemma whose prompt ends "assistant", 0.34 on the same
    # prompt ending "assistant\n", as lm-eval's generate_until feeds it)
    gate_pooling: str = "mean"
    # all: a gate probe at every layer (any steered layer set works); lowest: only at the lowest selected
    # layer, where the written steering files read it (24x fewer gate fits; other lowest layers are refused)
    gate_layers: str = "all"
    caa_layer: int | None = None
    caa_strength: float = 1.0
    min_pairs: int = MIN_PAIRS
    # the gated steering file's g_0 (None: the op's default); choose it with gate-check --offset
    g0: float | None = None

    def __post_init__(self) -> None:  # checked when the settings are made, before any model loads
        if self.gate_layers not in GATE_LAYERS:
            raise ConvaDataError(f"gate layers {self.gate_layers!r} is not one of {', '.join(GATE_LAYERS)}. "
                                 "Fix --gate-layers.")
        if self.g0 is not None and not 0.0 <= self.g0 < 1.0:
            raise ConvaDataError(f"g0={self.g0} is not a gate threshold in [0, 1): the gate g(x) is a "
                                 "probability. Fix --g0.")


GATE_FORMATS = ("raw", "chat")


def gate_texts(texts: list[str], tokenizer: Any, fmt: str) -> list[str]:
    """The gate's training texts: as they are, or as the user turn of a chat-templated prompt (the form
    the evaluation prompts take under lm_eval --apply_chat_template)."""
    if fmt == "raw":
        return texts
    if fmt != "chat":
        raise ConvaDataError(f"gate format {fmt!r} is not one of {', '.join(GATE_FORMATS)}. Fix --gate-format.")
    if not getattr(tokenizer, "chat_template", None):
        raise ConvaDataError("--gate-format chat needs a tokenizer with a chat template; this one has none. "
                             "Use --gate-format raw.")
    return [tokenizer.apply_chat_template([{"role": "user", "content": t}], tokenize=False,
                                          add_generation_prompt=True) for t in texts]


def fit_value(model: Any, tokenizer: Any, identity: dict[str, Any], pairs: Pairs, s: FitSettings,
              negatives: torch.Tensor | None, negatives_hash: str | None,
              cache_dir: Path | None) -> artifacts.Artifact:
    texts = pairs.positive + pairs.negative
    acts = cached_collect(model, tokenizer, texts, identity, pairs.digest(), cache_dir, s.pooling,
                          s.batch_size, s.max_length, desc=f"{pairs.value}: activations")
    n = len(pairs.positive)
    y = torch.cat([torch.ones(n), torch.zeros(n)])
    groups = np.concatenate([np.arange(n), np.arange(n)])
    fitted = probes.fit_layers(acts, y, groups, s.test_fraction, s.seed, s.c, desc=f"{pairs.value}: probes")
    layers = probes.select_layers(fitted.test_acc, s.threshold, s.exclude_last)
    if not layers:
        allowed = max(0, acts.shape[1] - s.exclude_last)
        best = int(fitted.test_acc[:allowed].argmax()) if allowed else -1
        best_txt = f"best allowed layer {best}: {float(fitted.test_acc[best]):.3f}" if allowed else "no layer allowed"
        raise FitError(f"value {pairs.value!r}: no layer has probe test accuracy > {s.threshold} outside the "
                       f"last {s.exclude_last} layers ({best_txt}). Lower --threshold, change "
                       "--exclude-last, or use more pairs.")
    tensors = {"w": fitted.w, "b": fitted.b, "v": fitted.v, "train_acc": fitted.train_acc,
               "test_acc": fitted.test_acc, "caa": caa.mean_difference(acts[:n], acts[n:])}
    settings: dict[str, Any] = {k: v for k, v in vars(s).items()}
    settings.update(n_pairs=n, data_file=Path(pairs.source).name)
    if negatives is not None:
        gate_pos = acts
        if s.gate_format != "raw" or s.gate_pooling != s.pooling:
            formatted = gate_texts(texts, tokenizer, s.gate_format)
            gate_pos = cached_collect(model, tokenizer, formatted, identity, texts_digest(formatted), cache_dir,
                                      s.gate_pooling, s.batch_size, s.max_length,
                                      desc=f"{pairs.value}: gate texts")
        xg = torch.cat([gate_pos, negatives])
        yg = torch.cat([torch.ones(len(acts)), torch.zeros(len(negatives))])
        gg = np.concatenate([groups, n + np.arange(len(negatives))])
        gate = probes.fit_layers(xg, yg, gg, s.test_fraction, s.seed, s.c, desc=f"{pairs.value}: gate",
                                 only=[min(layers)] if s.gate_layers == "lowest" else None)
        tensors.update(gate_w=gate.w, gate_b=gate.b, gate_test_acc=gate.test_acc)
        settings.update(gate_negatives="MMLU test questions (subjects other than mmlu_conva4's)",
                        gate_negatives_hash=negatives_hash, gate_negatives_count=len(negatives))
    return artifacts.Artifact(pairs.value, layers, identity, pairs.digest(), tensors, settings)


def write_steering_files(art: artifacts.Artifact, out: Path, s: FitSettings) -> list[Path]:
    value = art.value
    vec = caa.save_vectors(art.tensors["caa"], out / f"caa_{value}.safetensors", value)
    caa_layer = s.caa_layer if s.caa_layer is not None else art.layers[len(art.layers) // 2]
    gated: dict[str, Any] = {"layer": art.layers, "op": "conva", "artifact": ".", "value": value,
                             "gate": {"type": "probe"}}
    gated_meta: dict[str, Any] = {"kind": "conva", "value": value, "gate": "probe"}
    if s.g0 is not None:
        gated["g0"] = gated_meta["g0"] = s.g0
    specs = {
        f"steer_conva_{value}.yaml": {"name": f"conva-{value}", "meta": gated_meta, "interventions": [gated]},
        f"steer_conva_nogate_{value}.yaml": {
            "name": f"conva-nogate-{value}", "meta": {"kind": "conva", "value": value, "gate": "none"},
            "interventions": [{"layer": art.layers, "op": "conva", "artifact": ".", "value": value,
                               "gate": "none"}]},
        f"steer_caa_{value}.yaml": {
            "name": f"caa-{value}", "meta": {"kind": "caa", "value": value},
            "interventions": [{"layer": caa_layer, "op": "add", "strength": s.caa_strength,
                               "source": {"vector": vec.name, "key": f"layer_{caa_layer}"}}]},
    }
    if not art.has_gate:
        del specs[f"steer_conva_{value}.yaml"]
    paths = []
    for name, spec in specs.items():
        (out / name).write_text(yaml.safe_dump(spec, sort_keys=False))
        paths.append(out / name)
    return paths


def save_unembedding(model: Any, tokenizer: Any, identity: dict[str, Any], out: Path) -> Path:
    """``unembed.safetensors`` (``W_U`` [V, D] float16, ``norm_scale`` [D]) + ``vocab.json``."""
    from safetensors.torch import save_file

    w_u = model.get_output_embeddings().weight.detach().float()
    d = w_u.shape[1]
    norm = getattr(model.base_model, "norm", None)
    scale = torch.ones(d)
    if norm is not None and getattr(norm, "weight", None) is not None:
        scale = norm.weight.detach().float().cpu()
        if identity["model_type"].startswith("gemma"):  # Gemma's RMSNorm multiplies by (1 + weight)
            scale = 1.0 + scale
    path = out / "unembed.safetensors"
    save_file({"W_U": w_u.half().cpu().contiguous(), "norm_scale": scale.contiguous()}, str(path),
              metadata={"model": identity["id"]})
    vocab = [tokenizer.decode([i]) for i in range(w_u.shape[0])]
    (out / "vocab.json").write_text(json.dumps({"model": identity, "tokens": vocab}))
    return path


def run_fit(pretrained: str, values: list[str], data_dir: str | None, out: Path, s: FitSettings,
            gate_negatives: str | None, cache_dir: Path | None, device: str = "cpu", dtype: str = "float32",
            unembed: bool = True, log: Any = print) -> tuple[list[artifacts.Artifact], list[str]]:
    """Fit every value; returns (artifacts written, error messages of values that failed)."""
    all_pairs = [load_pairs(v, data_dir, s.pair_set, s.pairs, s.min_pairs) for v in values]  # fail early
    negatives_texts = None
    if gate_negatives is not None:
        negatives_texts = mmlu_questions(gate_negatives, s.gate_negatives_n, s.seed)
        if len(negatives_texts) < s.min_pairs:
            raise ConvaDataError(f"only {len(negatives_texts)} gate negatives under {gate_negatives}; "
                                 f"need {s.min_pairs}. Point --gate-negatives at a full MMLU folder.")
    model, tokenizer, identity = load_lm(pretrained, device, dtype)
    out.mkdir(parents=True, exist_ok=True)
    negatives = neg_hash = None
    if negatives_texts is not None:
        negatives_texts = gate_texts(negatives_texts, tokenizer, s.gate_format)
        neg_hash = texts_digest(negatives_texts)
        negatives = cached_collect(model, tokenizer, negatives_texts, identity, neg_hash, cache_dir,
                                   s.gate_pooling, s.batch_size, s.max_length, desc="gate negatives")
    written, errors = [], []
    for pairs in all_pairs:
        try:
            art = fit_value(model, tokenizer, identity, pairs, s, negatives, neg_hash, cache_dir)
        except FitError as e:
            errors.append(str(e))
            log(f"error: {e}")
            continue
        js = artifacts.save(art, out)
        write_steering_files(art, out, s)
        acc = art.tensors["test_acc"]
        gate_txt = ""
        if art.has_gate:
            gate_txt = f"; gate test acc at layer {art.layers[0]}: {float(art.tensors['gate_test_acc'][art.layers[0]]):.3f}"
        log(f"{art.value}: {len(pairs.positive)} pairs, layers {art.layers} (test acc "
            f"{min(float(acc[i]) for i in art.layers):.3f}-{max(float(acc[i]) for i in art.layers):.3f}){gate_txt} -> {js}")
        written.append(art)
    if unembed and written:
        log(f"unembedding for logit-lens -> {save_unembedding(model, tokenizer, identity, out)}")
    return written, errors
