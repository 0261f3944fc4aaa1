"""Documents on their way into a knowledge base, so that a question can wait for them.

A new user drops a handbook on the Knowledge Base tab and asks about it at once. Without this
record the question reached an empty knowledge base (or one without the handbook yet) and the
answer was an error or a miss. Each batch being added says so from its first moment (before
staging, before the embedder loads) until its last document is committed, and a question waits
for the batches of its knowledge base that were in flight when it was asked.

The record is process-wide, like ``store.workload``: the web UI, the CLI and the API of one
process share it. Another process adding documents is not seen (its documents appear in SQLite
when each is committed). ``Indexing()`` makes a separate record for tests.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class Batch:
    """One batch of documents being added to one knowledge base."""

    kb: str
    names: list[str]
    done: int = 0  # documents settled (added, replaced, skipped or failed)
    started: float = field(default_factory=time.monotonic)
    finished: threading.Event = field(default_factory=threading.Event)

    def advance(self, done: int) -> None:
        """``done`` documents of the batch are settled now."""
        self.done = done

    @property
    def total(self) -> int:
        return len(self.names)

    @property
    def progress(self) -> str:
        """ "1 of 1", "2 of 5": the document being indexed now, of the batch's."""
        total = max(self.total, 1)
        return f"{min(self.done + 1, total)} of {total}"

    def describe(self) -> str:
        """ "pump-handbook.md (1 of 1)", "a.md, b.pdf and 3 more (2 of 5)"."""
        return f"{listing(self.names)} ({self.progress})"


def listing(names: list[str], shown: int = 2) -> str:
    """ "a.md", "a.md and b.md", "a.md, b.md and c.md", "a.md, b.md and 3 more"."""
    if not names:
        return "documents"
    if len(names) > shown + 1:
        return f"{', '.join(names[:shown])} and {len(names) - shown} more"
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} and {names[-1]}"


class Indexing:
    """A thread-safe record of the batches in flight, per knowledge base."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._batches: list[Batch] = []

    @contextlib.contextmanager
    def batch(self, kb: str, names: Iterable[str]) -> Iterator[Batch]:
        """Record a batch for ``kb`` (see ``key``) until the block ends, however it ends."""
        batch = Batch(kb, [Path(str(n)).name or str(n) for n in names])
        with self._lock:
            self._batches.append(batch)
        try:
            yield batch
        finally:
            with self._lock:
                self._batches.remove(batch)
            batch.finished.set()

    def pending(self, kb: str) -> list[Batch]:
        """The batches of ``kb`` in flight now, oldest first."""
        with self._lock:
            return [b for b in self._batches if b.kb == kb]


def key(db_path: str | Path, name: str) -> str:
    """The identity of a knowledge base in this process: its database and its name."""
    return f"{Path(db_path).resolve()}::{name}"


INDEXING = Indexing()  # this process's record


def wait(batches: list[Batch], timeout: float, poll: float = 0.5) -> Iterator[Batch]:
    """Wait for ``batches`` to finish; yields the batch waited on every ``poll`` seconds (at once, first).

    Raises ``TimeoutError`` after ``timeout`` seconds. Yielding often is what makes the wait
    cancellable: a UI stops a generator between two of its items.
    """
    deadline = time.monotonic() + timeout
    for batch in batches:
        while not batch.finished.is_set():
            yield batch
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(batch.describe())
            batch.finished.wait(min(poll, left))
