"""The knowledge base facade: add, list, search, remove and reindex documents.

SQLite (through sqlite-utils) is the source of truth; the hnswlib index is derived from the
embeddings stored there. Ingestion reads files in ``store.ingest``, embeds them here and
commits each document in one transaction (``store.kb_rows``) that also bumps the knowledge
base's ``generation``; ``store.index_keeper`` keeps the vector index in step with it, and
``store.search`` answers queries.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import re
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

import numpy as np
from sqlite_utils import Database

from store import embedding, indexing, kb_rows, neighbours, search, workload
from store.chunking import Chunker
from store.database import open_db
from store.diversity import Diversity
from store.embedding import Embedder
from store.errors import DocumentNotFound, EmbedderMismatch, KnowledgeBaseError
from store.index_keeper import IndexKeeper
from store.ingest import (
    Candidate,
    Prepared,
    Reading,
    Skipped,
    discover,
    embedding_text,
    prepare_in_background,
    settle,
)
from store.records import SECTION_SEPARATOR, Document, IngestEvent, IngestSummary, SearchHit
from store.search import SEARCH_MODES
from store.settings import Settings
from store.vector_index import VectorIndex

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
    with contextlib.closing(open_db(settings.db_path)) as db:
        return kb_rows.knowledge_bases(db)


class KnowledgeBase:
    def __init__(self, settings: Settings, db: Database, row: dict, embedder: Embedder):
        self.settings = settings
        self.db = db
        self.id: int = row["id"]
        self.name: str = row["name"]
        self.embedder = embedder
        self.chunker = Chunker(
            embedder.count_tokens, settings.chunk_tokens, settings.chunk_overlap, pack_sections=settings.pack_sections
        )
        self.index_path = settings.index_dir / f"{self.name}.hnsw"
        self._keeper = IndexKeeper(db, self.id, self.name, row["dim"], self.index_path, settings)

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
    ) -> KnowledgeBase:
        """Open knowledge base ``name`` (created if missing and ``create``), checking its index.

        The index is verified against SQLite and rebuilt when missing, damaged or out of date.
        A knowledge base built with another embedder raises ``EmbedderMismatch`` (``kb reindex``
        re-embeds it: it opens with ``allow_embedder_change``).
        """
        name = validate_name(name or settings.default_kb)
        settings.ensure_home()
        embedder = embedder or embedding.from_settings(settings)
        db = open_db(settings.db_path)
        try:
            row = kb_rows.knowledge_base(db, name)
            if row is None:
                if not create:
                    raise KnowledgeBaseError(f"no knowledge base named {name!r}")
                kb_rows.create_knowledge_base(
                    db, name, embedder.name, embedder.dim, settings.chunk_tokens, settings.chunk_overlap
                )
                row = kb_rows.knowledge_base(db, name)
            if (row["embedder"], row["dim"]) != (embedder.name, embedder.dim) and not allow_embedder_change:
                raise EmbedderMismatch(
                    f"knowledge base {name!r} was built with the embedder {row['embedder']} "
                    f"({row['dim']} dimensions) but {embedder.name} ({embedder.dim}) is configured. "
                    f"Configure {row['embedder']} again (the embedder or embedder_path setting), or run "
                    f"`python app.py kb reindex --kb {name}` "
                    f"to re-embed it with {embedder.name}."
                )
            kb = cls(settings, db, row, embedder)
            if (row["embedder"], row["dim"]) == (embedder.name, embedder.dim):
                kb._keeper.current()
            return kb
        except BaseException:
            db.close()
            raise

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> KnowledgeBase:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- the index (see store.index_keeper) ------------------------------------------------

    @property
    def dim(self) -> int:
        return self._keeper.dim

    @property
    def index(self) -> VectorIndex:
        """The vector index, reloaded or rebuilt first if SQLite has moved on."""
        return self._keeper.current()

    def rebuild_index(self) -> VectorIndex:
        """Build the index from the embeddings in SQLite and save it."""
        return self._keeper.rebuild()

    def save_index(self) -> None:
        """Save the in-memory index if it matches SQLite; a failed save (a full disk) only costs a rebuild."""
        self._keeper.save()

    # -- adding ----------------------------------------------------------------------------

    def add(self, paths: Iterable[str | Path], batch: indexing.Batch | None = None) -> Iterator[IngestEvent]:
        """Ingest files and folders; yields an event per file, then a ``done`` event with the summary.

        A bad file yields a ``failed`` event and the batch goes on. Each document is committed
        in its own transaction, so an interrupted batch leaves only complete documents. While it
        runs, ``store.workload`` counts it (chat then leaves it a core) and ``store.indexing``
        records it (a question to this knowledge base waits for it); ``batch`` is a record the
        caller opened earlier (the web UI does, before staging its uploads).
        """
        paths = list(paths)
        with contextlib.ExitStack() as stack:
            if batch is None:
                batch = stack.enter_context(indexing.INDEXING.batch(self.indexing_key, paths))
            stack.enter_context(workload.busy(f"ingesting into {self.name}"))
            yield from self._add(paths, batch)

    @property
    def indexing_key(self) -> str:
        return indexing.key(self.settings.db_path, self.name)

    def _add(self, paths: list[str | Path], batch: indexing.Batch) -> Iterator[IngestEvent]:
        started = time.monotonic()
        summary = IngestSummary()
        found = list(discover(paths))
        if found:
            batch.names = [Path(f.source).name for f in found]
        candidates = [c for c in found if isinstance(c, Candidate)]
        total = len(found)
        done = 0
        for skipped in (s for s in found if isinstance(s, Skipped)):
            done += 1
            batch.advance(done)
            (summary.failed if skipped.failed else summary.skipped).append((skipped.source, skipped.reason))
            yield IngestEvent(
                "failed" if skipped.failed else "skipped",
                source=skipped.source,
                reason=skipped.reason,
                done=done,
                total=total,
            )
        known = kb_rows.content_hashes(self.db, self.id)
        self._keeper.current()
        pending: list[Prepared] = []
        last_save = time.monotonic()
        try:
            for item in prepare_in_background(candidates, self.chunker, self.settings.parse_limits, known):
                if isinstance(item, Reading):
                    yield IngestEvent(
                        "reading",
                        path=str(item.candidate.path),
                        source=item.candidate.source,
                        done=done,
                        total=total,
                        pages_done=item.done,
                        pages_total=item.total,
                    )
                    continue
                if item.error is not None or item.unchanged:
                    done += 1
                    batch.advance(done)
                    yield settle(item, summary, self.doc_id(item.candidate.origin), done, total)
                    continue
                pending.append(item)
                if sum(len(p.chunks) for p in pending) >= self.settings.embed_batch_size:
                    for event in self._embed_and_commit(pending, summary):
                        done += 1
                        batch.advance(done)
                        yield dataclasses.replace(event, done=done, total=total)
                    pending = []
                    if time.monotonic() - last_save > _INDEX_SAVE_SECONDS:
                        self.save_index()
                        last_save = time.monotonic()
            for event in self._embed_and_commit(pending, summary):
                done += 1
                batch.advance(done)
                yield dataclasses.replace(event, done=done, total=total)
        finally:
            self.save_index()
        summary.seconds = time.monotonic() - started
        yield IngestEvent("done", done=done, total=total, summary=summary)

    def _embed_and_commit(self, batch: list[Prepared], summary: IngestSummary) -> Iterator[IngestEvent]:
        if not batch:
            return
        texts = [t for item in batch for t in item.embedding_texts()]
        vectors = self.embedder.encode(texts)
        offset = 0
        for item in batch:
            item_vectors = vectors[offset : offset + len(item.chunks)]
            offset += len(item.chunks)
            yield self._commit(item, item_vectors, summary)

    def doc_id(self, origin: str) -> str:
        return hashlib.sha256(f"{self.name}\0{origin}".encode()).hexdigest()[:12]

    def _commit(self, item: Prepared, vectors: np.ndarray, summary: IngestSummary) -> IngestEvent:
        """Write one document, its chunks and embeddings in one transaction; then update the index."""
        candidate = item.candidate
        doc_id = self.doc_id(candidate.origin)
        duplicate = kb_rows.same_content(self.db, self.id, item.content_hash, candidate.origin)
        if duplicate:
            reason = f"same content as {duplicate}, already in the knowledge base"
            summary.skipped.append((candidate.source, reason))
            return IngestEvent("skipped", path=str(candidate.path), source=candidate.source, reason=reason)
        with self._keeper.writing(f"adding {candidate.source}"):
            generation = self._keeper.generation()
            old_labels = kb_rows.chunk_labels(self.db, doc_id)
            replaced = kb_rows.delete_document(self.db, doc_id) > 0
            labels = kb_rows.insert_document(self.db, self.id, doc_id, item, vectors)
            kb_rows.bump_generation(self.db, self.id)
            self._keeper.apply(generation, remove=old_labels, add=(labels, vectors))
        status = "replaced" if replaced else "added"
        (summary.replaced if replaced else summary.added).append(candidate.source)
        summary.chunks_added += len(labels)
        return IngestEvent(
            status,
            path=str(candidate.path),
            source=candidate.source,
            doc_id=doc_id,
            chunks=len(labels),
            notes=item.notes,
        )

    # -- removing and reindexing -----------------------------------------------------------

    def remove(self, doc_id: str) -> Document:
        """Remove a document: its chunks leave SQLite, the FTS index and the vector index."""
        document = self.document(doc_id)
        self._keeper.current()
        with self._keeper.writing(f"removing {document.source}"):
            generation = self._keeper.generation()
            labels = kb_rows.chunk_labels(self.db, doc_id)
            kb_rows.delete_document(self.db, doc_id)
            kb_rows.bump_generation(self.db, self.id)
            self._keeper.apply(generation, remove=labels, add=None)
        self.save_index()
        return document

    def reindex(self, progress: Callable[[int, int], None] | None = None) -> int:
        """Re-embed every chunk with the configured embedder and rebuild the index; returns chunks."""
        with workload.busy(f"re-indexing {self.name}"):
            return self._reindex(progress)

    def _reindex(self, progress: Callable[[int, int], None] | None) -> int:
        chunks = kb_rows.chunks(self.db, self.id)
        step = max(self.settings.embed_batch_size * 8, 64)
        parts = []
        for start in range(0, len(chunks), step):
            batch = chunks[start : start + step]
            parts.append(self.embedder.encode([embedding_text(r["context"], r["text"]) for r in batch]))
            if progress:
                progress(min(start + step, len(chunks)), len(chunks))
        vectors = np.concatenate(parts) if parts else np.zeros((0, self.embedder.dim), dtype=np.float32)
        with self._keeper.writing(f"re-indexing {self.name}"):
            kb_rows.replace_embeddings(self.db, self.id, chunks, vectors, self.embedder.name, self.embedder.dim)
        self._keeper.dim = self.embedder.dim
        self.rebuild_index()
        return len(chunks)

    def delete(self) -> None:
        """Delete this knowledge base entirely (documents, chunks, embeddings, index files)."""
        with self._keeper.writing(f"deleting {self.name}"):
            kb_rows.delete_knowledge_base(self.db, self.id)
        self._keeper.delete_files()

    # -- reading ---------------------------------------------------------------------------

    def documents(self) -> list[Document]:
        return kb_rows.documents(self.db, self.id)

    def document(self, doc_id: str) -> Document:
        document = kb_rows.document(self.db, self.id, doc_id)
        if document is None:
            raise DocumentNotFound(f"no document {doc_id!r} in knowledge base {self.name!r}")
        return document

    def content_version(self) -> int:
        """The knowledge base's content version: a counter that every add, replace and remove moves on."""
        return kb_rows.generation(self.db, self.id)

    def document_versions(self) -> dict[str, str]:
        """Each document's id and the hash of its content: what lineage records and compares later
        (a document whose id is gone was removed; one whose hash differs was replaced)."""
        return {d.id: d.content_hash for d in self.documents()}

    def passage(self, chunk_id: str) -> dict:
        """The stored passage ``chunk_id`` (``doc_id:n``, as ``SearchHit.chunk_id`` and the API's
        citations carry it): chunk_id, document, source, page, section, text."""
        found = kb_rows.passage(self.db, self.id, chunk_id)
        if found is None:
            raise DocumentNotFound(
                f"no passage {chunk_id!r} in knowledge base {self.name!r} (re-added or removed since?)"
            )
        return found

    def stats(self) -> dict:
        return {
            "name": self.name,
            "documents": kb_rows.count(self.db, "documents", self.id),
            "chunks": kb_rows.count(self.db, "chunks", self.id),
            "embedder": self.embedder.name,
            "dim": self.dim,
        }

    def chunk_texts_for_embedding(self) -> list[str]:
        """Exactly what the embedder was given for each chunk, in chunk order (benchmarks use it)."""
        return [embedding_text(r["context"], r["text"]) for r in kb_rows.chunks(self.db, self.id)]

    def check(self) -> dict:
        """The counts, once documents, chunks, embeddings, FTS and the vector index are seen to agree;
        else ``KnowledgeBaseError`` naming what disagrees."""
        problems, chunks = kb_rows.consistency_problems(self.db, self.id, self.index.labels)
        if problems:
            raise KnowledgeBaseError(f"knowledge base {self.name!r} is inconsistent: " + "; ".join(problems))
        return {"documents": self.stats()["documents"], "chunks": chunks, "indexed": len(self.index)}

    # -- searching (see store.search) ------------------------------------------------------

    def search(self, query: str, k: int = 5, mode: str = "hybrid") -> list[SearchHit]:
        """The ``k`` best passages for ``query``; ``mode`` is hybrid (default), vector or keyword."""
        return self.search_all(query, k, modes=(search.check_mode(mode),))[mode]

    def search_all(self, query: str, k: int = 5, modes: tuple[str, ...] = SEARCH_MODES) -> dict[str, list[SearchHit]]:
        """Ranked hits per mode, embedding the query and running each search once."""
        return search.search_all(
            self.db,
            self.id,
            query,
            k,
            modes,
            vector_search=self._vector_ranking,
            rrf_k=self.settings.rrf_k,
            keyword_weight=self.settings.keyword_weight,
            diversity=Diversity(self.settings.diversity, self.settings.per_document_cap, self.settings.mmr_lambda),
            evidence_weight=self.settings.evidence_weight,
            page_weight=self.settings.page_weight,
        )

    def with_neighbours(self, hits: list[SearchHit], max_tokens: int) -> list[SearchHit]:
        """Each hit grown with its section's neighbouring chunks, up to ``max_tokens`` embedder tokens
        (``store.neighbours``); the same hits when ``max_tokens`` is 0."""
        return neighbours.with_neighbours(self.db, hits, max_tokens, self.embedder.count_tokens)

    def _vector_ranking(self, query: str, k: int) -> search.Ranking:
        return search.vector_ranking(self._keeper.current, self.embedder, query, k)


__all__ = ["KnowledgeBase", "list_knowledge_bases", "validate_name", "SEARCH_MODES", "SECTION_SEPARATOR"]
