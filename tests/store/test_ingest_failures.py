"""Bad input gets a clear error and nothing is lost; a killed ingestion leaves only whole documents."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from store.settings import Settings
from tests import factories as f
from tests.conftest import ROOT, run_app


@pytest.fixture
def mixed_folder(tmp_path) -> Path:
    """Good documents and every kind of bad one, side by side."""
    folder = tmp_path / "mixed"
    folder.mkdir()
    f.make_text(folder / "good.txt", "The relief valve opens at 12 bar on the primary circuit.\n")
    f.make_pdf(folder / "good.pdf", pages=2)
    f.make_corrupt_pdf(folder / "corrupt.pdf")
    f.make_encrypted_pdf(folder / "encrypted.pdf")
    f.make_scanned_pdf(folder / "scanned.pdf")
    (folder / "empty.txt").write_bytes(b"")
    (folder / "blank.md").write_text("   \n\n  \n")
    f.make_binary(folder / "photo.txt")
    (folder / "undecodable.txt").write_bytes(bytes(range(128, 256)) * 8 + b"\x81\x8d\x8f\x90\x9d" * 50)
    f.make_docx_zip_bomb(folder / "bomb.docx", megabytes=40)
    f.make_zip_without_document(folder / "notword.docx")
    (folder / "big.txt").write_text("large file line with words\n" * 60_000)  # about 1.6 MB
    (folder / "drawing.dwg").write_bytes(b"AC1032" + bytes(100))
    return folder


EXPECTED_FAILURES = {
    "corrupt.pdf": "damaged",
    "encrypted.pdf": "password",
    "scanned.pdf": "no text layer",
    "empty.txt": "empty",
    "blank.md": "no text",
    "photo.txt": "binary",
    "undecodable.txt": "",
    "bomb.docx": "zip bomb",
    "notword.docx": "",
    "big.txt": "limit",
}


def test_every_bad_file_gets_its_reason_and_the_good_ones_are_added(open_kb, mixed_folder, settings):
    kb = open_kb(settings=settings.replace(max_file_mb=1.0))
    events = list(kb.add([mixed_folder]))
    summary = events[-1].summary
    failed = dict(summary.failed)
    assert sorted(summary.added) == ["good.pdf", "good.txt"]
    assert set(failed) == set(EXPECTED_FAILURES), failed
    for source, words in EXPECTED_FAILURES.items():
        assert words.lower() in failed[source].lower(), (source, failed[source])
        assert "Traceback" not in failed[source] and "unexpected error" not in failed[source]
    assert dict(summary.skipped)["drawing.dwg"].startswith("unsupported file type .dwg")
    assert kb.check()["documents"] == 2


def test_failures_leave_existing_documents_untouched(open_kb, mixed_folder, tmp_path):
    kb = open_kb()
    list(kb.add([mixed_folder / "good.txt"]))
    before = kb.stats()
    # The good file is replaced by garbage under the same name: the old version stays.
    f.make_binary(mixed_folder / "good.txt")
    events = list(kb.add([mixed_folder / "good.txt"]))
    assert events[0].status == "failed"
    assert kb.stats() == before
    assert "relief valve" in kb.search("relief valve pressure", k=1)[0].text


def test_missing_path_is_reported(open_kb, tmp_path):
    kb = open_kb()
    events = list(kb.add([tmp_path / "nope"]))
    assert events[0].status == "failed" and "no such file or folder" in events[0].reason


def test_cli_add_reports_failures_and_exits_non_zero(mixed_folder):
    result = run_app("kb", "add", str(mixed_folder), "--kb", "mixed", "--json", env={"DOMAINSMITH_MAX_FILE_MB": "1"})
    assert result.returncode == 3, result.stderr
    import json

    summary = json.loads(result.stdout)
    assert sorted(summary["added"]) == ["good.pdf", "good.txt"]
    assert {x["source"] for x in summary["failed"]} == set(EXPECTED_FAILURES)
    assert "failed: corrupt.pdf" in result.stderr


# -- kill -9 half-way through a folder -------------------------------------------------------


def _db_counts(db_path: Path) -> tuple[int, int]:
    try:
        with sqlite3.connect(db_path, timeout=5) as conn:
            return tuple(
                conn.execute("SELECT (SELECT count(*) FROM documents), (SELECT count(*) FROM chunks)").fetchone()
            )
    except sqlite3.OperationalError:  # not created yet
        return (0, 0)


def test_kill_9_during_ingestion_leaves_whole_documents_and_rerun_finishes(tmp_path, domainsmith_home, open_kb):
    folder = tmp_path / "many"
    folder.mkdir()
    total = 40
    for i in range(total):
        paragraphs = [
            f"Procedure {i}.{j}: tighten fitting {i * 100 + j} to {j + 3} Nm, then log it in form "
            f"F-{i}-{j} before the next shift starts."
            for j in range(8)
        ]
        f.make_text(folder / f"proc{i:03d}.txt", "\n\n".join(paragraphs))
    env = {
        **os.environ,
        "DOMAINSMITH_EMBED_BATCH_SIZE": "4",
        "DOMAINSMITH_CHUNK_TOKENS": "64",
        "DOMAINSMITH_CHUNK_OVERLAP": "8",
    }
    proc = subprocess.Popen(
        [sys.executable, str(ROOT / "app.py"), "kb", "add", str(folder), "--kb", "crash"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    db_path = domainsmith_home / "domainsmith.db"
    deadline = time.monotonic() + 240
    try:
        while _db_counts(db_path)[0] < 4:
            assert proc.poll() is None, "ingestion ended before it could be killed"
            assert time.monotonic() < deadline, "ingestion made no progress"
            time.sleep(0.05)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL

    settings = Settings.load(chunk_tokens=64, chunk_overlap=8, embed_batch_size=4)
    kb = open_kb("crash", settings=settings)
    counts = kb.check()  # documents complete, chunks == embeddings == FTS == vector index
    assert 4 <= counts["documents"] < total
    partial = counts["documents"]
    kb.close()

    result = run_app("kb", "add", str(folder), "--kb", "crash", "--json", env=env)
    assert result.returncode == 0, result.stderr
    import json

    summary = json.loads(result.stdout)
    assert len(summary["unchanged"]) == partial and len(summary["added"]) == total - partial
    kb = open_kb("crash", settings=settings)
    assert kb.check()["documents"] == total
    assert kb.search("tighten fitting 3707 to 10 Nm", k=1, mode="keyword")[0].source == "proc037.txt"
