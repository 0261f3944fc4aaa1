"""Keeping a knowledge base's hnswlib index in step with SQLite.

Every write to a knowledge base bumps its ``generation`` in the same transaction; the index
file records the generation it reflects. ``IndexKeeper`` holds the in-memory index with the
generation it matches: it reloads or rebuilds the index when SQLite has moved on (a crash,
another process), mirrors this process's own writes into it, and saves it now and then.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from pathlib import Path

import numpy as np
from sqlite_utils import Database

from store import kb_rows
from store.database import write_lock, write_transaction
from store.settings import Settings
from store.vector_index import VectorIndex, remove_files

log = logging.getLogger(__name__)


class IndexKeeper:
    """The vector index of knowledge base ``kb_id`` (file ``path``), reloaded or rebuilt on demand."""

    def __init__(self, db: Database, kb_id: int, name: str, dim: int, path: Path, settings: Settings):
        self.db = db
        self.kb_id = kb_id
        self.name = name
        self.dim = dim
        self.path = path
        self.params = {
            "m": settings.hnsw_m,
            "ef_construction": settings.hnsw_ef_construction,
            "ef_search": settings.hnsw_ef_search,
        }
        self._index: VectorIndex | None = None
        self._generation = -1
        # One connection serves every thread of the process: writes and index swaps take turns.
        self.lock = write_lock(db)

    def generation(self) -> int:
        """The knowledge base's generation in SQLite now."""
        return kb_rows.generation(self.db, self.kb_id)

    def current(self) -> VectorIndex:
        """The in-memory index, reloaded or rebuilt when SQLite has moved on."""
        with self.lock:
            generation = self.generation()
            if self._index is not None and self._generation == generation:
                return self._index
            labels = kb_rows.embedded_labels(self.db, self.kb_id)
            index = VectorIndex.load(self.path, generation=generation, labels=labels, dim=self.dim, **self.params)
            if index is None:
                return self.rebuild()
            self._index, self._generation = index, generation
            return index

    def rebuild(self) -> VectorIndex:
        """Build the index from the embeddings in SQLite and save it."""
        with self.db.atomic():  # one read transaction: a consistent snapshot with its generation
            generation = self.generation()
            labels, vectors = kb_rows.embeddings(self.db, self.kb_id, self.dim)
        log.info("building the vector index of %r from %d stored embeddings", self.name, len(labels))
        index = VectorIndex.build(self.dim, labels, vectors, **self.params)
        index.save(self.path, generation)
        self._index, self._generation = index, generation
        return index

    def save(self) -> None:
        """Save the in-memory index if it matches SQLite; a failed save (a full disk) only costs a rebuild."""
        if self._index is not None and self._generation == self.generation():
            try:
                self._index.save(self.path, self._generation)
            except OSError as exc:
                log.warning(
                    "could not save the vector index of %r (%s); it will be rebuilt when next opened", self.name, exc
                )

    @contextlib.contextmanager
    def writing(self, doing: str) -> Iterator[None]:
        """The lock and one write transaction. A failed write also drops the in-memory index, which
        may already mirror the rolled-back change; it is reloaded or rebuilt from SQLite on next use."""
        with self.lock:
            try:
                with write_transaction(self.db, doing):
                    yield
            except BaseException:
                self.forget()
                raise

    def apply(self, generation_before: int, remove: list[int], add: tuple[list[int], np.ndarray] | None) -> None:
        """Mirror a committed write in the in-memory index, or drop it if another writer interleaved."""
        if self._index is None or self._generation != generation_before:
            self.forget()  # rebuilt on next use
            return
        self._index.remove(remove)
        if add is not None:
            self._index.add(np.asarray(add[0], dtype=np.int64), add[1])
        self._generation = generation_before + 1

    def forget(self) -> None:
        """Drop the in-memory index; the next use reloads or rebuilds it."""
        self._index, self._generation = None, -1

    def delete_files(self) -> None:
        remove_files(self.path)
        self.forget()
