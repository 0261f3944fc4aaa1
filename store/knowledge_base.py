"""The knowledge base facade: add, list, search, remove and reindex documents.

SQLite (through sqlite-utils) is the source of truth; the hnswlib index is derived from the
embeddings stored there. Every document is written in one transaction that also bumps the
knowledge base's ``generation``; the index file records the generation it reflects, so an
index that missed a write (a crash, another process) is noticed and rebuilt from SQLite.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import logging
import re
import time
from pathlib import Path
from typing import Iterable, Iterator

import numpy as np
from sqlite_utils import Database

from store import fts, kb_rows
from store.chunking import Chunker
from store.embedding import Embedder
from store.errors import DocumentNotFound, EmbedderMismatch, KnowledgeBaseError
from store.ingest import Candidate, Prepared, Skipped, chunk_context, discover, embedding_text, prepare_in_background
from store.ranking import collapse_duplicates, reciprocal_rank_fusion
from store.records import SECTION_SEPARATOR, Document, IngestEvent, IngestSummary, SearchHit
from store.schema import open_db, write_lock, write_transaction
from store.settings import Settings
from store.vector_index import VectorIndex, remove_files

log = logging.getLogger(__name__)

SEARCH_MODES = ("hybrid", "vector", "keyword")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
_INDEX_SAVE_SECONDS = 30.0


def validate_name(name: str) -> str:
    if not _NAME.match(name or ""):
        raise KnowledgeBaseError(
            f"invalid knowledge base name {name!r}: use 1-64 letters, digits, '.', '_' or '-', "
            "starting with a letter or digit"
        )
    return name


def list_knowledge_bases(settings: Settings) -> list[dict]:
    """Every knowledge base with its document and chunk counts."""
    if not settings.db_path.exists():
        return []
    db = open_db(settings.db_path)
    try:
        return list(
            db.query(
                """SELECT k.name, k.embedder, k.created_at,
                   (SELECT count(*) FROM documents d WHERE d.kb_id = k.id) AS documents,
                   (SELECT count(*) FROM chunks c WHERE c.kb_id = k.id) AS chunks
                   FROM knowledge_bases k ORDER BY k.name"""
            )
        )
    finally:
        db.close()


class KnowledgeBase:
    def __init__(self, settings: Settings, db: Database, row: dict, embedder: Embedder):
        self.settings = settings
        self.db = db
        self.id: int = row["id"]
        self.name: str = row["name"]
        self.embedder = embedder
        self.dim: int = row["dim"]
        self.chunker = Chunker(embedder.count_tokens, settings.chunk_tokens, settings.chunk_overlap)
        self.index_path = settings.index_dir / f"{self.name}.hnsw"
        self._index: VectorIndex | None = None
        self._index_generation = -1
        # One connection serves every thread of the process: writes (chat sessions' too) and index
        # swaps take turns.
        self._lock = write_lock(db)

    # -- opening ---------------------------------------------------------------------------

    @classmethod
    def open(
        cls,
        settings: Settings,
        name: str | None = None,
        embedder: Embedder | None = None,
        *,
        create: bool = True,
        allow_embedder_change: bool = False,
    ) -> "KnowledgeBase":
        """Open knowledge base ``name`` (created if missing and ``create``), checking its index.

        The index is verified against SQLite and rebuilt when missing, damaged or out of date.
        A knowledge base built with another embedder raises ``EmbedderMismatch`` (``kb reindex``
        re-embeds it: it opens with ``allow_embedder_change``).
        """
        name = validate_name(name or settings.default_kb)
        settings.ensure_home()
        embedder = embedder or Embedder(settings.embedder_path, batch_size=settings.embed_batch_size)
        db = open_db(settings.db_path)
        try:
            row = cls._row(db, name)
            if row is None:
                if not create:
                    raise KnowledgeBaseError(f"no knowledge base named {name!r}")
                db.execute(
                    """INSERT OR IGNORE INTO knowledge_bases
                       (name, embedder, dim, chunk_tokens, chunk_overlap, generation, created_at)
                       VALUES (?, ?, ?, ?, ?, 0, ?)""",
                    [name, embedder.name, embedder.dim, settings.chunk_tokens, settings.chunk_overlap, kb_rows.now()],
                )
                row = cls._row(db, name)
            if (row["embedder"], row["dim"]) != (embedder.name, embedder.dim) and not allow_embedder_change:
                raise EmbedderMismatch(
                    f"knowledge base {name!r} was built with the embedder {row['embedder']} "
                    f"({row['dim']} dimensions) but {embedder.name} ({embedder.dim}) is configured. "
                    f"Configure {row['embedder']} again, or run `python app.py kb reindex --kb {name}` "
                    f"to re-embed it with {embedder.name}."
                )
            kb = cls(settings, db, row, embedder)
            if (row["embedder"], row["dim"]) == (embedder.name, embedder.dim):
                kb._ensure_index()
            return kb
        except BaseException:
            db.close()
            raise

    @staticmethod
    def _row(db: Database, name: str) -> dict | None:
        rows = list(db.query("SELECT * FROM knowledge_bases WHERE name = ?", [name]))
        return rows[0] if rows else None

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> "KnowledgeBase":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- the index -------------------------------------------------------------------------

    def _generation(self) -> int:
        return kb_rows.generation(self.db, self.id)

    def _ensure_index(self) -> VectorIndex:
        """The in-memory index, reloaded or rebuilt when SQLite has moved on."""
        with self._lock:
            return self._current_index()

    def _current_index(self) -> VectorIndex:
        generation = self._generation()
        if self._index is not None and self._index_generation == generation:
            return self._index
        labels = {r[0] for r in self.db.execute("SELECT chunk FROM embeddings WHERE kb_id = ?", [self.id])}
        index = VectorIndex.load(self.index_path, generation=generation, labels=labels, dim=self.dim, **self._params())
        if index is None:
            index = self.rebuild_index()
        else:
            self._index, self._index_generation = index, generation
        return index

    def _params(self) -> dict:
        s = self.settings
        return {"m": s.hnsw_m, "ef_construction": s.hnsw_ef_construction, "ef_search": s.hnsw_ef_search}

    @property
    def index(self) -> VectorIndex:
        return self._ensure_index()

    def rebuild_index(self) -> VectorIndex:
        """Build the index from the embeddings in SQLite and save it."""
        with self.db.atomic():  # one read transaction: a consistent snapshot with its generation
            generation = self._generation()
            rows = self.db.execute(
                "SELECT chunk, vector FROM embeddings WHERE kb_id = ? ORDER BY chunk", [self.id]
            ).fetchall()
        log.info("building the vector index of %r from %d stored embeddings", self.name, len(rows))
        labels = np.array([r[0] for r in rows], dtype=np.int64)
        vectors = np.frombuffer(b"".join(r[1] for r in rows), dtype=np.float32).reshape(len(rows), self.dim)
        index = VectorIndex.build(self.dim, labels, vectors, **self._params())
        index.save(self.index_path, generation)
        self._index, self._index_generation = index, generation
        return index

    def save_index(self) -> None:
        """Save the in-memory index if it matches SQLite; a failed save (a full disk) only costs a rebuild."""
        if self._index is not None and self._index_generation == self._generation():
            try:
                self._index.save(self.index_path, self._index_generation)
            except OSError as exc:
                log.warning("could not save the vector index of %r (%s); it will be rebuilt when next opened",
                            self.name, exc)

    # -- adding ----------------------------------------------------------------------------

    def add(self, paths: Iterable[str | Path]) -> Iterator[IngestEvent]:
        """Ingest files and folders; yields an event per file, then a ``done`` event with the summary.

        A bad file yields a ``failed`` event and the batch goes on. Each document is committed
        in its own transaction, so an interrupted batch leaves only complete documents.
        """
        started = time.monotonic()
        summary = IngestSummary()
        found = list(discover(paths))
        candidates = [c for c in found if isinstance(c, Candidate)]
        total = len(found)
        done = 0
        for skipped in (s for s in found if isinstance(s, Skipped)):
            done += 1
            (summary.failed if skipped.failed else summary.skipped).append((skipped.source, skipped.reason))
            yield IngestEvent("failed" if skipped.failed else "skipped", source=skipped.source,
                              reason=skipped.reason, done=done, total=total)
        known = {r[0]: r[1] for r in self.db.execute(
            "SELECT origin, content_hash FROM documents WHERE kb_id = ?", [self.id])}
        self._ensure_index()
        pending: list[Prepared] = []
        last_save = time.monotonic()
        try:
            for item in prepare_in_background(candidates, self.chunker, self.settings.parse_limits, known):
                if item.error is not None or item.unchanged:
                    done += 1
                    yield self._settle(item, summary, done, total)
                    continue
                pending.append(item)
                if sum(len(p.chunks) for p in pending) >= self.settings.embed_batch_size:
                    for event in self._embed_and_commit(pending, summary):
                        done += 1
                        yield dataclasses.replace(event, done=done, total=total)
                    pending = []
                    if time.monotonic() - last_save > _INDEX_SAVE_SECONDS:
                        self.save_index()
                        last_save = time.monotonic()
            for event in self._embed_and_commit(pending, summary):
                done += 1
                yield dataclasses.replace(event, done=done, total=total)
        finally:
            self.save_index()
        summary.seconds = time.monotonic() - started
        yield IngestEvent("done", done=done, total=total, summary=summary)

    def _settle(self, item: Prepared, summary: IngestSummary, done: int, total: int) -> IngestEvent:
        source = item.candidate.source
        if item.unchanged:
            summary.unchanged.append(source)
            return IngestEvent("unchanged", path=str(item.candidate.path), source=source,
                               doc_id=self.doc_id(item.candidate.origin), reason="unchanged since it was added",
                               done=done, total=total)
        summary.failed.append((source, item.error or "failed"))
        return IngestEvent("failed", path=str(item.candidate.path), source=source, reason=item.error or "",
                           done=done, total=total)

    def _embed_and_commit(self, batch: list[Prepared], summary: IngestSummary) -> Iterator[IngestEvent]:
        if not batch:
            return
        texts = [t for item in batch for t in item.embedding_texts()]
        vectors = self.embedder.encode(texts)
        offset = 0
        for item in batch:
            item_vectors = vectors[offset: offset + len(item.chunks)]
            offset += len(item.chunks)
            yield self._commit(item, item_vectors, summary)

    def doc_id(self, origin: str) -> str:
        return hashlib.sha256(f"{self.name}\0{origin}".encode()).hexdigest()[:12]

    def _commit(self, item: Prepared, vectors: np.ndarray, summary: IngestSummary) -> IngestEvent:
        """Write one document, its chunks and embeddings in one transaction; then update the index."""
        candidate = item.candidate
        doc_id = self.doc_id(candidate.origin)
        duplicate = self.db.execute(
            "SELECT source FROM documents WHERE kb_id = ? AND content_hash = ? AND origin != ?",
            [self.id, item.content_hash, candidate.origin],
        ).fetchone()
        if duplicate:
            reason = f"same content as {duplicate[0]}, already in the knowledge base"
            summary.skipped.append((candidate.source, reason))
            return IngestEvent("skipped", path=str(candidate.path), source=candidate.source, reason=reason)
        with self._writing(f"adding {candidate.source}"):
            generation = self._generation()
            old_labels = kb_rows.chunk_labels(self.db, doc_id)
            replaced = kb_rows.delete_document(self.db, doc_id) > 0
            labels = kb_rows.insert_document(self.db, self.id, doc_id, item, vectors)
            kb_rows.bump_generation(self.db, self.id)
            self._apply_to_index(generation, remove=old_labels, add=(labels, vectors))
        status = "replaced" if replaced else "added"
        (summary.replaced if replaced else summary.added).append(candidate.source)
        summary.chunks_added += len(labels)
        return IngestEvent(status, path=str(candidate.path), source=candidate.source, doc_id=doc_id,
                           chunks=len(labels))

    @contextlib.contextmanager
    def _writing(self, doing: str) -> Iterator[None]:
        """The lock and one write transaction. A failed write also drops the in-memory index, which
        may already mirror the rolled-back change; it is reloaded or rebuilt from SQLite on next use."""
        with self._lock:
            try:
                with write_transaction(self.db, doing):
                    yield
            except BaseException:
                self._index, self._index_generation = None, -1
                raise

    def _apply_to_index(self, generation_before: int, remove: list[int], add: tuple[list[int], np.ndarray] | None) -> None:
        """Mirror a committed write in the in-memory index, or drop it if another writer interleaved."""
        if self._index is None or self._index_generation != generation_before:
            self._index, self._index_generation = None, -1  # rebuilt on next use
            return
        self._index.remove(remove)
        if add is not None:
            self._index.add(np.asarray(add[0], dtype=np.int64), add[1])
        self._index_generation = generation_before + 1

    # -- removing and reindexing -----------------------------------------------------------

    def remove(self, doc_id: str) -> Document:
        """Remove a document: its chunks leave SQLite, the FTS index and the vector index."""
        document = self.document(doc_id)
        self._ensure_index()
        with self._writing(f"removing {document.source}"):
            generation = self._generation()
            labels = kb_rows.chunk_labels(self.db, doc_id)
            kb_rows.delete_document(self.db, doc_id)
            kb_rows.bump_generation(self.db, self.id)
            self._apply_to_index(generation, remove=labels, add=None)
        self.save_index()
        return document

    def reindex(self, progress=None) -> int:
        """Re-embed every chunk with the configured embedder and rebuild the index; returns chunks."""
        rows = self.db.execute(
            "SELECT id, context, text FROM chunks WHERE kb_id = ? ORDER BY id", [self.id]
        ).fetchall()
        step = max(self.settings.embed_batch_size * 8, 64)
        parts = []
        for start in range(0, len(rows), step):
            batch = rows[start: start + step]
            parts.append(self.embedder.encode([embedding_text(r[1], r[2]) for r in batch]))
            if progress:
                progress(min(start + step, len(rows)), len(rows))
        vectors = np.concatenate(parts) if parts else np.zeros((0, self.embedder.dim), dtype=np.float32)
        conn = self.db.conn
        with self._writing(f"re-indexing {self.name}"):
            conn.execute("DELETE FROM embeddings WHERE kb_id = ?", [self.id])
            conn.executemany(
                "INSERT INTO embeddings (chunk, kb_id, vector, content_hash) VALUES (?,?,?,?)",
                [(r[0], self.id, v.tobytes(), kb_rows.text_hash(r[2]))
                 for r, v in zip(rows, vectors)],
            )
            conn.execute(
                "UPDATE knowledge_bases SET embedder = ?, dim = ?, generation = generation + 1 WHERE id = ?",
                [self.embedder.name, self.embedder.dim, self.id],
            )
        self.dim = self.embedder.dim
        self.rebuild_index()
        return len(rows)

    def delete(self) -> None:
        """Delete this knowledge base entirely (documents, chunks, embeddings, index files)."""
        conn = self.db.conn
        with self._writing(f"deleting {self.name}"):
            conn.execute("DELETE FROM embeddings WHERE kb_id = ?", [self.id])
            conn.execute("DELETE FROM chunks WHERE kb_id = ?", [self.id])
            conn.execute("DELETE FROM documents WHERE kb_id = ?", [self.id])
            conn.execute("DELETE FROM knowledge_bases WHERE id = ?", [self.id])
        remove_files(self.index_path)
        self._index = None

    # -- reading ---------------------------------------------------------------------------

    def documents(self) -> list[Document]:
        rows = self.db.execute(
            f"SELECT {kb_rows.DOC_COLUMNS} FROM documents WHERE kb_id = ? ORDER BY source, added_at", [self.id]
        ).fetchall()
        return [kb_rows.to_document(r) for r in rows]

    def document(self, doc_id: str) -> Document:
        row = self.db.execute(
            f"SELECT {kb_rows.DOC_COLUMNS} FROM documents WHERE kb_id = ? AND id = ?", [self.id, doc_id]
        ).fetchone()
        if row is None:
            raise DocumentNotFound(f"no document {doc_id!r} in knowledge base {self.name!r}")
        return kb_rows.to_document(row)

    def stats(self) -> dict:
        count = lambda table: self.db.execute(f"SELECT count(*) FROM {table} WHERE kb_id = ?", [self.id]).fetchone()[0]  # noqa: E731
        return {"name": self.name, "documents": count("documents"), "chunks": count("chunks"),
                "embedder": self.embedder.name, "dim": self.dim}

    def chunk_texts_for_embedding(self) -> list[str]:
        """Exactly what the embedder was given for each chunk, in chunk order (benchmarks use it)."""
        rows = self.db.execute("SELECT context, text FROM chunks WHERE kb_id = ? ORDER BY id", [self.id])
        return [embedding_text(r[0], r[1]) for r in rows]

    def check(self) -> dict:
        """Verify that documents, chunks, embeddings, FTS and the vector index agree.

        Returns the counts; raises ``KnowledgeBaseError`` naming the first disagreement.
        """
        problems, chunks = kb_rows.consistency_problems(self.db, self.id, self.index.labels)
        if problems:
            raise KnowledgeBaseError(f"knowledge base {self.name!r} is inconsistent: " + "; ".join(problems))
        return {"documents": self.stats()["documents"], "chunks": chunks, "indexed": len(self.index)}

    # -- searching -------------------------------------------------------------------------

    def search(self, query: str, k: int = 5, mode: str = "hybrid") -> list[SearchHit]:
        """The ``k`` best passages for ``query``; ``mode`` is hybrid (default), vector or keyword."""
        if mode not in SEARCH_MODES:
            raise KnowledgeBaseError(f"unknown search mode {mode!r}: use one of {', '.join(SEARCH_MODES)}")
        return self.search_all(query, k, modes=(mode,))[mode]

    def search_all(self, query: str, k: int = 5, modes: tuple[str, ...] = SEARCH_MODES) -> dict[str, list[SearchHit]]:
        """Ranked hits per mode, embedding the query and running each search once."""
        query = (query or "").strip()
        if not query or k <= 0:
            return {mode: [] for mode in modes}
        fetch = max(4 * k, 50)
        ranked: dict[str, list[tuple[int, float]]] = {}
        if {"vector", "hybrid"} & set(modes):
            ranked["vector"] = self._vector_search(query, fetch)
        if {"keyword", "hybrid"} & set(modes):
            ranked["keyword"] = fts.keyword_search(self.db, self.id, query, fetch)
        if "hybrid" in modes:
            ranked["hybrid"] = reciprocal_rank_fusion(
                [[i for i, _ in ranked["vector"]], [i for i, _ in ranked["keyword"]]],
                k=self.settings.rrf_k, weights=(1.0, self.settings.keyword_weight))
        return {mode: self._hits(ranked[mode], k) for mode in modes}

    def _vector_search(self, query: str, k: int) -> list[tuple[int, float]]:
        index = self._ensure_index()
        if len(index) == 0:
            return []
        labels, distances = index.query(self.embedder.encode([query]), k)
        return [(int(label), 1.0 - float(d)) for label, d in zip(labels[0], distances[0])]

    def _hits(self, scored: list[tuple[int, float]], k: int) -> list[SearchHit]:
        if not scored:
            return []
        ids = [i for i, _ in scored]
        rows = {
            r[0]: r
            for r in self.db.execute(
                f"""SELECT c.id, c.chunk_id, c.doc_id, d.name, d.source, c.page, c.section, c.text, c.start, c."end"
                    FROM chunks c JOIN documents d ON d.id = c.doc_id
                    WHERE c.id IN ({",".join("?" * len(ids))})""",
                ids,
            )
        }
        score_of = dict(scored)
        present = [(i, rows[i][7]) for i in ids if i in rows]
        hits = []
        for rank, chunk_row in enumerate(collapse_duplicates(present)[:k], start=1):
            r = rows[chunk_row]
            hits.append(SearchHit(rank=rank, score=score_of[chunk_row], chunk_id=r[1], doc_id=r[2], document=r[3],
                                  source=r[4], page=r[5], section=r[6], text=r[7], start=r[8], end=r[9]))
        return hits


__all__ = ["KnowledgeBase", "list_knowledge_bases", "validate_name", "SEARCH_MODES", "SECTION_SEPARATOR"]
