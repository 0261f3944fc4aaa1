"""DOCX: paragraphs and tables in document order (python-docx); headings give the section path.

A DOCX is a zip archive, and a zip can be made to expand to gigabytes, so the archive is
checked (sizes and compression ratios from its directory) before python-docx opens it.
"""

from __future__ import annotations

import logging
import re
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import docx
from docx.oxml.ns import qn
from docx.text.paragraph import Paragraph

from store.errors import CorruptDocument, DomainsmithError, EncryptedDocument, FileTooLarge
from store.parsing.headings import HeadingTrail
from store.parsing.text import normalise_space
from store.records import Block, ParsedDocument

if TYPE_CHECKING:
    from docx.document import Document
    from docx.oxml.table import CT_Tbl
    from docx.oxml.text.paragraph import CT_P

    from store.parsing import ParseLimits

log = logging.getLogger(__name__)

MAIN_PART = "word/document.xml"
_OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"  # legacy .doc, or an encrypted OOXML file
_ENCRYPTED_STREAM = "EncryptedPackage".encode("utf-16-le")
_BOMB_MIN_BYTES = 1_000_000  # small members may compress very well without being a threat
_HEADING_STYLE = re.compile(r"heading\s*([1-9])$", re.IGNORECASE)
_TOC_STYLE = re.compile(r"toc(\s*[1-9]|\s*heading)$", re.IGNORECASE)
_TAGS_P, _TAGS_TBL, _TAGS_SDT = qn("w:p"), qn("w:tbl"), qn("w:sdt")
# python-docx's Paragraph.text reads runs and hyperlinks only; tracked insertions, smart tags,
# simple fields and inline content controls hold visible text too.
_VISIBLE_RUNS = (
    "w:r | w:hyperlink | w:ins/w:r | w:smartTag/w:r | w:fldSimple/w:r"
    " | w:sdt/w:sdtContent/w:r | w:sdt/w:sdtContent/w:hyperlink"
)


def parse(path: Path, limits: ParseLimits) -> ParsedDocument:
    """Parse a Word document into heading, text and table blocks."""
    check_archive(path, limits)
    try:
        document = docx.Document(str(path))
        blocks, title = _read(document)
        core_title = normalise_space(document.core_properties.title or "")
    except DomainsmithError:
        raise
    except Exception as exc:  # python-docx/lxml/zipfile on a damaged file raise many kinds
        log.debug("%s: python-docx failed", path.name, exc_info=True)
        raise CorruptDocument(
            f"the Word document is damaged and cannot be read ({type(exc).__name__}: {exc})",
            path=path.name,
        ) from exc
    return ParsedDocument(title=_title(blocks, title, core_title, path), blocks=blocks, kind="docx")


def check_archive(path: Path, limits: ParseLimits) -> None:
    """Refuse what is not a DOCX zip, or what would expand beyond the limits (a zip bomb)."""
    name = path.name
    with path.open("rb") as handle:
        head = handle.read(1 << 20)
    if head.startswith(_OLE_MAGIC):
        if _ENCRYPTED_STREAM in head:
            raise EncryptedDocument(
                "the Word document is password-protected; save a copy without the password",
                path=name,
            )
        raise CorruptDocument(
            "this is an old-format Word file (.doc), not a .docx; save it as .docx in Word",
            path=name,
        )
    try:
        with zipfile.ZipFile(path) as archive:
            members = archive.infolist()
    except (zipfile.BadZipFile, ValueError, EOFError, OSError, NotImplementedError) as exc:
        raise CorruptDocument(
            f"not a Word document: a .docx file is a zip archive and this one is not, or it is damaged ({exc})",
            path=name,
        ) from exc
    if not any(member.filename == MAIN_PART for member in members):
        raise CorruptDocument(f"not a Word document: the archive has no {MAIN_PART}", path=name)
    total = sum(member.file_size for member in members)
    if total > limits.max_unpacked_bytes:
        raise FileTooLarge(
            f"the document expands to {_size(total)} when unpacked, over the "
            f"{_size(limits.max_unpacked_bytes)} limit (a zip bomb?)",
            path=name,
        )
    for member in members:
        ratio = member.file_size / max(member.compress_size, 1)
        if member.file_size > _BOMB_MIN_BYTES and ratio > limits.max_compression_ratio:
            raise FileTooLarge(
                f"{member.filename} expands {ratio:,.0f} times, to {_size(member.file_size)}"
                f" (limit: {limits.max_compression_ratio:,.0f} times); this looks like a zip bomb",
                path=name,
            )


def _size(count: int) -> str:
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if count >= scale:
            return f"{count / scale:,.1f} {unit}"
    return f"{count} bytes"


def _body_items(document: Document) -> Iterator[object]:
    """Block-level paragraph and table elements in order, also inside content controls."""
    stack = [iter(document.element.body)]
    while stack:
        element = next(stack[-1], None)
        if element is None:
            stack.pop()
        elif element.tag in (_TAGS_P, _TAGS_TBL):
            yield element
        elif element.tag == _TAGS_SDT:
            content = element.find(qn("w:sdtContent"))
            if content is not None:
                stack.append(iter(content))


def _read(document: Document) -> tuple[list[Block], str]:
    """The blocks in document order, and the text of the first Title paragraph ("" if none)."""
    headings = HeadingTrail()
    levels: dict[str | None, int | None] = {}
    blocks: list[Block] = []
    title = ""
    for element in _body_items(document):
        if element.tag == _TAGS_TBL:
            text = table_text(element)
            if text:
                blocks.append(Block(text=text, section=headings.path, kind="table"))
            continue
        text = paragraph_text(element)
        if not text:
            continue
        style_id = element.style
        if style_id not in levels:
            levels[style_id] = _heading_level(Paragraph(element, document))
        level = levels[style_id]
        if level is None:
            blocks.append(Block(text=text, section=headings.path))
        elif level >= 0:
            blocks.append(Block(text=text, section=headings.enter(level, text), kind="heading"))
            title = title or (text if level == 0 else "")
        # level -1: a table-of-contents entry, which only repeats the headings
    return blocks, title


def _heading_level(paragraph: Paragraph) -> int | None:
    """0 for Title, n for Heading n, -1 for TOC entries, None for body text."""
    style = paragraph.style
    for name in (getattr(style, "name", None), getattr(style, "style_id", None)):
        if not name:
            continue
        if name.casefold() == "title":
            return 0
        if _TOC_STYLE.match(name):
            return -1
        match = _HEADING_STYLE.match(name)
        if match:
            return int(match.group(1))
    return None


def paragraph_text(paragraph: CT_P) -> str:
    """The visible text of a w:p element, whitespace collapsed (tabs and breaks become spaces)."""
    return normalise_space("".join(element.text for element in paragraph.xpath(_VISIBLE_RUNS)))


def table_text(table: CT_Tbl) -> str:
    """Rows as lines, cells joined with " | "; a cell's paragraphs (and nested tables) on one line."""
    lines = []
    for row in table.tr_lst:
        cells = [normalise_space(" ".join(paragraph_text(p) for p in cell.iter(_TAGS_P))) for cell in row.tc_lst]
        if any(cells):
            lines.append(normalise_space(" | ".join(cells)))  # "a |  | c" -> "a | | c"
    return "\n".join(lines)


def _title(blocks: list[Block], title: str, core_title: str, path: Path) -> str:
    """The Title paragraph, the document properties' title, the first heading, or the name."""
    first_heading = next((block.text for block in blocks if block.kind == "heading"), "")
    return title or core_title or first_heading or path.stem
