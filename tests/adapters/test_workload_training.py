"""A training supervised by FineTuner counts as heavy work while its child process lives."""

from __future__ import annotations

import subprocess
import sys
import time
from types import SimpleNamespace

from adapters import process
from adapters.events import EventTail
from adapters.finetune import FineTuner
from adapters.run_folder import RunFolder
from store import workload


class IdleWorker(process.TrainingProcess):
    """The real supervision (``events()``) of a real child process that only waits to be told to exit."""

    def __init__(self, settings, run_id: str, poll_s: float = 0.05):
        self.run_id = run_id
        self.dir = RunFolder.in_home(settings.home, run_id)
        self.dir.path.mkdir(parents=True)
        self.poll_s = poll_s
        self._tail = EventTail(self.dir.events)
        self._log = self.dir.log.open("ab")
        self.process = subprocess.Popen([sys.executable, "-c", "import sys; sys.stdin.read()"], stdin=subprocess.PIPE)
        started.append(self)


started: list[IdleWorker] = []


def wait_for(condition, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.02)
    return condition()


def test_a_supervised_training_counts_while_its_process_is_alive(settings, monkeypatch):
    monkeypatch.setattr(process, "TrainingProcess", IdleWorker)
    started.clear()
    tuner = FineTuner(settings, open_kb=None)
    tuner._supervise(SimpleNamespace(run_id="run-1"))
    try:
        assert wait_for(lambda: workload.active() == ["training run-1"]), workload.active()
        worker = started[0]
        assert worker.process.poll() is None
    finally:
        started[0].process.stdin.close()  # the child exits
    tuner.wait("run-1", timeout=10)
    assert started[0].process.poll() is not None
    assert workload.active() == []


def test_events_still_end_with_the_outcome_and_the_job_is_counted_until_then(settings):
    started.clear()
    worker = IdleWorker(settings, "run-2")
    events = worker.events()
    worker.process.stdin.close()  # exits without writing an event: a failure to report
    seen = [(event, workload.active()) for event in events]
    assert len(seen) == 1
    outcome, active_then = seen[0]
    assert outcome.kind == "failed" and "exited with status 0" in outcome.message
    assert active_then == []  # the outcome comes once the worker is gone and no longer counted
    assert workload.active() == []
