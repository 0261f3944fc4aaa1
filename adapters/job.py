"""The training job: one manifest (``job.json``, see ``adapters.run_folder``) beside every run,
written by the parent, read by the worker, the catalogue and export.

``training_settings()`` lists every setting a user may give a run (the hyperparameters and the
job settings declared with ``adapters.hyperparameters.setting``), for the CLI and the web UI.
"""

from __future__ import annotations

import json
import os
import secrets
from dataclasses import asdict, dataclass, field, fields
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from adapters.hyperparameters import DEFAULT_PRESET, Hyperparameters, TrainingSetting, declared, setting
from adapters.run_folder import RunFolder
from store.clock import utc_timestamp
from store.errors import DomainsmithError

METHODS = ("auto", "qlora", "lora")


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
    seed: int = setting(
        0, "seeds the split, the data order and the adapter's initial weights", flag="--seed", ui="Seed"
    )
    val_fraction: float = setting(
        0.1, "share of the generated questions held out for evaluation (default 0.1)", flag="--val-fraction"
    )
    source: dict[str, Any] = field(default_factory=dict)  # {"kind": "file", "path": ...} or {"kind": "kb", "name": ...}
    data_hash: str = ""
    n_train: int = 0
    n_val: int = 0
    base_cache: str = ""  # folder for the dequantized safetensors copy of a GGUF base
    eval_examples: int = 16  # validation questions answered by base and adapted model
    max_new_tokens: int = 64
    rag: dict[str, Any] = field(default_factory=dict)  # the retrieval-on evaluation: kb, questions, k, thresholds
    lineage: dict[str, Any] = field(default_factory=dict)  # the knowledge base and documents of its data
    rag_max_new_tokens: int = 96  # reply length with retrieval on (the answer, then its [n])
    threads: int = 0  # torch threads in the worker; 0: all cores
    created_at: str = ""

    def __post_init__(self) -> None:
        if isinstance(self.hyperparameters, dict):
            self.hyperparameters = Hyperparameters(**self.hyperparameters)
        if not self.created_at:
            self.created_at = utc_timestamp()

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> TrainJob:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})

    def save(self, folder: RunFolder) -> Path:
        """Write ``job.json`` atomically (temp file, then rename)."""
        path = folder.job
        tmp = path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(self.to_json(), indent=2), encoding="utf-8")
        os.replace(tmp, path)
        return path

    @classmethod
    def load(cls, folder: RunFolder) -> TrainJob:
        path = folder.job
        try:
            return cls.from_json(json.loads(path.read_text(encoding="utf-8")))
        except (OSError, ValueError, TypeError) as exc:
            raise DomainsmithError(f"cannot read the run manifest: {exc}", path=path) from exc


def training_settings() -> list[TrainingSetting]:
    """The settings a user may give a run, in the order the CLI and the Fine-tune tab show them."""
    return declared(Hyperparameters) + declared(TrainJob, of_job=True)


def new_run_id() -> str:
    """A sortable, unique run id: ``r20250101-120000-3f2a``."""
    return datetime.now(UTC).strftime("r%Y%m%d-%H%M%S-") + secrets.token_hex(2)
