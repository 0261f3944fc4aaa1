"""PDF: the text layer page by page, one block per paragraph, the page as the anchor.

Sections come from the PDF outline (bookmarks) when it has one; that is cheap and reliable,
unlike guessing headings from font sizes. The pages themselves are read by
``store.parsing.pdf_pages``: the text layer through pdfium (pypdf as the fallback), scanned pages
by OCR, and the page labels a reader's viewer shows ("xii", "24"), kept beside the physical pages.
Running headers and footers are dropped and words hyphenated at line ends rejoined, with the
whole document's lines (``store.parsing.pdf_text``); a table's rows stay lines, one block per
table. A PDF with no text at all is refused with a message that says why (OCR off, or OCR found
no words).
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from pypdf import PdfReader
from pypdf.errors import DependencyError

from store.errors import (
    CorruptDocument,
    DomainsmithError,
    EmptyDocument,
    EncryptedDocument,
    FileTooLarge,
)
from store.parsing import pdf_pages, pdf_text
from store.parsing.pdf_layout import CELL
from store.parsing.text import normalise_space
from store.records import Block, ParsedDocument

if TYPE_CHECKING:
    from store.parsing import ParseLimits

log = logging.getLogger(__name__)

try:  # pypdf's guard against decompression bombs inside streams
    from pypdf.errors import LimitReachedError
except ImportError:  # pragma: no cover - older pypdf
    LimitReachedError = ()  # type: ignore[assignment,misc]

NO_TEXT_LAYER = (
    "this PDF has no text layer (is it a scanned document?) and OCR is off (the ocr setting), "
    "so there is no text to index"
)
NOTHING_READ = (
    "this PDF has no text layer and OCR read no text on its pages (are they blank, or pictures without words?)"
)
_MAX_OUTLINE_ENTRIES = 10_000
_SENTENCE_END = tuple('.!?:;"\u201d)')
# Typographic ligatures split back into letters (so "ﬁle" matches "file" in search), soft
# hyphens and control characters from odd font encodings dropped.
_CLEANUP = str.maketrans(
    {"\ufb00": "ff", "\ufb01": "fi", "\ufb02": "fl", "\ufb03": "ffi", "\ufb04": "ffl", "\ufb06": "st"}
    | {"\xad": None}
    | dict.fromkeys((*range(0, 9), 11, *range(14, 32), 127))
)


@contextmanager
def _reading(name: str, what: str) -> Iterator[None]:
    """Turn whatever pypdf raises on a damaged file into a typed error.

    pypdf raises far more than its own ``PyPdfError`` on damaged input (ValueError, KeyError,
    TypeError, AttributeError, IndexError, zlib and struct errors, RecursionError...), so only
    our own errors pass through unchanged; everything else means the file cannot be read.
    """
    try:
        yield
    except DomainsmithError:
        raise
    except LimitReachedError as exc:
        raise FileTooLarge(f"the PDF holds a stream that expands beyond pypdf's limits ({exc})", path=name) from exc
    except Exception as exc:
        log.debug("%s: pypdf failed while %s", name, what, exc_info=True)
        detail = str(exc) or type(exc).__name__
        raise CorruptDocument(f"the PDF is damaged and cannot be read ({what}: {detail})", path=name) from exc


def parse(path: Path, limits: ParseLimits, on_page: Callable[[int, int], None] | None = None) -> ParsedDocument:
    """Parse a PDF's text layer (and its scanned pages, by OCR) into per-page paragraph blocks.

    ``on_page(done, total)`` is told before the first page OCR reads and after each one.
    """
    name = path.name
    with _reading(name, "opening the file"):
        reader = PdfReader(path, strict=False)
        encrypted = reader.is_encrypted
    if encrypted:
        _decrypt(reader, name)
    with _reading(name, "reading the page tree"):
        page_count = len(reader.pages)
    if page_count > limits.max_pages:
        raise FileTooLarge(f"the PDF has {page_count} pages, over the {limits.max_pages}-page limit", path=name)
    outline = _outline(reader, name)
    failed: list[int] = []
    texts: list[str] = []
    with pdf_pages.text_layer(path) as pdfium_text:
        for index in range(page_count):
            text = pdfium_text(index)
            if text is None:  # pdfium could not read it: pypdf's text layer
                try:
                    with _reading(name, f"reading page {index + 1}"):
                        text = reader.pages[index].extract_text() or ""
                except CorruptDocument as exc:
                    # One damaged page should not cost the rest of the document.
                    log.debug("%s", exc)
                    failed.append(index + 1)
                    text = ""
            texts.append(text)
    read_by_ocr, unread, ocr_problem = pdf_pages.read_scanned(path, reader, texts, limits, on_page)
    pages = [page_lines(text) for text in texts]
    labels = pdf_pages.page_labels(reader, name)
    # Running headers and footers go; what the outline calls a heading stays.
    running = pdf_text.running_lines(pages, labels, keep={section[-1].casefold() for _, section in outline})
    words = pdf_text.vocabulary(pages)
    blocks: list[Block] = []
    cursor = _SectionCursor(outline)
    for index, lines in enumerate(pages):
        label = labels[index] if labels else None
        kept = pdf_text.drop_running(lines, index + 1, label, running)
        blocks.extend(cursor.blocks_for_page(index, paragraphs_of(kept, words)))
    if not blocks:
        if failed:
            raise CorruptDocument(f"the PDF is damaged: none of its {page_count} pages could be read", path=name)
        raise EmptyDocument(NOTHING_READ if read_by_ocr or unread else NO_TEXT_LAYER, path=name)
    if failed:
        log.warning("%s: skipped unreadable pages %s", name, ", ".join(map(str, failed)))
    notes = []
    if read_by_ocr:
        notes.append(f"OCR read {pdf_pages.listed(read_by_ocr)}")
    if unread:
        unread_pages = pdf_pages.listed(unread)
        notes.append(f"{unread_pages} not read: {ocr_problem}" if ocr_problem else f"no text found on {unread_pages}")
    return ParsedDocument(
        title=_title(reader, name),
        blocks=blocks,
        pages=page_count,
        kind="pdf",
        page_labels=labels,
        ocr_pages=tuple(read_by_ocr),
        notes=tuple(notes),
    )


def _decrypt(reader: PdfReader, name: str) -> None:
    """Open an encrypted PDF with the empty password (common for 'no copy' PDFs) or refuse it."""
    try:
        with _reading(name, "decrypting"):
            opened = reader.decrypt("")
    except CorruptDocument as exc:
        cause = exc.__cause__
        if isinstance(cause, DependencyError):
            raise EncryptedDocument(
                "the PDF is encrypted with AES, which needs the optional 'cryptography' package to open",
                path=name,
            ) from cause
        raise EncryptedDocument(
            f"the PDF is encrypted and could not be decrypted ({exc.message})", path=name
        ) from cause
    if not opened:
        raise EncryptedDocument(
            "the PDF is password-protected; remove the password (or print it to a new PDF) and add it again",
            path=name,
        )


def page_lines(page_text: str) -> list[str]:
    """One page's extracted text as lines, cleaned (ligatures, odd characters, spaces); blank lines
    stay (as "") because they end paragraphs, and a table row keeps its cells apart (``CELL``)."""
    return [_clean_line(raw) for raw in page_text.translate(_CLEANUP).splitlines()]


def _clean_line(raw: str) -> str:
    if CELL not in raw:
        return normalise_space(raw)
    cells = [normalise_space(cell) for cell in raw.split(CELL)]
    return CELL.join(cell for cell in cells if cell) if sum(map(bool, cells)) > 1 else "".join(cells)


def paragraphs(page_text: str) -> list[str]:
    """Group the lines of one page's extracted text into paragraphs (see ``paragraphs_of``)."""
    lines = page_lines(page_text)
    return paragraphs_of(lines, pdf_text.vocabulary([lines]))


def paragraphs_of(lines: list[str], words: Counter[str]) -> list[str]:
    """Group one page's lines into paragraphs; ``words`` is the document's vocabulary (hyphenation).

    pypdf emits one line per text line and rarely a blank line between paragraphs, so a line
    clearly shorter than the page's full line width ends a paragraph (last lines of paragraphs,
    headings, list items are short; lines inside a paragraph run to the margin). Table rows (lines
    of cells, ``pdf_layout.CELL``) next to each other make one paragraph, a row a line, its cells
    joined by " | " (as ``store.parsing.html`` writes tables).
    """
    full = max((len(line) for line in lines if CELL not in line), default=0)
    short = 0.7 * full if full >= 40 else 0
    result: list[str] = []
    current: list[str] = []
    rows: list[str] = []
    for line in lines:
        if CELL in line:
            _flush(current, result, words)
            rows.append(line.replace(CELL, " | "))
            continue
        if rows:
            result.append("\n".join(rows))
            rows.clear()
        if not line:
            _flush(current, result, words)
            continue
        current.append(line)
        split_word = line.endswith("-") and line[-2:-1].isalpha()
        if len(line) < short and not split_word and (line.endswith(_SENTENCE_END) or len(current) == 1):
            _flush(current, result, words)
    _flush(current, result, words)
    if rows:
        result.append("\n".join(rows))
    return result


def _flush(lines: list[str], into: list[str], words: Counter[str]) -> None:
    if not lines:
        return
    text = lines[0]
    for line in lines[1:]:
        if text.endswith("-") and text[-2:-1].isalpha():  # a word split at the line end, or a compound
            text = (text if pdf_text.keeps_hyphen(text[:-1], line, words) else text[:-1]) + line
        else:
            text += " " + line
    into.append(text)
    lines.clear()


def _outline(reader: PdfReader, name: str) -> list[tuple[int, tuple[str, ...]]]:
    """(0-based page, section path) per outline entry, in outline order; [] when none or broken."""
    try:
        with _reading(name, "reading the outline"):
            top = reader.outline
            entries: list[tuple[int, tuple[str, ...]]] = []
            # Walk the nested lists without recursion: [items, parent path, last path here].
            stack: list[list] = [[iter(top), (), ()]]
            while stack and len(entries) < _MAX_OUTLINE_ENTRIES:
                frame = stack[-1]
                item = next(frame[0], None)
                if item is None:
                    stack.pop()
                elif isinstance(item, list):
                    stack.append([iter(item), frame[2] or frame[1], ()])
                else:
                    title = normalise_space(str(getattr(item, "title", "") or ""))
                    page = reader.get_destination_page_number(item)
                    frame[2] = frame[1] + (title,) if title else frame[1]
                    if title and page is not None and page >= 0:
                        entries.append((page, frame[2]))
    except CorruptDocument as exc:
        log.info("%s: ignoring the PDF outline (%s)", name, exc.message)
        return []
    entries.sort(key=lambda entry: entry[0])  # stable: outline order within a page
    return entries


class _SectionCursor:
    """Walks outline entries alongside the pages to give each paragraph its section path."""

    def __init__(self, outline: list[tuple[int, tuple[str, ...]]]):
        self._outline = outline
        self._next = 0
        self._section: tuple[str, ...] = ()

    def blocks_for_page(self, index: int, texts: list[str]) -> Iterator[Block]:
        pending: list[tuple[int, tuple[str, ...]]] = []
        while self._next < len(self._outline) and self._outline[self._next][0] <= index:
            entry = self._outline[self._next]
            if entry[0] < index:
                self._section = entry[1]  # a bookmark into a page we already passed
            else:
                pending.append(entry)
            self._next += 1
        for text in texts:
            kind = "text"
            folded = text.casefold()
            for position, (_, section) in enumerate(pending):
                title = section[-1].casefold()
                if folded.startswith(title):
                    self._section = section
                    kind = "heading" if folded == title else "text"
                    del pending[: position + 1]
                    break
            yield Block(text=text, page=index + 1, section=self._section, kind=kind)
        if pending:  # bookmarks whose title we did not find in the text: apply from the next page
            self._section = pending[-1][1]


def _title(reader: PdfReader, name: str) -> str:
    try:
        with _reading(name, "reading the metadata"):
            metadata = reader.metadata
            title = normalise_space(str(metadata.title or "")) if metadata is not None else ""
    except CorruptDocument:
        title = ""
    return title or Path(name).stem
