"""The expert's review of generated rows (``adapters.datagen``): read, show with their passage, accept,
reject, edit, delete.

A generated file is JSONL, one row per line with ``review`` ("pending", "accepted" or "rejected");
the train loader trains only the accepted ones. A row is named by ``row_key``, which survives its
edits and review changes, so a click on a table read a moment ago changes that row and no other.

Every change rewrites the file atomically (a temporary file in the same folder, fsynced, renamed
over it) under an exclusive ``fcntl.flock`` on ``OUT.lock``. A generation into the file holds the
same lock for as long as it runs (``generating``), so a review refuses to write meanwhile and two
reviews never lose each other's change. flock is released by the kernel when its process dies:
a killed generation leaves no stale lock.

An edit keeps the row's provenance and records ``"edited": true`` and the generated text under
``original``. A deleted row leaves the file but is appended to ``OUT.rejected.jsonl`` (the
generation's audit file) with the reason ``deleted``: a resumed generation counts its chunk as
done (the rows' provenance is its fallback when ``OUT.state.json`` is gone), so deleting never
makes a resume write the chunk's rows again.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import json
import logging
import os
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from adapters.datagen_output import append_rows, cut_torn_line, rejected_path
from store.durable import fsync_path
from store.errors import DocumentNotFound, DomainsmithError, KnowledgeBaseError
from store.records import where

log = logging.getLogger(__name__)

STATES = ("pending", "accepted", "rejected")
DELETED = "deleted"  # the reason a deleted row carries in the rejected file
_GENERATING = "generating"
_REVIEWING = "reviewing"
_WAIT_S = 5.0  # how long a review waits for another review's write before saying the file is busy


class GenerationRunning(DomainsmithError):
    """A generation is writing the file: reviewing it must wait."""


# -- the files -------------------------------------------------------------------------------------


def lock_path(path: Path) -> Path:
    return path.with_name(path.name.removesuffix(".jsonl") + ".lock")


def generated_files(folder: Path) -> list[Path]:
    """The generated rows files in ``folder``, newest first (audit files left out)."""
    if not folder.is_dir():
        return []
    found = [p for p in folder.glob("*.jsonl") if not p.name.endswith(".rejected.jsonl") and p.is_file()]
    return sorted(found, key=lambda p: (p.stat().st_mtime, p.name), reverse=True)


def read_rows(path: Path) -> list[dict[str, Any]]:
    """The rows of a generated file; a partial last line (a writer killed mid-line) is skipped.

    Read-only: a running generation may be appending. A bad line elsewhere is an error naming it.
    """
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise DomainsmithError("no such generated file: generate rows first", path=path.name) from None
    if data and not data.endswith(b"\n"):
        data = data[: data.rfind(b"\n") + 1]  # the torn last line
    rows = []
    for number, line in enumerate(data.decode("utf-8", errors="replace").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            raise DomainsmithError("not valid JSON: not a generated file?", path=path.name, line=number) from None
        if not isinstance(row, dict) or "question" not in row:
            raise DomainsmithError('each line must be a generated row with a "question"', path=path.name, line=number)
        rows.append(row)
    return rows


def row_key(row: dict[str, Any]) -> str:
    """A row's name: its chunk, time of generation, kind and generated question (kept across edits)."""
    p = row.get("provenance") or {}
    question = (row.get("original") or {}).get("question", row.get("question"))
    raw = json.dumps([p.get("chunk_id"), p.get("generated_at"), row.get("kind"), question], ensure_ascii=False)
    return hashlib.sha1(raw.encode("utf-8")).hexdigest()[:12]


def state_of(row: dict[str, Any]) -> str:
    return row.get("review") if row.get("review") in STATES else "pending"


def counts(rows: Sequence[dict[str, Any]]) -> dict[str, int]:
    """Rows per review state (every state named, 0 when none)."""
    found = dict.fromkeys(STATES, 0)
    for row in rows:
        found[state_of(row)] += 1
    return found


# -- the lock ---------------------------------------------------------------------------------------


@contextlib.contextmanager
def generating(path: Path) -> Iterator[None]:
    """Hold ``OUT.lock`` while a generation writes ``path``; a review (or a second generation) is refused."""
    with _locked(Path(path), _GENERATING, wait_s=0.0):
        yield


def is_generating(path: Path) -> bool:
    """True while a generation (in any process) holds the lock of ``path``."""
    lock = lock_path(Path(path))
    if not lock.exists():
        return False
    with open(lock, "a+", encoding="utf-8") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            return handle.read().startswith(_GENERATING)
        fcntl.flock(handle, fcntl.LOCK_UN)
        return False


@contextlib.contextmanager
def _locked(path: Path, what: str, wait_s: float) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(lock_path(path), "a+", encoding="utf-8") as handle:
        deadline = time.monotonic() + wait_s
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                handle.seek(0)
                holder = handle.read()
                if holder.startswith(_GENERATING):
                    raise GenerationRunning(
                        f"a generation is writing {path.name}: stop it or wait until it ends, then review"
                    ) from None
                if time.monotonic() >= deadline:
                    raise DomainsmithError(f"{path.name} is being changed by another review: try again") from None
                time.sleep(0.05)
        try:
            handle.seek(0)
            handle.truncate()
            handle.write(f"{what} {os.getpid()}\n")
            handle.flush()
            yield
        finally:
            handle.seek(0)
            handle.truncate()
            handle.flush()
            fcntl.flock(handle, fcntl.LOCK_UN)


# -- the changes ------------------------------------------------------------------------------------


def set_review(path: Path, keys: Sequence[str], state: str) -> int:
    """Set the review state of the rows named by ``keys``; returns how many changed."""
    if state not in STATES:
        raise DomainsmithError(f"unknown review state {state!r}: use one of {', '.join(STATES)}")
    wanted = set(keys)
    if not wanted:
        raise DomainsmithError("select a row first")

    def change(rows: list[dict[str, Any]]) -> int:
        found = [r for r in rows if row_key(r) in wanted]
        _require(found, len(wanted))
        changed = [r for r in found if r.get("review") != state]
        for row in changed:
            row["review"] = state
        return len(changed)

    return _change(Path(path), change)


def accept_pending(path: Path) -> int:
    """Accept every pending row; returns how many."""

    def change(rows: list[dict[str, Any]]) -> int:
        pending = [r for r in rows if state_of(r) == "pending"]
        for row in pending:
            row["review"] = "accepted"
        return len(pending)

    return _change(Path(path), change)


def edit(path: Path, key: str, question: str, answer: str) -> dict[str, Any]:
    """Replace a row's question and answer; the generated ones are kept under ``original``, the
    provenance is unchanged. Returns the row as written."""
    question, answer = (question or "").strip(), (answer or "").strip()
    if not question or not answer:
        raise DomainsmithError("an edited row needs both a question and an answer")

    def change(rows: list[dict[str, Any]]) -> dict[str, Any]:
        row = _one(rows, key)
        if (row.get("question"), row.get("answer")) != (question, answer):
            row.setdefault("original", {"question": row.get("question"), "answer": row.get("answer")})
            row.update(question=question, answer=answer, edited=True)
        return row

    return _change(Path(path), change)


def delete(path: Path, key: str) -> dict[str, Any]:
    """Take a row out of the file; it goes to the rejected file (reason ``deleted``), so a resumed
    generation does not make its chunk again. Returns the deleted row."""
    path = Path(path)

    def change(rows: list[dict[str, Any]]) -> dict[str, Any]:
        row = _one(rows, key)
        audit = {**row, "review": "rejected", "reason": DELETED}
        _append_line(rejected_path(path), audit)  # first: a crash now leaves the row in both, never in neither
        rows.remove(row)
        return row

    return _change(path, change)


def _one(rows: list[dict[str, Any]], key: str) -> dict[str, Any]:
    found = [r for r in rows if row_key(r) == key]
    _require(found, 1)
    return found[0]


def _require(found: list, wanted: int) -> None:
    if len(found) < wanted or not wanted:
        raise DomainsmithError("that row is no longer in the file (deleted or changed elsewhere): reload the rows")


def _change(path: Path, change: Callable[[list[dict[str, Any]]], Any]) -> Any:
    """Read, change and rewrite the rows under the lock (refused while a generation runs)."""
    with _locked(path, _REVIEWING, wait_s=_WAIT_S):
        rows = read_rows(path)
        result = change(rows)
        write_rows(path, rows)
        return result


def write_rows(path: Path, rows: Sequence[dict[str, Any]]) -> None:
    """Replace the file's rows atomically: a temporary file beside it, fsynced, then renamed over it."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    try:
        with open(tmp, "w", encoding="utf-8") as f:
            for row in rows:
                f.write(json.dumps(row, ensure_ascii=False) + "\n")
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as exc:
        tmp.unlink(missing_ok=True)
        if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
            raise DomainsmithError("the disk is full: the review was not saved", path=path.name) from exc
        raise
    fsync_path(path.parent)


def _append_line(path: Path, row: dict[str, Any]) -> None:
    """Append one whole line, after cutting a partial last line a killed writer may have left."""
    cut_torn_line(path)
    append_rows(path, [row])


# -- the source passage -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Source:
    """The passage a row was generated from, as the knowledge base holds it now."""

    document: str
    place: str  # "p. 3, Chapter 2 > Findings" or ""
    text: str | None  # None when the passage is gone
    note: str = ""  # why it is gone, or that its document changed since the row was made


def source_of(row: dict[str, Any], open_kb: Callable[[str], Any]) -> Source:
    """The source passage of ``row`` from its knowledge base (``open_kb(name)``), or why it is gone."""
    p = row.get("provenance") or {}
    document = str(p.get("document") or p.get("document_id") or "?")
    place = where(p.get("page"), p.get("section") or "", p.get("page_label"))
    if not p.get("chunk_id") or not p.get("kb"):
        return Source(document, place, None, "this row names no source passage")
    try:
        kb = open_kb(str(p["kb"]))
        found = kb.passage(str(p["chunk_id"]))
    except DocumentNotFound:
        return Source(
            document, place, None, f"the passage is gone from {p['kb']}: its document was removed or re-added since"
        )
    except KnowledgeBaseError as exc:
        return Source(document, place, None, str(exc))
    note = ""
    current = kb.document_versions().get(str(p.get("document_id")))
    if p.get("document_hash") and current and current != p["document_hash"]:
        note = "the document changed since this row was made: the passage shown is today's"
    return Source(document, place, found["text"], note)
