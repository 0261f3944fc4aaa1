"""Row-level SQL for one knowledge base's documents, chunks and embeddings.

Callers hold the transaction (``db.atomic()``); the FTS index follows the chunks table by
trigger. ``KnowledgeBase`` decides what to write and keeps the vector index in step.
"""

from __future__ import annotations

import hashlib
import sqlite3
from datetime import datetime, timezone

import numpy as np
from sqlite_utils import Database

from store import fts
from store.ingest import Prepared, chunk_context
from store.records import Document

DOC_COLUMNS = "id, name, source, kind, pages, chunk_count, size_bytes, added_at, content_hash, title"


def now() -> str:
    return datetime.now(timezone.utc).replace(microsecond=0).isoformat()


def text_hash(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def generation(db: Database, kb_id: int) -> int:
    return int(db.execute("SELECT generation FROM knowledge_bases WHERE id = ?", [kb_id]).fetchone()[0])


def bump_generation(db: Database, kb_id: int) -> None:
    db.execute("UPDATE knowledge_bases SET generation = generation + 1 WHERE id = ?", [kb_id])


def chunk_labels(db: Database, doc_id: str) -> list[int]:
    return [r[0] for r in db.execute("SELECT id FROM chunks WHERE doc_id = ?", [doc_id])]


def insert_document(db: Database, kb_id: int, doc_id: str, item: Prepared, vectors: np.ndarray) -> list[int]:
    """Insert a document with its chunks and embeddings; returns the chunks' row ids (index labels)."""
    candidate = item.candidate
    db.execute(
        """INSERT INTO documents (id, kb_id, origin, source, name, title, kind, pages, size_bytes,
           content_hash, chunk_count, text, added_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)""",
        [doc_id, kb_id, candidate.origin, candidate.source, candidate.path.name, item.title, item.kind,
         item.pages, item.size_bytes, item.content_hash, len(item.chunks), item.text, now()],
    )
    labels = []
    for chunk, vector in zip(item.chunks, vectors):
        cursor = db.execute(
            """INSERT INTO chunks (chunk_id, kb_id, doc_id, idx, text, context, page, section, start, "end")
               VALUES (?,?,?,?,?,?,?,?,?,?)""",
            [f"{doc_id}:{chunk.index}", kb_id, doc_id, chunk.index, chunk.text,
             chunk_context(item.title, chunk.section), chunk.page, chunk.section_path, chunk.start, chunk.end],
        )
        labels.append(cursor.lastrowid)
        db.execute("INSERT INTO embeddings (chunk, kb_id, vector, content_hash) VALUES (?,?,?,?)",
                   [cursor.lastrowid, kb_id, vector.astype(np.float32).tobytes(), text_hash(chunk.text)])
    return labels


def delete_document(db: Database, doc_id: str) -> int:
    """Delete a document's rows; returns how many documents went (0 or 1)."""
    db.execute("DELETE FROM embeddings WHERE chunk IN (SELECT id FROM chunks WHERE doc_id = ?)", [doc_id])
    db.execute("DELETE FROM chunks WHERE doc_id = ?", [doc_id])
    return db.execute("DELETE FROM documents WHERE id = ?", [doc_id]).rowcount


def to_document(row) -> Document:
    return Document(id=row[0], name=row[1], source=row[2], kind=row[3], pages=row[4], chunks=row[5],
                    size_bytes=row[6], added_at=row[7], content_hash=row[8], title=row[9])


def consistency_problems(db: Database, kb_id: int, indexed: set[int]) -> tuple[list[str], int]:
    """What disagrees between documents, chunks, embeddings, FTS and the vector index labels."""
    problems = []
    bad_docs = db.execute(
        """SELECT count(*) FROM documents d WHERE d.kb_id = ? AND d.chunk_count !=
           (SELECT count(*) FROM chunks c WHERE c.doc_id = d.id)""", [kb_id]).fetchone()[0]
    if bad_docs:
        problems.append(f"{bad_docs} documents with missing chunks")
    orphans = db.execute(
        "SELECT count(*) FROM chunks c WHERE c.kb_id = ? AND c.doc_id NOT IN (SELECT id FROM documents)",
        [kb_id]).fetchone()[0]
    if orphans:
        problems.append(f"{orphans} chunks without a document")
    chunk_ids = {r[0] for r in db.execute("SELECT id FROM chunks WHERE kb_id = ?", [kb_id])}
    embedded = {r[0] for r in db.execute("SELECT chunk FROM embeddings WHERE kb_id = ?", [kb_id])}
    if chunk_ids != embedded:
        problems.append("chunks and embeddings differ")
    try:
        fts.check_integrity(db)
    except sqlite3.DatabaseError as exc:
        problems.append(f"full-text index damaged: {exc}")
    if indexed != chunk_ids:
        problems.append("vector index and chunks differ")
    return problems, len(chunk_ids)
