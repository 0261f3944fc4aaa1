"""Scanned PDF pages read by OCR (issue 15): real renders (pypdfium2) read by the real Tesseract
(Debian's tesseract-ocr, which `make test` installs). About 2 s a page."""

from __future__ import annotations

import pytest
from pypdf import PdfWriter

from store.errors import ConfigError, EmptyDocument
from store.parsing import ParseLimits, ocr, pdf
from tests import factories as f

ALARM = "journal bearing alarm"  # words of page 2's sentence (factories.page_sentence(2))


def text_of(parsed, page: int) -> str:
    return " ".join(b.text for b in parsed.blocks if b.page == page)


@pytest.fixture(scope="module")
def mixed(tmp_path_factory):
    """A 3-page manual whose page 2 was printed and scanned (an image, no text layer)."""
    root = tmp_path_factory.mktemp("ocr")
    return f.make_scan_of(f.make_pdf(root / "manual.pdf", pages=3), root / "mixed.pdf", pages=[2])


def test_a_scanned_page_is_read_and_the_text_layer_kept_elsewhere(mixed):
    parsed = pdf.parse(mixed, ParseLimits())
    assert parsed.ocr_pages == (2,) and parsed.notes == ("OCR read page 2",)
    assert ALARM in text_of(parsed, 2).lower()
    assert f.page_sentence(1) in text_of(parsed, 1) and f.page_sentence(3) in text_of(parsed, 3)


def test_ocr_off_leaves_scanned_pages_out_and_refuses_an_all_scanned_pdf(mixed, tmp_path):
    parsed = pdf.parse(mixed, ParseLimits(ocr="off"))
    assert parsed.ocr_pages == () and ALARM not in text_of(parsed, 2).lower()
    scan = f.make_scan_of(f.make_pdf(tmp_path / "one.pdf", pages=1), tmp_path / "scan.pdf")
    with pytest.raises(EmptyDocument, match="OCR is off"):
        pdf.parse(scan, ParseLimits(ocr="off"))


def test_ocr_always_reads_every_page_even_with_a_text_layer(tmp_path):
    manual = f.make_pdf(tmp_path / "manual.pdf", pages=1)
    parsed = pdf.parse(manual, ParseLimits(ocr="always"))
    assert parsed.ocr_pages == (1,) and "inlet guide vanes" in text_of(parsed, 1).lower()


def test_an_image_page_without_words_is_named_in_the_report(tmp_path):
    with pytest.raises(EmptyDocument, match="OCR read no text"):
        pdf.parse(f.make_scanned_pdf(tmp_path / "blank-scan.pdf", pages=1), ParseLimits())


def test_a_page_over_its_time_limit_is_left_unread_and_named(mixed):
    parsed = pdf.parse(mixed, ParseLimits(ocr_page_seconds=0.01))
    assert parsed.ocr_pages == () and parsed.notes == ("no text found on page 2",)
    assert f.page_sentence(1) in text_of(parsed, 1)


def test_without_tesseract_text_pages_still_work_and_scans_say_how_to_install_it(mixed, tmp_path, monkeypatch):
    import pytesseract

    monkeypatch.setattr(pytesseract.pytesseract, "tesseract_cmd", str(tmp_path / "no-tesseract"))
    parsed = pdf.parse(mixed, ParseLimits())
    assert f.page_sentence(3) in text_of(parsed, 3)
    assert parsed.notes == (f"page 2 not read: {ocr.INSTALL_HINT}",)
    scan = f.make_scan_of(f.make_pdf(tmp_path / "one.pdf", pages=1), tmp_path / "scan.pdf")
    with pytest.raises(EmptyDocument, match="apt-get install tesseract-ocr"):
        pdf.parse(scan, ParseLimits())
    assert pdf.parse(f.make_pdf(tmp_path / "text.pdf", pages=1), ParseLimits()).blocks


def test_a_missing_language_pack_is_named(mixed):
    with pytest.raises(ocr.OcrUnavailable, match="tesseract-ocr-klingon"), ocr.page_reader(mixed, languages="klingon"):
        pass


def test_a_huge_page_is_rendered_within_the_pixel_bound(tmp_path, monkeypatch):
    import pytesseract

    writer = PdfWriter()
    writer.add_blank_page(width=14_400, height=14_400)  # 200 x 200 inches: 3.6 gigapixels at 300 dpi
    huge = tmp_path / "huge.pdf"
    with huge.open("wb") as out:
        writer.write(out)
    seen: list[int] = []
    real = pytesseract.image_to_string

    def measured(image, **kwargs):
        seen.append(image.width * image.height)
        return real(image, **kwargs)

    monkeypatch.setattr(pytesseract, "image_to_string", measured)
    monkeypatch.setattr(ocr, "MAX_PIXELS", 4_000_000)
    with ocr.page_reader(huge) as read:
        assert not (read(0) or "").strip()
    assert seen and seen[0] <= 4_000_000


def test_an_ocr_page_is_marked_in_search_and_in_the_passage(mixed, settings, embedder):
    from store.knowledge_base import KnowledgeBase

    with KnowledgeBase.open(settings, "default", embedder) as kb:
        events = list(kb.add([mixed]))
        assert [(e.status, e.pages_done) for e in events] == [("reading", 0), ("reading", 1), ("added", 0), ("done", 0)]
        assert events[2].notes == ("OCR read page 2",)
        hit = kb.search("Lubricating oil above eighty-five degrees Celsius trips the journal bearing alarm", k=1)[0]
        assert (hit.page, hit.ocr) == (2, True) and hit.to_json()["ocr"] is True
        assert kb.passage(hit.chunk_id)["ocr"] is True
        other = kb.search(f.page_sentence(3), k=1)[0]
        assert (other.page, other.ocr) == (3, False)


def test_the_ocr_settings_are_checked(settings):
    with pytest.raises(ConfigError, match="ocr must be one of auto, off, always"):
        settings.replace(ocr="sometimes").validate()
    with pytest.raises(ConfigError, match="ocr_languages"):
        settings.replace(ocr_languages="eng; rm -rf /").validate()
    limits = settings.replace(ocr="off", ocr_languages="eng+deu").parse_limits
    assert (limits.ocr, limits.ocr_languages) == ("off", "eng+deu")


def test_adding_a_scan_reports_its_pages_and_can_be_stopped_half_way(settings, embedder, tmp_path):
    import threading
    import time

    from store.knowledge_base import KnowledgeBase

    scan = f.make_scan_of(f.make_pdf(tmp_path / "long.pdf", pages=4), tmp_path / "scan.pdf")
    with KnowledgeBase.open(settings, "default", embedder) as kb:
        adding = kb.add([scan])
        progress = []
        for event in adding:
            assert event.status == "reading", event
            progress.append((event.pages_done, event.pages_total))
            if event.pages_done == 1:
                break
        adding.close()  # the user pressed Stop: nothing half-added, and the reader stops
        assert progress == [(0, 4), (1, 4)]
        assert kb.documents() == [] and kb.stats()["chunks"] == 0
        deadline = time.monotonic() + 30
        while any(t.name == "domainsmith-parse" for t in threading.enumerate()) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not any(t.name == "domainsmith-parse" for t in threading.enumerate())


def test_the_upload_status_shows_ocr_progress(settings, embedder, mixed):
    from ui import knowledge_tab
    from ui.services import Services

    services = Services(settings, _embedder=embedder)
    try:
        statuses = [status for status, _table in knowledge_tab.upload(services, "default", [str(mixed)])]
    finally:
        services.close()
    assert any("⏳ mixed.pdf: reading scanned pages by OCR (1 of 1)" in s for s in statuses)
    assert "mixed.pdf: added" in statuses[-1] and "(OCR read page 2)" in statuses[-1]
