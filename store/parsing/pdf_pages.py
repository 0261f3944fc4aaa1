"""Reading a PDF's pages for ``store.parsing.pdf``: the text layer (pdfium, pypdf as the fallback)
in reading order (``store.parsing.pdf_layout``: two columns one after the other, a table's rows as
rows of cells), OCR of pages without one (``store.parsing.ocr``), and the page labels a reader's
viewer shows."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from pypdf import PdfReader

from store.errors import Cancelled, EmptyDocument
from store.parsing import ocr
from store.parsing.pdf_layout import page_text

if TYPE_CHECKING:
    from store.parsing import ParseLimits

log = logging.getLogger(__name__)

MIN_TEXT_CHARS = 16  # a page with less text than this (and an image) is read by OCR in "auto" mode


def listed(numbers: list[int], shown: int = 8) -> str:
    """ "page 3", "pages 2, 5 and 9", "pages 1, 2, 3, ... (40 pages)"."""
    if len(numbers) == 1:
        return f"page {numbers[0]}"
    if len(numbers) > shown:
        return f"pages {', '.join(map(str, numbers[:shown]))}, ... ({len(numbers)} pages)"
    return f"pages {', '.join(map(str, numbers[:-1]))} and {numbers[-1]}"


def read_scanned(
    path: Path, reader: PdfReader, texts: list[str], limits: ParseLimits, on_page: Callable[[int, int], None] | None
) -> tuple[list[int], list[int], str | None]:
    """Read pages without a usable text layer (every page when ``ocr`` is "always") with OCR, in
    place in ``texts``; returns (pages read, pages left unread, 1-based; why, when OCR could not run).

    In "auto" mode a missing Tesseract costs only the scanned pages (with a warning), unless no
    page has text at all: then the PDF is refused with how to install it.
    """
    if limits.ocr == "off":
        return [], [], None
    wanted = [
        i
        for i, text in enumerate(texts)
        if limits.ocr == "always" or (len(text.strip()) < MIN_TEXT_CHARS and has_images(reader, i))
    ]
    if not wanted:
        return [], [], None
    read: list[int] = []
    unread: list[int] = []
    try:
        with ocr.page_reader(path, limits.ocr_languages, limits.ocr_dpi, limits.ocr_page_seconds) as read_page:
            if on_page is not None:
                on_page(0, len(wanted))
            for done, index in enumerate(wanted, start=1):
                try:
                    text = read_page(index)
                except Exception as exc:  # a page pdfium cannot render costs that page only
                    log.warning("%s: OCR could not read page %d (%s)", path.name, index + 1, exc)
                    text = None
                if text and text.strip():
                    texts[index] = text
                    read.append(index + 1)
                else:
                    unread.append(index + 1)
                if on_page is not None:
                    on_page(done, len(wanted))
    except Cancelled:
        raise
    except ocr.OcrUnavailable as exc:
        if limits.ocr == "always" or not any(len(t.strip()) >= MIN_TEXT_CHARS for t in texts):
            raise EmptyDocument(f"this PDF has pages without a text layer, and {exc.message}", path=path.name) from exc
        log.warning("%s: pages %s not read: %s", path.name, ", ".join(str(i + 1) for i in wanted), exc.message)
        return [], [i + 1 for i in wanted], exc.message
    except Exception as exc:  # pdfium refuses the file (say, a password): the text layer is all there is
        log.warning("%s: OCR could not open the file (%s)", path.name, exc)
        return [], [i + 1 for i in wanted], f"OCR could not open the file ({exc})"
    return read, unread, None


def has_images(reader: PdfReader, index: int) -> bool:
    """Whether page ``index`` draws images (a scan does; a blank page has nothing for OCR to read)."""
    try:
        resources = reader.pages[index].get("/Resources")
        xobjects = resources.get_object().get("/XObject") if resources is not None else None
        return bool(xobjects.get_object()) if xobjects is not None else False
    except Exception:  # unreadable resources: let OCR look
        return True


_MAX_LABEL_CHARS = 32


@contextmanager
def text_layer(path: Path) -> Iterator[Callable[[int], str | None]]:
    """A function giving page ``index``'s text layer as pdfium extracts it, or None when pdfium
    cannot (the file or the page); then pypdf reads it.

    pdfium keeps the spaces between words that pypdf loses in some TeX-made PDFs (the Debian
    Policy Manual: 545 of 6,119 words glued into runs of 20 letters or more with pypdf, none with
    pdfium; bench/pdf_pages.py). It joins every word broken at a line end with a hyphen, compounds
    too ("read-only" becomes "read\ufffeonly"): the break is put back ("-" and a new line) so that
    the document's own vocabulary decides (``pdf_text.keeps_hyphen``).
    """
    try:
        import pypdfium2

        document = pypdfium2.PdfDocument(str(path))
    except Exception as exc:  # encrypted with a password, damaged beyond pdfium, or not installed
        log.debug("%s: pdfium cannot open it (%s); pypdf reads the text", path.name, exc)
        yield lambda index: None
        return

    def text(index: int) -> str | None:
        try:
            page = document[index]
            try:
                textpage = page.get_textpage()
                try:
                    return page_text(textpage).replace("\r\n", "\n").replace("\ufffe", "-\n")
                finally:
                    textpage.close()
            finally:
                page.close()
        except Exception as exc:
            log.debug("%s: pdfium cannot read page %d (%s)", path.name, index + 1, exc)
            return None

    try:
        yield text
    finally:
        document.close()


def page_labels(reader: PdfReader, name: str) -> tuple[str, ...]:
    """The label of each page as a reader's viewer shows it ("iii", "24", "A-3"); empty when the PDF
    has no labels of its own, or when they are malformed (then citations use physical pages)."""
    try:
        if "/PageLabels" not in reader.trailer["/Root"]:
            return ()
        labels = [str(label).strip() for label in reader.page_labels]
    except Exception:  # a malformed number tree: fall back to physical page numbers
        log.warning("%s: malformed page labels, using physical page numbers", name)
        return ()
    if len(labels) != len(reader.pages):
        log.warning("%s: page labels do not match the pages, using physical page numbers", name)
        return ()
    # A page without a label of its own (or with an absurd one) keeps its physical number.
    labels = [label if label and len(label) <= _MAX_LABEL_CHARS else str(i) for i, label in enumerate(labels, 1)]
    if all(label == str(i) for i, label in enumerate(labels, start=1)):
        return ()
    return tuple(labels)
