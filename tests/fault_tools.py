"""Tools for the fault-injection tests: another process holding the database lock, a child
process on a "full disk" (``RLIMIT_FSIZE``), and snapshots of what a knowledge base holds.

Python ignores SIGXFSZ, so in a child under ``RLIMIT_FSIZE`` a write past the limit fails with
EFBIG (SQLite reports "disk I/O error", safetensors "File too large"): the same code paths as a
disk that fills up, without needing root to mount a small file system.
"""

from __future__ import annotations

import hashlib
import os
import resource
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.conftest import ROOT

_LOCKER = """
import sqlite3, sys, time
conn = sqlite3.connect(sys.argv[1], isolation_level=None, timeout=30)
conn.execute("BEGIN IMMEDIATE")
conn.execute("UPDATE knowledge_bases SET created_at = created_at")  # a real write, as another app would make
print("locked", flush=True)
time.sleep(float(sys.argv[2]))
conn.execute("COMMIT")
print("released", flush=True)
"""


@contextmanager
def database_locked(db_path: Path, seconds: float) -> Iterator[subprocess.Popen]:
    """Another process takes the write lock of ``db_path``, writes, and commits after ``seconds``."""
    locker = subprocess.Popen(
        [sys.executable, "-c", _LOCKER, str(db_path), str(seconds)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert locker.stdout is not None and locker.stdout.readline().strip() == "locked"
        yield locker
    finally:
        try:
            locker.wait(timeout=seconds + 30)
        finally:
            if locker.poll() is None:
                locker.kill()


def run_app_limited(
    args: list[str], max_file_bytes: int, env: dict[str, str] | None = None, timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    """``python app.py ARGS`` in a child that cannot write any file past ``max_file_bytes``."""

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (max_file_bytes, max_file_bytes))

    return subprocess.run(
        [sys.executable, str(ROOT / "app.py"), *args],
        cwd=ROOT,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=timeout,
        preexec_fn=limit,
    )


def snapshot(kb) -> dict[str, str]:
    """doc id -> digest of everything stored for it (text, chunks with anchors, embeddings)."""
    out = {}
    for (doc_id,) in kb.db.execute("SELECT id FROM documents WHERE kb_id = ? ORDER BY id", [kb.id]).fetchall():
        h = hashlib.sha256()
        row = kb.db.execute("SELECT content_hash, text, chunk_count FROM documents WHERE id = ?", [doc_id]).fetchone()
        h.update(repr(row).encode())
        for chunk in kb.db.execute(
            """SELECT c.chunk_id, c.text, c.page, c.section, c.start, c."end", e.vector FROM chunks c
                   JOIN embeddings e ON e.chunk = c.id WHERE c.doc_id = ? ORDER BY c.idx""",
            [doc_id],
        ):
            h.update(repr(chunk).encode())
        out[doc_id] = h.hexdigest()
    return out


def lost(before: dict[str, str], kb) -> int:
    """How many documents committed before a fault are missing or changed after it."""
    after = snapshot(kb)
    return sum(1 for doc_id, digest in before.items() if after.get(doc_id) != digest)


def file_digest(path: Path) -> str:
    with path.open("rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def tree_digest(folder: Path) -> str:
    """One digest over every file under ``folder`` (names and contents)."""
    h = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        h.update(path.relative_to(folder).as_posix().encode() + file_digest(path).encode())
    return h.hexdigest()


def wait_for(predicate, timeout: float, what: str, process: subprocess.Popen | None = None) -> None:
    """Poll ``predicate`` every 50 ms; fail when ``timeout`` passes or ``process`` ends first."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if process is not None and process.poll() is not None:
            raise AssertionError(f"the process ended (status {process.returncode}) before {what}")
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def write_procedures(folder: Path, prefix: str, files: int, paragraphs: int) -> Path:
    """Text files with distinct, searchable paragraphs."""
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(files):
        text = "\n\n".join(
            f"{prefix} procedure {i}.{j}: tighten fitting {prefix}-{i * 100 + j} to {j + 3} Nm, "
            f"then record it in form {prefix}-F-{i}-{j} before the next shift."
            for j in range(paragraphs)
        )
        (folder / f"{prefix}{i:03d}.txt").write_text(text + "\n", encoding="utf-8")
    return folder


def register_model(db_path: Path, name: str, file: Path, quant: str) -> None:
    """Put a model in the registry directly, as an earlier export would have."""
    from store.registry import ModelRecord, open_registry

    db, registry = open_registry(db_path)
    try:
        registry.add(
            ModelRecord(
                name=name,
                base="smollm2-135m",
                run_id="r0",
                data_hash="h",
                file=str(file),
                size_bytes=file.stat().st_size,
                quant=quant,
            )
        )
    finally:
        db.close()
