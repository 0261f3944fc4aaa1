"""The one database module: every table from one open_db, migration names kept, timestamps as stored."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

import store
from store import kb_rows
from store.database import open_db, row, rows, write_transaction
from store.errors import KnowledgeBaseError
from store.registry import ModelRecord, ModelRegistry
from store.sessions import SessionStore
from tests.conftest import ROOT

SECONDS = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+00:00")
MILLISECONDS = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+00:00")


def test_open_db_applies_every_migration_under_its_recorded_name(tmp_path):
    db = open_db(tmp_path / "d" / "domainsmith.db")
    try:
        applied = {(r["migration_set"], r["name"]) for r in rows(db, "SELECT * FROM _sqlite_migrations")}
        # On-disk format: databases written before must see these as already applied.
        assert applied == {
            ("domainsmith", "create_knowledge_tables"),
            ("domainsmith", "add_chunk_page_labels"),
            ("domainsmith", "add_chunk_ocr"),
            ("domainsmith-models", "create_models_table"),
            ("domainsmith-models", "add_model_lineage"),
            ("domainsmith-sessions", "create_session_tables"),
        }
        assert {
            "knowledge_bases",
            "documents",
            "chunks",
            "embeddings",
            "chunks_fts",
            "models",
            "chat_sessions",
            "chat_messages",
        } <= set(db.table_names())
    finally:
        db.close()
    reopened = open_db(tmp_path / "d" / "domainsmith.db")  # applying again is a no-op
    reopened.close()


def test_rows_are_read_by_name_and_plain_cursors_stay_tuples(tmp_path):
    db = open_db(tmp_path / "domainsmith.db")
    try:
        kb_rows.create_knowledge_base(db, "kb", "emb", 4, 200, 32)
        found = row(db, "SELECT name, dim FROM knowledge_bases")
        assert (found["name"], found["dim"]) == ("kb", 4)
        assert db.execute("SELECT name, dim FROM knowledge_bases").fetchone() == ("kb", 4)
        assert row(db, "SELECT name FROM knowledge_bases WHERE name = ?", ["none"]) is None
    finally:
        db.close()


def test_a_failed_write_rolls_back_whole(tmp_path):
    db = open_db(tmp_path / "domainsmith.db")
    try:
        with pytest.raises(KnowledgeBaseError, match="while testing"), write_transaction(db, "testing"):
            kb_rows.create_knowledge_base(db, "kb", "emb", 4, 200, 32)
            db.execute("INSERT INTO no_such_table VALUES (1)")
        assert kb_rows.knowledge_bases(db) == []
    finally:
        db.close()


def test_timestamps_keep_their_stored_precision(tmp_path):
    db = open_db(tmp_path / "domainsmith.db")
    try:
        kb_rows.create_knowledge_base(db, "kb", "emb", 4, 200, 32)
        assert SECONDS.fullmatch(kb_rows.knowledge_base(db, "kb")["created_at"])
        record = ModelRegistry(db).add(
            ModelRecord(name="m", base="b", run_id="r", data_hash="h", file="f.gguf", size_bytes=1, quant="q4_k_m")
        )
        assert SECONDS.fullmatch(record.created_at)
        sessions = SessionStore(db)
        sid = sessions.create("A chat")
        sessions.append(sid, "user", "hello")
        assert MILLISECONDS.fullmatch(sessions.sessions()[0].updated_at)
        assert MILLISECONDS.fullmatch(row(db, "SELECT created_at FROM chat_messages")["created_at"])
    finally:
        db.close()


def test_the_front_door_names_resolve_to_their_modules():
    assert set(store.__all__) == set(store._EXPORTS)
    for name, module in store._EXPORTS.items():
        assert getattr(store, name) is getattr(sys.modules[module], name)
    from store import KnowledgeBase, Settings  # the documented spelling

    assert KnowledgeBase.__module__ == "store.knowledge_base" and Settings.__module__ == "store.settings"


def test_importing_store_loads_no_heavy_library_and_no_upper_layer():
    code = (
        "import sys; import store, store.errors; from store import KnowledgeBase, Settings, SessionStore, "
        "ModelRegistry, open_db; "
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'torch', 'gradio', 'transformers', "
        "'sentence_transformers', 'llama_cpp', 'assistant', 'adapters', 'ui'}))"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
