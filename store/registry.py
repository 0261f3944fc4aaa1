"""The models registry: every exported model Chat can load, one row each, in SQLite.

A row is written only after its GGUF passed the export smoke test and sits at its final path,
so a row always names a usable file. ``resolve_model`` lets the CLI and Chat accept a registry
name wherever they accept a model path. This module imports no torch (``store/`` never does).
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from sqlite_utils import Database

from store.clock import utc_timestamp
from store.database import open_db
from store.errors import ModelNotFound

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")


@dataclass(frozen=True)
class ModelRecord:
    """An exported model: where its GGUF is and how it was made."""

    name: str
    base: str
    run_id: str
    data_hash: str
    file: str
    size_bytes: int
    quant: str
    hyperparameters: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    created_at: str = ""
    lineage: dict[str, Any] | None = None  # the run's training-data lineage (store.lineage); None: exported before it

    @property
    def path(self) -> Path:
        return Path(self.file)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def validate_model_name(name: str) -> str:
    if not _NAME.match(name or ""):
        raise ModelNotFound(
            f"invalid model name {name!r}: use letters, digits, '.', '_' or '-', starting with a letter or digit"
        )
    return name


class ModelRegistry:
    """The ``models`` table (declared in ``store.schema``) of a database opened by ``store.database.open_db``."""

    def __init__(self, db: Database):
        self.db = db

    def add(self, record: ModelRecord) -> ModelRecord:
        """Insert ``record`` (its name must be new); returns it with ``created_at`` set."""
        validate_model_name(record.name)
        if self.find(record.name) is not None:
            raise ModelNotFound(f"a model named {record.name!r} is already registered")
        created = record.created_at or utc_timestamp()
        row = {**asdict(record), "created_at": created}
        row["hyperparameters"] = json.dumps(record.hyperparameters, sort_keys=True)
        row["metrics"] = json.dumps(record.metrics, sort_keys=True)
        row["lineage"] = json.dumps(record.lineage, sort_keys=True) if record.lineage else None
        with self.db.atomic():
            self.db["models"].insert(row)
        return ModelRecord(**{**asdict(record), "created_at": created})

    def find(self, name: str) -> ModelRecord | None:
        rows = list(self.db.query("SELECT * FROM models WHERE name = ?", [name]))
        return _record(rows[0]) if rows else None

    def get(self, name: str) -> ModelRecord:
        record = self.find(name)
        if record is None:
            raise ModelNotFound(f"no registered model named {name!r} (see `python app.py models list`)")
        return record

    def list(self) -> list[ModelRecord]:
        return [_record(r) for r in self.db.query("SELECT * FROM models ORDER BY created_at, name")]

    def remove(self, name: str) -> ModelRecord:
        record = self.get(name)
        with self.db.atomic():
            self.db.execute("DELETE FROM models WHERE name = ?", [name])
        return record


def open_registry(db_path: Path) -> tuple[Database, ModelRegistry]:
    """Open the database at ``db_path`` and its registry; the caller closes the database."""
    db = open_db(db_path)
    return db, ModelRegistry(db)


def resolve_model(db_path: Path, name_or_path: str) -> Path:
    """A GGUF path for a registry name or a path; raises ``ModelNotFound`` for neither."""
    candidate = Path(name_or_path).expanduser()
    if candidate.is_file():
        return candidate
    if _NAME.match(name_or_path or "") and db_path.exists():
        db, registry = open_registry(db_path)
        try:
            record = registry.find(name_or_path)
        finally:
            db.close()
        if record is not None:
            if not record.path.is_file():
                raise ModelNotFound(f"model {record.name!r} is registered but its file is missing", path=record.file)
            return record.path
    raise ModelNotFound(f"no model file or registered model named {name_or_path!r} (see `python app.py models list`)")


def _record(row: dict) -> ModelRecord:
    data = dict(row)
    data["hyperparameters"] = json.loads(data["hyperparameters"] or "{}")
    data["metrics"] = json.loads(data["metrics"] or "{}")
    data["lineage"] = json.loads(data.get("lineage") or "null")
    return ModelRecord(**data)
