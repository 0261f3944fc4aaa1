"""Parsers: one module per format, chosen by file suffix.

Each format module exposes ``parse(path: Path, limits: ParseLimits) -> ParsedDocument`` (PDF also
takes ``on_page``, its OCR progress) and
raises only ``DomainsmithError`` subclasses (``CorruptDocument``, ``EncryptedDocument``,
``EmptyDocument``, ``FileTooLarge``...) for bad input. ``parse`` here adds the checks every
format shares: the size limit, empty files, and "did any text come out at all".
"""

from __future__ import annotations

import dataclasses
import importlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from store.errors import EmptyDocument, FileTooLarge, UnsupportedFile
from store.records import ParsedDocument

# suffix -> (module under store.parsing, document kind)
_REGISTRY: dict[str, tuple[str, str]] = {
    ".pdf": ("pdf", "pdf"),
    ".docx": ("docx", "docx"),
    ".md": ("markdown", "markdown"),
    ".markdown": ("markdown", "markdown"),
    ".html": ("html", "html"),
    ".htm": ("html", "html"),
    ".txt": ("text", "text"),
    ".text": ("text", "text"),
}

SUPPORTED_SUFFIXES: tuple[str, ...] = tuple(sorted(_REGISTRY))


@dataclass(frozen=True)
class ParseLimits:
    """Bounds that keep a hostile or huge file from exhausting the machine."""

    max_file_bytes: int = 200 * 1024 * 1024
    max_pages: int = 20_000
    max_unpacked_bytes: int = 512 * 1024 * 1024  # DOCX (zip) total uncompressed size
    max_compression_ratio: float = 200.0  # DOCX members: uncompressed / compressed
    max_html_depth: int = 2_000
    # OCR of PDF pages without a usable text layer (store.parsing.ocr): "auto", "off" or "always".
    ocr: str = "auto"
    ocr_languages: str = "eng"  # Tesseract's language codes, joined by "+": "eng+deu"
    ocr_page_seconds: float = 60.0
    ocr_dpi: int = 300


def is_supported(path: Path) -> bool:
    return path.suffix.lower() in _REGISTRY


def kind_of(path: Path) -> str:
    """The document kind ("pdf", "docx", "markdown", "html", "text") for a supported path."""
    try:
        return _REGISTRY[path.suffix.lower()][1]
    except KeyError:
        raise UnsupportedFile(_unsupported_message(path), path=path.name) from None


def _unsupported_message(path: Path) -> str:
    suffix = path.suffix or "(no extension)"
    return f"unsupported file type {suffix}; supported: {', '.join(SUPPORTED_SUFFIXES)}"


PageProgress = Callable[[int, int], None]


def parse(path: Path, limits: ParseLimits | None = None, on_page: PageProgress | None = None) -> ParsedDocument:
    """Parse one file into blocks with page/section anchors, or raise a ``DomainsmithError``.

    ``on_page(done, total)`` hears about slow pages as they are read (OCR of a scanned PDF); it may
    raise to stop the parse (a cancelled ingestion).
    """
    limits = limits or ParseLimits()
    path = Path(path)
    kind = kind_of(path)
    size = path.stat().st_size
    if size == 0:
        raise EmptyDocument("the file is empty", path=path.name)
    if size > limits.max_file_bytes:
        raise FileTooLarge(
            f"the file is {size / 1e6:.1f} MB, over the {limits.max_file_bytes / 1e6:.0f} MB limit",
            path=path.name,
        )
    module = importlib.import_module(f"store.parsing.{_REGISTRY[path.suffix.lower()][0]}")
    parsed: ParsedDocument = module.parse(path, limits, on_page) if kind == "pdf" else module.parse(path, limits)
    if not any(block.text.strip() for block in parsed.blocks):
        raise EmptyDocument("no text found in the file", path=path.name)
    return parsed if parsed.kind == kind else dataclasses.replace(parsed, kind=kind)
