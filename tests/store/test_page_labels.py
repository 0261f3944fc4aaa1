"""PDF page labels (issue 15): the page a reader's viewer shows, stored beside the physical page
and carried by search hits, citations and every JSON contract (which only gain the field)."""

from __future__ import annotations

from pypdf.generic import ArrayObject, DictionaryObject, NameObject, NumberObject, TextStringObject

from store.parsing import ParseLimits, pdf
from store.records import page_text, where
from tests import factories as f

LIMITS = ParseLimits()


def test_roman_front_matter_then_chapters_from_one(tmp_path):
    path = f.with_page_labels(f.make_pdf(tmp_path / "manual.pdf", pages=5), [(0, "/r", "", 1), (2, "/D", "", 1)])
    assert pdf.parse(path, LIMITS).page_labels == ("i", "ii", "1", "2", "3")


def test_an_offset_with_a_prefix(tmp_path):
    path = f.with_page_labels(f.make_pdf(tmp_path / "annex.pdf", pages=3), [(0, "/D", "A-", 7)])
    assert pdf.parse(path, LIMITS).page_labels == ("A-7", "A-8", "A-9")


def test_no_labels_or_labels_equal_to_the_physical_pages_store_none(tmp_path):
    plain = f.make_pdf(tmp_path / "plain.pdf", pages=2)
    assert pdf.parse(plain, LIMITS).page_labels == ()
    same = f.with_page_labels(f.make_pdf(tmp_path / "same.pdf", pages=2), [(0, "/D", "", 1)])
    assert pdf.parse(same, LIMITS).page_labels == ()


def test_malformed_labels_fall_back_to_physical_pages_and_the_text_is_kept(tmp_path):
    garbage = DictionaryObject({NameObject("/Nums"): ArrayObject([TextStringObject("x"), NumberObject(3)])})
    path = f.with_page_labels(f.make_pdf(tmp_path / "odd.pdf", pages=3), raw=garbage)
    parsed = pdf.parse(path, LIMITS)
    assert parsed.page_labels == () and parsed.pages == 3
    assert any(f.page_sentence(2) in block.text for block in parsed.blocks)


def test_where_says_the_label_and_the_physical_page_when_they_differ():
    assert page_text(29, "24") == "page 24 (PDF page 29)"
    assert page_text(3, "3") == page_text(3) == "page 3"
    assert where(29, "Maintenance", "24") == "page 24 (PDF page 29), Maintenance"
    assert where(None, "Maintenance", None) == "Maintenance"


def test_search_hits_and_their_json_carry_the_label(settings, embedder, tmp_path):
    from store.knowledge_base import KnowledgeBase

    manual = f.with_page_labels(f.make_pdf(tmp_path / "manual.pdf", pages=4), [(0, "/r", "", 1), (2, "/D", "", 1)])
    notes = f.make_markdown(tmp_path / "notes.md")
    with KnowledgeBase.open(settings, "default", embedder) as kb:
        list(kb.add([manual, notes]))
        hit = kb.search(f.page_sentence(3), k=1)[0]
        assert (hit.page, hit.page_label) == (3, "1")
        assert hit.to_json()["page"] == 3 and hit.to_json()["page_label"] == "1"
        assert hit.where.startswith("page 1 (PDF page 3)")
        assert kb.passage(hit.chunk_id)["page_label"] == "1"
        md = kb.search(f.section_sentence("Installation", "Maintenance"), k=1)[0]
        assert md.document == "notes.md" and md.page is None and md.to_json()["page_label"] is None


def test_the_answer_json_and_the_api_citations_carry_the_label(settings, embedder, tmp_path):
    from assistant.assistant import AskOptions, ask_once
    from assistant.openai_api import citations_json
    from ui.services import Services

    manual = f.with_page_labels(f.make_pdf(tmp_path / "manual.pdf", pages=4), [(0, "/r", "", 1), (2, "/D", "", 1)])
    services = Services(settings.replace(max_tokens=48), _embedder=embedder)
    try:
        list(services.kb().add([manual]))
        answer = ask_once(services.assistant, f.page_sentence(3), AskOptions(model="SmolLM2-135M-Instruct"))
        assert answer.citations, answer
        cited = answer.to_json()["citations"][0]
        assert (cited["page"], cited["page_label"]) == (3, "1")
        assert citations_json(answer)[0]["page_label"] == "1"
        assert answer.sources[0].page_label == "1"
    finally:
        services.close()


def test_chat_shows_the_label_with_the_physical_page_on_hover():
    from ui.chat_tab import place_html

    assert place_html(29, "24", "Seals") == "<span title='PDF page 29'>p. 24</span>, Seals"
    assert place_html(3, None, "") == "<span>p. 3</span>"
    assert place_html(None, None, "Install > On Linux") == "Install &gt; On Linux"
