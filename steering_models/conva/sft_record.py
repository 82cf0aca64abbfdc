"""The SFT run's record (``sft_record.json``) and its loss curve (``loss_curve.png``).

The record holds what a reader needs to trust or redo the run: the settings, the model, the training data
(file, count, sha256, and that it stands in for FULCRA), the loss of every optimizer step and the mean loss
of every epoch, the epochs each (re)start began at, and the adapter's sha256. It is rewritten after every
epoch, so a killed run leaves the record of what it finished.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class StepLoss:
    step: int  # optimizer step, from 1
    epoch: int  # from 1
    loss: float  # mean over the step's micro-batches (each the mean over its target tokens)
    lr: float


@dataclass
class EpochLoss:
    epoch: int
    loss: float  # mean of the epoch's step losses
    seconds: float


@dataclass
class TrainingRecord:
    value: str
    model: dict[str, Any]
    settings: dict[str, Any]
    data: dict[str, Any]
    meta: dict[str, Any]  # also the `meta` of the steering file the evaluation runs carry
    fingerprint: str  # sha256 of settings + data + model: a resumed run must match it
    steps: list[StepLoss] = field(default_factory=list)
    epochs: list[EpochLoss] = field(default_factory=list)
    starts: list[int] = field(default_factory=list)  # the epoch (from 0) each run of the command began at
    status: str = "running"  # running | done
    adapter_sha256: str | None = None

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=1)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TrainingRecord:
        d = dict(d)
        d["steps"] = [StepLoss(**s) for s in d.get("steps", [])]
        d["epochs"] = [EpochLoss(**e) for e in d.get("epochs", [])]
        return cls(**d)

    @classmethod
    def read(cls, path: Path) -> TrainingRecord:
        return cls.from_dict(json.loads(path.read_text()))

    def write(self, path: Path) -> None:
        tmp = path.with_name(path.name + ".partial")
        tmp.write_text(self.to_json())
        tmp.replace(path)


def plot_loss(record: TrainingRecord, path: Path) -> Path:
    """Loss per optimizer step (line) and per epoch (dots at each epoch's last step)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.5))
    ax.plot([s.step for s in record.steps], [s.loss for s in record.steps], lw=1, label="optimizer step")
    last_step = {s.epoch: s.step for s in record.steps}
    ax.plot([last_step[e.epoch] for e in record.epochs if e.epoch in last_step],
            [e.loss for e in record.epochs if e.epoch in last_step], "o", label="epoch mean")
    ax.set_xlabel("optimizer step")
    ax.set_ylabel("training loss (nats/token)")
    ax.set_title(f"SFT (LoRA) on {record.data.get('n_sentences')} {record.value} sentences")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
