"""The one SQLite database: opening it with every table's migrations applied, and writing to it.

``open_db`` is the only way the app opens ``domainsmith.db``: it applies the migrations declared
in ``store.schema`` (knowledge bases, the models registry, chat sessions). Writes go through
``write_transaction``, which takes the connection's write lock and SQLite's write lock up front.
Rows are read by column name through ``rows``/``row``; the connection's own cursors keep
returning plain tuples, so callers outside ``store`` see what they always saw.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlite_utils import Database

from store.errors import KnowledgeBaseError
from store.schema import MIGRATIONS

BUSY_TIMEOUT_S = 30  # how long a write waits for another process's write to finish


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
        for migrations in MIGRATIONS:
            migrations.apply(db)
    except sqlite3.DatabaseError as exc:
        raise KnowledgeBaseError(f"cannot open the database {path}: {exc}") from exc
    return db


def rows(db: Database, sql: str, params: Sequence[Any] = ()) -> list[sqlite3.Row]:
    """Every row of a query, each read by column name (``row["source"]``)."""
    cursor = db.conn.cursor()
    cursor.row_factory = sqlite3.Row
    return cursor.execute(sql, params).fetchall()


def row(db: Database, sql: str, params: Sequence[Any] = ()) -> sqlite3.Row | None:
    """The first row of a query, read by column name; None when there is none."""
    cursor = db.conn.cursor()
    cursor.row_factory = sqlite3.Row
    return cursor.execute(sql, params).fetchone()


def write_lock(db: Database) -> threading.RLock:
    """The lock that serialises write transactions on one connection.

    Threads share a connection (the web app's ingestion and its searches use the knowledge
    base's); a transaction belongs to the connection, not to a thread, so two threads writing at
    once would mix their statements into one transaction.
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
            "nothing was written: try again when the other program has finished"
        )
    if "full" in text or "disk i/o" in text:
        return KnowledgeBaseError(
            f"the disk is full (or failing) while {doing}: nothing of it was written, and what was saved "
            f"before is intact. Free some space and run it again ({exc})"
        )
    return KnowledgeBaseError(f"could not write to the database while {doing}: {exc}")
