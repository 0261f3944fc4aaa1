"""Plain records passed between the knowledge-base modules (no behaviour, no I/O)."""

from __future__ import annotations

from dataclasses import dataclass, field

SECTION_SEPARATOR = " > "


@dataclass(frozen=True)
class Block:
    """A run of text a parser found, with where it sits in the document.

    ``page`` is 1-based for paged formats (PDF), None otherwise. ``section`` is the heading
    path above the text, outermost first (``("Install", "On Linux")``). ``kind`` is "heading",
    "text" or "table"; a heading block's own title is the last element of its section path.
    """

    text: str
    page: int | None = None
    section: tuple[str, ...] = ()
    kind: str = "text"


@dataclass(frozen=True)
class ParsedDocument:
    """What a parser returns: a title, the blocks in reading order and the page count (PDF).

    ``page_labels`` (PDF) holds the label a reader's viewer shows for each physical page, in page
    order ("i", "ii", "1", ...); empty when the document has none. ``ocr_pages`` are the pages
    whose text came from OCR.
    """

    title: str
    blocks: list[Block]
    pages: int | None = None
    kind: str = ""  # "pdf", "docx", "markdown", "html", "text"
    page_labels: tuple[str, ...] = ()
    ocr_pages: tuple[int, ...] = ()  # PDF pages whose text OCR read (1-based)
    notes: tuple[str, ...] = ()  # what the reader should know ("OCR read pages 2 and 3")


@dataclass(frozen=True)
class Chunk:
    """A passage to embed and cite: ``text`` is ``document_text[start:end]`` exactly."""

    index: int
    text: str
    start: int
    end: int
    page: int | None = None
    section: tuple[str, ...] = ()

    @property
    def section_path(self) -> str:
        return SECTION_SEPARATOR.join(self.section)


@dataclass(frozen=True)
class Document:
    """A document as listed by the knowledge base."""

    id: str
    name: str
    source: str
    kind: str
    pages: int | None
    chunks: int
    size_bytes: int
    added_at: str
    content_hash: str
    title: str = ""


@dataclass(frozen=True)
class SearchHit:
    """One ranked passage from a knowledge-base search."""

    rank: int
    score: float
    chunk_id: str
    doc_id: str
    document: str
    source: str
    page: int | None
    section: str
    text: str
    start: int = 0
    end: int = 0
    page_label: str | None = None  # the page number a reader's viewer shows (PDF page labels)
    ocr: bool = False  # the text was read by OCR from a scanned page

    @property
    def where(self) -> str:
        return where(self.page, self.section, self.page_label)

    def to_json(self) -> dict:
        """The ``kb search --json`` result object (a stable contract: fields are only added)."""
        return {
            "rank": self.rank,
            "score": round(float(self.score), 6),
            "chunk_id": self.chunk_id,
            "document": self.document,
            "source": self.source,
            "page": self.page,
            "page_label": self.page_label,
            "section": self.section,
            "text": self.text,
            "ocr": self.ocr,
        }


@dataclass(frozen=True)
class IngestEvent:
    """Progress of ``KnowledgeBase.add``: one per file, then a final summary.

    ``status`` is "added", "replaced", "unchanged", "skipped" (unsupported or duplicate) or
    "failed"; the final event has ``status == "done"`` and ``summary`` set. "reading" events come
    between them while a file's scanned pages are read by OCR (``pages_done`` of ``pages_total``;
    ``done`` and ``total`` still count files).
    """

    status: str
    path: str = ""
    source: str = ""
    doc_id: str | None = None
    chunks: int = 0
    reason: str = ""
    done: int = 0
    total: int = 0
    summary: IngestSummary | None = None
    notes: tuple[str, ...] = ()  # an added document: what the reader should know ("OCR read page 2")
    pages_done: int = 0  # status "reading": pages of ``source`` read by OCR so far, of ``pages_total``
    pages_total: int = 0


@dataclass
class IngestSummary:
    added: list[str] = field(default_factory=list)
    replaced: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)
    chunks_added: int = 0
    seconds: float = 0.0

    def to_json(self) -> dict:
        return {
            "added": self.added,
            "replaced": self.replaced,
            "unchanged": self.unchanged,
            "skipped": [{"source": s, "reason": r} for s, r in self.skipped],
            "failed": [{"source": s, "reason": r} for s, r in self.failed],
            "chunks_added": self.chunks_added,
            "seconds": round(self.seconds, 3),
        }


def where(page: int | None, section: str, page_label: str | None = None) -> str:
    """Where a passage sits, as every citation line and the prompt show it: "page 3, Maintenance > Seals",
    "page 3", "Maintenance > Seals" or ""; "page 24 (PDF page 29)" when the page's label differs."""
    return ", ".join(part for part in (page_text(page, page_label), section) if part)


def page_text(page: int | None, page_label: str | None = None) -> str:
    """ "page 29", "page 24 (PDF page 29)" (a printed label that is not the physical number), or ""."""
    if not page:
        return ""
    if page_label and page_label != str(page):
        return f"page {page_label} (PDF page {page})"
    return f"page {page}"
