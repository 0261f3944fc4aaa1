"""The reading half of ingestion: find files, then hash, parse and chunk them.

``discover`` walks the paths given to ``kb add``; ``prepare`` turns one file into a
``Prepared`` document (or a per-file failure). ``prepare_in_background`` runs ``prepare`` in
a thread so parsing overlaps with embedding (torch and lxml release the GIL); ``settle`` reports a
file that needs no write (unchanged, or unreadable). Nothing here writes: the knowledge base
commits each document in one transaction.
"""

from __future__ import annotations

import hashlib
import logging
import os
import queue
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from store.chunking import Chunker
from store.errors import Cancelled, DomainsmithError, FileTooLarge
from store.parsing import SUPPORTED_SUFFIXES, PageProgress, ParseLimits, is_supported, kind_of, parse
from store.records import SECTION_SEPARATOR, Chunk, IngestEvent, IngestSummary

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Candidate:
    """A file to ingest. ``origin`` identifies it in the knowledge base (its resolved path);
    ``source`` is how it is shown: relative to the folder given, or its file name."""

    path: Path
    source: str
    origin: str


@dataclass(frozen=True)
class Skipped:
    source: str
    reason: str
    failed: bool = False  # True: the user's input was wrong (missing path); False: just not ingestible


@dataclass
class Prepared:
    candidate: Candidate
    content_hash: str
    size_bytes: int
    title: str = ""
    kind: str = ""
    pages: int | None = None
    text: str = ""
    chunks: list[Chunk] = field(default_factory=list)
    error: str | None = None  # set when the file could not be read or parsed
    unchanged: bool = False  # set when the same file was already ingested
    page_labels: tuple[str, ...] = ()  # PDF: the label of each physical page, in order
    ocr_pages: tuple[int, ...] = ()  # PDF: the pages whose text OCR read
    notes: tuple[str, ...] = ()  # from the parser, for the reader ("OCR read pages 2 and 3")

    def page_label(self, page: int | None) -> str | None:
        """The label of physical page ``page`` (1-based), or None when the document has none."""
        if page is None or not 1 <= page <= len(self.page_labels):
            return None
        return self.page_labels[page - 1]

    def embedding_texts(self) -> list[str]:
        return [embedding_text(chunk_context(self.title, c.section), c.text) for c in self.chunks]


def chunk_context(title: str, section: tuple[str, ...]) -> str:
    """Document title and section path, without repeating a title the path already starts with."""
    parts = list(section)
    if title and not (parts and (parts[0] == title or parts[0] in title)):
        parts.insert(0, title)
    return SECTION_SEPARATOR.join(parts)


def embedding_text(context: str, text: str) -> str:
    """What the embedder sees for a chunk: its context line, then its text."""
    return f"{context}\n{text}" if context else text


def discover(paths: Iterable[str | Path]) -> Iterator[Candidate | Skipped]:
    """Files under the given paths, folders walked recursively in a stable order."""
    for given in paths:
        path = Path(given).expanduser()
        if path.is_dir():
            root = path.resolve()
            for folder, dirs, files in os.walk(root, followlinks=False):
                dirs[:] = sorted(d for d in dirs if not d.startswith("."))
                for name in sorted(files):
                    if name.startswith("."):
                        continue
                    file = Path(folder) / name
                    source = file.relative_to(root).as_posix()
                    yield _candidate_or_skip(file, source)
        elif path.is_file():
            yield _candidate_or_skip(path, path.name)
        else:
            yield Skipped(str(given), "no such file or folder", failed=True)


def _candidate_or_skip(file: Path, source: str) -> Candidate | Skipped:
    if file.is_symlink() and not file.resolve().is_file():
        return Skipped(source, "broken link")
    if not is_supported(file):
        suffix = file.suffix or "(no extension)"
        return Skipped(source, f"unsupported file type {suffix} (supported: {', '.join(SUPPORTED_SUFFIXES)})")
    return Candidate(path=file, source=source, origin=str(file.resolve()))


def file_hash(path: Path) -> str:
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def prepare(
    candidate: Candidate,
    chunker: Chunker,
    limits: ParseLimits,
    known: dict[str, str],
    on_page: PageProgress | None = None,
) -> Prepared:
    """Hash, parse and chunk one file. ``known`` maps origin -> content hash already stored;
    ``on_page(done, total)`` hears about slow pages (OCR) and may raise ``Cancelled``."""
    try:
        size = candidate.path.stat().st_size
        if size > limits.max_file_bytes:
            raise FileTooLarge(f"the file is {size / 1e6:.1f} MB, over the {limits.max_file_bytes / 1e6:.0f} MB limit")
        digest = file_hash(candidate.path)
    except OSError as exc:
        return Prepared(candidate, "", 0, error=f"cannot read the file: {exc.strerror or exc}")
    except DomainsmithError as exc:
        return Prepared(candidate, "", 0, error=exc.message)
    prepared = Prepared(candidate, digest, size, kind=_kind(candidate.path))
    if known.get(candidate.origin) == digest:
        prepared.unchanged = True
        return prepared
    try:
        parsed = parse(candidate.path, limits, on_page)
        prepared.title = parsed.title.strip() or candidate.path.stem
        prepared.pages = parsed.pages
        prepared.page_labels = parsed.page_labels
        prepared.ocr_pages = parsed.ocr_pages
        prepared.notes = parsed.notes
        prepared.text, prepared.chunks = chunker.chunk(parsed.blocks)
    except Cancelled:
        raise
    except DomainsmithError as exc:
        prepared.error = exc.message
    except (RecursionError, MemoryError) as exc:
        prepared.error = f"the file is too complex to read ({type(exc).__name__})"
    except Exception as exc:  # a parser bug must cost one file, never the whole batch
        log.exception("unexpected error while reading %s", candidate.path)
        prepared.error = f"unexpected error while reading the file: {type(exc).__name__}: {exc}"
    if prepared.error is None and not prepared.chunks:
        prepared.error = "no text found in the file"
    return prepared


def _kind(path: Path) -> str:
    try:
        return kind_of(path)
    except DomainsmithError:
        return path.suffix.lstrip(".").lower()


def settle(item: Prepared, summary: IngestSummary, doc_id: str, done: int, total: int) -> IngestEvent:
    """The event (and summary entry) of a file that is not written: unchanged, or failed to read."""
    source = item.candidate.source
    if item.unchanged:
        summary.unchanged.append(source)
        return IngestEvent(
            "unchanged",
            path=str(item.candidate.path),
            source=source,
            doc_id=doc_id,
            reason="unchanged since it was added",
            done=done,
            total=total,
        )
    summary.failed.append((source, item.error or "failed"))
    return IngestEvent(
        "failed", path=str(item.candidate.path), source=source, reason=item.error or "", done=done, total=total
    )


_DONE = object()


@dataclass(frozen=True)
class Reading:
    """Progress inside one file whose pages are slow to read (OCR): ``done`` of ``total`` pages."""

    candidate: Candidate
    done: int
    total: int


def prepare_in_background(
    candidates: list[Candidate], chunker: Chunker, limits: ParseLimits, known: dict[str, str], depth: int = 8
) -> Iterator[Prepared | Reading]:
    """``prepare`` each candidate in a worker thread, yielding results in order, with ``Reading``
    progress while a file's pages are read by OCR. Closing the iterator stops the worker at its
    next page (a 500-page scan is not read to the end for nobody)."""
    results: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def work() -> None:
        try:
            for candidate in candidates:
                if stop.is_set():
                    return

                def on_page(done: int, total: int, candidate: Candidate = candidate) -> None:
                    if stop.is_set():
                        raise Cancelled(f"stopped while reading {candidate.source}")
                    results.put(Reading(candidate, done, total))

                results.put(prepare(candidate, chunker, limits, known, on_page))
        except Cancelled:
            return
        finally:
            results.put(_DONE)

    thread = threading.Thread(target=work, name="domainsmith-parse", daemon=True)
    thread.start()
    try:
        while (item := results.get()) is not _DONE:
            yield item
    finally:
        stop.set()
        while thread.is_alive():  # unblock a worker waiting on a full queue, then let it end
            try:
                results.get_nowait()
            except queue.Empty:
                thread.join(timeout=0.05)
