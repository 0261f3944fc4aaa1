"""Generations started from the web app ("Generate from documents"): one background thread each.

``adapters.datagen.generate`` does the work, wired to the model and the knowledge base as
``python app.py data generate`` wires them. Each generation runs in a thread of the app process
with a cancel ``Event``, holds the file's lock (``adapters.datagen_review.generating``: a review
refuses to write meanwhile), and marks itself in the process workload (``store.workload``) so
that Chat's llama.cpp threads are chosen as beside an ingestion. Its latest report is kept here
for the page's timer to read; the rows are on disk as the generation writes them.

One generation at a time per app: they would share the one llama.cpp runtime and the cores.
``progress_html`` renders a generation's state as the panel's progress line.
"""

from __future__ import annotations

import contextlib
import html
import logging
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from adapters import datagen_review
from adapters.datagen import GenerateOptions, GenerationDone, GenerationReport
from store import workload
from store.errors import DomainsmithError
from store.knowledge_base import validate_name
from store.uploads import safe_name
from ui.gradio_errors import plain_words
from ui.services import Services

log = logging.getLogger(__name__)

DATASETS = "datasets"  # DOMAINSMITH_HOME/datasets/: the generated files


@dataclass
class GenerationJob:
    """One generation of this app: what it writes, how far it got, and how it ended."""

    out: Path
    kb: str
    model: str
    cancel: threading.Event = field(default_factory=threading.Event)
    phase: str = "starting"  # starting, preparing the model, generating, done, stopped, failed
    report: GenerationReport | None = None
    error: str = ""
    started: float = field(default_factory=time.monotonic)
    thread: threading.Thread | None = None

    @property
    def running(self) -> bool:
        return self.thread is not None and self.thread.is_alive()


class Generations:
    """The generations started by this app, by output file (the newest kept per file)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._jobs: dict[Path, GenerationJob] = {}

    def start(self, services: Services, options: GenerateOptions, out: Path) -> GenerationJob:
        """Start generating into ``out`` (resuming what is there) in a background thread; returns at once."""
        out = Path(out).resolve()
        with self._lock:
            busy = next((j for j in self._jobs.values() if j.running), None)
            if busy is not None:
                raise DomainsmithError(
                    f"a generation is already running (into {busy.out.name}): stop it or wait until it ends"
                )
            stack = contextlib.ExitStack()
            stack.enter_context(datagen_review.generating(out))  # refused if another process writes it
            job = GenerationJob(out, options.kb or services.settings.default_kb, options.model or "")
            job.thread = threading.Thread(
                target=_run, args=(services, job, options, stack), name=f"generate-{out.stem}", daemon=True
            )
            self._jobs[out] = job
            job.thread.start()
        return job

    def get(self, out: Path | None) -> GenerationJob | None:
        with self._lock:
            return self._jobs.get(Path(out).resolve()) if out else None

    def cancel(self, out: Path | None) -> bool:
        """Ask the generation into ``out`` to stop after its current passage; False when none runs."""
        job = self.get(out)
        if job is None or not job.running:
            return False
        job.cancel.set()
        return True

    def wait(self, out: Path, timeout: float | None = None) -> None:
        """Block until the generation into ``out`` ends (tests, scripts)."""
        job = self.get(out)
        if job is not None and job.thread is not None:
            job.thread.join(timeout)


def _run(services: Services, job: GenerationJob, options: GenerateOptions, lock: contextlib.ExitStack) -> None:
    from adapters.datagen import generate, model_complete

    try:
        with lock, workload.busy(f"generating training data from {job.kb}"):
            assistant = services.assistant
            kb = assistant.searchable_kb(options.kb)
            job.phase = "preparing the model"
            assistant.prepare(options.model)  # a bundled model is assembled on first use
            complete, job.model = model_complete(assistant, options.model, options, job.cancel)
            job.phase = "generating"
            for event in generate(kb, services.settings, complete, job.model, job.out, options, job.cancel):
                job.report = event.report
                if isinstance(event, GenerationDone):
                    job.phase = "stopped" if event.report.cancelled else "done"
    except Exception as exc:  # shown on the page; the rows written so far stay valid and resumable
        if not isinstance(exc, DomainsmithError):
            log.exception("generation into %s failed", job.out)
        job.error, job.phase = plain_words(exc), "failed"


def progress_html(generations: Generations, out: str | None) -> tuple[str, bool]:
    """(the generation's progress line, finished?) for the file ``out``; ("", True) when none ran here."""
    job = generations.get(Path(out)) if out else None
    if job is None:
        return "", True
    running = job.running
    status = "generating" if running and job.phase in ("done", "stopped") else job.phase
    return _progress_line(job, status), not running


def _progress_line(job: GenerationJob, status: str) -> str:
    r = job.report
    parts: list[str] = []
    fraction = 0.0
    if r is not None:
        fraction = r.chunks_done / r.chunks_total if r.chunks_total else 1.0
        rejected = sum(r.rejected.values())
        reasons = ", ".join(f"{k} {n}" for k, n in r.rejected.items() if n)
        parts = [
            f"{r.chunks_done}/{r.chunks_total} passages",
            f"{r.kept} answerable",
            f"{r.unanswerable} unanswerable" + (f" ({r.renamed} by renaming)" if r.renamed else ""),
            f"{rejected} rejected" + (f" ({reasons})" if reasons else ""),
        ]
        if r.seconds_per_chunk:
            parts.append(f"{r.seconds_per_chunk:.1f} s per passage")
    labels = {
        "starting": "⏳ starting",
        "preparing the model": "⏳ preparing the model",
        "generating": "⏳ generating",
        "done": "✅ finished",
        "stopped": "⏹ stopped (Resume continues it)",
        "failed": "❌ failed",
    }
    model = f" with {html.escape(job.model)}" if job.model else ""
    error = f"<div class='ds-gen-error'>{html.escape(job.error)}</div>" if job.error else ""
    return (
        f"<div class='ds-gen-progress' data-status='{html.escape(status)}'>"
        f"<b>{html.escape(job.out.name)}</b> from {html.escape(job.kb)}{model}: {labels.get(status, status)}"
        f"{': ' + ' · '.join(parts) if parts else ''}"
        f"<progress max='1' value='{fraction:.3f}' style='width:100%'></progress>{error}</div>"
    )


def datasets_dir(services: Services) -> Path:
    return services.settings.home / DATASETS


def new_output(services: Services, kb: str) -> Path:
    """A new empty ``datasets/generated-<kb>-<UTC time>.jsonl``."""
    folder = datasets_dir(services)
    folder.mkdir(parents=True, exist_ok=True)
    stem = f"generated-{validate_name(kb)}-{time.strftime('%Y%m%d-%H%M%S', time.gmtime())}"
    out, n = folder / safe_name(f"{stem}.jsonl"), 2
    while out.exists():
        out, n = folder / safe_name(f"{stem}-{n}.jsonl"), n + 1
    out.touch()  # listed (and pickable) from now on, before its first row
    return out


def checked_output(services: Services, value: str | None, must_exist: bool = True) -> Path:
    """The generated file a page names (a picker's value, which a client can forge): only a rows
    file directly in ``datasets/``."""
    if not value:
        raise DomainsmithError("generate rows first, or pick a generated file")
    folder = datasets_dir(services).resolve()
    given = Path(str(value))
    path = given.resolve() if given.is_absolute() else (folder / given).resolve()
    if path.parent != folder or path.suffix != ".jsonl" or path.name.endswith(".rejected.jsonl"):
        raise DomainsmithError("pick a generated file from the list")
    if must_exist and not path.is_file():
        raise DomainsmithError(f"{path.name} is not there: generate rows first, or pick another generated file")
    return path
