"""OCR for PDF pages without a usable text layer: each page is rendered (pypdfium2) and read by
Tesseract (Debian's ``tesseract-ocr``, called through ``pytesseract``).

About 2.5 s a page at 300 dpi on two cores. Bounds hold against hostile files: the rendered
image never exceeds ``MAX_PIXELS`` whatever the page size claims, and each page gets
``seconds`` before Tesseract is stopped (that page is then recorded as unread).
"""

from __future__ import annotations

import logging
import math
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from store.errors import DomainsmithError

log = logging.getLogger(__name__)

MODES = ("auto", "off", "always")
MAX_PIXELS = 40_000_000  # about an A3 page at 300 dpi: a page claiming to be a field is scaled down
INSTALL_HINT = (
    "Tesseract, which reads scanned pages, is not installed: `make run` installs it "
    '(Debian: apt-get install tesseract-ocr tesseract-ocr-eng), or set ocr = "off"'
)


def render_scale(width: float, height: float, dpi: int) -> float:
    """pdfium's render scale for a page of ``width`` x ``height`` points at ``dpi``, lowered so the
    image stays within ``MAX_PIXELS`` whatever size the page claims."""
    scale = dpi / 72
    if width * height * scale * scale > MAX_PIXELS:
        scale = math.sqrt(MAX_PIXELS / max(width * height, 1.0))
    return scale


class OcrUnavailable(DomainsmithError):
    """Tesseract (or one of its language packs) is missing."""


def tesseract_missing(languages: str) -> str | None:
    """Why OCR cannot run here (Tesseract or a language missing), or None when it can."""
    import pytesseract

    if shutil.which(str(pytesseract.pytesseract.tesseract_cmd)) is None:
        return INSTALL_HINT
    try:
        installed = set(pytesseract.get_languages(config=""))
    except Exception as exc:  # a broken installation
        return f"Tesseract could not list its languages ({exc}); reinstall tesseract-ocr"
    missing = [lang for lang in languages.split("+") if lang and lang not in installed]
    if missing:
        packages = " ".join(f"tesseract-ocr-{lang}" for lang in missing)
        return f"Tesseract has no language data for {', '.join(missing)}: install {packages} (Debian)"
    return None


@contextmanager
def page_reader(path: Path, languages: str = "eng", dpi: int = 300, seconds: float = 60.0) -> Iterator:
    """A function ``read(index) -> str | None`` over the pages of the PDF at ``path`` (0-based
    index); None when Tesseract ran out of time on that page. Raises ``OcrUnavailable`` first
    when Tesseract cannot run."""
    import pypdfium2
    import pytesseract

    problem = tesseract_missing(languages)
    if problem:
        raise OcrUnavailable(problem)
    document = pypdfium2.PdfDocument(str(path))

    def read(index: int) -> str | None:
        page = document[index]
        try:
            width, height = page.get_size()
            image = page.render(scale=render_scale(width, height, dpi), grayscale=True).to_pil()
        finally:
            page.close()
        try:
            return pytesseract.image_to_string(image, lang=languages, timeout=seconds)
        except RuntimeError as exc:  # pytesseract's time-out
            if "timeout" not in str(exc).lower():
                raise
            log.warning("%s: OCR of page %d stopped after %.0f s", path.name, index + 1, seconds)
            return None

    try:
        yield read
    finally:
        document.close()
