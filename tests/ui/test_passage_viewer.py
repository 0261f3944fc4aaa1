"""The passage viewer (issue 15): a cited PDF page as an image with the passage highlighted, the
original file opened at that page, and other documents' passages marked in their context. Served by
the app's own routes (``ui.api.routes``) in process."""

from __future__ import annotations

import io
import shutil

import pytest
from fastapi import FastAPI
from PIL import Image
from starlette.testclient import TestClient

from store.parsing.pdf_view import highlight, merge_lines, tokens
from tests import factories as f
from ui.passages import passage_url


@pytest.fixture
def viewer(settings, embedder, tmp_path):
    from ui import api
    from ui.services import Services

    services = Services(settings, _embedder=embedder)
    docs = tmp_path / "docs"
    docs.mkdir()
    f.with_page_labels(f.make_pdf(docs / "turbine.pdf", pages=3), [(0, "/r", "", 1), (1, "/D", "", 1)])
    f.make_markdown(docs / "pump.md")
    list(services.kb().add([docs]))
    with TestClient(FastAPI(routes=api.routes(services))) as client:
        yield services, client, docs
    services.close()


def hit_for(services, text: str):
    return services.kb().search(text, k=1)[0]


def yellow_pixels(png: bytes) -> int:
    image = Image.open(io.BytesIO(png)).convert("RGB")
    return sum(1 for r, g, b in image.getdata() if r > 200 and g > 180 and b < 170)


def test_a_pdf_passage_opens_its_page_highlighted_with_its_label_and_the_original(viewer):
    services, client, docs = viewer
    hit = hit_for(services, f.page_sentence(2))
    url = passage_url("default", hit.chunk_id)
    page = client.get(url)
    assert page.status_code == 200
    assert "page 1 (PDF page 2)" in page.text and "id='ds-page'" in page.text
    assert f"href='{url}/file#page=2'" in page.text

    image = client.get(url + "/page.png")
    assert image.status_code == 200 and image.headers["content-type"] == "image/png"
    assert yellow_pixels(image.content) > 500  # the passage's words are painted over
    original = client.get(url + "/file")
    assert original.headers["content-type"] == "application/pdf"
    assert original.content == (docs / "turbine.pdf").read_bytes()


def test_a_file_changed_since_it_was_added_is_not_shown_as_the_cited_page(viewer):
    services, client, docs = viewer
    hit = hit_for(services, f.page_sentence(2))
    shutil.copyfile(f.make_pdf(docs.parent / "other.pdf", pages=5), docs / "turbine.pdf")
    url = passage_url("default", hit.chunk_id)
    page = client.get(url)
    assert page.status_code == 200 and "has changed since it was added" in page.text
    assert "id='ds-page'" not in page.text and f.page_sentence(2) in page.text  # the stored passage still shows
    assert client.get(url + "/page.png").status_code == 404
    assert client.get(url + "/file").status_code == 404


def test_a_markdown_passage_is_marked_in_its_context(viewer):
    services, client, _ = viewer
    hit = hit_for(services, f.section_sentence("Maintenance"))
    page = client.get(passage_url("default", hit.chunk_id))
    assert "<mark id='ds-passage'>" in page.text and "id='ds-page'" not in page.text
    assert client.get(passage_url("default", hit.chunk_id) + "/page.png").status_code == 404


def test_an_unknown_passage_is_a_clear_404(viewer):
    _, client, _ = viewer
    missing = client.get(passage_url("default", "0123456789ab:0") + "/page.png")
    assert missing.status_code == 404 and "no passage" in missing.text


def test_highlight_covers_the_passage_words_in_order_and_nothing_else():
    words = [(w, (i, 0, i + 1, 1)) for i, w in enumerate("Chapter 2 Oil above 85 C trips the alarm. Next page".split())]
    boxes = highlight(words, "Oil above 85 C trips the alarm.")
    assert [b[0] for b in boxes] == [2, 3, 4, 5, 6, 7, 8]
    assert highlight(words, "nothing in common here") == []
    assert merge_lines([(0, 0, 10, 10), (12, 0, 20, 10), (0, 20, 10, 30)]) == [(0, 0, 20, 10), (0, 20, 10, 30)]
    assert tokens("eighty-five (marker002)") == ["eighty", "five", "marker002"]


def test_an_ocr_page_is_highlighted_from_tesseract_word_boxes(tmp_path):
    from store.parsing.pdf_view import render_page

    scan = f.make_scan_of(f.make_pdf(tmp_path / "m.pdf", pages=2), tmp_path / "scan.pdf", pages=[2])
    image = render_page(scan, 2, f.page_sentence(2), ocr=True)
    assert image.highlighted >= 10 and yellow_pixels(image.png) > 500
