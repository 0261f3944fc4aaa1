"""API keys for ``/v1``: created, listed and revoked, stored hashed (the storage; ``ui.cli_keys`` is
``python app.py keys ...``, ``ui.access`` checks the bearer key of each request).

A key is ``ds-`` followed by 43 random URL-safe characters (256 bits), shown once at creation;
the database keeps its SHA-256 (a fast hash is enough for a random key of this length: there is
no dictionary to try), a name, the first characters for recognising it in a list, and the
revocation time. A revoked key stops working on the next request, in every process.

The table has its own migration set (``domainsmith-api-keys``), applied on first use.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlite_utils import Database, Migrations

from store.database import rows, write_transaction
from store.errors import DomainsmithError

PREFIX = "ds-"
key_migrations = Migrations("domainsmith-api-keys")


@key_migrations()
def create_api_keys(db: Database) -> None:
    db.execute(
        """
        CREATE TABLE api_keys (
            id TEXT PRIMARY KEY,
            name TEXT NOT NULL,
            hash TEXT NOT NULL UNIQUE,
            prefix TEXT NOT NULL,
            created_at TEXT NOT NULL,
            revoked_at TEXT
        )"""
    )


@dataclass(frozen=True)
class ApiKey:
    id: str
    name: str
    prefix: str
    created_at: str
    revoked_at: str | None


def _hash(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


class ApiKeys:
    """The ``api_keys`` table of the services' database."""

    def __init__(self, db: Database):
        self.db = db
        key_migrations.apply(db)

    def create(self, name: str) -> tuple[ApiKey, str]:
        """A new key named ``name``: its record and the key itself (never stored, never shown again)."""
        name = name.strip()
        if not name:
            raise DomainsmithError("give the key a name (who or what uses it)")
        key = PREFIX + secrets.token_urlsafe(32)
        record = ApiKey(secrets.token_hex(4), name, key[:10], _now(), None)
        with write_transaction(self.db, "saving the API key"):
            self.db.execute(
                "INSERT INTO api_keys (id, name, hash, prefix, created_at) VALUES (?, ?, ?, ?, ?)",
                [record.id, name, _hash(key), record.prefix, record.created_at],
            )
        return record, key

    def list(self) -> list[ApiKey]:
        found = rows(self.db, "SELECT id, name, prefix, created_at, revoked_at FROM api_keys ORDER BY created_at")
        return [ApiKey(r["id"], r["name"], r["prefix"], r["created_at"], r["revoked_at"]) for r in found]

    def revoke(self, key_id: str) -> ApiKey:
        """Revoke the key with this id (see ``list``); revoking twice keeps the first time."""
        match = [k for k in self.list() if k.id == key_id]
        if not match:
            raise DomainsmithError(f"no API key with id {key_id!r}: `python app.py keys list` shows them")
        with write_transaction(self.db, "revoking the API key"):
            self.db.execute("UPDATE api_keys SET revoked_at = COALESCE(revoked_at, ?) WHERE id = ?", [_now(), key_id])
        return [k for k in self.list() if k.id == key_id][0]

    def valid(self, key: str) -> bool:
        """Whether ``key`` is a key created here and not revoked."""
        if not key.startswith(PREFIX):
            return False
        found = rows(self.db, "SELECT 1 FROM api_keys WHERE hash = ? AND revoked_at IS NULL", [_hash(key)])
        return bool(found)


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")
