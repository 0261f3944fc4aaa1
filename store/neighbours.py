"""Neighbouring passages: small chunks to find, larger passages to read.

A hit is grown with the chunks just before and after it in the same document, section and
page, nearest first (next, then previous, in turn), while the passage stays within a token
budget. The grown passage is the document's own text between the first and the last chunk
taken, so the overlap between consecutive chunks is never repeated. No text is offered twice:
a neighbour that is itself a hit, or already part of a better-ranked grown passage, stops the
growth on that side, and a passage is cut where another one starts.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Sequence

from sqlite_utils import Database

from store.database import rows
from store.records import SearchHit

WINDOW = 8  # chunks looked at on each side of a hit


def with_neighbours(
    db: Database, hits: Sequence[SearchHit], max_tokens: int, count_tokens: Callable[[Sequence[str]], list[int]]
) -> list[SearchHit]:
    """``hits`` in the same order, each grown with its section's neighbours up to ``max_tokens``
    (``count_tokens`` counts a batch of texts, as ``Embedder.count_tokens`` does)."""
    if max_tokens <= 0:
        return list(hits)
    taken: dict[str, list[tuple[int, int]]] = {}  # doc_id -> (start, end) of every passage so far
    for hit in hits:
        taken.setdefault(hit.doc_id, []).append((hit.start, hit.end))
    grown = []
    for hit in hits:
        others = list(taken[hit.doc_id])
        others.remove((hit.start, hit.end))
        start, end = _grow(db, hit, others, max_tokens, count_tokens)
        if (start, end) != (hit.start, hit.end):
            taken[hit.doc_id] = [*others, (start, end)]
            hit = dataclasses.replace(hit, text=_document_text(db, hit.doc_id, start, end), start=start, end=end)
        grown.append(hit)
    return grown


def _grow(
    db: Database,
    hit: SearchHit,
    others: list[tuple[int, int]],
    max_tokens: int,
    count_tokens: Callable[[Sequence[str]], list[int]],
) -> tuple[int, int]:
    """The (start, end) of the grown passage of ``hit``; ``others`` are the passages it must not enter."""
    start, end = hit.start, hit.end
    if end <= start:
        return start, end
    index = _chunk_index(hit.chunk_id)
    if index is None:
        return start, end
    section = rows(
        db,
        """SELECT idx, start, "end" FROM chunks WHERE doc_id = ? AND idx BETWEEN ? AND ?
           AND section = ? AND page IS ? ORDER BY idx""",
        [hit.doc_id, index - WINDOW, index + WINDOW, hit.section, hit.page],
    )
    after = [r for r in section if r["idx"] > index]
    before = [r for r in reversed(section) if r["idx"] < index]
    limit_hi = min((s for s, _ in others if s > hit.start), default=math.inf)
    limit_lo = max((e for _, e in others if e < hit.end), default=-math.inf)
    sides = {"after": (after, index), "before": (before, index)}
    while sides:
        for side in list(sides):
            queue, last = sides[side]
            step = 1 if side == "after" else -1
            if not queue or queue[0]["idx"] != last + step:  # a gap: a chunk of another section between
                del sides[side]
                continue
            row = queue[0]
            if side == "after":
                new = (start, min(row["end"], limit_hi))
                blocked = row["start"] >= limit_hi or new[1] <= end
            else:
                new = (max(row["start"], limit_lo), end)
                blocked = row["end"] <= limit_lo or new[0] >= start
            if blocked or count_tokens([_document_text(db, hit.doc_id, *new)])[0] > max_tokens:
                del sides[side]
                continue
            start, end = new
            sides[side] = (queue[1:], row["idx"])
            if new[1] < row["end"] or new[0] > row["start"]:  # cut where another passage starts
                del sides[side]
    return start, end


def _chunk_index(chunk_id: str) -> int | None:
    """The chunk's position in its document (chunk ids are ``doc_id:n``)."""
    _, _, number = chunk_id.rpartition(":")
    return int(number) if number.isdigit() else None


def _document_text(db: Database, doc_id: str, start: int, end: int) -> str:
    """``document_text[start:end]`` (SQLite's substr counts characters, as Python does)."""
    found = rows(db, "SELECT substr(text, ?, ?) AS part FROM documents WHERE id = ?", [start + 1, end - start, doc_id])
    return found[0]["part"] if found else ""
