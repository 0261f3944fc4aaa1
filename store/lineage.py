"""Training-data lineage: which knowledge base, at which version, and which documents a run's data
came from; and whether those documents changed since (the run, and the models exported from it,
are then *stale*). Nothing is ever deleted because of it: listings only mark.

A lineage record is plain JSON, kept in a run's ``job.json`` (``adapters.job.TrainJob.lineage``)
and in the models registry (``ModelRecord.lineage``)::

    {"kb": "manuals", "kb_version": 12,
     "documents": {"3f2a9c0b1d4e": {"hash": "9c1e...", "name": "pump.md"}, ...}}

A document of another knowledge base than ``kb`` (rows generated from two of them) also carries
``"kb"``. Document ids are stable per origin, so a replaced file keeps its id with a new hash.
Runs and models written before lineage existed have none (``{}`` or None): they are never stale.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from store import kb_rows

REMOVED, REPLACED = "removed", "replaced"
Versions = Callable[[str], "dict[str, str] | None"]  # a knowledge base's {doc_id: content_hash}, None if gone


# -- recording ---------------------------------------------------------------------------------


def of_knowledge_base(kb: Any) -> dict[str, Any]:
    """Every document of an open ``KnowledgeBase`` at its current content version."""
    return {
        "kb": kb.name,
        "kb_version": kb.content_version(),
        "documents": {d.id: {"hash": d.content_hash, "name": d.name} for d in kb.documents()},
    }


def of_provenance(provenances: Iterable[dict[str, Any]]) -> dict[str, Any] | None:
    """The documents that generated rows came from (their ``provenance``: kb, kb_version,
    document_id, document, document_hash, ...); None when no row has any.

    The record's ``kb`` is the one most rows name, its version the newest they were made at. A
    document seen with two hashes keeps the first (rows are written in order: the older one), so
    data made partly from an older version of a document reads as stale.
    """
    items = [p for p in provenances if isinstance(p, dict) and p.get("document_id")]
    if not items:
        return None
    kb = Counter(str(p.get("kb") or "") for p in items).most_common(1)[0][0]
    versions = [p["kb_version"] for p in items if str(p.get("kb") or "") == kb and isinstance(p.get("kb_version"), int)]
    documents: dict[str, dict[str, str]] = {}
    for p in items:
        doc_id = str(p["document_id"])
        if doc_id in documents:
            continue
        entry = {"hash": str(p.get("document_hash") or ""), "name": str(p.get("document") or doc_id)}
        if str(p.get("kb") or "") != kb:
            entry["kb"] = str(p.get("kb") or "")
        documents[doc_id] = entry
    return {"kb": kb, "kb_version": max(versions, default=0), "documents": documents}


def provenance_of(examples: Iterable[dict[str, Any]], data_file: str | Path | None = None) -> list[dict[str, Any]]:
    """The ``provenance`` of training examples; when none carries it, of the rows of the JSONL
    file they were loaded from (a loader may keep only what training needs) that train: a
    generated row under review (``"review"``) only when ``accepted``."""
    found = [e["provenance"] for e in examples if isinstance(e.get("provenance"), dict)]
    if found or data_file is None or Path(data_file).suffix.lower() != ".jsonl":
        return found
    try:
        lines = Path(data_file).read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return []
    for line in lines:
        try:
            row = json.loads(line)
        except ValueError:
            continue
        if not isinstance(row, dict) or row.get("review", "accepted") != "accepted":
            continue
        if isinstance(row.get("provenance"), dict):
            found.append(row["provenance"])
    return found


def merge(whole: dict[str, Any] | None, generated: dict[str, Any] | None) -> dict[str, Any] | None:
    """A knowledge base's record (``whole``) joined with the documents generated rows name; a
    generated row's hash wins (it is the version the row was made from)."""
    if not whole or not generated:
        return whole or generated
    documents = dict(whole["documents"])
    for doc_id, entry in generated["documents"].items():
        kb = entry.get("kb") or generated["kb"]
        documents[doc_id] = {k: v for k, v in {**entry, "kb": kb}.items() if k != "kb" or v != whole["kb"]}
    return {**whole, "documents": documents}


# -- checking ----------------------------------------------------------------------------------


def staleness(lineage: dict[str, Any] | None, versions: Versions) -> dict[str, Any]:
    """``{"stale", "changed": [{"document_id", "name", "change"}], "kb_missing"}`` of a record
    against the knowledge bases now (``versions(name)``); no record: never stale."""
    changed: list[dict[str, str]] = []
    kb_missing = False
    if not lineage or not lineage.get("kb"):
        return {"stale": False, "changed": changed, "kb_missing": kb_missing}
    main = lineage["kb"]
    if versions(main) is None:
        kb_missing = True
    for doc_id, entry in sorted((lineage.get("documents") or {}).items(), key=lambda i: str(i[1].get("name"))):
        current = versions(entry.get("kb") or main)
        now = None if current is None else current.get(doc_id)
        if now is None or now != entry.get("hash"):
            change = REMOVED if now is None else REPLACED
            changed.append({"document_id": doc_id, "name": str(entry.get("name") or doc_id), "change": change})
    return {"stale": bool(changed) or kb_missing, "changed": changed, "kb_missing": kb_missing}


def stale_documents(state: dict[str, Any]) -> list[str]:
    """``["pump.md (removed)", "guide.md (replaced)"]``."""
    return [f"{c['name']} ({c['change']})" for c in state["changed"]]


def marker(state: dict[str, Any], kb: str | None = None) -> str:
    """One line for a listing: ``stale: pump.md removed, guide.md replaced``; "" when not stale."""
    if not state["stale"]:
        return ""
    if state["kb_missing"] and kb:
        return f"stale: knowledge base {kb} removed"
    return "stale: " + ", ".join(f"{c['name']} {c['change']}" for c in state["changed"])


class LineageCheck:
    """Staleness of many records against one database, each knowledge base's documents read once
    (one SELECT) per check: make one per listing."""

    def __init__(self, db: Callable[[], Any] | Any):
        """``db``: an open database, or a function that returns one (opened only if a record needs it)."""
        self._db = db
        self._versions: dict[str, dict[str, str] | None] = {}

    def versions(self, kb: str) -> dict[str, str] | None:
        """``{doc_id: content_hash}`` of knowledge base ``kb`` now; None when there is no such base."""
        if kb not in self._versions:
            db = self._db() if callable(self._db) else self._db
            row = kb_rows.knowledge_base(db, kb)
            self._versions[kb] = (
                None if row is None else {d.id: d.content_hash for d in kb_rows.documents(db, row["id"])}
            )
        return self._versions[kb]

    def __call__(self, lineage: dict[str, Any] | None) -> dict[str, Any]:
        return staleness(lineage, self.versions)

    def marker(self, lineage: dict[str, Any] | None) -> str:
        """``stale: pump.md removed, guide.md replaced`` (see ``marker``); "" when not stale."""
        return marker(self(lineage), (lineage or {}).get("kb"))

    def fields(self, lineage: dict[str, Any] | None) -> dict[str, Any]:
        """What listings add to a run or a model: ``stale`` and ``stale_documents``."""
        state = self(lineage)
        return {"stale": state["stale"], "stale_documents": stale_documents(state)}
