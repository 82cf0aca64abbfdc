"""Train a TopK SAE on one block's residual stream of a HF model, offline, with sae-lens's own trainer.

``python -m steering_models.sae train`` runs :func:`train_sae`: build the corpus (``corpus.py``), collect
activations at ``blocks.{layer}.hook_resid_post`` (``activations.py``, cached and resumable), train
``sae_lens.TopKTrainingSAE`` with ``sae_lens.SAETrainer`` (activation-norm scaling estimated and folded
back, cosine learning-rate decay, AuxK loss for dead features), save the inference SAE in sae-lens's
on-disk format in fp16, and measure its quality on held-out documents (``quality.py``).
The output folder is what ``SAE.load_from_disk`` reads, plus ``training.json`` (every setting, the
corpus, the wall time) and ``quality.json`` (the held-out figures).
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from steering_models.sae import activations as acts_mod
from steering_models.sae import corpus as corpus_mod
from steering_models.sae.quality import measure

TRAINING_FILE = "training.json"
QUALITY_FILE = "quality.json"


@dataclass(frozen=True)
class TrainSettings:
    layer: int = 12
    d_sae: int = 4096
    k: int = 64
    context_size: int = 256
    train_tokens: int = 250_000
    heldout_tokens: int = 16_384
    heldout_percent: int = 5
    n_prompts: int = 400
    epochs: float = 8.0
    batch_size: int = 4096
    lr: float = 8e-4
    lr_warm_up_fraction: float = 0.05
    aux_loss_coefficient: float = 1.0
    seed: int = 0
    collect_batch_size: int = 8
    dtype: str = "float16"  # of the saved weights

    def check(self) -> None:
        if self.k < 1 or self.k > self.d_sae:
            raise ValueError(f"SAE setting `k`={self.k} must be between 1 and d_sae={self.d_sae}. Fix --k.")
        if self.dtype not in ("float16", "float32", "bfloat16"):
            raise ValueError(f"SAE setting `dtype`={self.dtype!r} is not float16, bfloat16 or float32. Fix --dtype.")
        if not 0 < self.heldout_percent < 50:
            raise ValueError(f"SAE setting `heldout_percent`={self.heldout_percent} must be in 1-49.")


def _split_corpus(data_dir: Path, s: TrainSettings) -> tuple[list, list, list]:
    docs = corpus_mod.build_corpus(data_dir, s.n_prompts, s.seed)
    return (docs, *corpus_mod.split_docs(docs, s.heldout_percent))


def _pack_heldout(tokenizer: Any, heldout_docs: list, s: TrainSettings) -> torch.Tensor:
    return corpus_mod.pack_windows(tokenizer, heldout_docs, s.context_size, s.heldout_tokens, s.seed + 1)


def heldout_windows(tokenizer: Any, data_dir: Path, s: TrainSettings) -> torch.Tensor:
    """The held-out windows of :func:`windows_for` alone (the train windows are not tokenized)."""
    return _pack_heldout(tokenizer, _split_corpus(data_dir, s)[2], s)


def windows_for(tokenizer: Any, data_dir: Path, s: TrainSettings) -> tuple[torch.Tensor, torch.Tensor, dict]:
    """(train windows, held-out windows, corpus description) — deterministic given the settings."""
    docs, train_docs, heldout_docs = _split_corpus(data_dir, s)
    train = corpus_mod.pack_windows(tokenizer, train_docs, s.context_size, s.train_tokens, s.seed)
    heldout = _pack_heldout(tokenizer, heldout_docs, s)
    desc = {
        "documents": {src: sum(d.source == src for d in docs) for src in corpus_mod.SOURCES},
        "train_windows": int(train.shape[0]), "heldout_windows": int(heldout.shape[0]),
        "train_fingerprint": corpus_mod.corpus_fingerprint(train),
        "heldout_fingerprint": corpus_mod.corpus_fingerprint(heldout),
        "split": f"documents whose sha256 bucket (0-99) is < {s.heldout_percent} are held out",
    }
    return train, heldout, desc


def cached_activations(model: Any, identity: dict[str, Any], windows: torch.Tensor, fingerprint: str,
                       s: TrainSettings, cache_dir: Path, desc: str) -> torch.Tensor:
    import hashlib

    key = hashlib.sha256(json.dumps([identity, s.layer, fingerprint], sort_keys=True).encode()).hexdigest()[:20]
    folder = cache_dir / key
    paths = acts_mod.collect_shards(model, s.layer, windows, folder, s.collect_batch_size, desc=desc)
    acts_mod.write_manifest(folder, {"identity": identity, "layer": s.layer, "windows": fingerprint,
                                     "n_windows": int(windows.shape[0])})
    return acts_mod.load_shards(paths)


def batches(acts: torch.Tensor, batch_size: int, seed: int) -> Iterator[torch.Tensor]:
    """Endless float32 batches: a fresh random permutation of all tokens per epoch."""
    g = torch.Generator().manual_seed(seed)
    while True:
        perm = torch.randperm(len(acts), generator=g)
        for s in range(0, len(perm) - batch_size + 1, batch_size):
            yield acts[perm[s: s + batch_size]].float()


def fit(train_acts: torch.Tensor, s: TrainSettings, metadata: dict[str, Any]) -> Any:
    """A trained ``TopKTrainingSAE`` (activation scaling folded in) on ``train_acts`` ``[n, d_in]``."""
    from sae_lens import SAETrainer, TopKTrainingSAE, TopKTrainingSAEConfig
    from sae_lens.config import SAETrainerConfig

    torch.manual_seed(s.seed)
    cfg = TopKTrainingSAEConfig(d_in=int(train_acts.shape[1]), d_sae=s.d_sae, k=s.k,
                                aux_loss_coefficient=s.aux_loss_coefficient,
                                normalize_activations="expected_average_only_in", device="cpu")
    for key, value in metadata.items():
        cfg.metadata[key] = value
    sae = TopKTrainingSAE(cfg)
    total = int(s.epochs * len(train_acts)) // s.batch_size * s.batch_size
    steps = total // s.batch_size
    trainer_cfg = SAETrainerConfig(
        total_training_samples=total, train_batch_size_samples=s.batch_size, lr=s.lr,
        lr_end=s.lr / 10, lr_scheduler_name="cosineannealing",
        lr_warm_up_steps=max(1, int(s.lr_warm_up_fraction * steps)), lr_decay_steps=0,
        device="cpu", dead_feature_window=max(10, steps // 4), feature_sampling_window=max(10, steps // 4),
        n_batches_for_norm_estimate=min(20, max(1, len(train_acts) // s.batch_size)),
    )
    return SAETrainer(trainer_cfg, sae, batches(train_acts, s.batch_size, s.seed)).fit()


def save_inference(sae: Any, out: Path, dtype: str) -> Any:
    """Write ``sae`` in sae-lens's inference format (cfg.json + sae_weights.safetensors) in ``dtype``."""
    from sae_lens import SAE

    with tempfile.TemporaryDirectory() as tmp:
        sae.save_inference_model(tmp)
        inference = SAE.load_from_disk(tmp, device="cpu", dtype=dtype)
    out.mkdir(parents=True, exist_ok=True)
    inference.save_model(str(out))
    return SAE.load_from_disk(str(out), device="cpu", dtype="float32")  # fp16 weights, float32 arithmetic


def train_sae(pretrained: str, data_dir: Path, out: Path, s: TrainSettings, cache_dir: Path) -> dict[str, Any]:
    """Train, save and measure an SAE; returns the quality figures (also in ``out/quality.json``)."""
    from sae_lens import __version__ as sae_lens_version

    from steering_models.model_helpers import load_lm

    s.check()
    for part in (corpus_mod.QA_FILE, corpus_mod.SHAKESPEARE_FILE):
        corpus_mod._need(data_dir.joinpath(*part), "SAE corpus")
    t0 = time.time()
    model, tokenizer, identity = load_lm(pretrained)
    train_w, heldout_w, corpus_desc = windows_for(tokenizer, data_dir, s)
    train = cached_activations(model, identity, train_w, corpus_desc["train_fingerprint"], s, cache_dir,
                               "SAE activations (train)")
    heldout = cached_activations(model, identity, heldout_w, corpus_desc["heldout_fingerprint"], s, cache_dir,
                                 "SAE activations (held-out)")
    t_collect = time.time() - t0
    hook = f"blocks.{s.layer}.hook_resid_post"
    metadata = {"model_name": identity["id"], "hook_name": hook, "context_size": s.context_size,
                "prepend_bos": False, "seqpos_slice": [acts_mod.SKIP_POSITIONS, None],
                "model_identity": identity}
    del model
    trained = fit(train, s, metadata)
    t_train = time.time() - t0 - t_collect
    if out.exists():
        shutil.rmtree(out)
    saved = save_inference(trained, out, s.dtype)
    quality = measure(saved, heldout)
    quality["train_tokens"] = int(train.shape[0])
    quality["num_dead_features_training_window"] = trained.cfg.metadata.get("num_dead_features")
    (out / QUALITY_FILE).write_text(json.dumps(quality, indent=2, sort_keys=True))
    (out / TRAINING_FILE).write_text(json.dumps({
        "command": "python -m steering_models.sae train",
        "pretrained": pretrained, "model_identity": identity, "hook_name": hook,
        "settings": dataclasses.asdict(s), "corpus": corpus_desc, "sae_lens_version": sae_lens_version,
        "torch_version": torch.__version__, "wall_seconds": {"activations": round(t_collect, 1),
                                                            "training": round(t_train, 1)},
    }, indent=2, sort_keys=True))
    return quality


def remeasure(sae_dir: Path, pretrained: str, data_dir: Path) -> dict[str, float]:
    """Quality of a saved SAE on the held-out windows its ``training.json`` describes (model run again)."""
    from sae_lens import SAE

    from steering_models.model_helpers import load_lm

    record = json.loads((sae_dir / TRAINING_FILE).read_text())
    s = TrainSettings(**record["settings"])
    model, tokenizer, _ = load_lm(pretrained)
    heldout_w = heldout_windows(tokenizer, data_dir, s)
    if corpus_mod.corpus_fingerprint(heldout_w) != record["corpus"]["heldout_fingerprint"]:
        raise ValueError(f"the held-out windows built from {data_dir} differ from the ones {sae_dir} was measured "
                         "on (other data files or tokenizer). Point --data-dir at the data the SAE was trained on.")
    x = acts_mod.token_activations(model, s.layer, heldout_w, s.collect_batch_size)
    return measure(SAE.load_from_disk(str(sae_dir), device="cpu", dtype="float32"), x)
