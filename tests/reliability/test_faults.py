"""Faults during ingestion and chat: a database locked by another process, a full disk, a chat
model file that disappears or is overwritten while loaded.

After each: ``KnowledgeBase.check()`` finds SQLite, FTS and the vector index in agreement, every
document committed before the fault is byte-for-byte intact (``fault_tools.snapshot``), and the
user got a clear message, never a traceback. Kill -9 during ingestion and training and a damaged
index file are tested in test_ingest_failures.py, test_training.py and
test_knowledge_base.py; export faults in test_faults_export.py.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time

import pytest

from store.errors import KnowledgeBaseError, ModelNotFound
from tests import reliability_log
from tests.conftest import ROOT
from tests.fault_tools import database_locked, lost, run_app_limited, snapshot, write_procedures


@pytest.fixture
def baseline(open_kb, tmp_path):
    """A knowledge base with three committed documents, and their snapshot."""

    def make(name: str):
        kb = open_kb(name)
        list(kb.add([write_procedures(tmp_path / f"{name}-before", "base", files=3, paragraphs=6)]))
        return kb, snapshot(kb)

    return make


def test_database_locked_by_another_process_waits_then_ingests(baseline, tmp_path):
    """Another process writes and holds the lock for 4 s: ingestion waits for it instead of failing."""
    kb, before = baseline("locked")
    new = write_procedures(tmp_path / "new", "lock", files=4, paragraphs=6)
    with database_locked(kb.settings.db_path, seconds=4):
        started = time.monotonic()
        summary = list(kb.add([new]))[-1].summary
    assert len(summary.added) == 4 and not summary.failed
    assert time.monotonic() - started > 2, "the first commit waited for the lock"
    assert kb.check()["documents"] == 7 and lost(before, kb) == 0
    assert kb.search("tighten fitting lock-302", k=1, mode="keyword")[0].source == "lock003.txt"
    reliability_log.record(
        "fault", name="SQLite locked by another process during ingestion (waits)", survived=True, lost=0
    )


def test_database_locked_too_long_is_a_clear_error_and_nothing_half_written(baseline, tmp_path):
    kb, before = baseline("locked-long")
    kb.db.execute("PRAGMA busy_timeout = 1000")  # instead of 30 s, to keep the test short
    new = write_procedures(tmp_path / "new", "long", files=3, paragraphs=6)
    with (
        database_locked(kb.settings.db_path, seconds=6),
        pytest.raises(KnowledgeBaseError, match="locked by another program") as caught,
    ):
        list(kb.add([new]))
    assert "Traceback" not in str(caught.value) and "nothing was written" in str(caught.value)
    assert kb.check()["documents"] == 3 and lost(before, kb) == 0
    summary = list(kb.add([new]))[-1].summary  # once the other program is done, the same command works
    assert len(summary.added) == 3 and kb.check()["documents"] == 6
    reliability_log.record(
        "fault", name="SQLite locked by another process for too long (clear error)", survived=True, lost=0
    )


def test_full_disk_during_ingestion(baseline, tmp_path, domainsmith_home):
    """The disk fills up half-way through a folder: a clear error, whole documents only, a re-run finishes."""
    kb, before = baseline("full")
    kb.close()  # checkpoint the WAL into the database file, as a finished command leaves it
    new = write_procedures(tmp_path / "new", "disk", files=12, paragraphs=20)
    db = domainsmith_home / "domainsmith.db"
    assert not db.with_name(db.name + "-wal").exists()
    limit = db.stat().st_size + 96 * 1024  # the write-ahead log can grow by 96 kB: a few documents
    result = run_app_limited(["kb", "add", str(new), "--kb", "full"], limit)
    assert result.returncode == 1, result.stderr[-2000:]
    assert "disk is full" in result.stderr and "Traceback" not in result.stderr, result.stderr[-2000:]

    kb = type(kb).open(kb.settings, "full", kb.embedder)
    try:
        counts = kb.check()  # SQLite, FTS and index agree (the index is rebuilt if it is behind)
        partial = counts["documents"] - 3
        assert 0 <= partial < 12 and lost(before, kb) == 0
        summary = list(kb.add([new]))[-1].summary
        assert len(summary.unchanged) == partial and len(summary.added) == 12 - partial
        assert kb.check()["documents"] == 15 and lost(before, kb) == 0
    finally:
        kb.close()
    reliability_log.record(
        "fault", name="full disk during ingestion", survived=True, lost=0, committed_before_full=partial
    )


def test_chat_model_deleted_while_loaded(settings, embedder, tmp_path):
    """The loaded model's file is deleted: the next question is answered or refused clearly; a new load says why."""
    from assistant.assistant import AskOptions, ask_once
    from assistant.llm import LlamaRuntime
    from store.bundled import chat_model_path
    from ui.services import Services

    model = tmp_path / "expert.gguf"
    shutil.copyfile(chat_model_path(), model)
    services = Services(settings.replace(max_tokens=16, chat_context=1024), _embedder=embedder)
    options = AskOptions(model=str(model), use_kb=False)
    try:
        assert ask_once(services.assistant, "Say hello.", options).text
        model.unlink()
        try:
            assert ask_once(services.assistant, "Say hello again.", options).text
        except ModelNotFound as error:
            assert "no model file" in str(error) and model.name in str(error), str(error)
        with pytest.raises(ModelNotFound, match="model file not found"):
            LlamaRuntime(context=512, threads=1).load(model)
    finally:
        services.close()
    reliability_log.record("fault", name="chat model file deleted while loaded", survived=True, lost=0)


_OVERWRITE = """
import os, sys
sys.path.insert(0, sys.argv[2])
from pathlib import Path
from assistant.llm import LlamaRuntime
from store.errors import ModelNotFound
model = Path(sys.argv[1])
runtime = LlamaRuntime(context=512, threads=1)
runtime.load(model)
ask = lambda q: "".join(runtime.stream_chat([{"role": "user", "content": q}], max_tokens=8))
print("before:", bool(ask("Say hello.")), flush=True)
with open(model, "r+b") as f:  # what `cp other.gguf expert.gguf` does: same file, new bytes
    f.truncate(0)
    f.write(b"GGUF" + os.urandom(4096))
print("after:", bool(ask("Say hello again.")), flush=True)
runtime.unload()
try:
    runtime.load(model)
except ModelNotFound as error:
    print("reload:", error, flush=True)
"""


def test_chat_model_overwritten_in_place_while_loaded_does_not_crash(tmp_path):
    """A model file truncated and rewritten under the running app (SIGBUS with an mmap'ed model)."""
    from store.bundled import chat_model_path

    model = tmp_path / "expert.gguf"
    shutil.copyfile(chat_model_path(), model)
    result = subprocess.run(
        [sys.executable, "-c", _OVERWRITE, str(model), str(ROOT)],
        capture_output=True,
        text=True,
        timeout=180,
        env={**os.environ, "PYTHONFAULTHANDLER": "1"},
    )
    assert result.returncode == 0, f"the process died (status {result.returncode}): {result.stderr[-1500:]}"
    assert "before: True" in result.stdout and "after: True" in result.stdout
    assert "reload: llama.cpp could not load expert.gguf" in result.stdout, result.stdout
    reliability_log.record("fault", name="chat model file overwritten in place while loaded", survived=True, lost=0)
