"""The layout of a run folder, ``$DOMAINSMITH_HOME/runs/RUN_ID/``: the one place its file names are spelled.

::

    job.json        the manifest (adapters.job): base model, data (and its lineage), method, hyperparameters, seed
    train.jsonl     the training examples (already validated and split)
    val.jsonl       the validation examples
    rag_eval.jsonl  when a knowledge base is involved: held-out questions in Chat's prompt (adapters.rag_eval)
    events.jsonl    one JSON object per progress event, appended by the worker (adapters.events)
    worker.log      the worker's stdout/stderr
    worker.pid      the worker's process id
    checkpoints/    step-NNNNNN/ folders: adapter + optimizer state (safetensors) + state.json;
                    best/: the adapter of the epoch with the lowest validation loss + best.json
                    (runs with ``patience``)
    adapter/        the final adapter (peft, safetensors)
    metrics.json    the before/after evaluation of a finished run
    export-PID/     scratch space of an export in progress (removed when it ends)

Runs written by any earlier version use the same names.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

RUNS = "runs"
CHECKPOINT_PREFIX = "step-"
EXPORT_PREFIX = "export-"


def runs_root(home: Path) -> Path:
    """The folder that holds every run of a Domainsmith home."""
    return home / RUNS


@dataclass(frozen=True)
class RunFolder:
    """Paths inside one run folder; nothing here touches the disk except ``exists`` and the listings."""

    path: Path

    @classmethod
    def in_home(cls, home: Path, run_id: str) -> RunFolder:
        return cls(runs_root(home) / run_id)

    @property
    def run_id(self) -> str:
        return self.path.name

    @property
    def job(self) -> Path:
        return self.path / "job.json"

    @property
    def train(self) -> Path:
        return self.path / "train.jsonl"

    @property
    def val(self) -> Path:
        return self.path / "val.jsonl"

    @property
    def rag_eval(self) -> Path:
        return self.path / "rag_eval.jsonl"

    @property
    def events(self) -> Path:
        return self.path / "events.jsonl"

    @property
    def log(self) -> Path:
        return self.path / "worker.log"

    @property
    def pid(self) -> Path:
        return self.path / "worker.pid"

    @property
    def checkpoints(self) -> Path:
        return self.path / "checkpoints"

    @property
    def adapter(self) -> Path:
        return self.path / "adapter"

    @property
    def adapter_tmp(self) -> Path:
        """Where the final adapter is written before it is renamed to ``adapter``."""
        return self.path / ".adapter-tmp"

    @property
    def metrics(self) -> Path:
        return self.path / "metrics.json"

    @property
    def best(self) -> Path:
        """The adapter of the epoch with the lowest validation loss so far (``patience``)."""
        return self.checkpoints / "best"

    @property
    def best_tmp(self) -> Path:
        return self.checkpoints / ".tmp-best"

    def checkpoint(self, step: int) -> Path:
        return self.checkpoints / f"{CHECKPOINT_PREFIX}{step:06d}"

    def checkpoint_tmp(self, step: int) -> Path:
        """Where checkpoint ``step`` is written before it is renamed into place."""
        return self.checkpoints / f".tmp-{CHECKPOINT_PREFIX}{step:06d}"

    def checkpoint_dirs(self) -> list[Path]:
        """The checkpoint folders, oldest first (complete or not)."""
        return sorted(self.checkpoints.glob(f"{CHECKPOINT_PREFIX}*"))

    def export_work(self, pid: int) -> Path:
        """The scratch folder of an export running in process ``pid``."""
        return self.path / f"{EXPORT_PREFIX}{pid}"

    def export_dirs(self) -> list[Path]:
        """Scratch folders of exports in progress (or killed)."""
        return sorted(self.path.glob(f"{EXPORT_PREFIX}*"))

    def exists(self) -> bool:
        """A run folder is one with a manifest."""
        return self.job.is_file()
