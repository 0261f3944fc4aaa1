"""The parent side of training: prepare a run folder, start the worker, stream its events, cancel.

``prepare_run`` validates everything it can before a process starts (data, base model, method,
memory) and writes the run folder; ``train(settings, job)`` starts ``python -m adapters.worker``
and yields ``ProgressEvent`` objects tailed from ``events.jsonl`` until the worker exits, ending
with one of ``done``, ``cancelled`` or ``failed`` (the last with the log's tail). The worker never
runs in the caller's process, so a crash or an out-of-memory kill cannot take the app down.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

from adapters import datasets, memory, rag_eval
from adapters.base_model import describe
from adapters.job import DEFAULT_PRESET, TrainJob, new_run_id, preset
from adapters.worker import EXIT_CANCELLED, EXIT_DONE, EXIT_INVALID
from store.errors import DomainsmithError
from store.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
TERMINAL = ("done", "cancelled", "failed")


class RunNotFound(DomainsmithError):
    """No run with that id."""


@dataclass(frozen=True)
class ProgressEvent:
    """One thing the worker reported: ``kind`` is status, start, resumed, step, eval, checkpoint,
    done, cancelled or failed. ``data`` holds the worker's event as written."""

    kind: str
    run_id: str
    step: int = 0
    total_steps: int = 0
    epoch: float = 0.0
    loss: float | None = None
    val_loss: float | None = None
    tokens_per_s: float | None = None
    eta_s: float | None = None
    message: str = ""
    metrics: dict[str, Any] | None = None
    log_tail: str = ""
    data: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_worker(cls, run_id: str, event: dict[str, Any]) -> "ProgressEvent":
        kind = "failed" if event.get("type") == "error" else str(event.get("type", "status"))
        return cls(kind=kind, run_id=run_id, step=int(event.get("step", 0) or 0),
                   total_steps=int(event.get("total_steps", 0) or 0), epoch=float(event.get("epoch", 0) or 0),
                   loss=event.get("loss"), val_loss=event.get("val_loss"), tokens_per_s=event.get("tokens_per_s"),
                   eta_s=event.get("eta_s"), message=str(event.get("message", "")), metrics=event.get("metrics"),
                   data=event)


def runs_dir(settings: Settings) -> Path:
    return settings.home / "runs"


def run_dir(settings: Settings, run_id: str) -> Path:
    if not run_id or "/" in run_id or run_id.startswith(".") or not (runs_dir(settings) / run_id / "job.json").is_file():
        raise RunNotFound(f"no training run {run_id!r} (see `python app.py runs list`)")
    return runs_dir(settings) / run_id


def prepare_run(settings: Settings, examples: list[dict], source: dict[str, Any], *, base: str | None = None,
                preset_name: str = DEFAULT_PRESET, method: str = "auto", seed: int = 0, val_fraction: float = 0.1,
                overrides: dict[str, Any] | None = None, available_memory: int | None = None,
                kb: Any | None = None, **job_fields: Any) -> TrainJob:
    """Validate and write a new run folder; returns its job (not started yet).

    When ``source`` involves a knowledge base (``{"kind": "kb", "name"}`` or a ``"grounded"``
    name), the held-out questions are also rendered through Chat's retrieval for the evaluation
    with retrieval on (``adapters.rag_eval``); ``kb`` is that knowledge base when the caller has it
    open (otherwise it is opened here). Raises ``InvalidTrainingData``, ``ModelNotFound``,
    ``InsufficientMemory``, ``ConfigError`` or ``KnowledgeBaseError`` before anything is written.
    """
    train_set, val_set = datasets.split(examples, val_fraction, seed)
    datasets.check_minimum(len(train_set))
    info = describe(base)
    hp = preset(preset_name, "lora", **(overrides or {}))
    longest = max(memory.tokens_from_chars(len(json.dumps(e, ensure_ascii=False))) for e in examples)
    chosen, reason, _estimate = memory.choose_method(method, info, hp, longest, available_memory)
    hp = preset(preset_name, chosen, **(overrides or {}))
    job = TrainJob(run_id=new_run_id(), base=str(info.path), method=chosen, method_requested=method,
                   method_reason=reason, preset=preset_name, hyperparameters=hp, seed=seed, val_fraction=val_fraction,
                   source=source, data_hash=datasets.data_hash(examples), n_train=len(train_set), n_val=len(val_set),
                   base_cache=str(settings.home / "models" / "base-cache"), **job_fields)
    rag_rows = _rag_questions(settings, job, train_set, val_set, kb)
    folder = runs_dir(settings) / job.run_id
    folder.mkdir(parents=True)
    datasets.save_examples(folder / "train.jsonl", train_set)
    datasets.save_examples(folder / "val.jsonl", val_set)
    if rag_rows:
        rag_eval.save(folder, rag_rows)
    job.save(folder)
    return job


def _rag_kb_name(source: dict[str, Any]) -> str | None:
    """The knowledge base a run's data comes from or is grounded in, if any."""
    return source.get("grounded") or (source.get("name") if source.get("kind") == "kb" else None)


def _rag_questions(settings: Settings, job: TrainJob, train_set: list[dict], val_set: list[dict],
                   kb: Any | None) -> list[dict[str, Any]]:
    """Render the held-out questions through Chat's retrieval (sets ``job.rag``); [] without a knowledge base."""
    name = _rag_kb_name(job.source)
    if not name:
        return []
    opened = None
    if kb is None or kb.name != name:
        from store.knowledge_base import KnowledgeBase

        kb = opened = KnowledgeBase.open(settings, name, create=False)
    try:
        rows = rag_eval.prepare(kb, train_set, val_set, k=settings.retrieval_k,
                                threshold=settings.relevance_threshold, limit=job.eval_examples)
        job.rag = {"kb": kb.name, "questions": len(rows), "k": settings.retrieval_k,
                   "relevance_threshold": settings.relevance_threshold,
                   "support_threshold": settings.support_threshold, "embedder": str(kb.embedder.path)}
    finally:
        if opened is not None:
            opened.close()
    return rows


class TrainingProcess:
    """A running worker: ``events()`` tails its progress; ``cancel()`` asks it to stop cleanly."""

    def __init__(self, settings: Settings, run_id: str, poll_s: float = 0.2):
        self.run_id = run_id
        self.dir = run_dir(settings, run_id)
        self.poll_s = poll_s
        if is_running(self.dir):
            raise DomainsmithError(f"run {run_id} is already training")
        events = self.dir / "events.jsonl"
        self._offset = events.stat().st_size if events.exists() else 0
        self._log = (self.dir / "worker.log").open("ab")
        env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "PYTHONUNBUFFERED": "1"}
        # Sleeping, not spinning, OpenMP threads: with another process busy on one of 2 cores, spinning
        # threads made steps 2-30x slower (5-72 s instead of 2.3 s measured on SmolLM2-135M).
        env.setdefault("OMP_WAIT_POLICY", "PASSIVE")
        env["PYTHONPATH"] = str(ROOT) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
        self.process = subprocess.Popen([sys.executable, "-m", "adapters.worker", str(self.dir)], cwd=str(ROOT),
                                        env=env, stdin=subprocess.DEVNULL, stdout=self._log, stderr=subprocess.STDOUT)
        (self.dir / "worker.pid").write_text(str(self.process.pid))

    def cancel(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)

    def kill(self) -> None:
        """Stop at once, without a checkpoint (tests use it to simulate a crash)."""
        if self.process.poll() is None:
            self.process.kill()

    def _read_new(self, buffer: bytearray) -> list[dict[str, Any]]:
        path = self.dir / "events.jsonl"
        if not path.exists():
            return []
        with path.open("rb") as f:
            f.seek(self._offset)
            chunk = f.read()
        self._offset += len(chunk)
        buffer += chunk
        *lines, rest = bytes(buffer).split(b"\n")
        buffer[:] = rest
        return [json.loads(line) for line in lines if line.strip()]

    def events(self) -> Iterator[ProgressEvent]:
        buffer = bytearray()
        final: ProgressEvent | None = None
        try:
            while True:
                exited = self.process.poll() is not None
                for raw in self._read_new(buffer):
                    event = ProgressEvent.from_worker(self.run_id, raw)
                    if event.kind in TERMINAL:
                        final = event
                    else:
                        yield event
                if exited:
                    break
                time.sleep(self.poll_s)
        finally:
            self._log.close()
        code = self.process.returncode
        if code == EXIT_DONE and final is not None and final.kind == "done":
            yield final
        elif code == EXIT_CANCELLED:
            yield final or ProgressEvent("cancelled", self.run_id, message="cancelled")
        elif code == EXIT_INVALID and final is not None:
            yield final
        else:
            why = final.message if final is not None else (
                f"the training process was killed (signal {-code})" if code < 0 else f"the training process exited with status {code}")
            yield ProgressEvent("failed", self.run_id, step=final.step if final else 0,
                                message=f"{why}; resume with `python app.py train --resume {self.run_id}`",
                                log_tail=log_tail(self.dir))


def train(settings: Settings, job: TrainJob) -> Iterator[ProgressEvent]:
    """Start (or resume) the worker for ``job`` and yield its progress until it ends."""
    process = TrainingProcess(settings, job.run_id)
    try:
        yield from process.events()
    finally:
        process.cancel()  # the caller stopped listening (closed generator, Ctrl-C): stop cleanly
        try:
            process.process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()


def resume(settings: Settings, run_id: str) -> TrainJob:
    """The job of an unfinished run, checked resumable."""
    folder = run_dir(settings, run_id)
    if run_status(folder)["status"] == "done":
        raise DomainsmithError(f"run {run_id} already finished: export it with `python app.py export {run_id}`")
    return TrainJob.load(folder)


def cancel(settings: Settings, run_id: str) -> bool:
    """Ask a run's worker (in any process) to stop after its current step; False if none runs."""
    folder = run_dir(settings, run_id)
    pid = _pid(folder)
    if pid is None or not is_running(folder):
        return False
    os.kill(pid, signal.SIGTERM)
    return True


def _pid(folder: Path) -> int | None:
    try:
        return int((folder / "worker.pid").read_text().strip())
    except (OSError, ValueError):
        return None


def is_running(folder: Path) -> bool:
    pid = _pid(folder)
    if pid is None:
        return False
    try:
        os.kill(pid, 0)
    except (ProcessLookupError, PermissionError):
        return False
    try:  # a zombie or a recycled pid is not our worker
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        return b"adapters.worker" in cmdline and str(folder).encode() in cmdline
    except OSError:
        return True


def log_tail(folder: Path, lines: int = 25) -> str:
    try:
        text = (folder / "worker.log").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


def read_events(folder: Path) -> list[dict[str, Any]]:
    path = folder / "events.jsonl"
    if not path.exists():
        return []
    out = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            out.append(json.loads(line))
        except ValueError:  # a line cut by a kill
            continue
    return out


def run_status(folder: Path) -> dict[str, Any]:
    """A run's summary for ``runs list``: status, step, losses, method, when."""
    job = TrainJob.load(folder)
    events = read_events(folder)
    steps = [e for e in events if e.get("type") == "step"]
    last = events[-1] if events else {}
    if is_running(folder):
        status = "running"
    elif last.get("type") == "done":
        status = "done"
    elif last.get("type") == "cancelled":
        status = "cancelled"
    elif last.get("type") == "error":
        status = "failed"
    else:
        status = "interrupted" if events else "new"
    metrics = next((e.get("metrics") for e in reversed(events) if e.get("type") == "done"), None) or {}
    total = next((e.get("total_steps") for e in reversed(events) if e.get("total_steps")), 0)
    return {"run_id": job.run_id, "status": status, "step": steps[-1]["step"] if steps else 0, "total_steps": total,
            "loss": steps[-1]["loss"] if steps else None, "val_loss": metrics.get("val_loss_after"),
            "method": job.method, "preset": job.preset, "base": Path(job.base).name, "source": job.source,
            "examples": job.n_train, "created": job.created_at, "message": last.get("message", "")}


def list_runs(settings: Settings) -> list[dict[str, Any]]:
    root = runs_dir(settings)
    if not root.is_dir():
        return []
    return [run_status(p) for p in sorted(root.iterdir()) if (p / "job.json").is_file()]
