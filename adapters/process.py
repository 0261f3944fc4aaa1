"""Process control for training: start ``python -m adapters.worker RUN_DIR``, tail its events, cancel it.

``train(settings, job)`` yields ``ProgressEvent`` objects tailed from ``events.jsonl`` until the
worker exits, ending with one of ``done``, ``cancelled`` or ``failed`` (the last with the log's
tail). The worker never runs in the caller's process, so a crash or an out-of-memory kill cannot
take the app down. Reading runs that are not ours to follow is ``adapters.catalogue``.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Generator, Iterator
from pathlib import Path

from adapters.catalogue import is_running, log_tail, run_dir, worker_pid
from adapters.events import TERMINAL, EventTail, ProgressEvent
from adapters.job import TrainJob
from adapters.worker import EXIT_CANCELLED, EXIT_DONE, EXIT_INVALID
from store import workload
from store.errors import DomainsmithError
from store.settings import Settings

ROOT = Path(__file__).resolve().parent.parent


class TrainingProcess:
    """A running worker: ``events()`` tails its progress; ``cancel()`` asks it to stop cleanly."""

    def __init__(self, settings: Settings, run_id: str, poll_s: float = 0.2):
        self.run_id = run_id
        self.dir = run_dir(settings, run_id)
        self.poll_s = poll_s
        if is_running(self.dir):
            raise DomainsmithError(f"run {run_id} is already training")
        self._tail = EventTail(self.dir.events)
        self._log = self.dir.log.open("ab")
        env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "PYTHONUNBUFFERED": "1"}
        # Sleeping, not spinning, OpenMP threads: with another process busy on one of 2 cores, spinning
        # threads made steps 2-30x slower (5-72 s instead of 2.3 s measured on SmolLM2-135M).
        env.setdefault("OMP_WAIT_POLICY", "PASSIVE")
        env["PYTHONPATH"] = str(ROOT) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "adapters.worker", str(self.dir.path)],
            cwd=str(ROOT),
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        self.dir.pid.write_text(str(self.process.pid))

    def cancel(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)

    def kill(self) -> None:
        """Stop at once, without a checkpoint (tests use it to simulate a crash)."""
        if self.process.poll() is None:
            self.process.kill()

    def events(self) -> Iterator[ProgressEvent]:
        """Progress until the worker exits; meanwhile ``store.workload`` counts it (it uses the cores)."""
        with workload.busy(f"training {self.run_id}"):
            final = yield from self._follow()
        yield self._outcome(final)

    def _follow(self) -> Generator[ProgressEvent, None, ProgressEvent | None]:
        """Yield the worker's events until it exits; return its terminal event, if it wrote one."""
        final: ProgressEvent | None = None
        try:
            while True:
                exited = self.process.poll() is not None
                for worker_event in self._tail.read_new():
                    event = ProgressEvent.from_event(self.run_id, worker_event)
                    if event.kind in TERMINAL:
                        final = event
                    else:
                        yield event
                if exited:
                    break
                time.sleep(self.poll_s)
        finally:
            self._log.close()
        return final

    def _outcome(self, final: ProgressEvent | None) -> ProgressEvent:
        """The last event: the worker's own when its exit code agrees, else a ``failed`` one with the log."""
        code = self.process.returncode
        if code == EXIT_DONE and final is not None and final.kind == "done":
            return final
        if code == EXIT_CANCELLED:
            return final or ProgressEvent("cancelled", self.run_id, message="cancelled")
        if code == EXIT_INVALID and final is not None:
            return final
        if final is not None:
            why = final.message
        elif code < 0:
            why = f"the training process was killed (signal {-code})"
        else:
            why = f"the training process exited with status {code}"
        return ProgressEvent(
            "failed",
            self.run_id,
            step=final.step if final else 0,
            message=f"{why}; resume with `python app.py train --resume {self.run_id}`",
            log_tail=log_tail(self.dir),
        )


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


def cancel(settings: Settings, run_id: str) -> bool:
    """Ask a run's worker (in any process) to stop after its current step; False if none runs."""
    folder = run_dir(settings, run_id)
    pid = worker_pid(folder)
    if pid is None or not is_running(folder):
        return False
    os.kill(pid, signal.SIGTERM)
    return True
