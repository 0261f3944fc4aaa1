"""The training job: one manifest (``job.json``) beside every run, written by the parent, read by the worker.

A run folder (``$DOMAINSMITH_HOME/runs/RUN_ID/``) holds::

    job.json        this manifest: base model, data, method, hyperparameters, seed
    train.jsonl     the training examples (already validated and split)
    val.jsonl       the validation examples
    rag_eval.jsonl  when a knowledge base is involved: held-out questions in Chat's prompt (adapters.rag_eval)
    events.jsonl    one JSON object per progress event, appended by the worker
    worker.log      the worker's stdout/stderr
    checkpoints/    step-N/ folders: adapter + optimizer state (safetensors) + state.json
    adapter/        the final adapter (peft, safetensors)

Presets are sized for a CPU. ``standard`` (the default) is the recipe measured to teach
SmolLM2-135M a few dozen facts (../shared/STACK-NOTES.md: plain LoRA r=16, lr 1e-3, 20 epochs).
"""

from __future__ import annotations

import json
import os
import secrets
from dataclasses import asdict, dataclass, field, fields
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from store.errors import ConfigError, DomainsmithError

METHODS = ("auto", "qlora", "lora")
PRESETS = ("quick", "standard")
DEFAULT_PRESET = "standard"

# QLoRA collapsed at lr 1e-3 in the measurements (loss back above 5 at epoch 6): it gets a lower rate.
QLORA_LEARNING_RATE = 2e-4

_PRESETS: dict[str, dict[str, Any]] = {
    "quick": {"epochs": 5, "lora_r": 16, "lora_alpha": 32, "learning_rate": 1e-3},
    "standard": {"epochs": 20, "lora_r": 16, "lora_alpha": 32, "learning_rate": 1e-3},
}


@dataclass
class Hyperparameters:
    epochs: int = 20
    lora_r: int = 16
    lora_alpha: int = 32
    lora_dropout: float = 0.0
    learning_rate: float = 1e-3
    batch_size: int = 4
    grad_accum: int = 1
    max_length: int = 512
    checkpoint_every: int = 50
    weight_decay: float = 0.0
    max_grad_norm: float = 1.0

    def validate(self) -> None:
        checks = [
            (self.epochs >= 1, "epochs must be at least 1"),
            (self.lora_r >= 1, "lora_r must be at least 1"),
            (self.lora_alpha >= 1, "lora_alpha must be at least 1"),
            (0.0 <= self.lora_dropout < 1.0, "lora_dropout must be in [0, 1)"),
            (0.0 < self.learning_rate < 1.0, "learning_rate must be in (0, 1)"),
            (self.batch_size >= 1, "batch_size must be at least 1"),
            (self.grad_accum >= 1, "grad_accum must be at least 1"),
            (self.max_length >= 16, "max_length must be at least 16 tokens"),
            (self.checkpoint_every >= 1, "checkpoint_every must be at least 1"),
        ]
        for ok, message in checks:
            if not ok:
                raise ConfigError(message)


def preset(name: str, method: str = "lora", **overrides: Any) -> Hyperparameters:
    """The hyperparameters of a preset for a (resolved) method, with explicit overrides applied."""
    if name not in _PRESETS:
        raise ConfigError(f"unknown preset {name!r}: use one of {', '.join(PRESETS)}")
    values = dict(_PRESETS[name])
    if method == "qlora":
        values["learning_rate"] = QLORA_LEARNING_RATE
    names = {f.name for f in fields(Hyperparameters)}
    unknown = set(overrides) - names
    if unknown:
        raise ConfigError(f"unknown training settings: {', '.join(sorted(unknown))}")
    values.update({k: v for k, v in overrides.items() if v is not None})
    hp = Hyperparameters(**values)
    hp.validate()
    return hp


@dataclass
class TrainJob:
    """Everything the worker needs to train (and a later run needs to reproduce) an adapter."""

    run_id: str
    base: str  # a GGUF file or a Hugging Face folder with safetensors
    method: str  # "qlora" or "lora" (resolved from "auto" by the parent)
    method_requested: str = "auto"
    method_reason: str = ""
    preset: str = DEFAULT_PRESET
    hyperparameters: Hyperparameters = field(default_factory=Hyperparameters)
    seed: int = 0
    val_fraction: float = 0.1
    source: dict[str, Any] = field(default_factory=dict)  # {"kind": "file", "path": ...} or {"kind": "kb", "name": ...}
    data_hash: str = ""
    n_train: int = 0
    n_val: int = 0
    base_cache: str = ""  # folder for the dequantized safetensors copy of a GGUF base
    eval_examples: int = 16  # validation questions answered by base and adapted model
    max_new_tokens: int = 64
    rag: dict[str, Any] = field(default_factory=dict)  # the retrieval-on evaluation: kb, questions, k, thresholds
    rag_max_new_tokens: int = 96  # reply length with retrieval on (the answer, then its [n])
    threads: int = 0  # torch threads in the worker; 0: all cores
    created_at: str = ""

    def __post_init__(self) -> None:
        if isinstance(self.hyperparameters, dict):
            self.hyperparameters = Hyperparameters(**self.hyperparameters)
        if not self.created_at:
            self.created_at = datetime.now(timezone.utc).isoformat(timespec="seconds")

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "TrainJob":
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})

    def save(self, run_dir: Path) -> Path:
        """Write ``job.json`` atomically (temp file, then rename)."""
        path = run_dir / "job.json"
        tmp = path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(self.to_json(), indent=2), encoding="utf-8")
        os.replace(tmp, path)
        return path

    @classmethod
    def load(cls, run_dir: Path) -> "TrainJob":
        path = run_dir / "job.json"
        try:
            return cls.from_json(json.loads(path.read_text(encoding="utf-8")))
        except (OSError, ValueError, TypeError) as exc:
            raise DomainsmithError(f"cannot read the run manifest: {exc}", path=path) from exc


def new_run_id() -> str:
    """A sortable, unique run id: ``r20250101-120000-3f2a``."""
    return datetime.now(timezone.utc).strftime("r%Y%m%d-%H%M%S-") + secrets.token_hex(2)
