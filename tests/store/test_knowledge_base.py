"""The knowledge base on real files: anchors, search modes, replace/remove, bad input, recovery."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from store.errors import DocumentNotFound, EmbedderMismatch, KnowledgeBaseError
from store.records import SECTION_SEPARATOR
from tests import factories as f

MODES = ("hybrid", "vector", "keyword")


@pytest.fixture
def corpus(tmp_path) -> Path:
    folder = tmp_path / "docs"
    (folder / "guides").mkdir(parents=True)
    f.make_pdf(folder / "turbine.pdf", pages=4)
    f.make_docx(folder / "handbook.docx")
    f.make_markdown(folder / "guides" / "pump.md")
    f.make_html(folder / "guides" / "pump.html")
    f.make_text(
        folder / "notes.txt",
        "The flux capacitor of unit 7 needs 1.21 gigawatts.\n\nSpare fuses are kept in cabinet B, second drawer.\n",
    )
    return folder


def events_by_source(events):
    return {e.source: e for e in events if e.status != "done"}


def test_add_folder_ingests_every_format_with_relative_sources(open_kb, corpus):
    kb = open_kb()
    events = list(kb.add([corpus]))
    by_source = events_by_source(events)
    assert set(by_source) == {"turbine.pdf", "handbook.docx", "guides/pump.md", "guides/pump.html", "notes.txt"}
    assert all(e.status == "added" and e.chunks > 0 for e in by_source.values()), by_source
    summary = events[-1].summary
    assert events[-1].status == "done" and len(summary.added) == 5 and not summary.failed
    docs = {d.source: d for d in kb.documents()}
    assert docs["turbine.pdf"].pages == 4 and docs["turbine.pdf"].kind == "pdf"
    assert {d.kind for d in docs.values()} == {"pdf", "docx", "markdown", "html", "text"}
    assert kb.check()["documents"] == 5


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("page", [1, 2, 4])
def test_pdf_passage_found_at_rank_one_on_its_page(open_kb, corpus, mode, page):
    kb = open_kb()
    list(kb.add([corpus]))
    hit = kb.search(f.page_sentence(page), k=5, mode=mode)[0]
    assert (hit.source, hit.page) == ("turbine.pdf", page)
    assert hit.document == "turbine.pdf" and hit.chunk_id.startswith(hit.doc_id + ":")
    assert f"marker{page:03d}" in hit.text


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("source", ["handbook.docx", "guides/pump.md", "guides/pump.html"])
def test_section_paths_are_right_for_known_passages(open_kb, corpus, mode, source):
    kb = open_kb()
    list(kb.add([corpus / source]))  # alone: the three formats hold the same sentences
    for path in f.heading_paths():
        best = kb.search(f.section_sentence(*path), k=10, mode=mode)[0]
        assert f.section_sentence(*path) in best.text
        assert best.section.endswith(SECTION_SEPARATOR.join(path)), (best.section, path)
        assert best.source == Path(source).name
        assert best.page is None


def test_packed_sections_share_a_passage_cited_by_the_path_they_share(open_kb, corpus, settings):
    source = corpus / "guides/pump.md"
    separate = open_kb("separate")
    list(separate.add([source]))
    packed = open_kb("packed", settings=settings.replace(pack_sections=True))
    list(packed.add([source]))
    assert packed.stats()["chunks"] < separate.stats()["chunks"]
    rows = packed.db.execute(
        'SELECT d.text, c.text, c.start, c."end" FROM chunks c JOIN documents d ON d.id = c.doc_id'
    ).fetchall()
    assert all(document_text[start:end] == chunk_text for document_text, chunk_text, start, end in rows)
    joined = 0
    for path in f.heading_paths():
        best = packed.search(f.section_sentence(*path), k=10)[0]
        assert f.section_sentence(*path) in best.text
        own = separate.search(f.section_sentence(*path), k=1)[0].section.split(SECTION_SEPARATOR)
        assert own[-len(path) :] == list(path)
        # Its own section's path, or (packed with its neighbours) the part of it they share.
        cited = best.section.split(SECTION_SEPARATOR) if best.section else []
        assert own[: len(cited)] == cited, (best.section, own)
        joined += cited != own
    assert joined, "some sections were packed with their neighbours"


def test_chunk_offsets_point_into_the_extracted_text(open_kb, corpus):
    kb = open_kb()
    list(kb.add([corpus]))
    rows = kb.db.execute(
        'SELECT d.text, c.text, c.start, c."end" FROM chunks c JOIN documents d ON d.id = c.doc_id'
    ).fetchall()
    assert rows
    for document_text, chunk_text, start, end in rows:
        assert document_text[start:end] == chunk_text


def test_a_passage_is_read_by_its_chunk_id_with_its_document(open_kb, corpus):
    kb = open_kb()
    list(kb.add([corpus / "turbine.pdf"]))
    hit = kb.search(f.page_sentence(2), k=1)[0]
    assert kb.passage(hit.chunk_id) == {
        "chunk_id": hit.chunk_id,
        "document": "turbine.pdf",
        "source": "turbine.pdf",
        "page": 2,
        "page_label": None,
        "section": hit.section,
        "text": hit.text,
        "ocr": False,
    }
    other = open_kb("other")
    with pytest.raises(DocumentNotFound, match="'other'"):  # a chunk id reads only in its own knowledge base
        other.passage(hit.chunk_id)
    kb.remove(hit.doc_id)
    with pytest.raises(DocumentNotFound, match="re-added or removed since"):
        kb.passage(hit.chunk_id)


def test_docx_table_text_is_searchable(open_kb, corpus):
    kb = open_kb()
    list(kb.add([corpus / "handbook.docx"]))
    hit = kb.search("Flange bolt torque", k=1, mode="keyword")[0]
    assert "Flange bolt" in hit.text and "45" in hit.text


def test_unchanged_file_is_a_noop_and_changed_file_replaces(open_kb, corpus):
    kb = open_kb()
    list(kb.add([corpus]))
    before = kb.stats()
    again = events_by_source(kb.add([corpus]))
    assert {e.status for e in again.values()} == {"unchanged"}
    assert kb.stats() == before

    notes = corpus / "notes.txt"
    doc_id = next(d.id for d in kb.documents() if d.source == "notes.txt")
    notes.write_text("Spare fuses moved to cabinet Q in the east annex.\n")
    changed = events_by_source(kb.add([corpus]))
    assert changed["notes.txt"].status == "replaced" and changed["notes.txt"].doc_id == doc_id
    assert sum(e.status == "unchanged" for e in changed.values()) == 4
    assert kb.stats()["documents"] == before["documents"]
    for mode in MODES:
        texts = " ".join(h.text for h in kb.search("spare fuses cabinet", k=10, mode=mode))
        assert "cabinet Q" in texts and "cabinet B" not in texts
    kb.check()


def test_remove_takes_chunks_out_of_sqlite_fts_and_index(open_kb, corpus):
    kb = open_kb()
    list(kb.add([corpus]))
    pdf = next(d for d in kb.documents() if d.source == "turbine.pdf")
    removed = kb.remove(pdf.id)
    assert removed.source == "turbine.pdf"
    assert all(d.id != pdf.id for d in kb.documents())
    for mode in MODES:
        assert all(h.source != "turbine.pdf" for h in kb.search(f.page_sentence(2), k=20, mode=mode))
    assert kb.db.execute("SELECT count(*) FROM chunks WHERE doc_id = ?", [pdf.id]).fetchone()[0] == 0
    counts = kb.check()
    assert counts["chunks"] == counts["indexed"]
    with pytest.raises(DocumentNotFound):
        kb.remove(pdf.id)
    # and it can come back
    assert events_by_source(kb.add([corpus]))["turbine.pdf"].status == "added"
    assert kb.search(f.page_sentence(2), k=1)[0].source == "turbine.pdf"


def test_same_content_under_another_path_is_not_indexed_twice(open_kb, corpus, tmp_path):
    kb = open_kb()
    list(kb.add([corpus / "notes.txt"]))
    copy = tmp_path / "copy.txt"
    shutil.copy(corpus / "notes.txt", copy)
    event = events_by_source(kb.add([copy]))["copy.txt"]
    assert event.status == "skipped" and "same content as notes.txt" in event.reason
    assert kb.stats()["documents"] == 1


def test_knowledge_bases_are_separate(open_kb, corpus):
    first, second = open_kb("first"), open_kb("second")
    list(first.add([corpus / "notes.txt"]))
    list(second.add([corpus / "turbine.pdf"]))
    assert [d.source for d in first.documents()] == ["notes.txt"]
    assert all(h.source == "turbine.pdf" for h in second.search("flux capacitor gigawatts", k=5))
    assert first.search("flux capacitor gigawatts", k=1)[0].source == "notes.txt"


def test_invalid_names_and_modes_are_refused(open_kb):
    with pytest.raises(KnowledgeBaseError, match="invalid knowledge base name"):
        open_kb("../evil")
    kb = open_kb()
    with pytest.raises(KnowledgeBaseError, match="unknown search mode"):
        kb.search("x", mode="fuzzy")
    assert kb.search("anything") == []


# -- the index is derived data --------------------------------------------------------------


@pytest.mark.parametrize("damage", ["delete", "truncate", "garbage", "stale-sidecar"])
def test_missing_or_corrupt_index_is_rebuilt_on_open(open_kb, corpus, damage):
    kb = open_kb()
    list(kb.add([corpus]))
    expected = [h.chunk_id for h in kb.search(f.page_sentence(3), k=3, mode="vector")]
    path = kb.index_path
    kb.close()
    if damage == "delete":
        path.unlink()
    elif damage == "truncate":
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    elif damage == "garbage":
        path.write_bytes(b"\x00garbage" * 5000)
    else:
        sidecar = path.with_name(path.name + ".json")
        sidecar.write_text(sidecar.read_text().replace('"generation": ', '"generation": 1000'))
    reopened = open_kb()
    counts = reopened.check()
    assert counts["chunks"] == counts["indexed"] > 0
    assert [h.chunk_id for h in reopened.search(f.page_sentence(3), k=3, mode="vector")] == expected


def test_write_from_another_process_is_noticed(open_kb, corpus, settings, embedder):
    from store.knowledge_base import KnowledgeBase

    kb = open_kb()
    list(kb.add([corpus / "notes.txt"]))
    other = KnowledgeBase.open(settings, "test", embedder)  # a second connection, like a second process
    list(other.add([corpus / "turbine.pdf"]))
    other.close()
    assert kb.search(f.page_sentence(1), k=1, mode="vector")[0].source == "turbine.pdf"
    kb.check()


def test_another_embedder_fails_clearly_then_reindex_switches(open_kb, corpus, settings, tmp_path, embedder):
    from store.embedding import Embedder

    kb = open_kb()
    list(kb.add([corpus / "notes.txt"]))
    kb.close()
    other_folder = tmp_path / "other-minilm"
    shutil.copytree(embedder.path, other_folder)  # same weights under another name: "another embedder"
    other = Embedder(other_folder)
    with pytest.raises(EmbedderMismatch, match="kb reindex"):
        open_kb(embedder=other)
    switched = open_kb(embedder=other, allow_embedder_change=True)
    assert switched.reindex() == switched.stats()["chunks"]
    assert switched.stats()["embedder"] == "other-minilm"
    switched.close()
    assert open_kb(embedder=other).search("flux capacitor", k=1)[0].source == "notes.txt"
