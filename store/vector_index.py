"""The hnswlib vector index: derived data, always rebuildable from the embeddings in SQLite.

Labels are the chunks' integer row ids. Vectors are unit length and the space is inner
product, so ``1 - distance`` is the cosine similarity. ``save`` writes the index to a
temporary name and renames it into place, next to a small JSON sidecar recording the
knowledge base's generation, the live count and a digest of the file; ``load`` returns None
(meaning: rebuild) when the file is missing, truncated, garbage or out of date, without ever
handing a damaged file to hnswlib.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import threading
from pathlib import Path

import hnswlib
import numpy as np

from store.durable import fsync_path

log = logging.getLogger(__name__)

_FORMAT = 1


class VectorIndex:
    def __init__(self, dim: int, *, m: int = 16, ef_construction: int = 200, ef_search: int = 128, _empty: bool = True):
        self.dim = dim
        self.m = m
        self.ef_construction = ef_construction
        self.ef_search = ef_search
        self._index = hnswlib.Index(space="ip", dim=dim)
        if _empty:
            self._index.init_index(max_elements=1024, M=m, ef_construction=ef_construction)
            self._index.set_ef(ef_search)
        self._live: set[int] = set()
        self._lock = threading.RLock()

    def __len__(self) -> int:
        return len(self._live)

    @property
    def labels(self) -> set[int]:
        return set(self._live)

    @classmethod
    def build(cls, dim: int, labels: np.ndarray, vectors: np.ndarray, **params) -> VectorIndex:
        index = cls(dim, **params)
        index.add(labels, vectors)
        return index

    def add(self, labels: np.ndarray | list[int], vectors: np.ndarray) -> None:
        labels = np.asarray(labels, dtype=np.int64)
        if len(labels) == 0:
            return
        vectors = np.ascontiguousarray(vectors, dtype=np.float32).reshape(len(labels), self.dim)
        with self._lock:
            needed = self._index.get_current_count() + len(labels)
            capacity = self._index.get_max_elements()
            if needed > capacity:
                self._index.resize_index(max(needed, capacity * 2))
            self._index.add_items(vectors, labels, num_threads=1)
            self._live.update(int(x) for x in labels)

    def remove(self, labels: list[int]) -> None:
        with self._lock:
            for label in labels:
                if label in self._live:
                    self._index.mark_deleted(int(label))
                    self._live.discard(int(label))

    def query(self, vectors: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Approximate nearest neighbours: (labels, distances), each (n, k'), k' = min(k, len)."""
        vectors = np.ascontiguousarray(vectors, dtype=np.float32).reshape(-1, self.dim)
        with self._lock:
            k = min(k, len(self._live))
            if k == 0:
                empty = np.zeros((len(vectors), 0))
                return empty.astype(np.int64), empty.astype(np.float32)
            self._index.set_ef(max(self.ef_search, k))
            try:
                labels, distances = self._index.knn_query(vectors, k=k, num_threads=1)
            except RuntimeError:  # too few reachable elements after many deletions: ask the exact way
                return self.exact_query(vectors, k)
        return labels.astype(np.int64), distances

    def vectors(self) -> tuple[np.ndarray, np.ndarray]:
        """All live (labels, vectors), for exact search and benchmarks."""
        with self._lock:
            labels = np.array(sorted(self._live), dtype=np.int64)
            if len(labels) == 0:
                return labels, np.zeros((0, self.dim), dtype=np.float32)
            return labels, np.asarray(self._index.get_items(labels), dtype=np.float32)

    def exact_query(self, vectors: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Exact inner-product search over the same vectors (the recall baseline)."""
        labels, matrix = self.vectors()
        vectors = np.ascontiguousarray(vectors, dtype=np.float32).reshape(-1, self.dim)
        k = min(k, len(labels))
        scores = vectors @ matrix.T
        top = np.argsort(-scores, axis=1)[:, :k]
        return labels[top], 1.0 - np.take_along_axis(scores, top, axis=1)

    # -- persistence ---------------------------------------------------------------------

    def save(self, path: Path, generation: int) -> None:
        """Write atomically: a crash leaves the old file or the new one, never half of one."""
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        with self._lock:
            self._index.save_index(str(tmp))
            live = len(self._live)
        fsync_path(tmp)
        digest = _digest(tmp)
        os.replace(tmp, path)
        sidecar = {
            "format": _FORMAT,
            "generation": generation,
            "live": live,
            "dim": self.dim,
            "size": path.stat().st_size,
            "blake2b": digest,
        }
        tmp_meta = _sidecar(path).with_name(_sidecar(path).name + ".tmp")
        tmp_meta.write_text(json.dumps(sidecar))
        fsync_path(tmp_meta)
        os.replace(tmp_meta, _sidecar(path))

    @classmethod
    def load(cls, path: Path, *, generation: int, labels: set[int], dim: int, **params) -> VectorIndex | None:
        """The saved index if it is intact and matches SQLite (generation and labels), else None."""
        meta = _read_sidecar(path)
        if meta is None:
            return None
        reason = None
        if meta.get("format") != _FORMAT or meta.get("dim") != dim:
            reason = "format or dimension differs"
        elif meta.get("generation") != generation or meta.get("live") != len(labels):
            reason = f"out of date (index generation {meta.get('generation')}, database {generation})"
        elif not path.is_file() or path.stat().st_size != meta.get("size") or _digest(path) != meta.get("blake2b"):
            reason = "file missing, truncated or damaged"
        if reason:
            log.warning("vector index %s unusable: %s; it will be rebuilt", path, reason)
            return None
        index = cls(dim, **params, _empty=False)
        try:
            index._index.load_index(str(path), max_elements=max(len(labels), 1024))
        except (RuntimeError, ValueError, MemoryError) as exc:
            log.warning("vector index %s unreadable (%s); it will be rebuilt", path, exc)
            return None
        index._index.set_ef(index.ef_search)
        index._live = set(labels)
        return index


def _sidecar(path: Path) -> Path:
    return path.with_name(path.name + ".json")


def _read_sidecar(path: Path) -> dict | None:
    try:
        meta = json.loads(_sidecar(path).read_text())
    except (OSError, ValueError):
        return None
    return meta if isinstance(meta, dict) else None


def _digest(path: Path) -> str:
    with open(path, "rb") as f:
        return hashlib.file_digest(f, lambda: hashlib.blake2b(digest_size=16)).hexdigest()


def remove_files(path: Path) -> None:
    for p in (path, _sidecar(path)):
        p.unlink(missing_ok=True)
