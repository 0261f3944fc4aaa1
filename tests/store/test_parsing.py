"""Parsers: a contract every format passes, then what each format must get right.

Every fixture is a real file written by ``tests/factories.py`` into ``tmp_path``.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from store.errors import (
    CorruptDocument,
    DomainsmithError,
    EmptyDocument,
    EncryptedDocument,
    FileTooLarge,
)
from store.parsing import SUPPORTED_SUFFIXES, ParseLimits, parse
from store.records import Block, ParsedDocument
from tests import factories

TEXT = "First paragraph,\nwrapped   over two lines.\n\n\nSecond paragraph: café, naïve, 5 €."
GOOD = {
    "pdf": lambda d: factories.make_pdf(d / "manual.pdf"),
    "docx": lambda d: factories.make_docx(d / "handbook.docx"),
    "markdown": lambda d: factories.make_markdown(d / "handbook.md"),
    "html": lambda d: factories.make_html(d / "handbook.html"),
    "text": lambda d: factories.make_text(d / "notes.txt", TEXT),
}


def texts(doc: ParsedDocument) -> list[str]:
    return [block.text for block in doc.blocks]


def block_with(doc: ParsedDocument, needle: str) -> Block:
    found = [block for block in doc.blocks if needle in block.text]
    assert found, f"{needle!r} not in {texts(doc)}"
    return found[0]


# --- the contract ------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", sorted(GOOD))
def test_contract_good_file(kind: str, tmp_path: Path) -> None:
    doc = parse(GOOD[kind](tmp_path))
    assert isinstance(doc, ParsedDocument)
    assert doc.kind == kind and doc.title and doc.blocks
    for block in doc.blocks:
        assert isinstance(block, Block) and block.kind in ("heading", "text", "table")
        assert block.text and block.text == block.text.strip()
        assert isinstance(block.section, tuple) and all(block.section)
        if "\n" not in block.text:  # multi-line blocks are tables, lists and code
            assert "  " not in block.text and "\t" not in block.text
        if block.kind == "heading":
            assert block.section[-1] == block.text
        assert block.page is None if kind != "pdf" else 1 <= block.page <= doc.pages


@pytest.mark.parametrize("kind", sorted(GOOD))
def test_contract_damaged_copies_raise_only_typed_errors(kind: str, tmp_path: Path) -> None:
    good = GOOD[kind](tmp_path).read_bytes()
    suffix = {"markdown": ".md", "text": ".txt"}.get(kind, "." + kind)
    for seed in range(25):
        path = tmp_path / f"damaged{seed}{suffix}"
        path.write_bytes(factories.mutate(good, seed, flips=(1, 8, 60)[seed % 3]))
        try:
            assert isinstance(parse(path), ParsedDocument)
        except DomainsmithError:
            pass


@pytest.mark.parametrize("suffix", SUPPORTED_SUFFIXES)
@pytest.mark.parametrize("seed", range(4))
def test_contract_garbage_bytes(suffix: str, seed: int, tmp_path: Path) -> None:
    path = factories.make_random_bytes(tmp_path / f"x{suffix}", seed, size=(64, 3000, 20000, 2)[seed])
    try:
        assert isinstance(parse(path), ParsedDocument)
    except DomainsmithError as error:
        assert error.message and error.path == path.name


@pytest.mark.parametrize("suffix", SUPPORTED_SUFFIXES)
def test_contract_empty_file(suffix: str, tmp_path: Path) -> None:
    path = tmp_path / f"empty{suffix}"
    path.write_bytes(b"")
    with pytest.raises(EmptyDocument):
        parse(path)


# --- PDF ---------------------------------------------------------------------------------------


def test_pdf_keeps_pages_and_paragraphs(tmp_path: Path) -> None:
    doc = parse(factories.make_pdf(tmp_path / "manual.pdf", pages=4))
    assert doc.pages == 4 and doc.title == "Turbine Manual"
    for page in range(1, 5):
        block = block_with(doc, factories.page_sentence(page))
        assert block.page == page and block.text == factories.page_sentence(page)
    # a paragraph wrapped over several lines is one block; the heading line is its own (a word and the
    # page's number, "Chapter N" on page N, is a numbered heading, not a running header)
    assert "Chapter 1" in texts(doc)
    assert "in the maintenance log together" in block_with(doc, "Calibration drift").text
    assert [b.page for b in doc.blocks] == sorted(b.page for b in doc.blocks)


def test_pdf_outline_gives_sections(tmp_path: Path) -> None:
    doc = parse(factories.make_pdf(tmp_path / "manual.pdf", outline=True))
    assert block_with(doc, factories.page_sentence(2)).section == ("Chapter 2", "Findings 2")
    assert block_with(doc, "Calibration drift").section == ("Chapter 1",)
    heading = block_with(doc, "Findings 3")
    assert heading.kind == "heading" and heading.page == 3


def test_pdf_title_falls_back_to_file_name(tmp_path: Path) -> None:
    assert parse(factories.make_pdf(tmp_path / "untitled-report.pdf", title=None)).title == "untitled-report"


def test_pdf_corrupt(tmp_path: Path) -> None:
    with pytest.raises(CorruptDocument, match="damaged"):
        parse(factories.make_corrupt_pdf(tmp_path / "broken.pdf"))


def test_pdf_truncated_download(tmp_path: Path) -> None:
    data = factories.make_pdf(tmp_path / "full.pdf").read_bytes()
    path = tmp_path / "partial.pdf"
    path.write_bytes(data[: len(data) // 3])
    try:
        parse(path)
    except DomainsmithError:
        pass


def test_pdf_encrypted(tmp_path: Path) -> None:
    with pytest.raises(EncryptedDocument, match="password"):
        parse(factories.make_encrypted_pdf(tmp_path / "secret.pdf"))


@pytest.mark.parametrize("algorithm", ["AES-128", "AES-256"])
def test_pdf_aes_encryption(tmp_path: Path, algorithm: str) -> None:
    with pytest.raises(EncryptedDocument):
        parse(factories.make_encrypted_pdf(tmp_path / "secret.pdf", algorithm=algorithm))
    opened = parse(factories.make_encrypted_pdf(tmp_path / "open.pdf", user_password="", algorithm=algorithm))
    assert any(factories.page_sentence(2) in b.text for b in opened.blocks)


def test_pdf_encrypted_with_empty_password_is_read(tmp_path: Path) -> None:
    doc = parse(factories.make_encrypted_pdf(tmp_path / "locked.pdf", user_password=""))
    assert block_with(doc, factories.page_sentence(2)).page == 2


def test_pdf_without_text_layer(tmp_path: Path) -> None:
    with pytest.raises(EmptyDocument, match="no text layer") as caught:
        parse(factories.make_scanned_pdf(tmp_path / "scan.pdf"))
    assert "OCR" in caught.value.message


def test_pdf_page_limit(tmp_path: Path) -> None:
    with pytest.raises(FileTooLarge, match="3 pages"):
        parse(factories.make_pdf(tmp_path / "manual.pdf", pages=3), ParseLimits(max_pages=2))


# --- DOCX --------------------------------------------------------------------------------------


def test_docx_headings_become_section_paths(tmp_path: Path) -> None:
    doc = parse(factories.make_docx(tmp_path / "handbook.docx"))
    assert doc.title == "Pump Handbook"
    for path in factories.heading_paths():
        block = block_with(doc, factories.section_sentence(*path))
        assert block.section == ("Pump Handbook", *path) and block.kind == "text"
    assert block_with(doc, "Read this handbook").text == "Read this handbook before the first start."


def test_docx_table_in_document_order(tmp_path: Path) -> None:
    doc = parse(factories.make_docx(tmp_path / "handbook.docx"))
    table = block_with(doc, "Flange bolt")
    assert table.kind == "table"
    assert table.text == "Part | Torque (Nm)\nFlange bolt | 45\nCover screw | 12"
    assert table.section[-1] == "Maintenance"
    order = texts(doc)
    maintenance = order.index(factories.section_sentence("Maintenance"))
    assert maintenance < order.index(table.text) < order.index("After the table comes the closing paragraph.")


def test_docx_zip_bomb(tmp_path: Path) -> None:
    with pytest.raises(FileTooLarge, match="zip bomb"):
        parse(factories.make_docx_zip_bomb(tmp_path / "bomb.docx"))


def test_docx_unpacked_size_limit(tmp_path: Path) -> None:
    with pytest.raises(FileTooLarge, match="expands to"):
        parse(factories.make_docx(tmp_path / "handbook.docx"), ParseLimits(max_unpacked_bytes=100_000))


@pytest.mark.parametrize(
    ("factory", "message"),
    [
        (factories.make_binary, "zip archive"),
        (factories.make_zip_without_document, "word/document.xml"),
        (factories.make_legacy_doc, r"\.doc\b"),
    ],
)
def test_docx_not_a_word_document(factory, message: str, tmp_path: Path) -> None:
    with pytest.raises(CorruptDocument, match=message):
        parse(factory(tmp_path / "fake.docx"))


# --- Markdown ----------------------------------------------------------------------------------


def test_markdown_headings_become_section_paths(tmp_path: Path) -> None:
    doc = parse(factories.make_markdown(tmp_path / "handbook.md"))
    assert doc.title == "Pump Handbook"
    for path in factories.heading_paths():
        assert block_with(doc, factories.section_sentence(*path)).section == ("Pump Handbook", *path)


def test_markdown_text_is_readable(tmp_path: Path) -> None:
    doc = parse(factories.make_markdown(tmp_path / "handbook.md"))
    assert "Read this handbook before the first start; see the site." in texts(doc)
    assert "- first item\n- second item" in texts(doc)
    assert "def torque(x):\n    return  x * 2" in texts(doc)  # code kept verbatim
    assert block_with(doc, "Flange bolt").kind == "table"
    assert not any("title:" in text or "**" in text or "](" in text for text in texts(doc))


def test_markdown_title_without_h1(tmp_path: Path) -> None:
    plain = tmp_path / "release-notes.md"
    plain.write_text("## Fixes\n\nThe pump no longer stalls.\n", encoding="utf-8")
    assert parse(plain).title == "release-notes"
    fronted = tmp_path / "fronted.md"
    fronted.write_text("---\ntitle: 'Field Guide'\n---\nSome text.\n", encoding="utf-8")
    assert parse(fronted).title == "Field Guide"


# --- HTML --------------------------------------------------------------------------------------


def test_html_main_text_and_sections(tmp_path: Path) -> None:
    doc = parse(factories.make_html(tmp_path / "handbook.html"))
    assert doc.title == "Pump Handbook"
    for path in factories.heading_paths():
        assert block_with(doc, factories.section_sentence(*path)).section == ("Pump Handbook", *path)
    assert "Read this handbook before the first start." in texts(doc)
    assert block_with(doc, "Flange bolt").text == "Part | Torque (Nm)\nFlange bolt | 45\nCover screw | 12"
    assert "def torque(x):\n    return  x * 2" in texts(doc)


def test_html_drops_chrome(tmp_path: Path) -> None:
    text = "\n".join(texts(parse(factories.make_html(tmp_path / "handbook.html"))))
    chrome_words = ("SCRIPT", "NAVIGATION", "BANNER", "FOOTER", "ASIDE", "FORM", "NOSCRIPT", "color")
    for chrome in (*chrome_words, "\u00b6"):
        assert chrome not in text


def test_html_sphinx_page(tmp_path: Path) -> None:
    doc = parse(factories.make_sphinx_html(tmp_path / "os.html"))
    text = "\n".join(texts(doc))
    assert "SIDEBAR" not in text and "RELATED" not in text and "SPHINX FOOTER" not in text
    assert block_with(doc, "Open the file path.").section == ("os \u2014 Miscellaneous interfaces", "Files")
    assert "\u00b6" not in text and doc.title == "os \u2014 Python docs"


# A PostgreSQL manual page (DocBook XSL) in miniature: its navigation header and footer are tables of
# "Prev | Up | Home | Next" links with the neighbouring pages' titles.
DOCBOOK_PAGE = """<?xml version="1.0" encoding="UTF-8" standalone="no"?>
<html xmlns="http://www.w3.org/1999/xhtml"><head><title>21.14. BSD Authentication</title></head>
<body id="docContent"><div class="navheader"><table summary="Navigation header">
<tr><th colspan="5">21.14. BSD Authentication</th></tr>
<tr><td><a href="auth-pam.html" title="21.13. PAM Authentication">Prev</a></td>
<td><a href="client-authentication.html">Up</a></td><th>Chapter 21. Client Authentication</th>
<td><a href="index.html">Home</a></td><td><a href="auth-problems.html">Next</a></td></tr></table><hr /></div>
<div class="sect1"><div class="titlepage"><h2 class="title">21.14. BSD Authentication</h2></div>
<p>This authentication method uses BSD Authentication to verify the user name and password.</p></div>
<div class="navfooter"><hr /><table summary="Navigation footer"><tr><td><a href="auth-pam.html">Prev</a></td>
<td><a href="client-authentication.html">Up</a></td><td><a href="auth-problems.html">Next</a></td></tr>
<tr><td>21.13. PAM Authentication</td><td><a href="index.html">Home</a></td>
<td>21.15. Authentication Problems</td></tr></table></div></body></html>
"""


def test_html_docbook_navigation_is_dropped(tmp_path: Path) -> None:
    path = tmp_path / "auth-bsd.html"
    path.write_text(DOCBOOK_PAGE, encoding="utf-8")
    doc = parse(path)
    text = "\n".join(texts(doc))
    assert texts(doc) == [
        "21.14. BSD Authentication",
        "This authentication method uses BSD Authentication to verify the user name and password.",
    ]
    for chrome in ("Prev", "Next", "Home", "PAM Authentication", "Authentication Problems", "Chapter 21"):
        assert chrome not in text
    assert block_with(doc, "verify the user name").section == ("21.14. BSD Authentication",)


def test_html_single_article_is_the_main_content(tmp_path: Path) -> None:
    doc = parse(factories.make_article_page(tmp_path / "post.html"))
    assert texts(doc) == ["Article title", "The article body sentence."]
    assert doc.title == "Article title"  # empty <title>: the first h1


@pytest.mark.parametrize(
    ("encoding", "meta"), [("cp1252", True), ("iso-8859-1", True), ("utf-8", False), ("cp1252", False)]
)
def test_html_encodings(encoding: str, meta: bool, tmp_path: Path) -> None:
    sentence = "Le caf\u00e9 co\u00fbte 5 \u20ac, na\u00efve fa\u00e7ade."
    if encoding == "iso-8859-1":  # no euro sign in Latin-1
        sentence = "Gr\u00fc\u00dfe aus K\u00f6ln."
    doc = parse(factories.make_html_encoded(tmp_path / "page.html", sentence, encoding, meta=meta))
    assert texts(doc) == [sentence]


def test_html_deep_nesting(tmp_path: Path) -> None:
    assert texts(parse(factories.make_nested_html(tmp_path / "ok.html", depth=500))) == ["Deep sentence."]
    with pytest.raises(CorruptDocument, match="nest"):
        parse(factories.make_nested_html(tmp_path / "deep.html", depth=20_000))
    with pytest.raises(CorruptDocument, match="nested more than 100 levels"):
        parse(factories.make_nested_html(tmp_path / "limit.html", depth=500), ParseLimits(max_html_depth=100))


def test_html_only_chrome_is_empty(tmp_path: Path) -> None:
    path = tmp_path / "nav.html"
    path.write_text(factories.html_page("<nav>Home</nav><script>x()</script>"), encoding="utf-8")
    with pytest.raises(EmptyDocument):
        parse(path)


def test_html_speed_is_linear(tmp_path: Path) -> None:
    sections = "".join(
        f"<h2>Section {i}</h2><p>Paragraph {i} with <a href='#'>a link</a> and <code>code</code>.</p>"
        f"<ul><li>item one</li><li>item two</li></ul>"
        for i in range(3000)
    )
    path = tmp_path / "big.html"
    path.write_text(factories.html_page(f"<main>{sections}</main>"), encoding="utf-8")
    started = time.perf_counter()
    doc = parse(path)
    assert len(doc.blocks) == 4 * 3000
    assert time.perf_counter() - started < 3.0


# --- plain text --------------------------------------------------------------------------------

PARAGRAPHS = [
    "First paragraph, wrapped over two lines.",
    "Second paragraph: caf\u00e9, na\u00efve, 5 \u20ac.",
]


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "utf-16", "utf-32", "cp1252"])
def test_text_encodings(encoding: str, tmp_path: Path) -> None:
    doc = parse(factories.make_text(tmp_path / "notes.txt", TEXT, encoding))
    assert texts(doc) == PARAGRAPHS
    assert all(block.section == () and block.page is None for block in doc.blocks)
    assert doc.title == "notes"


def test_text_latin1_and_crlf(tmp_path: Path) -> None:
    text = "Gr\u00fc\u00dfe aus K\u00f6ln.\r\nDie Stra\u00dfe ist sch\u00f6n.\r\n\r\nEnde."
    doc = parse(factories.make_text(tmp_path / "brief.txt", text, "latin-1"))
    assert texts(doc) == ["Gr\u00fc\u00dfe aus K\u00f6ln. Die Stra\u00dfe ist sch\u00f6n.", "Ende."]


def test_text_binary_content(tmp_path: Path) -> None:
    with pytest.raises(CorruptDocument, match="binary content, not text"):
        parse(factories.make_binary(tmp_path / "image.txt"))


def test_text_control_characters(tmp_path: Path) -> None:
    path = tmp_path / "dump.txt"
    path.write_bytes(b"header \x01\x02\x03\x04\x05\x06\x07\x08 payload" * 20)
    with pytest.raises(CorruptDocument, match="binary content"):
        parse(path)


def test_text_undecodable(tmp_path: Path) -> None:
    with pytest.raises(CorruptDocument, match="encoding could not be detected"):
        parse(factories.make_undecodable_text(tmp_path / "mystery.txt"))


def test_docx_damaged_xml_inside_a_valid_zip(tmp_path: Path) -> None:
    source = factories.make_docx(tmp_path / "handbook.docx")
    for seed in range(12):
        path = factories.damage_docx_part(source, tmp_path / f"damaged{seed}.docx", seed)
        try:
            parse(path)
        except DomainsmithError as error:
            assert error.message


def test_text_utf8_with_a_stray_latin1_byte(tmp_path: Path) -> None:
    path = tmp_path / "mixed.txt"
    path.write_bytes("Größe: 5 mm — Maß café ünd ölig.".encode() + b" caf\xe9")
    assert parse(path).blocks[0].text.startswith("Größe: 5 mm — Maß café ünd ölig.")


def test_html_inline_markup_and_line_breaks(tmp_path: Path) -> None:
    path = tmp_path / "api.html"
    body = (
        "<div role='main'><dl><dt><span>os.</span><span>open</span>(<em>path</em>)"
        "<a class='headerlink' href='#os.open'>\u00b6</a></dt><dd><p>Open<br>the file.</p></dd></dl>"
        "<pre>a<br>b\n  c</pre></div>"
    )
    path.write_text(factories.html_page(body), encoding="utf-8")
    assert texts(parse(path)) == ["os.open(path)", "Open the file.", "a\nb\n  c"]
