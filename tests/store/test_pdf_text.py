"""PDF text fidelity (issue 15): running headers and footers dropped, words hyphenated at line ends
rejoined while real compounds keep their hyphen, chunk offsets exact against the stored text."""

from __future__ import annotations

from collections import Counter

from store.parsing import ParseLimits, pdf
from store.parsing.pdf_text import keeps_hyphen, running_lines
from tests import factories as f

LIMITS = ParseLimits()
BODY = [
    "The feed pump of the Vantor K7 is started from the local panel after the suction valve has been",
    "opened and the casing has been vented through the upper plug until only water comes out of it.",
]


def test_running_headers_footers_and_page_numbers_are_dropped(tmp_path):
    pages = [
        [
            "Vantor K7 Service Manual",
            f"Section {n} of the manual, short title",
            *BODY,
            f"Unique fact {n} is here.",
            str(n),
        ]
        for n in range(1, 6)
    ]
    parsed = pdf.parse(f.make_pdf_lines(tmp_path / "manual.pdf", pages), LIMITS)
    text = " ".join(b.text for b in parsed.blocks)
    assert "Vantor K7 Service Manual" not in text
    assert all(f"Unique fact {n} is here." in text for n in range(1, 6))
    assert "The feed pump of the Vantor K7" in text  # body lines that repeat are body, not headers
    assert not any(b.text.strip().isdigit() for b in parsed.blocks)  # bare page numbers


def test_page_of_pages_footers_with_labels_are_dropped(tmp_path):
    pages = [[*BODY, f"Fact {n} stands alone.", f"Page {n} of 4"] for n in range(1, 5)]
    path = f.with_page_labels(f.make_pdf_lines(tmp_path / "m.pdf", pages), [(0, "/r", "", 1)])
    parsed = pdf.parse(path, LIMITS)
    assert parsed.page_labels == ("i", "ii", "iii", "iv")
    assert not any("of 4" in b.text for b in parsed.blocks)


def test_headings_the_outline_names_are_kept_even_when_they_repeat(tmp_path):
    doc = pdf.parse(f.make_pdf(tmp_path / "manual.pdf", pages=4, outline=True), LIMITS)
    assert any(b.text == "Chapter 3" for b in doc.blocks)


def test_short_documents_keep_every_line(tmp_path):
    pages = [["Vantor K7 Service Manual", *BODY] for _ in range(2)]
    parsed = pdf.parse(f.make_pdf_lines(tmp_path / "two.pdf", pages), LIMITS)
    assert sum("Vantor K7 Service Manual" in b.text for b in parsed.blocks) == 2


def test_words_split_at_line_ends_are_rejoined_and_compounds_keep_their_hyphen(tmp_path):
    lines = [
        "Check the configu-",
        "ration of the relief valve before the first start, and keep the read-",
        "only copy of the settings in the cabinet; only read the gauge when the pump is",
        "running at full speed, and keep the well-known start-up checklist at hand for the inter-",
        "face panel, which is read-only during the start-up of the pump and its valves.",
    ]
    parsed = pdf.parse(f.make_pdf_lines(tmp_path / "h.pdf", [lines]), LIMITS)
    text = " ".join(b.text for b in parsed.blocks)
    assert "configuration of the relief valve" in text and "configu-" not in text
    assert "the read-only copy" in text
    assert "interface panel" in text


def test_keeps_hyphen_decides_by_the_document_vocabulary():
    words = Counter({"read": 3, "only": 3, "data": 2, "base": 2, "database": 1, "configu": 1, "ration": 1})
    assert keeps_hyphen("the read", "only copy", words)  # both halves are words of the document
    assert not keeps_hyphen("a data", "base of", words)  # the document writes "database"
    assert not keeps_hyphen("the configu", "ration", words)
    assert keeps_hyphen("Wi", "Fi network", words)  # the next line starts with a capital
    assert keeps_hyphen("in", "2 steps", words)
    assert keeps_hyphen("a well", "known tool", Counter({"well-known": 1}))


def test_running_lines_need_half_the_pages_and_three_at_least():
    pages = [["Manual title", "body text that runs all the way to the right margin of the page", "Annex"]] * 3
    assert running_lines(pages) == {"manual title", "annex"}
    assert running_lines(pages[:2]) == set()
    assert running_lines(pages, keep={"manual title"}) == {"annex"}


def test_chunk_offsets_stay_exact_against_the_stored_text(settings, embedder, tmp_path):
    from store.knowledge_base import KnowledgeBase

    pages = [["Vantor K7 Service Manual", *BODY, f"Unique fact {n} is here.", str(n)] for n in range(1, 5)]
    path = f.make_pdf_lines(tmp_path / "manual.pdf", pages)
    with KnowledgeBase.open(settings, "default", embedder) as kb:
        list(kb.add([path]))
        (doc,) = kb.documents()
        text = kb.db.execute("SELECT text FROM documents WHERE id = ?", [doc.id]).fetchone()[0]
        for chunk_text, start, end in kb.db.execute('SELECT text, start, "end" FROM chunks WHERE doc_id = ?', [doc.id]):
            assert text[start:end] == chunk_text
        assert "Vantor K7 Service Manual" not in text


def test_a_word_and_the_page_number_is_a_heading_but_page_n_is_a_footer():
    pages = [
        [f"Chapter {n}", "body text that runs all the way to the right margin of the page", f"Page {n}"]
        for n in (1, 2, 3)
    ]
    assert running_lines(pages) == {"page #"}


def test_a_bare_page_number_goes_even_on_the_few_pages_that_show_it_alone(tmp_path):
    # Chapters' first pages show the number alone, the others "Chapter N: title  page".
    pages = [
        [str(n) if n in (1, 4) else f"Chapter {1 if n < 4 else 2}: Pumps and valves {n}", *BODY, f"Fact {n} here."]
        for n in range(1, 7)
    ]
    parsed = pdf.parse(f.make_pdf_lines(tmp_path / "chapters.pdf", pages), LIMITS)
    assert not any(b.text.strip().isdigit() for b in parsed.blocks)
    assert all(any(f"Fact {n} here." in b.text for b in parsed.blocks) for n in range(1, 7))
