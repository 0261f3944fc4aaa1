"""The Fine-tune facade for long-lived callers (the web app): start, watch, cancel, export.

A run trains in its child process (``adapters.runner``); here a daemon thread per run drains its
events so the worker is supervised, while callers read progress from the run folder on disk
(``events.jsonl``, ``worker.log``). Reading from disk means a page reload, a second browser tab or
an app restart sees the same progress, and a crashed worker never takes the app down with it.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from adapters import datasets, runner
from adapters.job import DEFAULT_PRESET, TrainJob
from store.errors import DomainsmithError
from store.settings import Settings

GROUNDED_MAX_LENGTH = 2048  # sources make long prompts; a cut prompt would lose them


@dataclass(frozen=True)
class TrainRequest:
    """What to train on and how; exactly one of ``data`` (a Q&A file) or ``kb`` is the source."""

    data: str | None = None
    kb: str | None = None
    grounded: str | None = None  # with ``data``: render questions with sources from this knowledge base
    base: str | None = None
    preset: str = DEFAULT_PRESET
    method: str = "auto"
    seed: int = 0
    val_fraction: float = 0.1
    overrides: dict[str, Any] = field(default_factory=dict)


@dataclass
class PreparedData:
    examples: list[dict[str, Any]]
    source: dict[str, Any]
    notes: list[str]
    overrides: dict[str, Any]


def prepare_data(request: TrainRequest, open_kb: Callable[[str], Any], settings: Settings) -> PreparedData:
    """Load and validate the examples a request names (raises the typed data errors)."""
    overrides = dict(request.overrides)
    if bool(request.data) == bool(request.kb):
        raise DomainsmithError("choose one data source: a Q&A file or a knowledge base")
    if request.kb:
        if request.grounded:
            raise DomainsmithError("grounded training needs a Q&A file to join with the knowledge base")
        kb = open_kb(request.kb)
        examples = datasets.examples_from_kb(kb)
        datasets.check_minimum(len(examples))
        return PreparedData(examples, {"kind": "kb", "name": kb.name}, [], overrides)
    report = datasets.load_file(request.data)
    notes = [f"{Path(request.data).name}, {note}" for note in report.notes()]
    examples, source = report.examples, {"kind": "file", "path": str(request.data)}
    if request.grounded:
        from adapters.grounded import grounded_examples

        kb = open_kb(request.grounded)
        examples, counts = grounded_examples(kb, examples, k=settings.retrieval_k,
                                             threshold=settings.relevance_threshold, seed=request.seed)
        source = {**source, "grounded": kb.name}
        notes.append(f"grounded in {kb.name}: {counts['cited']} answers cite their source, "
                     f"{counts['abstain_no_source'] + counts['abstain_removed']} abstain")
        overrides.setdefault("max_length", GROUNDED_MAX_LENGTH)
    return PreparedData(examples, source, notes, overrides)


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


def evaluation_rows(metrics: dict[str, Any]) -> list[tuple[str, float, float]]:
    """``(measure, base, adapted)`` rows of a finished run's before/after evaluation."""
    rows: list[tuple[str, float, float]] = []
    if "val_loss_before" in metrics:
        rows.append(("validation loss", metrics["val_loss_before"], metrics["val_loss_after"]))
        rows.append(("perplexity", metrics["perplexity_before"], metrics["perplexity_after"]))
    for prefix, label in (("answers", "held-out answers"), ("rag", "with retrieval")):
        base, adapted = metrics.get(f"{prefix}_base"), metrics.get(f"{prefix}_adapted")
        if not isinstance(base, dict) or not isinstance(adapted, dict):
            continue
        for key, value in base.items():
            if key != "count" and isinstance(value, (int, float)) and isinstance(adapted.get(key), (int, float)):
                rows.append((f"{label}: {key.replace('_', ' ')}", float(value), float(adapted[key])))
    return rows


class FineTuner:
    """Runs started from this process, supervised by one daemon thread each."""

    def __init__(self, settings: Settings, open_kb: Callable[[str], Any]):
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
        data = prepare_data(request, self.open_kb, self.settings)
        job = runner.prepare_run(self.settings, data.examples, data.source, base=request.base or None,
                                 preset_name=request.preset, method=request.method, seed=request.seed,
                                 val_fraction=request.val_fraction, overrides=data.overrides)
        self._supervise(job)
        return job, data.notes

    def resume(self, run_id: str) -> TrainJob:
        job = runner.resume(self.settings, run_id)
        self._supervise(job)
        return job

    def _supervise(self, job: TrainJob) -> None:
        with self._lock:
            alive = self._threads.get(job.run_id)
            if alive is not None and alive.is_alive():
                raise DomainsmithError(f"run {job.run_id} is already training")
            process = runner.TrainingProcess(self.settings, job.run_id)  # starts the worker now
            thread = threading.Thread(target=_drain, args=(process,), name=f"train-{job.run_id}", daemon=True)
            self._threads[job.run_id] = thread
            thread.start()

    def progress(self, run_id: str) -> RunProgress:
        """Progress read from the run folder (works for runs started by any process)."""
        folder = runner.run_dir(self.settings, run_id)
        job = TrainJob.load(folder)
        status = runner.run_status(folder)
        events = runner.read_events(folder)
        progress = RunProgress(run_id, status["status"], method=job.method, method_reason=job.method_reason,
                               message=status["message"], log=runner.log_tail(folder, 40))
        for event in events:
            kind = event.get("type")
            if kind == "start":  # a (re)start trains again from its first step: plot those steps once
                progress.total_steps = int(event.get("total_steps") or progress.total_steps)
                first = int(event.get("start_step") or 0)
                progress.losses = [p for p in progress.losses if p["step"] <= first]
            elif kind == "step":
                progress.step, progress.epoch = int(event["step"]), float(event.get("epoch") or 0)
                progress.total_steps = int(event.get("total_steps") or progress.total_steps)
                progress.eta_s, progress.tokens_per_s = event.get("eta_s"), event.get("tokens_per_s")
                if event.get("loss") is not None:
                    progress.losses.append({"step": progress.step, "loss": float(event["loss"]), "series": "training"})
            elif kind == "eval" and event.get("val_loss") is not None:
                progress.losses.append({"step": int(event.get("step") or progress.step),
                                        "loss": float(event["val_loss"]), "series": "validation"})
            elif kind == "status" and progress.status == "running":
                progress.message = str(event.get("message", ""))
            elif kind == "done":
                progress.metrics = event.get("metrics") or {}
                progress.step = progress.total_steps or progress.step
        return progress

    def cancel(self, run_id: str) -> bool:
        return runner.cancel(self.settings, run_id)

    def runs(self) -> list[dict[str, Any]]:
        return runner.list_runs(self.settings)

    def export(self, run_id: str, quant: str | None = None, progress: Callable[[str], None] | None = None):
        """Merge, convert, check and register the run's model; returns its ``ModelRecord``."""
        from adapters.export import export

        return export(self.settings, run_id, quant, progress=progress)

    def wait(self, run_id: str, timeout: float | None = None) -> None:
        """Block until the supervising thread of a run started here ends (tests, scripts)."""
        thread = self._threads.get(run_id)
        if thread is not None:
            thread.join(timeout)


def _drain(process: runner.TrainingProcess) -> None:
    """Follow a worker until it exits (reaping it); progress itself is read from disk."""
    for _event in process.events():
        pass
