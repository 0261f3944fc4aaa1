"""Row-level SQL for knowledge bases and their documents, chunks and embeddings.

Callers hold the transaction (``write_transaction`` or ``db.atomic()``); the FTS index follows
the chunks table by trigger. ``KnowledgeBase`` decides what to write and keeps the vector
index in step. Rows are read by column name (``store.database.rows``).
"""

from __future__ import annotations

import hashlib
import sqlite3

import numpy as np
from sqlite_utils import Database

from store import fts
from store.clock import utc_timestamp
from store.database import row, rows
from store.ingest import Prepared, chunk_context
from store.records import Document

DOC_COLUMNS = "id, name, source, kind, pages, chunk_count, size_bytes, added_at, content_hash, title"


def text_hash(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:16]


# -- knowledge bases ---------------------------------------------------------------------------


def knowledge_bases(db: Database) -> list[dict]:
    """Every knowledge base with its document and chunk counts, by name."""
    return list(
        db.query(
            """SELECT k.name, k.embedder, k.created_at,
           (SELECT count(*) FROM documents d WHERE d.kb_id = k.id) AS documents,
           (SELECT count(*) FROM chunks c WHERE c.kb_id = k.id) AS chunks
           FROM knowledge_bases k ORDER BY k.name"""
        )
    )


def knowledge_base(db: Database, name: str) -> dict | None:
    """The ``knowledge_bases`` row named ``name``, or None."""
    found = list(db.query("SELECT * FROM knowledge_bases WHERE name = ?", [name]))
    return found[0] if found else None


def create_knowledge_base(
    db: Database, name: str, embedder: str, dim: int, chunk_tokens: int, chunk_overlap: int
) -> None:
    """Insert a knowledge base row unless one with this name exists (another process may have won)."""
    db.execute(
        """INSERT OR IGNORE INTO knowledge_bases
           (name, embedder, dim, chunk_tokens, chunk_overlap, generation, created_at)
           VALUES (?, ?, ?, ?, ?, 0, ?)""",
        [name, embedder, dim, chunk_tokens, chunk_overlap, utc_timestamp()],
    )


def delete_knowledge_base(db: Database, kb_id: int) -> None:
    for table in ("embeddings", "chunks", "documents"):
        db.execute(f"DELETE FROM {table} WHERE kb_id = ?", [kb_id])
    db.execute("DELETE FROM knowledge_bases WHERE id = ?", [kb_id])


def generation(db: Database, kb_id: int) -> int:
    return int(row(db, "SELECT generation FROM knowledge_bases WHERE id = ?", [kb_id])["generation"])


def bump_generation(db: Database, kb_id: int) -> None:
    db.execute("UPDATE knowledge_bases SET generation = generation + 1 WHERE id = ?", [kb_id])


def count(db: Database, table: str, kb_id: int) -> int:
    """Rows of ``table`` (documents, chunks or embeddings) in a knowledge base."""
    return int(row(db, f"SELECT count(*) AS n FROM {table} WHERE kb_id = ?", [kb_id])["n"])


# -- documents ---------------------------------------------------------------------------------


def documents(db: Database, kb_id: int) -> list[Document]:
    found = rows(db, f"SELECT {DOC_COLUMNS} FROM documents WHERE kb_id = ? ORDER BY source, added_at", [kb_id])
    return [to_document(r) for r in found]


def document(db: Database, kb_id: int, doc_id: str) -> Document | None:
    found = row(db, f"SELECT {DOC_COLUMNS} FROM documents WHERE kb_id = ? AND id = ?", [kb_id, doc_id])
    return None if found is None else to_document(found)


def to_document(r: sqlite3.Row) -> Document:
    return Document(
        id=r["id"],
        name=r["name"],
        source=r["source"],
        kind=r["kind"],
        pages=r["pages"],
        chunks=r["chunk_count"],
        size_bytes=r["size_bytes"],
        added_at=r["added_at"],
        content_hash=r["content_hash"],
        title=r["title"],
    )


def passage(db: Database, kb_id: int, chunk_id: str) -> dict | None:
    """The chunk ``chunk_id`` (``doc_id:n``) with its document: chunk_id, document, source, page,
    page_label, section, text, ocr; None when there is none."""
    found = row(
        db,
        """SELECT c.chunk_id, d.name, d.source, c.page, c.page_label, c.section, c.text, c.ocr
           FROM chunks c JOIN documents d ON d.id = c.doc_id
           WHERE c.kb_id = ? AND c.chunk_id = ?""",
        [kb_id, chunk_id],
    )
    if found is None:
        return None
    return {
        "chunk_id": found["chunk_id"],
        "document": found["name"],
        "source": found["source"],
        "page": found["page"],
        "page_label": found["page_label"],
        "section": found["section"],
        "text": found["text"],
        "ocr": bool(found["ocr"]),
    }


def passage_document(db: Database, kb_id: int, chunk_id: str) -> dict | None:
    """What the viewer needs about the chunk ``chunk_id`` and its document: origin (the file's
    path when added), kind, content_hash, size_bytes, the chunk's start and end in the document's
    text, and that text; None when there is no such chunk."""
    return row(
        db,
        """SELECT d.origin, d.kind, d.content_hash, d.size_bytes, d.text AS document_text, c.start, c."end"
           FROM chunks c JOIN documents d ON d.id = c.doc_id
           WHERE c.kb_id = ? AND c.chunk_id = ?""",
        [kb_id, chunk_id],
    )


def content_hashes(db: Database, kb_id: int) -> dict[str, str]:
    """origin -> content hash of every document stored (to skip files unchanged since)."""
    return {
        r["origin"]: r["content_hash"]
        for r in rows(db, "SELECT origin, content_hash FROM documents WHERE kb_id = ?", [kb_id])
    }


def same_content(db: Database, kb_id: int, content_hash: str, origin: str) -> str | None:
    """The source of another document with this content, if there is one."""
    found = row(
        db,
        "SELECT source FROM documents WHERE kb_id = ? AND content_hash = ? AND origin != ?",
        [kb_id, content_hash, origin],
    )
    return None if found is None else found["source"]


def insert_document(db: Database, kb_id: int, doc_id: str, item: Prepared, vectors: np.ndarray) -> list[int]:
    """Insert a document with its chunks and embeddings; returns the chunks' row ids (index labels)."""
    candidate = item.candidate
    db.execute(
        """INSERT INTO documents (id, kb_id, origin, source, name, title, kind, pages, size_bytes,
           content_hash, chunk_count, text, added_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)""",
        [
            doc_id,
            kb_id,
            candidate.origin,
            candidate.source,
            candidate.path.name,
            item.title,
            item.kind,
            item.pages,
            item.size_bytes,
            item.content_hash,
            len(item.chunks),
            item.text,
            utc_timestamp(),
        ],
    )
    labels = []
    for chunk, vector in zip(item.chunks, vectors, strict=True):
        cursor = db.execute(
            """INSERT INTO chunks (chunk_id, kb_id, doc_id, idx, text, context, page, section, start, "end",
               page_label, ocr) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)""",
            [
                f"{doc_id}:{chunk.index}",
                kb_id,
                doc_id,
                chunk.index,
                chunk.text,
                chunk_context(item.title, chunk.section),
                chunk.page,
                chunk.section_path,
                chunk.start,
                chunk.end,
                item.page_label(chunk.page),
                int(chunk.page in item.ocr_pages),
            ],
        )
        labels.append(cursor.lastrowid)
        db.execute(
            "INSERT INTO embeddings (chunk, kb_id, vector, content_hash) VALUES (?,?,?,?)",
            [cursor.lastrowid, kb_id, vector.astype(np.float32).tobytes(), text_hash(chunk.text)],
        )
    return labels


def delete_document(db: Database, doc_id: str) -> int:
    """Delete a document's rows; returns how many documents went (0 or 1)."""
    db.execute("DELETE FROM embeddings WHERE chunk IN (SELECT id FROM chunks WHERE doc_id = ?)", [doc_id])
    db.execute("DELETE FROM chunks WHERE doc_id = ?", [doc_id])
    return db.execute("DELETE FROM documents WHERE id = ?", [doc_id]).rowcount


# -- chunks and embeddings ---------------------------------------------------------------------


def chunk_labels(db: Database, doc_id: str) -> list[int]:
    return [r["id"] for r in rows(db, "SELECT id FROM chunks WHERE doc_id = ?", [doc_id])]


def chunks(db: Database, kb_id: int) -> list[sqlite3.Row]:
    """Every chunk's row id, context line and text, in chunk order (what re-embedding needs)."""
    return rows(db, "SELECT id, context, text FROM chunks WHERE kb_id = ? ORDER BY id", [kb_id])


def embedded_labels(db: Database, kb_id: int) -> set[int]:
    return {r["chunk"] for r in rows(db, "SELECT chunk FROM embeddings WHERE kb_id = ?", [kb_id])}


def embeddings(db: Database, kb_id: int, dim: int) -> tuple[np.ndarray, np.ndarray]:
    """Every stored (labels, vectors) of a knowledge base, by label."""
    found = rows(db, "SELECT chunk, vector FROM embeddings WHERE kb_id = ? ORDER BY chunk", [kb_id])
    labels = np.array([r["chunk"] for r in found], dtype=np.int64)
    vectors = np.frombuffer(b"".join(r["vector"] for r in found), dtype=np.float32).reshape(len(found), dim)
    return labels, vectors


def replace_embeddings(
    db: Database, kb_id: int, chunk_rows: list[sqlite3.Row], vectors: np.ndarray, embedder: str, dim: int
) -> None:
    """Store new vectors for ``chunk_rows`` (from ``chunks``) made by another embedder."""
    db.execute("DELETE FROM embeddings WHERE kb_id = ?", [kb_id])
    db.conn.executemany(
        "INSERT INTO embeddings (chunk, kb_id, vector, content_hash) VALUES (?,?,?,?)",
        [(r["id"], kb_id, v.tobytes(), text_hash(r["text"])) for r, v in zip(chunk_rows, vectors, strict=True)],
    )
    db.execute(
        "UPDATE knowledge_bases SET embedder = ?, dim = ?, generation = generation + 1 WHERE id = ?",
        [embedder, dim, kb_id],
    )


def consistency_problems(db: Database, kb_id: int, indexed: set[int]) -> tuple[list[str], int]:
    """What disagrees between documents, chunks, embeddings, FTS and the vector index labels."""
    problems = []
    bad_docs = row(
        db,
        """SELECT count(*) AS n FROM documents d WHERE d.kb_id = ? AND d.chunk_count !=
                          (SELECT count(*) FROM chunks c WHERE c.doc_id = d.id)""",
        [kb_id],
    )["n"]
    if bad_docs:
        problems.append(f"{bad_docs} documents with missing chunks")
    orphans = row(
        db,
        """SELECT count(*) AS n FROM chunks c WHERE c.kb_id = ?
                         AND c.doc_id NOT IN (SELECT id FROM documents)""",
        [kb_id],
    )["n"]
    if orphans:
        problems.append(f"{orphans} chunks without a document")
    chunk_ids = {r["id"] for r in rows(db, "SELECT id FROM chunks WHERE kb_id = ?", [kb_id])}
    if chunk_ids != embedded_labels(db, kb_id):
        problems.append("chunks and embeddings differ")
    try:
        fts.check_integrity(db)
    except sqlite3.DatabaseError as exc:
        problems.append(f"full-text index damaged: {exc}")
    if indexed != chunk_ids:
        problems.append("vector index and chunks differ")
    return problems, len(chunk_ids)
