"""``sft``: the paper's SFT baseline (§4.1, Appendix H) as a LoRA adapter (peft), trained on what is at hand.

LoRA on ``q_proj``/``k_proj``/``v_proj``, rank 8, alpha 32, dropout 0.1, learning rate 1e-4, 10 epochs,
batch 4 with 4 gradient-accumulation steps (Appendix H, the defaults). The paper trains on FULCRA, which
is not available offline: here the targets are the value's positive sentences from ConVA's pairs
(:mod:`steering_models.conva.sft_data`), and every output says so (``meta.kind: sft``, ``meta.data``).
Choices the paper leaves open, ours (options): AdamW (torch's, weight decay 0), a linear decay of the
learning rate to 0 with no warm-up and gradient clipping at norm 1 (transformers' Trainer defaults, which
the paper's wording - "per device", "gradient accumulation", "gradient checkpointing" - suggests it used);
the data order is shuffled per epoch from ``seed``; gradient checkpointing (the paper's, for memory) is off
by default (``gradient_checkpointing``: results are the same, it only trades time for memory).

``out`` gets ``adapter/`` (peft's ``adapter_config.json`` + ``adapter_model.safetensors``: pass it as
``--model_args peft=OUT/adapter`` to ``steered-hf``), ``steer_sft_<value>.yaml`` (no interventions; its name
``sft-<value>`` and ``meta`` label the runs), ``sft_record.json`` and ``loss_curve.png``
(:mod:`steering_models.conva.sft_record`), and ``checkpoints/epoch-NNNN/`` after every epoch (adapter,
optimizer, scheduler and RNG state; written under ``.partial`` and renamed when complete). A rerun of the
same command continues after the last complete epoch (the result equals an uninterrupted run); a finished
run is not redone; other settings, data or model in the same ``out`` are refused unless ``fresh``.
"""

from __future__ import annotations

import hashlib
import json
import math
import shutil
import time
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
import yaml

from lm_eval_tasks.schwartz.data import VALUES
from steering_models.conva.data import load_pairs
from steering_models.conva.defaults import (
    MIN_PAIRS,
    SFT_BATCH_SIZE,
    SFT_EPOCHS,
    SFT_GRAD_ACCUM,
    SFT_LORA_ALPHA,
    SFT_LORA_DROPOUT,
    SFT_LORA_RANK,
    SFT_LR,
    SFT_TARGET_MODULES,
)
from steering_models.conva.sft_data import FORMATS, Example, build_examples, collate
from steering_models.conva.sft_record import EpochLoss, StepLoss, TrainingRecord, plot_loss
from steering_models.model_helpers import named_identity
from steering_models.sources import file_sha256

SCHEDULES = ("linear", "constant")
DATA_ID = "conva_positive_sentences"


class SFTError(ValueError):
    """The SFT run cannot start or continue as asked (the message says which setting to change)."""


@dataclass(frozen=True)
class SFTSettings:
    rank: int = SFT_LORA_RANK
    alpha: float = SFT_LORA_ALPHA
    dropout: float = SFT_LORA_DROPOUT
    target_modules: tuple[str, ...] = SFT_TARGET_MODULES
    lr: float = SFT_LR
    epochs: int = SFT_EPOCHS
    batch_size: int = SFT_BATCH_SIZE
    grad_accum: int = SFT_GRAD_ACCUM
    schedule: str = "linear"
    warmup_steps: int = 0
    weight_decay: float = 0.0
    max_grad_norm: float = 1.0
    max_length: int = 128
    sentences: int | None = None  # the first N positive sentences (None: all)
    pair_set: str = "context_controlled"
    format: str = "chat"
    seed: int = 0
    gradient_checkpointing: bool = False

    def __post_init__(self) -> None:  # checked when the settings are made, before any model loads
        for name in ("rank", "epochs", "batch_size", "grad_accum", "max_length"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise SFTError(f"sft setting `{name}`={value!r} must be a positive integer. Fix --{_flag(name)}.")
        for name in ("lr", "alpha"):
            if not getattr(self, name) > 0:
                raise SFTError(f"sft setting `{name}`={getattr(self, name)!r} must be > 0. Fix --{_flag(name)}.")
        if not 0.0 <= self.dropout < 1.0:
            raise SFTError(f"sft setting `dropout`={self.dropout!r} must be in [0, 1). Fix --dropout.")
        if self.schedule not in SCHEDULES:
            raise SFTError(f"sft setting `schedule`={self.schedule!r} is not one of {', '.join(SCHEDULES)}. "
                           "Fix --lr-schedule.")
        if self.format not in FORMATS:
            raise SFTError(f"sft setting `format`={self.format!r} is not one of {', '.join(FORMATS)}. Fix --format.")
        if self.sentences is not None and self.sentences < MIN_PAIRS:
            raise SFTError(f"sft setting `sentences`={self.sentences} is below {MIN_PAIRS}: too few to call a "
                           "fine-tune. Use --sentences >= 10, or leave it out for all.")
        if not self.target_modules:
            raise SFTError("sft setting `target_modules` is empty. Name the linear layers LoRA adapts, e.g. "
                           "--target-modules q_proj,k_proj,v_proj.")

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["target_modules"] = list(self.target_modules)
        return d


def _flag(name: str) -> str:
    return {"grad_accum": "grad-accum", "batch_size": "batch-size", "max_length": "max-length"}.get(name, name)


# ---------------------------------------------------------------------------------------------- the run
def run_sft(pretrained: str, value: str, data_dir: str | None, out: Path, s: SFTSettings,
            device: str = "cpu", dtype: str = "float32", fresh: bool = False, progress: bool = True,
            keep_checkpoints: int = 1, log: Callable[[str], None] = print,
            on_epoch_end: Callable[[int, TrainingRecord], None] | None = None) -> TrainingRecord:
    """Train (or continue, or find finished) the SFT adapter of ``value`` in ``out``; returns its record.

    ``keep_checkpoints``: how many of the latest epoch checkpoints stay on disk (the last one suffices to
    resume). ``on_epoch_end(epoch, record)`` is called after each epoch's checkpoint is complete (epoch
    from 1)."""
    if keep_checkpoints < 1:
        raise SFTError(f"keep_checkpoints={keep_checkpoints} must be >= 1: resuming needs the last epoch's "
                       "checkpoint. Fix --keep-checkpoints.")
    from transformers import AutoConfig

    from steering_models.default_model import resolve_pretrained

    if value not in VALUES:
        raise SFTError(f"value {value!r} is not a Schwartz value of ConVA: expected one of {', '.join(VALUES)}. "
                       "Fix --value.")
    pairs = load_pairs(value, data_dir, s.pair_set, s.sentences)  # bad data fails before any model loads
    sentences = pairs.positive
    path = str(resolve_pretrained(pretrained))
    config = AutoConfig.from_pretrained(path)
    identity = named_identity(pretrained, config)
    data = {"id": DATA_ID, "file": Path(pairs.source).name, "pair_set": s.pair_set, "n_sentences": len(sentences),
            "sha256": _digest(sentences),
            "note": f"the positive sentences of ConVA's {s.pair_set} pairs for {value}, as targets: a substitute "
                    "for FULCRA (the paper's SFT data), which is not available offline"}
    fingerprint = _digest([s.to_dict(), data, {k: identity[k] for k in sorted(identity) if k != "id"}])
    meta = {"kind": "sft", "value": value, "data": DATA_ID, "data_note": data["note"], "n_sentences": len(sentences),
            "data_sha256": data["sha256"], "format": s.format, "epochs": s.epochs,
            "lora": f"r={s.rank} alpha={s.alpha:g} dropout={s.dropout:g} on {','.join(s.target_modules)}"}

    out.mkdir(parents=True, exist_ok=True)
    if fresh:
        for name in ("checkpoints", "adapter"):
            shutil.rmtree(out / name, ignore_errors=True)
        (out / "sft_record.json").unlink(missing_ok=True)
    record_path = out / "sft_record.json"
    if record_path.is_file():
        done = TrainingRecord.read(record_path)
        _same_run(done.fingerprint, fingerprint, out, "sft_record.json")
        if done.status == "done" and (out / "adapter" / "adapter_model.safetensors").is_file():
            log(f"{value}: already trained in {out} ({len(done.epochs)} epochs, final loss "
                f"{done.epochs[-1].loss:.4f}); nothing to do (--fresh retrains)")
            return done
    last = _last_checkpoint(out)
    if last is not None:
        _same_run(json.loads((last / "progress.json").read_text())["fingerprint"], fingerprint, out, last.name)
    _check_targets(config, s.target_modules)

    model, tokenizer = _load(path, s, device, dtype)
    examples = build_examples(sentences, tokenizer, s.format, s.max_length)
    steps_per_epoch = math.ceil(math.ceil(len(examples) / s.batch_size) / s.grad_accum)
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=s.lr,
                            weight_decay=s.weight_decay)
    sched = _scheduler(opt, s, steps_per_epoch * s.epochs)
    record = TrainingRecord(value, identity, s.to_dict(), data, meta, fingerprint)
    start = 0
    if last is not None:
        start, record = _restore(last, model, opt, sched)
        log(f"{value}: resuming after epoch {start} of {s.epochs} from {last}")
    record.starts.append(start)

    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    from tqdm.auto import tqdm

    bar = tqdm(total=steps_per_epoch * s.epochs, initial=start * steps_per_epoch, desc=f"sft {value}",
               unit="step", disable=not progress)
    model.train()
    try:
        for epoch in range(start, s.epochs):
            t0 = time.perf_counter()
            losses = []
            for group in _epoch_groups(examples, s, epoch):
                loss = _accumulate(model, group, pad_id, device)
                if s.max_grad_norm > 0:
                    torch.nn.utils.clip_grad_norm_([p for p in model.parameters() if p.requires_grad],
                                                   s.max_grad_norm)
                lr = opt.param_groups[0]["lr"]
                opt.step()
                sched.step()
                opt.zero_grad(set_to_none=True)
                losses.append(loss)
                record.steps.append(StepLoss(len(record.steps) + 1, epoch + 1, loss, lr))
                bar.update(1)
                bar.set_postfix(epoch=epoch + 1, loss=f"{loss:.4f}")
            record.epochs.append(EpochLoss(epoch + 1, sum(losses) / len(losses), time.perf_counter() - t0))
            _checkpoint(out, epoch + 1, model, opt, sched, record, keep_checkpoints)
            record.write(record_path)
            if on_epoch_end is not None:
                on_epoch_end(epoch + 1, record)
    finally:
        bar.close()
    model.eval()
    return _finish(out, model, record, record_path, log)


def _finish(out: Path, model: Any, record: TrainingRecord, record_path: Path,
            log: Callable[[str], None]) -> TrainingRecord:
    tmp = out / "adapter.partial"
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(str(tmp))
    shutil.rmtree(out / "adapter", ignore_errors=True)
    tmp.replace(out / "adapter")
    record.adapter_sha256 = file_sha256(out / "adapter" / "adapter_model.safetensors")
    record.meta["adapter_sha256"] = record.adapter_sha256
    record.status = "done"
    steer = out / f"steer_sft_{record.value}.yaml"
    steer.write_text(yaml.safe_dump({"name": f"sft-{record.value}", "meta": record.meta, "interventions": []},
                                    sort_keys=False))
    plot = plot_loss(record, out / "loss_curve.png")
    record.write(record_path)
    first, final = record.epochs[0].loss, record.epochs[-1].loss
    log(f"{record.value}: {len(record.epochs)} epochs, loss {first:.4f} -> {final:.4f}; adapter {out / 'adapter'}, "
        f"steering file {steer}, record {record_path}, plot {plot}")
    return record


# ---------------------------------------------------------------------------------------------- pieces
def _digest(obj: Any) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, ensure_ascii=False).encode()).hexdigest()


def _same_run(saved: str, current: str, out: Path, what: str) -> None:
    if saved != current:
        raise SFTError(f"{out} already holds an SFT run ({what}) with other settings, data or model than this "
                       "command's. Pass another --out, or --fresh to discard it and start over.")


def _check_targets(config: Any, targets: tuple[str, ...]) -> None:
    """Every LoRA target is a linear layer of the model (checked on an empty skeleton: no weights load)."""
    from transformers import AutoModelForCausalLM

    with torch.device("meta"):
        skeleton = AutoModelForCausalLM.from_config(config)
    linear = sorted({n.rsplit(".", 1)[-1] for n, m in skeleton.named_modules() if isinstance(m, torch.nn.Linear)})
    missing = [t for t in targets if t not in linear]
    if missing:
        raise SFTError(f"sft setting `target_modules`={','.join(targets)}: the model has no linear layer named "
                       f"{', '.join(missing)} (its linear layers: {', '.join(linear)}). Fix --target-modules.")


def _load(path: str, s: SFTSettings, device: str, dtype: str) -> tuple[Any, Any]:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(path)
    base = AutoModelForCausalLM.from_pretrained(path, dtype=getattr(torch, dtype)).to(device)
    if s.gradient_checkpointing:
        base.gradient_checkpointing_enable()
        base.enable_input_require_grads()
    return lora_model(base, s), tokenizer


def lora_model(base: Any, s: SFTSettings) -> Any:
    """The untrained LoRA model of ``base`` as ``run_sft`` builds it: A seeded from ``s.seed``, B zero (so
    it computes exactly what ``base`` computes until it is trained)."""
    from peft import LoraConfig, get_peft_model

    torch.manual_seed(s.seed)
    config = LoraConfig(r=s.rank, lora_alpha=s.alpha, lora_dropout=s.dropout, target_modules=list(s.target_modules),
                        bias="none", task_type="CAUSAL_LM")
    with warnings.catch_warnings():  # peft asks transformers a deprecated question (is_gradient_checkpointing)
        warnings.filterwarnings("ignore", category=FutureWarning, message=".*is_gradient_checkpointing.*")
        return get_peft_model(base, config)


def _scheduler(opt: torch.optim.Optimizer, s: SFTSettings, total_steps: int) -> Any:
    from transformers import get_scheduler

    name = "linear" if s.schedule == "linear" else "constant_with_warmup"
    return get_scheduler(name, opt, num_warmup_steps=s.warmup_steps, num_training_steps=total_steps)


def _epoch_groups(examples: list[Example], s: SFTSettings, epoch: int) -> list[list[list[Example]]]:
    """The epoch's optimizer steps, each a list of micro-batches (seeded order: the same on a resumed run)."""
    order = torch.randperm(len(examples), generator=torch.Generator().manual_seed(s.seed * 100_003 + epoch))
    micro = [[examples[i] for i in order[j:j + s.batch_size].tolist()] for j in range(0, len(examples), s.batch_size)]
    return [micro[k:k + s.grad_accum] for k in range(0, len(micro), s.grad_accum)]


def _accumulate(model: Any, group: list[list[Example]], pad_id: int, device: str) -> float:
    """Forward + backward of one optimizer step's micro-batches; returns their mean loss."""
    total = 0.0
    for batch in group:
        inputs = {k: v.to(device) for k, v in collate(batch, pad_id).items()}
        loss = model(**inputs).loss
        (loss / len(group)).backward()
        total += float(loss.detach())
    return total / len(group)


# ---------------------------------------------------------------------------------------------- checkpoints
def _checkpoint_dirs(out: Path) -> list[Path]:
    root = out / "checkpoints"
    return sorted(p for p in root.glob("epoch-[0-9]*") if p.is_dir() and not p.name.endswith(".partial")) \
        if root.is_dir() else []


def _last_checkpoint(out: Path) -> Path | None:
    done = [p for p in _checkpoint_dirs(out) if (p / "progress.json").is_file()]
    return done[-1] if done else None


def _checkpoint(out: Path, epoch: int, model: Any, opt: torch.optim.Optimizer, sched: Any,
                record: TrainingRecord, keep: int) -> Path:
    final = out / "checkpoints" / f"epoch-{epoch:04d}"
    tmp = final.with_name(final.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(str(tmp))  # adapter_model.safetensors + adapter_config.json
    state = {"optimizer": opt.state_dict(), "scheduler": sched.state_dict(), "rng": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda_rng"] = torch.cuda.get_rng_state_all()
    torch.save(state, tmp / "train_state.pt")  # tensors and numbers only: read back with weights_only=True
    (tmp / "progress.json").write_text(json.dumps({"epoch": epoch, "fingerprint": record.fingerprint,
                                                   "record": json.loads(record.to_json())}))
    shutil.rmtree(final, ignore_errors=True)
    tmp.replace(final)
    for old in _checkpoint_dirs(out)[:-keep]:
        shutil.rmtree(old, ignore_errors=True)
    return final


def _restore(ckpt: Path, model: Any, opt: torch.optim.Optimizer, sched: Any) -> tuple[int, TrainingRecord]:
    from peft import set_peft_model_state_dict
    from safetensors.torch import load_file

    set_peft_model_state_dict(model, load_file(str(ckpt / "adapter_model.safetensors")))
    state = torch.load(ckpt / "train_state.pt", weights_only=True)
    opt.load_state_dict(state["optimizer"])
    sched.load_state_dict(state["scheduler"])
    torch.set_rng_state(state["rng"])
    if "cuda_rng" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda_rng"])
    progress = json.loads((ckpt / "progress.json").read_text())
    return int(progress["epoch"]), TrainingRecord.from_dict(progress["record"])
