"""The files a generation writes (``adapters.datagen``): rows, rejected candidates, and its state.

Each row is appended as one whole line, flushed and fsynced; the chunk is then recorded as done in
``OUT.state.json`` (written to a temporary name, fsynced and renamed). On resume, a partial last
line (a writer killed mid-line) is cut off, and the chunks recorded or named by a row's provenance
are done. Rejected candidates go to ``OUT.rejected.jsonl``, with the filter's reason, for audit.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from adapters.datagen_filters import Passage
from store.clock import utc_timestamp
from store.durable import fsync_path
from store.errors import DomainsmithError

log = logging.getLogger(__name__)


class Output:
    """The rows file, its rejected file and its state; ``open`` repairs and reads what a past run left."""

    def __init__(self, path: Path):
        self.path = path
        self.rejected_path = rejected_path(path)
        self.state_path = path.with_name(path.name.removesuffix(".jsonl") + ".state.json")
        self.rows: list[dict] = []
        self.rejected: list[dict] = []
        self.done: set[str] = set()

    def open(self, kb_name: str) -> Output:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.rows = read_repaired(self.path)
        self.rejected = read_repaired(self.rejected_path)
        other = {r.get("provenance", {}).get("kb") for r in self.rows} - {kb_name}
        if other:
            raise DomainsmithError(
                f"{self.path} holds rows generated from knowledge base {sorted(map(str, other))[0]!r}: "
                "choose another --out"
            )
        if self.state_path.exists():
            try:
                self.done = set(json.loads(self.state_path.read_text(encoding="utf-8")).get("chunks_done", []))
            except (json.JSONDecodeError, AttributeError):
                log.warning("%s is damaged; the chunks named by the rows count as done", self.state_path)
        self.done |= {r["provenance"]["chunk_id"] for r in self.rows + self.rejected if "provenance" in r}
        return self

    def write(self, rows: Sequence[dict], rejected: Sequence[dict], chunk_id: str) -> None:
        """Append whole lines (fsynced), then record the chunk as done."""
        append_rows(self.path, rows)
        append_rows(self.rejected_path, rejected)
        self.rows += rows
        self.rejected += rejected
        self.done.add(chunk_id)
        tmp = self.state_path.with_name(self.state_path.name + ".tmp")
        tmp.write_text(json.dumps({"chunks_done": sorted(self.done)}), encoding="utf-8")
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, self.state_path)
        fsync_path(self.state_path.parent)


def rejected_path(path: Path) -> Path:
    """The audit file of a rows file's rejected candidates (and rows deleted in review)."""
    return path.with_name(path.name.removesuffix(".jsonl") + ".rejected.jsonl")


def append_rows(path: Path, rows: Sequence[dict]) -> None:
    """Append each row as one whole line, flushed and fsynced."""
    with open(path, "a", encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
            f.flush()
            os.fsync(f.fileno())


def cut_torn_line(path: Path) -> bytes:
    """The file's whole lines, after cutting off a partial last line (a writer killed mid-line); b"" if absent."""
    if not path.exists():
        return b""
    data = path.read_bytes()
    if data and not data.endswith(b"\n"):
        cut = data.rfind(b"\n") + 1
        log.warning("%s ended in a partial line (interrupted run): cut", path)
        with open(path, "rb+") as f:
            f.truncate(cut)
            os.fsync(f.fileno())
        data = data[:cut]
    return data


def read_repaired(path: Path, kind: str = "generated") -> list[dict]:
    """The rows of a JSONL file; a partial last line (a killed writer) is cut off the file first.
    Any other line that is not JSON is refused, naming ``kind`` (the file that was expected)."""
    data = cut_torn_line(path)
    out = []
    for number, line in enumerate(data.decode("utf-8").splitlines(), start=1):
        if line.strip():
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError:
                raise DomainsmithError(f"not valid JSON: not a {kind} file?", path=path, line=number) from None
    return out


def make_row(
    question: str,
    answer: str | None,
    kind: str,
    review: str,
    passage: Passage,
    kb: str,
    version: int,
    generator: dict,
) -> dict[str, Any]:
    """One JSONL row: the question, its answer, its kind, its review state and its provenance."""
    return {
        "question": question,
        "answer": answer,
        "kind": kind,
        "review": review,
        "provenance": {
            "kb": kb,
            "kb_version": version,
            "document_id": passage.doc_id,
            "document": passage.document,
            "document_hash": passage.document_hash,
            "chunk_id": passage.chunk_id,
            "page": passage.page,
            "page_label": passage.page_label,
            "section": passage.section,
            "generator": generator,
            "generated_at": utc_timestamp(),
        },
    }
