"""The run catalogue: find run folders, read what their workers reported, and summarise them.

Everything here reads the disk only (``job.json``, ``events.jsonl``, ``worker.pid``, ``worker.log``),
so it answers for runs started by any process, and for runs written by earlier versions.
Starting and stopping workers is ``adapters.process``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from adapters import events as ev
from adapters.job import TrainJob
from adapters.run_folder import RunFolder, runs_root
from store.errors import DomainsmithError
from store.settings import Settings


class RunNotFound(DomainsmithError):
    """No run with that id."""


def runs_dir(settings: Settings) -> Path:
    return runs_root(settings.home)


def run_dir(settings: Settings, run_id: str) -> RunFolder:
    """The folder of an existing run; raises ``RunNotFound`` (also for ids that are not plain names)."""
    folder = RunFolder.in_home(settings.home, run_id)
    if not run_id or "/" in run_id or run_id.startswith(".") or not folder.exists():
        raise RunNotFound(f"no training run {run_id!r} (see `python app.py runs list`)")
    return folder


def read_events(folder: RunFolder) -> list[ev.Event]:
    """Every event the run's workers wrote, in order."""
    return ev.read_events(folder.events)


def worker_pid(folder: RunFolder) -> int | None:
    try:
        return int(folder.pid.read_text().strip())
    except (OSError, ValueError):
        return None


def is_running(folder: RunFolder) -> bool:
    """True while the run's worker process is alive (and really is that run's worker)."""
    pid = worker_pid(folder)
    if pid is None:
        return False
    try:
        os.kill(pid, 0)
    except (ProcessLookupError, PermissionError):
        return False
    try:  # a zombie or a recycled pid is not our worker
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        return b"adapters.worker" in cmdline and str(folder.path).encode() in cmdline
    except OSError:
        return True


def log_tail(folder: RunFolder, lines: int = 25) -> str:
    try:
        text = folder.log.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


def status_of(events: list[ev.Event], running: bool) -> str:
    """new | running | done | cancelled | failed | interrupted, from the events and the process."""
    last = events[-1] if events else None
    if running:
        return "running"
    if isinstance(last, ev.Done):
        return "done"
    if isinstance(last, ev.Cancelled):
        return "cancelled"
    if isinstance(last, ev.Error):
        return "failed"
    return "interrupted" if events else "new"


def run_status(folder: RunFolder) -> dict[str, Any]:
    """A run's summary for ``runs list``: status, step, losses, method, when."""
    job = TrainJob.load(folder)
    events = read_events(folder)
    steps = [e for e in events if isinstance(e, ev.Step)]
    last = events[-1] if events else None
    metrics = next((e.metrics for e in reversed(events) if isinstance(e, ev.Done)), None) or {}
    total = next((e.total_steps for e in reversed(events) if isinstance(e, (ev.Start, ev.Step)) and e.total_steps), 0)
    return {
        "run_id": job.run_id,
        "status": status_of(events, is_running(folder)),
        "step": steps[-1].step if steps else 0,
        "total_steps": total,
        "loss": steps[-1].loss if steps else None,
        "val_loss": metrics.get("val_loss_after"),
        "method": job.method,
        "preset": job.preset,
        "base": Path(job.base).name,
        "source": job.source,
        "examples": job.n_train,
        "created": job.created_at,
        "message": last.message if isinstance(last, (ev.Status, ev.Error)) else "",
        "lineage": job.lineage or None,  # the knowledge base and documents of its data (store.lineage)
    }


def list_runs(settings: Settings) -> list[dict[str, Any]]:
    root = runs_dir(settings)
    if not root.is_dir():
        return []
    folders = (RunFolder(p) for p in sorted(root.iterdir()))
    return [run_status(f) for f in folders if f.exists()]


def resume(settings: Settings, run_id: str) -> TrainJob:
    """The job of an unfinished run, checked resumable."""
    folder = run_dir(settings, run_id)
    if run_status(folder)["status"] == "done":
        raise DomainsmithError(f"run {run_id} already finished: export it with `python app.py export {run_id}`")
    return TrainJob.load(folder)
