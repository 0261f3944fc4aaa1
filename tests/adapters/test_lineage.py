"""Lineage (issue 16): runs and exported models record the knowledge base version and the documents
their data came from; when one is removed or replaced, ``runs list``, ``models list``, the Fine-tune
tab and the Chat model picker mark them stale, naming the documents. Nothing is deleted.

No training here: runs are prepared (``adapters.service.prepare``), models registered directly.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
from dataclasses import replace
from pathlib import Path

import pytest

from adapters import catalogue, service
from adapters.base_model import BaseModel
from adapters.job import TrainJob
from store import lineage
from store.registry import ModelRecord, open_registry
from tests.app_cli import cli
from tests.conftest import ROOT

TINY_BASE = BaseModel(
    path=None, kind="gguf", architecture="llama", n_params=134_515_008, hidden_size=576, n_layers=30, vocab_size=49152
)
MANUALS = {
    "pump.md": ("Quell P4 pump", ["cast from duplex steel", "a seal that lasts 7,200 hours", "16 bar at most"]),
    "valve.md": ("Relief valve", ["opens at 12 bar", "is tested every spring", "has a brass seat"]),
    "mixer.md": ("Brisco M2 mixer", ["holds 340 litres", "has tungsten carbide paddles", "draws 18 amperes"]),
}
SECTIONS = ["Materials", "Maintenance", "Limits"]


def write_manual(folder: Path, name: str, extra: str = "") -> Path:
    title, facts = MANUALS[name]
    lines = [f"# {title}", ""]
    for section, fact in zip(SECTIONS, facts, strict=True):
        lines += [f"## {section}", "", f"The {title} {fact}.{extra}", ""]
    path = folder / name
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


@pytest.fixture
def docs(tmp_path) -> Path:
    folder = tmp_path / "docs"
    folder.mkdir()
    for name in MANUALS:
        write_manual(folder, name)
    return folder


@pytest.fixture
def manuals(open_kb, docs):
    kb = open_kb("manuals")
    list(kb.add([docs]))
    return kb


@pytest.fixture
def prepare(settings, monkeypatch, tmp_path):
    """``service.prepare`` of a request on a stand-in base model (nothing trains)."""
    monkeypatch.setattr(service, "describe", lambda base, s: replace(TINY_BASE, path=tmp_path / "base.gguf"))

    def _prepare(opened, **request):
        job, _data = service.prepare(
            settings, service.TrainRequest(base=str(tmp_path / "base.gguf"), **request), lambda name: opened
        )
        return job

    return _prepare


def generated_file(path: Path, kb, doc_ids: list[str], rows: int = 12, rejected: list[str] = ()) -> Path:
    """A generated Q&A file whose rows carry provenance naming ``doc_ids`` (as ``data generate`` writes
    them), then rows the expert rejected naming ``rejected``."""
    docs = {d.id: d for d in kb.documents()}
    lines = []
    for i, doc_id in enumerate([doc_ids[i % len(doc_ids)] for i in range(rows)] + list(rejected)):
        doc = docs[doc_id]
        provenance = {
            "kb": kb.name,
            "kb_version": kb.content_version(),
            "document_id": doc.id,
            "document": doc.name,
            "document_hash": doc.content_hash,
            "chunk_id": f"{doc.id}:0",
        }
        review = "rejected" if i >= rows else "accepted"
        row = {"question": f"Q{i} on {doc.name}?", "answer": f"A{i}.", "review": review, "provenance": provenance}
        lines.append(json.dumps(row))
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def listed(home: Path, what: str) -> dict[str, dict]:
    result = cli(home, what, "list", "--json")
    assert result.code == 0, result.err
    key, name = ("runs", "run_id") if what == "runs" else ("models", "name")
    return {item[name]: item for item in json.loads(result.out)[key]}


def marks(home: Path, what: str) -> dict[str, tuple[bool, tuple[str, ...]]]:
    return {name: (item["stale"], tuple(item["stale_documents"])) for name, item in listed(home, what).items()}


def register(settings, name: str, lineage_record: dict | None) -> None:
    db, registry = open_registry(settings.db_path)
    try:
        gguf = settings.home / "models" / f"{name}.gguf"
        gguf.parent.mkdir(parents=True, exist_ok=True)
        gguf.write_bytes(b"GGUF")
        registry.add(
            ModelRecord(
                name=name,
                base="b",
                run_id="r",
                data_hash="h",
                file=str(gguf),
                size_bytes=4,
                quant="q8_0",
                lineage=lineage_record,
            )
        )
    finally:
        db.close()


def test_runs_and_models_turn_stale_when_their_documents_change(manuals, prepare, settings, docs, tmp_path):
    from ui import chat_tab, finetune_tab, lineage_view
    from ui.services import Services

    home = settings.home
    ids = {d.name: d.id for d in manuals.documents()}
    hashes = {d.name: d.content_hash for d in manuals.documents()}
    assert set(ids) == set(MANUALS)

    # Recorded when the run is prepared, in its job.json.
    from_kb = prepare(manuals, kb="manuals")
    version = manuals.content_version()
    assert from_kb.lineage == {
        "kb": "manuals",
        "kb_version": version,
        "documents": {ids[n]: {"hash": hashes[n], "name": n} for n in MANUALS},
    }
    assert TrainJob.load(catalogue.run_dir(settings, from_kb.run_id)).lineage == from_kb.lineage
    generated = generated_file(tmp_path / "generated.jsonl", manuals, [ids["valve.md"]], rejected=[ids["mixer.md"]])
    from_rows = prepare(manuals, data=str(generated))  # the documents its accepted rows came from, nothing else
    assert from_rows.lineage == {
        "kb": "manuals",
        "kb_version": version,
        "documents": {ids["valve.md"]: {"hash": hashes["valve.md"], "name": "valve.md"}},
    }
    grounded = prepare(manuals, data=str(generated), grounded="manuals")  # any passage may be a distractor
    assert grounded.lineage == from_kb.lineage
    plain = tmp_path / "qa.jsonl"
    plain.write_text("".join(json.dumps({"question": f"Q{i}?", "answer": f"A{i}."}) + "\n" for i in range(12)))
    no_kb = prepare(manuals, data=str(plain))
    assert no_kb.lineage == {}

    register(settings, "expert", from_kb.lineage)
    register(settings, "valves", from_rows.lineage)
    register(settings, "older", None)  # exported before lineage
    assert listed(home, "models")["expert"]["lineage"] == from_kb.lineage
    assert listed(home, "runs")[from_kb.run_id]["lineage"] == from_kb.lineage
    fresh = (False, ())
    assert set(marks(home, "runs").values()) == {fresh} and set(marks(home, "models").values()) == {fresh}

    # An unrelated change (a new document) moves the version but stales nothing.
    extra = tmp_path / "extra"
    extra.mkdir()
    (extra / "notes.md").write_text("# Notes\n\nThe site opens at 7 am.\n", encoding="utf-8")
    list(manuals.add([extra / "notes.md"]))
    assert manuals.content_version() > version
    assert set(marks(home, "runs").values()) == {fresh} and set(marks(home, "models").values()) == {fresh}

    # Remove one document, replace another (same file, new content: same id, new hash).
    manuals.remove(ids["pump.md"])
    list(manuals.add([write_manual(docs, "valve.md", " Checked in 2026.")]))
    assert {d.name: d.id for d in manuals.documents()}["valve.md"] == ids["valve.md"]
    both = ("pump.md (removed)", "valve.md (replaced)")
    assert marks(home, "runs") == {
        from_kb.run_id: (True, both),
        from_rows.run_id: (True, ("valve.md (replaced)",)),
        grounded.run_id: (True, both),
        no_kb.run_id: fresh,
    }
    assert marks(home, "models") == {"expert": (True, both), "valves": (True, ("valve.md (replaced)",)), "older": fresh}
    table = cli(home, "runs", "list").out
    assert "stale: pump.md removed, valve.md replaced" in table and "stale: valve.md replaced" in table
    assert "stale: pump.md removed, valve.md replaced" in cli(home, "models", "list").out
    assert len(manuals.documents()) == 3 and len(list(settings.home.joinpath("runs").iterdir())) == 4  # nothing deleted

    services = Services(settings)
    try:
        labels = {value: label for label, value in finetune_tab.run_choices(services)}
        assert labels[from_kb.run_id].endswith("(stale: pump.md removed, valve.md replaced)")
        assert "stale" not in labels[no_kb.run_id]
        picker = chat_tab.model_choices(services)
        assert ("expert (stale: pump.md removed, valve.md replaced)", "expert") in picker  # the value stays the name
        assert ("valves (stale: valve.md replaced)", "valves") in picker and ("older", "older") in picker
        assert "stale: valve.md replaced" in finetune_tab.preview(services, str(generated))[1]  # the data file
        assert "stale" not in finetune_tab.preview(services, str(plain))[1]
        report = lineage_view.stale_report(services)
        assert f"run {from_kb.run_id}: stale: pump.md removed, valve.md replaced" in report
        assert "model expert: stale: pump.md removed, valve.md replaced" in report and "older" not in report
    finally:
        services.close()

    # The whole knowledge base removed: stale, and said so.
    manuals.delete()
    runs = listed(home, "runs")
    assert runs[from_rows.run_id]["stale"] and runs[from_rows.run_id]["stale_documents"] == ["valve.md (removed)"]
    assert "stale: knowledge base manuals removed" in cli(home, "models", "list").out
    assert listed(home, "models")["older"]["stale"] is False


def test_staleness_of_records_by_hand():
    kb = {"a": "h1", "b": "h2"}
    versions = {"kb": kb, "other": {"x": "h9"}}.get
    record = {
        "kb": "kb",
        "kb_version": 3,
        "documents": {"a": {"hash": "h1", "name": "a.md"}, "b": {"hash": "old", "name": "b.md"}},
    }
    state = lineage.staleness(record, versions)
    assert state == {
        "stale": True,
        "changed": [{"document_id": "b", "name": "b.md", "change": "replaced"}],
        "kb_missing": False,
    }
    assert lineage.marker(state) == "stale: b.md replaced" and lineage.stale_documents(state) == ["b.md (replaced)"]
    for none in (None, {}):
        assert lineage.staleness(none, versions) == {"stale": False, "changed": [], "kb_missing": False}
    gone = lineage.staleness({"kb": "nope", "kb_version": 1, "documents": {}}, versions)
    assert gone == {"stale": True, "changed": [], "kb_missing": True}
    assert lineage.marker(gone, "nope") == "stale: knowledge base nope removed"


def test_provenance_from_two_knowledge_bases_and_mixed_versions():
    rows = [
        {"kb": "kb", "kb_version": 2, "document_id": "a", "document": "a.md", "document_hash": "h0"},
        {"kb": "kb", "kb_version": 4, "document_id": "a", "document": "a.md", "document_hash": "h1"},
        {"kb": "kb", "kb_version": 4, "document_id": "b", "document": "b.md", "document_hash": "h2"},
        {"kb": "other", "kb_version": 9, "document_id": "x", "document": "x.md", "document_hash": "h9"},
        {"note": "no provenance"},
    ]
    record = lineage.of_provenance(rows)
    assert record == {
        "kb": "kb",
        "kb_version": 4,
        "documents": {
            "a": {"hash": "h0", "name": "a.md"},  # made partly from an older version: that one counts
            "b": {"hash": "h2", "name": "b.md"},
            "x": {"hash": "h9", "name": "x.md", "kb": "other"},
        },
    }
    versions = {"kb": {"a": "h1", "b": "h2"}, "other": {"x": "h9"}}.get
    assert lineage.stale_documents(lineage.staleness(record, versions)) == ["a.md (replaced)"]
    assert lineage.of_provenance([{"note": 1}]) is None
    whole = {"kb": "kb", "kb_version": 5, "documents": {"a": {"hash": "h1", "name": "a.md"}}}
    assert lineage.merge(whole, record)["documents"]["a"] == {"hash": "h0", "name": "a.md"}
    assert lineage.merge(whole, record)["documents"]["x"]["kb"] == "other"
    assert lineage.merge(whole, None) == whole and lineage.merge(None, record) == record


def test_a_home_from_before_lineage_lists_without_marks(domainsmith_home):
    """The legacy home's run has no lineage; a model row written before the column existed neither."""
    shutil.copytree(ROOT / "tests" / "data" / "legacy-home", domainsmith_home)
    with sqlite3.connect(domainsmith_home / "domainsmith.db") as conn:  # as the old code wrote it: no lineage column
        assert "lineage" not in {r[1] for r in conn.execute("PRAGMA table_info(models)")}
        conn.execute(
            "INSERT INTO models (name, base, run_id, data_hash, hyperparameters, metrics, file, size_bytes, quant, "
            "created_at) VALUES ('old', 'b', 'r', 'h', '{}', '{}', 'old.gguf', 1, 'f16', '2026-01-01T00:00:00')"
        )
    conn.close()
    runs = listed(domainsmith_home, "runs")
    assert [(r["stale"], r["stale_documents"], r["lineage"]) for r in runs.values()] == [(False, [], None)]
    models = listed(domainsmith_home, "models")
    assert (models["old"]["stale"], models["old"]["stale_documents"], models["old"]["lineage"]) == (False, [], None)
    assert "stale" not in cli(domainsmith_home, "runs", "list").out
