"""The SQLite schema (through sqlite-utils migrations) and how a database is opened.

SQLite is the source of truth for knowledge: documents, chunks (with their anchors), their
embeddings (float32 bytes) and an FTS5 index over chunk text kept in step by triggers.
Chunk row ids come from AUTOINCREMENT, so a removed chunk's id is never reused: they are the
labels of the hnswlib index.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlite_utils import Database, Migrations

from store.errors import KnowledgeBaseError

migrations = Migrations("domainsmith")
BUSY_TIMEOUT_S = 30  # how long a write waits for another process's write to finish


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
    ``write_transaction`` (or ``db.atomic()``) block, so no implicit transaction is ever left open.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        conn = sqlite3.connect(str(path), timeout=BUSY_TIMEOUT_S, check_same_thread=False, isolation_level=None)
        db = Database(conn)
        db.write_lock = threading.RLock()  # see write_lock()
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


def write_lock(db: Database) -> threading.RLock:
    """The lock that serialises write transactions on one connection.

    Threads share a connection (the web app's ingestion, chats and their saved sessions all
    use the knowledge base's); a transaction belongs to the connection, not to a thread, so two
    threads writing at once would mix their statements into one transaction.
    """
    lock = getattr(db, "write_lock", None)
    if lock is None:  # a Database not opened by open_db
        lock = db.write_lock = threading.RLock()
    return lock


@contextmanager
def write_transaction(db: Database, doing: str) -> Iterator[None]:
    """One write transaction that takes the write lock first (``BEGIN IMMEDIATE``).

    sqlite-utils' ``atomic()`` begins a deferred transaction: one that reads first and then
    writes fails at once with "database is locked" when another process wrote in between,
    without waiting. Taking the lock up front waits (up to ``BUSY_TIMEOUT_S``) for the other
    writer instead. SQLite errors (locked too long, disk full) become a ``KnowledgeBaseError``
    saying what was being done; the transaction is rolled back, so nothing half-written stays.
    """
    conn = db.conn
    with write_lock(db):
        try:
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield
            except BaseException:
                if conn.in_transaction:
                    conn.rollback()
                raise
            conn.execute("COMMIT")
        except sqlite3.OperationalError as exc:
            if conn.in_transaction:
                conn.rollback()
            raise write_error(exc, doing) from exc


def write_error(exc: sqlite3.Error, doing: str) -> KnowledgeBaseError:
    """A message a user can act on for a failed database write."""
    text = str(exc).lower()
    if "locked" in text or "busy" in text:
        return KnowledgeBaseError(
            f"the database stayed locked by another program for over {BUSY_TIMEOUT_S} s while {doing}; "
            "nothing was written: try again when the other program has finished")
    if "full" in text or "disk i/o" in text:
        return KnowledgeBaseError(
            f"the disk is full (or failing) while {doing}: nothing of it was written, and what was saved "
            f"before is intact. Free some space and run it again ({exc})")
    return KnowledgeBaseError(f"could not write to the database while {doing}: {exc}")
