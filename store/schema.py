"""The SQLite schema (through sqlite-utils migrations) and how a database is opened.

SQLite is the source of truth for knowledge: documents, chunks (with their anchors), their
embeddings (float32 bytes) and an FTS5 index over chunk text kept in step by triggers.
Chunk row ids come from AUTOINCREMENT, so a removed chunk's id is never reused: they are the
labels of the hnswlib index.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from sqlite_utils import Database, Migrations

from store.errors import KnowledgeBaseError

migrations = Migrations("domainsmith")


@migrations()
def create_knowledge_tables(db: Database) -> None:
    db.execute(
        """
        CREATE TABLE knowledge_bases (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            name TEXT NOT NULL UNIQUE,
            embedder TEXT NOT NULL,
            dim INTEGER NOT NULL,
            chunk_tokens INTEGER NOT NULL,
            chunk_overlap INTEGER NOT NULL,
            generation INTEGER NOT NULL DEFAULT 0,
            created_at TEXT NOT NULL
        )"""
    )
    db.execute(
        """
        CREATE TABLE documents (
            id TEXT PRIMARY KEY,
            kb_id INTEGER NOT NULL REFERENCES knowledge_bases(id),
            origin TEXT NOT NULL,
            source TEXT NOT NULL,
            name TEXT NOT NULL,
            title TEXT NOT NULL,
            kind TEXT NOT NULL,
            pages INTEGER,
            size_bytes INTEGER NOT NULL,
            content_hash TEXT NOT NULL,
            chunk_count INTEGER NOT NULL,
            text TEXT NOT NULL,
            added_at TEXT NOT NULL,
            UNIQUE (kb_id, origin)
        )"""
    )
    db.execute("CREATE INDEX documents_hash ON documents (kb_id, content_hash)")
    db.execute(
        """
        CREATE TABLE chunks (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            chunk_id TEXT NOT NULL UNIQUE,
            kb_id INTEGER NOT NULL REFERENCES knowledge_bases(id),
            doc_id TEXT NOT NULL REFERENCES documents(id),
            idx INTEGER NOT NULL,
            text TEXT NOT NULL,
            context TEXT NOT NULL,
            page INTEGER,
            section TEXT NOT NULL,
            start INTEGER NOT NULL,
            "end" INTEGER NOT NULL
        )"""
    )
    db.execute("CREATE INDEX chunks_doc ON chunks (doc_id)")
    db.execute("CREATE INDEX chunks_kb ON chunks (kb_id)")
    db.execute(
        """
        CREATE TABLE embeddings (
            chunk INTEGER PRIMARY KEY REFERENCES chunks(id),
            kb_id INTEGER NOT NULL,
            vector BLOB NOT NULL,
            content_hash TEXT NOT NULL
        )"""
    )
    db.execute("CREATE INDEX embeddings_kb ON embeddings (kb_id)")
    db["chunks"].enable_fts(["text", "context"], fts_version="FTS5", create_triggers=True, tokenize="porter")


def open_db(path: Path) -> Database:
    """Open (creating if needed) the database at ``path`` with migrations applied.

    The connection is in autocommit mode: every multi-statement write is an explicit
    ``db.atomic()`` block, so no implicit transaction is ever left open.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        conn = sqlite3.connect(str(path), timeout=30, check_same_thread=False, isolation_level=None)
        db = Database(conn)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")
        db.execute("PRAGMA foreign_keys=ON")
        migrations.apply(db)
        from store import registry, sessions  # each owns its tables and migrations

        registry.migrations.apply(db)
        sessions.migrations.apply(db)
    except sqlite3.DatabaseError as exc:
        raise KnowledgeBaseError(f"cannot open the database {path}: {exc}") from exc
    return db
