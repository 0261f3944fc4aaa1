"""Chat sessions persisted in SQLite, so a conversation can be reopened later."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass

from sqlite_utils import Database

from store.clock import utc_timestamp
from store.database import rows, write_transaction
from store.errors import DomainsmithError


@dataclass(frozen=True)
class SessionInfo:
    id: str
    title: str
    kb: str | None
    model: str | None
    updated_at: str


class SessionStore:
    """The chat tables (declared in ``store.schema``) of a database opened by ``store.database.open_db``."""

    def __init__(self, db: Database):
        self.db = db

    def create(self, title: str, kb: str | None = None, model: str | None = None) -> str:
        session_id = uuid.uuid4().hex[:12]
        now = _now()
        with write_transaction(self.db, "saving the chat"):
            self.db.execute(
                "INSERT INTO chat_sessions VALUES (?, ?, ?, ?, ?, ?)",
                [session_id, title.strip()[:80] or "Chat", kb, model, now, now],
            )
        return session_id

    def append(
        self, session_id: str, role: str, content: str, *, abstained: bool = False, citations: list[dict] | None = None
    ) -> None:
        with write_transaction(self.db, "saving the chat"):
            if self.db.execute("SELECT 1 FROM chat_sessions WHERE id = ?", [session_id]).fetchone() is None:
                raise DomainsmithError(f"no chat session {session_id!r}")
            self.db.execute(
                "INSERT INTO chat_messages (session_id, role, content, abstained, citations, created_at) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                [session_id, role, content, int(abstained), json.dumps(citations or []), _now()],
            )
            self.db.execute("UPDATE chat_sessions SET updated_at = ? WHERE id = ?", [_now(), session_id])

    def messages(self, session_id: str) -> list[dict]:
        found = rows(
            self.db,
            "SELECT role, content, abstained, citations FROM chat_messages WHERE session_id = ? ORDER BY id",
            [session_id],
        )
        return [
            {
                "role": r["role"],
                "content": r["content"],
                "abstained": bool(r["abstained"]),
                "citations": json.loads(r["citations"]),
            }
            for r in found
        ]

    def sessions(self, limit: int = 50) -> list[SessionInfo]:
        found = rows(
            self.db,
            "SELECT id, title, kb, model, updated_at FROM chat_sessions ORDER BY updated_at DESC LIMIT ?",
            [limit],
        )
        return [
            SessionInfo(id=r["id"], title=r["title"], kb=r["kb"], model=r["model"], updated_at=r["updated_at"])
            for r in found
        ]

    def delete(self, session_id: str) -> None:
        with write_transaction(self.db, "deleting the chat"):
            self.db.execute("DELETE FROM chat_messages WHERE session_id = ?", [session_id])
            self.db.execute("DELETE FROM chat_sessions WHERE id = ?", [session_id])


def _now() -> str:
    return utc_timestamp("milliseconds")  # as the chat tables always stored it; sessions sort by updated_at
