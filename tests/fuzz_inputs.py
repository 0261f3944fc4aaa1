"""Hypothesis strategies that generate hostile files for each parser.

Three sources per format, drawn at random:

- random bytes, bare or behind the format's magic (``%PDF-``, ``PK\\x03\\x04``, a BOM);
- a valid seed file (from ``tests/factories.py`` and a few hand-made ones) damaged by a short
  list of edits: byte flips, inserted or overwritten tokens from a per-format dictionary (like
  an AFL dictionary), deletions, duplicated slices, truncation;
- format-aware generation: a DOCX rebuilt as a valid zip around one damaged XML part, or around
  a well-formed generated body (nested tables, content controls, styled paragraphs); Markdown,
  HTML and text assembled from format tokens and random text, in a random encoding.
"""

from __future__ import annotations

import io
import zipfile
from dataclasses import dataclass
from pathlib import Path
from xml.sax.saxutils import escape

from hypothesis import strategies as st

from tests import factories

PDF_TOKENS = [
    b"obj",
    b"endobj",
    b"stream",
    b"endstream",
    b"<<",
    b">>",
    b"[",
    b"]",
    b"(",
    b")",
    b"\\",
    b"/Type /Page",
    b"/Type /Pages",
    b"/Kids [1 0 R]",
    b"/Count 99999999",
    b"/Parent 1 0 R",
    b"xref",
    b"trailer",
    b"startxref",
    b"%%EOF",
    b"/Filter /FlateDecode",
    b"/Filter /LZWDecode",
    b"/Filter /ASCIIHexDecode",
    b"/Length 999999999",
    b"/Length -1",
    b"0 0 R",
    b"1 0 R",
    b"-1",
    b"9999999999",
    b"/Encrypt 1 0 R",
    b"/Outlines 1 0 R",
    b"/First 1 0 R",
    b"/Next 1 0 R",
    b"/Dest [1 0 R /XYZ]",
    b"/Title (\xfe\xff\xd8\x00)",
    b"BT",
    b"ET",
    b"Tj",
    b"TJ",
    b"Tf",
    b"Td",
    b"Tm",
    b"/F1 12 Tf",
    b"(\\\\\\)",
    b"<FEFF>",
    b"<00>",
    b"/ToUnicode 1 0 R",
    b"/Encoding /Identity-H",
    b"/Differences [0 /a]",
    b"/ObjStm",
    b"/XRef",
    b"/Prev 0",
    b"/Size 0",
    b"/Root 1 0 R",
    b"1e308",
    b"NaN",
    b"/Resources <<>>",
    b"/MediaBox [0 0 0 0]",
]
XML_TOKENS = [
    b"<w:p>",
    b"</w:p>",
    b"<w:r><w:t>",
    b"</w:t></w:r>",
    b"<w:tbl>",
    b"</w:tbl>",
    b"<w:tr>",
    b"<w:tc>",
    b"<w:sdt><w:sdtContent>",
    b"</w:sdtContent></w:sdt>",
    b'<w:pStyle w:val="Heading1"/>',
    b'<w:pStyle w:val="Title"/>',
    b'<w:pStyle w:val="TOC1"/>',
    b"<w:ins>",
    b"<w:hyperlink>",
    b'<w:fldSimple w:instr="X">',
    b"<!--",
    b"-->",
    b"<![CDATA[",
    b"]]>",
    b"&amp;",
    b"&#0;",
    b"&#xD800;",
    b'<!DOCTYPE d [<!ENTITY e "eeeeeeeeee">]>',
    b"&e;",
    b"<?xml version='1.0' encoding='utf-16'?>",
    b'xmlns:w="urn:x"',
    b'w:val="999999999"',
    b"<",
    b">",
    b"/>",
    b'"',
    b"=",
    b"\x00",
    b"\xff",
]
MARKDOWN_TOKENS = [
    b"# ",
    b"## ",
    b"###### ",
    b"####### ",
    b"\n",
    b"\n\n",
    b"---\n",
    b"...\n",
    b"title: x\n",
    b"```",
    b"~~~",
    b"    ",
    b"\t",
    b"> ",
    b">>>>>>>>>>",
    b"- ",
    b"* ",
    b"1. ",
    b"99999999999. ",
    b"|",
    b"|---|---|\n",
    b"*",
    b"**",
    b"_",
    b"`",
    b"[",
    b"]",
    b"](",
    b")",
    b"![",
    b"<div>",
    b"</div>",
    b"<!--",
    b"-->",
    b"\\",
    b"&#0;",
    b"&amp;",
    b"- - -",
    b"===",
    b"[x]: /url",
    b"<http://x>",
    b"\r",
    b"\r\n",
    b"\xef\xbb\xbf",
    b"\xe2\x80\xae",
]
HTML_TOKENS = [
    b"<html>",
    b"<head>",
    b"</head>",
    b"<body>",
    b"</body>",
    b"<main>",
    b"</main>",
    b"<article>",
    b"<section>",
    b"<div>",
    b"</div>",
    b"<p>",
    b"</p>",
    b"<br>",
    b"<h1>",
    b"</h1>",
    b"<h6>",
    b"<h7>",
    b"</h3>",
    b"<pre>",
    b"</pre>",
    b"<table>",
    b"</table>",
    b"<tr>",
    b"<td>",
    b"</td>",
    b"<th>",
    b"<caption>",
    b"<nav>",
    b"<header>",
    b"<footer>",
    b"<script>",
    b"</script>",
    b"<style>",
    b"<svg>",
    b"<math>",
    b"<template>",
    b"<title>",
    b"</title>",
    b"<meta charset='utf-16'>",
    b"<meta charset='bogus-8'>",
    b"<meta charset=cp1252>",
    b"<div role='main'>",
    b"<div hidden>",
    b"<a class='headerlink'>",
    b"&nbsp;",
    b"&#0;",
    b"&#x110000;",
    b"&#xD800;",
    b"&amp",
    b"<!--",
    b"-->",
    b"<![CDATA[",
    b"<!DOCTYPE html>",
    b"<?xml version='1.0'?>",
    b"<",
    b">",
    b"'",
    b'"',
    b"=",
    b"\x00",
    b"\xef\xbb\xbf",
    b"\xff\xfe",
]
TEXT_TOKENS = [
    b"\n",
    b"\n\n",
    b"\r\n",
    b"\r",
    b"\f",
    b"\v",
    b"\t",
    b" ",
    b"\x00",
    b"\x01",
    b"\x7f",
    b"\x80",
    b"\xff",
    b"\xef\xbb\xbf",
    b"\xff\xfe",
    b"\xfe\xff",
    b"\xff\xfe\x00\x00",
    b"\xc3\xa9",
    b"\xe9",
    b"\xe2\x82\xac",
    b"\xed\xa0\x80",
    b"\xf4\x90\x80\x80",
    b"\xe2\x80\xae",
    b"\xc2\xad",
    b"caf\xc3\xa9",
    b"na\xefve",
]

MAGIC = {
    "pdf": b"%PDF-1.7\n",
    "docx": b"PK\x03\x04",
    "markdown": b"# ",
    "html": b"<!DOCTYPE html>",
    "text": b"\xef\xbb\xbf",
}
ENCODINGS = (
    "utf-8",
    "utf-8-sig",
    "utf-16",
    "utf-16-le",
    "utf-16-be",
    "utf-32",
    "cp1252",
    "latin-1",
    "koi8-r",
    "shift_jis",
    "gb18030",
)
DOCX_PARTS = (
    "word/document.xml",
    "word/styles.xml",
    "[Content_Types].xml",
    "_rels/.rels",
    "word/_rels/document.xml.rels",
    "docProps/core.xml",
)


@dataclass(frozen=True)
class Format:
    """A parser under test: its kind, a file suffix, the seed files and the edit dictionary."""

    kind: str
    suffix: str
    seeds: tuple[bytes, ...]
    tokens: tuple[bytes, ...]


def _uncompressed_pdf(path: Path) -> bytes:
    """A text PDF whose content streams are plain operators, so edits hit the text layer."""
    from fpdf import FPDF

    pdf = FPDF()
    pdf.set_compression(False)
    pdf.set_title("Plain streams")
    for page in (1, 2):
        pdf.add_page()
        pdf.start_section(f"Part {page}", level=0)
        pdf.set_font("Helvetica", size=12)
        pdf.multi_cell(0, 6, factories.page_sentence(page) + " " + factories.LOREM)
    path.write_bytes(bytes(pdf.output()))
    return path.read_bytes()


def formats(folder: Path) -> dict[str, Format]:
    """Every parser kind with its seeds, written into ``folder``."""
    f = factories
    pdfs = (
        f.make_pdf(folder / "a.pdf", pages=2).read_bytes(),
        f.make_pdf(folder / "b.pdf", pages=2, outline=True).read_bytes(),
        f.make_encrypted_pdf(folder / "c.pdf", user_password="").read_bytes(),
        _uncompressed_pdf(folder / "d.pdf"),
    )
    docx = (f.make_docx(folder / "a.docx").read_bytes(),)
    markdown = (
        f.make_markdown(folder / "a.md").read_bytes(),
        b"# T\n\n> quote\n> > nested\n\n1. one\n   - two\n     ```\n     code\n     ```\n\n"
        b"| a | b |\n|---|---|\n| 1 |\n",
    )
    html = (
        f.make_html(folder / "a.html").read_bytes(),
        f.make_sphinx_html(folder / "b.html").read_bytes(),
        f.make_article_page(folder / "c.html").read_bytes(),
        "<html><head><meta charset='cp1252'></head><body><p>caf\xe9 na\xefve</p></body></html>".encode("cp1252"),
    )
    text = (
        b"First paragraph,\nwrapped over two lines.\n\n\nSecond: caf\xc3\xa9, 5 \xe2\x82\xac.\n",
        "Zweiter Absatz: Gr\u00fc\u00dfe.\r\n\r\nThird.".encode("utf-16"),
        "R\u00e9sum\u00e9 in Latin-1.\n\nMore.".encode("latin-1"),
    )
    return {
        "pdf": Format("pdf", ".pdf", pdfs, tuple(PDF_TOKENS)),
        "docx": Format("docx", ".docx", docx, tuple(XML_TOKENS)),
        "markdown": Format("markdown", ".md", markdown, tuple(MARKDOWN_TOKENS)),
        "html": Format("html", ".html", html, tuple(HTML_TOKENS)),
        "text": Format("text", ".txt", text, tuple(TEXT_TOKENS)),
    }


@st.composite
def edited(draw: st.DrawFn, data: bytes, tokens: tuple[bytes, ...], max_edits: int = 8) -> bytes:
    """``data`` after 1..``max_edits`` random edits."""
    buffer = bytearray(data)
    for _ in range(draw(st.integers(1, max_edits))):
        op = draw(st.sampled_from(("flip", "insert", "overwrite", "delete", "duplicate", "truncate", "random")))
        at = draw(st.integers(0, len(buffer)))
        if op == "flip" and buffer:
            buffer[min(at, len(buffer) - 1)] = draw(st.integers(0, 255))
        elif op == "insert":
            buffer[at:at] = draw(st.sampled_from(tokens)) * draw(st.sampled_from((1, 1, 2, 50)))
        elif op == "overwrite":
            token = draw(st.sampled_from(tokens))
            buffer[at : at + len(token)] = token
        elif op == "delete":
            del buffer[at : at + draw(st.integers(1, 256))]
        elif op == "duplicate":
            end = min(len(buffer), at + draw(st.integers(1, 512)))
            buffer[at:at] = buffer[at:end] * draw(st.sampled_from((1, 2, 20)))
        elif op == "truncate":
            del buffer[at:]
        elif op == "random":
            buffer[at:at] = draw(st.binary(min_size=1, max_size=64))
    return bytes(buffer)


def random_bytes(fmt: Format) -> st.SearchStrategy[bytes]:
    """Plain random bytes, or random bytes behind the format's magic."""
    raw = st.binary(min_size=1, max_size=4096)
    return st.one_of(raw, raw.map(lambda tail: MAGIC[fmt.kind] + tail))


def damaged_seed(fmt: Format) -> st.SearchStrategy[bytes]:
    return st.sampled_from(fmt.seeds).flatmap(lambda seed: edited(seed, fmt.tokens))


@st.composite
def docx_with_damaged_part(draw: st.DrawFn, seed: bytes) -> bytes:
    """A valid zip holding the seed's parts, one XML part of which is edited."""
    victim = draw(st.sampled_from(DOCX_PARTS))
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(seed)) as source, zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as copy:
        for member in source.infolist():
            data = source.read(member)
            if member.filename == victim:
                data = draw(edited(data, tuple(XML_TOKENS), max_edits=6))
            copy.writestr(member.filename, data)
    return out.getvalue()


W_NS = "http://schemas.openxmlformats.org/wordprocessingml/2006/main"
STYLES = ("Heading1", "Heading2", "Heading9", "Title", "TOC1", "TOCHeading", "Normal", "heading 3", "")
_TEXT = st.text(st.characters(exclude_categories=("Cs", "Cc")), max_size=24).map(escape)


@st.composite
def _paragraph(draw: st.DrawFn) -> str:
    style = draw(st.one_of(st.sampled_from(STYLES), _TEXT))
    runs = []
    for _ in range(draw(st.integers(0, 4))):
        run = draw(
            st.sampled_from(
                (
                    '<w:r><w:t xml:space="preserve">{}</w:t></w:r>',
                    "<w:r><w:tab/><w:t>{}</w:t></w:r>",
                    "<w:r><w:br/><w:t>{}</w:t></w:r>",
                    "<w:hyperlink><w:r><w:t>{}</w:t></w:r></w:hyperlink>",
                    "<w:ins><w:r><w:t>{}</w:t></w:r></w:ins>",
                    '<w:fldSimple w:instr="PAGE"><w:r><w:t>{}</w:t></w:r></w:fldSimple>',
                    "<w:sdt><w:sdtContent><w:r><w:t>{}</w:t></w:r></w:sdtContent></w:sdt>",
                )
            )
        )
        runs.append(run.format(draw(_TEXT)))
    props = f'<w:pPr><w:pStyle w:val="{style}"/></w:pPr>' if style else ""
    return f"<w:p>{props}{''.join(runs)}</w:p>"


def _table(children: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    cell = st.lists(children, min_size=0, max_size=3).map(lambda items: "<w:tc>" + "".join(items) + "</w:tc>")
    row = st.lists(cell, min_size=0, max_size=4).map(lambda cells: "<w:tr>" + "".join(cells) + "</w:tr>")
    return st.lists(row, min_size=0, max_size=4).map(lambda rows: "<w:tbl>" + "".join(rows) + "</w:tbl>")


_BODY_ITEM = st.recursive(
    _paragraph(),
    lambda children: st.one_of(
        _table(children),
        st.lists(children, max_size=3).map(
            lambda items: "<w:sdt><w:sdtContent>" + "".join(items) + "</w:sdtContent></w:sdt>"
        ),
    ),
    max_leaves=10,
)


@st.composite
def docx_generated(draw: st.DrawFn, seed: bytes) -> bytes:
    """The seed's zip with a well-formed, generated word/document.xml."""
    body = "".join(draw(st.lists(_BODY_ITEM, min_size=0, max_size=6)))
    xml = f'<?xml version="1.0" encoding="UTF-8"?><w:document xmlns:w="{W_NS}"><w:body>{body}</w:body></w:document>'
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(seed)) as source, zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as copy:
        for member in source.infolist():
            data = xml.encode() if member.filename == "word/document.xml" else source.read(member)
            copy.writestr(member.filename, data)
    return out.getvalue()


@st.composite
def assembled(draw: st.DrawFn, tokens: tuple[bytes, ...]) -> bytes:
    """Format tokens and random text in random order, in a random encoding."""
    parts = draw(
        st.lists(
            st.one_of(st.sampled_from(tokens).map(lambda t: t.decode("latin-1")), st.text(max_size=30)),
            min_size=1,
            max_size=60,
        )
    )
    encoding = draw(st.sampled_from(ENCODINGS))
    return "".join(parts).encode(encoding, errors="replace")


def inputs(fmt: Format) -> st.SearchStrategy[bytes]:
    """Every kind of generated input for one parser."""
    options = [random_bytes(fmt), damaged_seed(fmt), damaged_seed(fmt)]
    if fmt.kind == "docx":
        options += [
            st.sampled_from(fmt.seeds).flatmap(docx_with_damaged_part),
            st.sampled_from(fmt.seeds).flatmap(docx_generated),
        ] * 2
    elif fmt.kind in ("markdown", "html", "text"):
        options.append(assembled(fmt.tokens))
    return st.one_of(options)
