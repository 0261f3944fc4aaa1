"""The Fine-tune facade for long-lived callers (the web app): start, watch, cancel, export.

Runs are prepared through the front door (``adapters.service.prepare``) with the caller's open
knowledge bases. A run trains in its child process (``adapters.process``); here a daemon thread
per run drains its events so the worker is supervised, while callers read progress from the run
folder on disk (``adapters.catalogue``). Reading from disk means a page reload, a second browser
tab or an app restart sees the same progress, and a crashed worker never takes the app down with it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from adapters import catalogue, datasets, process
from adapters import events as ev
from adapters.job import TrainJob
from adapters.service import OpenKB, TrainRequest, prepare
from store.errors import DomainsmithError
from store.settings import Settings

if TYPE_CHECKING:
    from store.registry import ModelRecord


@dataclass
class RunProgress:
    """A run as a progress screen shows it."""

    run_id: str
    status: str  # new | running | done | cancelled | failed | interrupted
    step: int = 0
    total_steps: int = 0
    epoch: float = 0.0
    eta_s: float | None = None
    tokens_per_s: float | None = None
    message: str = ""
    method: str = ""
    method_reason: str = ""
    losses: list[dict[str, Any]] = field(default_factory=list)  # {"step", "loss", "series": training|validation}
    metrics: dict[str, Any] = field(default_factory=dict)
    log: str = ""

    @property
    def fraction(self) -> float:
        return min(1.0, self.step / self.total_steps) if self.total_steps else 0.0

    @property
    def finished(self) -> bool:
        return self.status in ("done", "cancelled", "failed", "interrupted")

    def add(self, event: ev.Event) -> None:
        """Fold one worker event into the progress."""
        if isinstance(event, ev.Start):  # a (re)start trains again from its first step: plot those steps once
            self.total_steps = event.total_steps or self.total_steps
            self.losses = [p for p in self.losses if p["step"] <= event.start_step]
        elif isinstance(event, ev.Step):
            self.step, self.epoch = event.step, float(event.epoch or 0)
            self.total_steps = event.total_steps or self.total_steps
            self.eta_s, self.tokens_per_s = event.eta_s, event.tokens_per_s
            self.losses.append({"step": self.step, "loss": float(event.loss), "series": "training"})
        elif isinstance(event, ev.Eval) and event.val_loss is not None:
            self.losses.append({"step": event.step or self.step, "loss": float(event.val_loss), "series": "validation"})
        elif isinstance(event, ev.Status) and self.status == "running":
            self.message = event.message
        elif isinstance(event, ev.Done):
            self.metrics = event.metrics or {}
            self.step = self.total_steps or self.step


SET_LABELS = {"held_out": "held-out generated questions", "eval_file": "your evaluation file"}


def evaluation_rows(metrics: dict[str, Any]) -> list[tuple[str, float, float, float | None]]:
    """``(measure, base, adapted, base without retrieval)`` rows of a finished run's before/after
    evaluation; the last is None where it does not apply (everything but the retrieval-on rows)."""
    rows: list[tuple[str, float, float, float | None]] = []
    if "val_loss_before" in metrics:
        rows.append(("validation loss", metrics["val_loss_before"], metrics["val_loss_after"], None))
        rows.append(("perplexity", metrics["perplexity_before"], metrics["perplexity_after"], None))
    sections = [("held-out answers", metrics.get("answers_base"), metrics.get("answers_adapted"), None)]
    sections.append(("with retrieval", metrics.get("rag_base"), metrics.get("rag_adapted"), metrics.get("rag_plain")))
    for kind, models in (metrics.get("rag_sets") or {}).items():
        label = f"with retrieval, {SET_LABELS.get(kind, kind)}"
        sections.append((label, models.get("base"), models.get("adapted"), models.get("plain")))
    for label, base, adapted, plain in sections:
        if not isinstance(base, dict) or not isinstance(adapted, dict):
            continue
        for key, value in base.items():
            if key != "count" and isinstance(value, (int, float)) and isinstance(adapted.get(key), (int, float)):
                alone = plain.get(key) if isinstance(plain, dict) else None
                rows.append(
                    (
                        f"{label}: {key.replace('_', ' ')}",
                        float(value),
                        float(adapted[key]),
                        float(alone) if isinstance(alone, (int, float)) else None,
                    )
                )
    return rows


class FineTuner:
    """Runs started from this process, supervised by one daemon thread each."""

    def __init__(self, settings: Settings, open_kb: OpenKB):
        self.settings = settings
        self.open_kb = open_kb
        self._threads: dict[str, threading.Thread] = {}
        self._lock = threading.Lock()

    def preview(self, path: str | Path, rows: int = 8) -> tuple[list[dict[str, Any]], list[str]]:
        """The first examples of a Q&A file and its validation notes (raises on invalid files)."""
        report = datasets.load_file(path)
        return report.examples[:rows], [f"{len(report.examples)} usable examples", *report.notes()]

    def start(self, request: TrainRequest) -> tuple[TrainJob, list[str]]:
        """Validate, write the run folder and start training in the background; returns at once."""
        job, data = prepare(self.settings, request, self.open_kb)
        self._supervise(job)
        return job, data.notes(Path(request.data).name if request.data else "")

    def resume(self, run_id: str) -> TrainJob:
        job = catalogue.resume(self.settings, run_id)
        self._supervise(job)
        return job

    def _supervise(self, job: TrainJob) -> None:
        with self._lock:
            alive = self._threads.get(job.run_id)
            if alive is not None and alive.is_alive():
                raise DomainsmithError(f"run {job.run_id} is already training")
            worker = process.TrainingProcess(self.settings, job.run_id)  # starts the worker now
            thread = threading.Thread(target=_drain, args=(worker,), name=f"train-{job.run_id}", daemon=True)
            self._threads[job.run_id] = thread
            thread.start()

    def progress(self, run_id: str) -> RunProgress:
        """Progress read from the run folder (works for runs started by any process)."""
        folder = catalogue.run_dir(self.settings, run_id)
        job = TrainJob.load(folder)
        status = catalogue.run_status(folder)
        progress = RunProgress(
            run_id,
            status["status"],
            method=job.method,
            method_reason=job.method_reason,
            message=status["message"],
            log=catalogue.log_tail(folder, 40),
        )
        for event in catalogue.read_events(folder):
            progress.add(event)
        return progress

    def cancel(self, run_id: str) -> bool:
        return process.cancel(self.settings, run_id)

    def runs(self) -> list[dict[str, Any]]:
        return catalogue.list_runs(self.settings)

    def export(
        self, run_id: str, quant: str | None = None, progress: Callable[[str], None] | None = None
    ) -> ModelRecord:
        """Merge, convert, check and register the run's model; returns its ``ModelRecord``."""
        from adapters.export import export

        return export(self.settings, run_id, quant, progress=progress)

    def wait(self, run_id: str, timeout: float | None = None) -> None:
        """Block until the supervising thread of a run started here ends (tests, scripts)."""
        thread = self._threads.get(run_id)
        if thread is not None:
            thread.join(timeout)


def _drain(worker: process.TrainingProcess) -> None:
    """Follow a worker until it exits (reaping it); progress itself is read from disk."""
    for _event in worker.events():
        pass
