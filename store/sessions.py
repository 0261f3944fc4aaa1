"""Chat sessions persisted in SQLite, so a conversation can be reopened later."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone

from sqlite_utils import Database, Migrations

from store.errors import DomainsmithError
from store.schema import write_transaction

migrations = Migrations("domainsmith-sessions")


@migrations()
def create_session_tables(db: Database) -> None:
    db.execute("""CREATE TABLE chat_sessions (
        id TEXT PRIMARY KEY, title TEXT NOT NULL, kb TEXT, model TEXT,
        created_at TEXT NOT NULL, updated_at TEXT NOT NULL)""")
    db.execute("""CREATE TABLE chat_messages (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        session_id TEXT NOT NULL REFERENCES chat_sessions(id) ON DELETE CASCADE,
        role TEXT NOT NULL, content TEXT NOT NULL, abstained INTEGER NOT NULL DEFAULT 0,
        citations TEXT NOT NULL DEFAULT '[]', created_at TEXT NOT NULL)""")
    db.execute("CREATE INDEX chat_messages_session ON chat_messages (session_id, id)")


@dataclass(frozen=True)
class SessionInfo:
    id: str
    title: str
    kb: str | None
    model: str | None
    updated_at: str


class SessionStore:
    def __init__(self, db: Database):
        self.db = db

    def create(self, title: str, kb: str | None = None, model: str | None = None) -> str:
        session_id = uuid.uuid4().hex[:12]
        now = _now()
        with write_transaction(self.db, "saving the chat"):
            self.db.execute("INSERT INTO chat_sessions VALUES (?, ?, ?, ?, ?, ?)",
                            [session_id, title.strip()[:80] or "Chat", kb, model, now, now])
        return session_id

    def append(self, session_id: str, role: str, content: str, *, abstained: bool = False,
               citations: list[dict] | None = None) -> None:
        with write_transaction(self.db, "saving the chat"):
            if self.db.execute("SELECT 1 FROM chat_sessions WHERE id = ?", [session_id]).fetchone() is None:
                raise DomainsmithError(f"no chat session {session_id!r}")
            self.db.execute(
                "INSERT INTO chat_messages (session_id, role, content, abstained, citations, created_at) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                [session_id, role, content, int(abstained), json.dumps(citations or []), _now()])
            self.db.execute("UPDATE chat_sessions SET updated_at = ? WHERE id = ?", [_now(), session_id])

    def messages(self, session_id: str) -> list[dict]:
        rows = self.db.execute(
            "SELECT role, content, abstained, citations FROM chat_messages WHERE session_id = ? ORDER BY id",
            [session_id]).fetchall()
        return [{"role": r[0], "content": r[1], "abstained": bool(r[2]), "citations": json.loads(r[3])}
                for r in rows]

    def sessions(self, limit: int = 50) -> list[SessionInfo]:
        rows = self.db.execute(
            "SELECT id, title, kb, model, updated_at FROM chat_sessions ORDER BY updated_at DESC LIMIT ?",
            [limit]).fetchall()
        return [SessionInfo(*r) for r in rows]

    def delete(self, session_id: str) -> None:
        with write_transaction(self.db, "deleting the chat"):
            self.db.execute("DELETE FROM chat_messages WHERE session_id = ?", [session_id])
            self.db.execute("DELETE FROM chat_sessions WHERE id = ?", [session_id])


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")
