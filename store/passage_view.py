"""What the passage viewer shows for a citation: the passage in its context and, for a PDF, the
cited page as an image with the passage highlighted (``store.parsing.pdf_view``).

The page is rendered from the document's own file, the one added to the knowledge base, and only
while it is unchanged: its size and SHA-256 must still be those recorded when it was added (a
file edited or replaced since would show another page than the one cited). The check is cached
per file state, so reopening a citation does not hash a large PDF again.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

from store import kb_rows
from store.errors import DocumentNotFound
from store.ingest import file_hash
from store.knowledge_base import KnowledgeBase

CONTEXT_CHARS = 600  # text shown around a passage of a document without pages


@dataclass(frozen=True)
class PassageView:
    passage: dict  # ``KnowledgeBase.passage``: chunk_id, document, source, page, page_label, section, text, ocr
    kind: str  # "pdf", "docx", "markdown", "html", "text"
    file: Path | None  # the document's file, when it is still there and unchanged
    file_problem: str  # why ``file`` is None ("" when it is not)
    before: str  # the document's text just before the passage
    after: str  # ... and just after it

    @property
    def page_image_available(self) -> bool:
        return self.kind == "pdf" and self.file is not None and bool(self.passage["page"])


def passage_view(kb: KnowledgeBase, chunk_id: str) -> PassageView:
    passage = kb.passage(chunk_id)  # DocumentNotFound when there is no such passage
    found = kb_rows.passage_document(kb.db, kb.id, chunk_id)
    if found is None:  # removed between the two reads
        raise DocumentNotFound(f"no passage {chunk_id!r} in knowledge base {kb.name!r}")
    file, problem = _verified_file(found["origin"], found["size_bytes"], found["content_hash"])
    text, start, end = found["document_text"], found["start"], found["end"]
    return PassageView(
        passage=passage,
        kind=found["kind"],
        file=file,
        file_problem=problem,
        before=text[max(0, start - CONTEXT_CHARS) : start],
        after=text[end : end + CONTEXT_CHARS],
    )


def page_image(kb: KnowledgeBase, chunk_id: str):
    """The cited page of a PDF passage as a ``pdf_view.PageImage`` (raises ``DocumentNotFound`` when
    there is no page to show)."""
    from store.parsing.pdf_view import render_page

    view = passage_view(kb, chunk_id)
    if not view.page_image_available:
        raise DocumentNotFound(view.file_problem or f"passage {chunk_id!r} is not on a PDF page")
    assert view.file is not None
    return render_page(view.file, view.passage["page"], view.passage["text"], ocr=view.passage["ocr"])


def _verified_file(origin: str, size: int, content_hash: str) -> tuple[Path | None, str]:
    path = Path(origin)
    try:
        stat = path.stat()
    except OSError:
        return None, f"the original file is no longer at {origin}"
    if stat.st_size != size or _hash(str(path), stat.st_size, stat.st_mtime_ns) != content_hash:
        return None, f"the original file at {origin} has changed since it was added: add it again to view its pages"
    return path, ""


@functools.lru_cache(maxsize=256)
def _hash(path: str, size: int, mtime_ns: int) -> str:
    """The file's SHA-256, cached per (path, size, modification time)."""
    return file_hash(Path(path))
