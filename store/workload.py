"""The heavy work this process is doing right now: ingestion, re-indexing, training, export.

Each job says so while it runs (``with workload.busy("ingesting pumps.md"): ...``) and chat reads
``active()`` before each answer to choose how many threads llama.cpp may use. On a small machine,
llama.cpp threads wait for each other at every barrier: beside a job holding one of 2 cores,
SmolLM2 generated 24 tokens/s on 2 threads and 38 on 1 (``bench/chat.py`` and ``assistant.llm``
give the figures; ../shared/STACK-NOTES.md saw a collapse from 83 to 3 tokens/s on another day).

It works both ways: an answer being generated marks itself too (``answering()``), and the
embedder of a running ingestion then gives one core back between batches (``store.embedding``),
so that llama.cpp's single generation thread has a core of its own instead of a third of two.

The record is process-wide on purpose, because the cores are: a job started by any service of
this process counts, a training child process too (its supervisor marks it while it lives). It
lives in ``store`` so that ingestion, training supervision and chat can all reach it without an
upward import. ``Workload()`` makes a separate record for tests.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import threading
from collections.abc import Iterator

log = logging.getLogger(__name__)


class Workload:
    """A thread-safe registry of running jobs, each described in a few words."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._jobs: dict[int, str] = {}
        self._ids = itertools.count(1)
        self._answers = 0

    @contextlib.contextmanager
    def busy(self, what: str) -> Iterator[None]:
        """Count ``what`` as running until the block ends (however it ends)."""
        with self._lock:
            key = next(self._ids)
            self._jobs[key] = what
        log.debug("busy: %s", what)
        try:
            yield
        finally:
            with self._lock:
                self._jobs.pop(key, None)
            log.debug("done: %s", what)

    def active(self) -> list[str]:
        """What runs now, oldest first."""
        with self._lock:
            return list(self._jobs.values())

    @contextlib.contextmanager
    def answering(self) -> Iterator[None]:
        """Count a chat answer being generated until the block ends (jobs read it to yield a core)."""
        with self._lock:
            self._answers += 1
        try:
            yield
        finally:
            with self._lock:
                self._answers -= 1

    def answers(self) -> int:
        """How many chat answers are being generated now."""
        with self._lock:
            return self._answers


PROCESS = Workload()
"""The record of this process: what the app's own jobs mark and chat reads."""


def busy(what: str) -> contextlib.AbstractContextManager[None]:
    """``PROCESS.busy(what)``: mark heavy work of this process while the block runs."""
    return PROCESS.busy(what)


def answers() -> int:
    """``PROCESS.answers()``: chat answers being generated in this process now."""
    return PROCESS.answers()


def active() -> list[str]:
    """``PROCESS.active()``: the heavy work this process is doing now."""
    return PROCESS.active()
