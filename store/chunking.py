"""Blocks → chunks sized in embedder tokens, with page/section anchors and character offsets.

The document text is the blocks joined by blank lines; every chunk's text is an exact slice
of it (``text[start:end]``), so a citation can always point back into the document.

Structure first: a chunk never spans two pages, and never cuts a section short to start
another. Within a section, whole blocks (paragraphs, tables) are packed greedily up to the
budget; a block over the budget is split at sentence boundaries, and a sentence over it at word
boundaries. Consecutive chunks of one section overlap by up to ``overlap`` tokens of whole
sentences or blocks. A section holding only a heading is folded into the section that follows
it on the same page. With ``pack_sections``, consecutive sections of a page that fit the budget
together share one chunk (whole sections only, under the section path they share), so a page of
short sections (a list of fields, notes and tips) gives passages with enough text to be found.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from store.records import Block, Chunk

BLOCK_SEPARATOR = "\n\n"

TokenCounter = Callable[[Sequence[str]], list[int]]

_SENTENCE_END = re.compile(r"(?<=[.!?;:])\s+|\n+")
_WORD = re.compile(r"\S+")


@dataclass(frozen=True)
class _Span:
    start: int
    end: int
    tokens: int


@dataclass
class _Segment:
    page: int | None
    section: tuple[str, ...]
    blocks: list[tuple[int, int, Block]]  # (start, end, block)

    @property
    def heading_only(self) -> bool:
        return all(block.kind == "heading" for _, _, block in self.blocks)


def document_text(blocks: Sequence[Block]) -> tuple[str, list[tuple[int, int]]]:
    """Join blocks into the document text; return it with each block's (start, end)."""
    parts: list[str] = []
    spans: list[tuple[int, int]] = []
    offset = 0
    for i, block in enumerate(blocks):
        if i:
            parts.append(BLOCK_SEPARATOR)
            offset += len(BLOCK_SEPARATOR)
        parts.append(block.text)
        spans.append((offset, offset + len(block.text)))
        offset += len(block.text)
    return "".join(parts), spans


class Chunker:
    """Splits parsed blocks into chunks of at most ``max_tokens`` embedder tokens."""

    def __init__(
        self, count_tokens: TokenCounter, max_tokens: int = 200, overlap: int = 32, *, pack_sections: bool = False
    ):
        if max_tokens < 8:
            raise ValueError("max_tokens must be at least 8")
        if not 0 <= overlap < max_tokens // 2:
            raise ValueError("overlap must be between 0 and half of max_tokens")
        self.count_tokens = count_tokens
        self.max_tokens = max_tokens
        self.overlap = overlap
        self.pack_sections = pack_sections

    def chunk(self, blocks: Sequence[Block]) -> tuple[str, list[Chunk]]:
        """Return the document text and its chunks, in reading order."""
        blocks = [b for b in blocks if b.text.strip()]
        text, spans = document_text(blocks)
        segments = _fold_headings(_segments(blocks, spans))
        chunks: list[Chunk] = []
        sized = [(segment, self._units(text, segment)) for segment in segments]
        if self.pack_sections:
            sized = _pack_sections(sized, self.max_tokens)
        for segment, units in sized:
            for start, end in self._pack(units):
                chunks.append(
                    Chunk(
                        index=len(chunks),
                        text=text[start:end],
                        start=start,
                        end=end,
                        page=segment.page,
                        section=segment.section,
                    )
                )
        return text, chunks

    def _units(self, text: str, segment: _Segment) -> list[_Span]:
        """Blocks that fit the budget, else their sentences, else word windows."""
        block_spans = [(s, e) for s, e, _ in segment.blocks]
        counts = self.count_tokens([text[s:e] for s, e in block_spans])
        units: list[_Span] = []
        for (start, end), tokens in zip(block_spans, counts, strict=True):
            if tokens <= self.max_tokens:
                units.append(_Span(start, end, tokens))
            else:
                units.extend(self._split_block(text, start, end))
        return units

    def _split_block(self, text: str, start: int, end: int) -> list[_Span]:
        pieces = _split(text, start, end, _SENTENCE_END)
        counts = self.count_tokens([text[s:e] for s, e in pieces])
        out: list[_Span] = []
        for (s, e), tokens in zip(pieces, counts, strict=True):
            if tokens <= self.max_tokens:
                out.append(_Span(s, e, tokens))
            else:
                out.extend(self._split_words(text, s, e))
        return out

    def _split_words(self, text: str, start: int, end: int) -> list[_Span]:
        words = [(m.start(), m.end()) for m in _WORD.finditer(text, start, end)]
        counts = self.count_tokens([text[s:e] for s, e in words])
        out: list[_Span] = []
        spans = [_Span(s, e, max(t, 1)) for (s, e), t in zip(words, counts, strict=True)]
        for s, e, tokens in _pack_spans(spans, self.max_tokens):
            if tokens <= self.max_tokens:
                out.append(_Span(s, e, tokens))
            else:  # a single "word" longer than the budget (a URL, a base64 blob): cut by characters
                out.extend(_cut_characters(s, e, tokens, self.max_tokens))
        return out

    def _pack(self, units: list[_Span]) -> list[tuple[int, int]]:
        """Greedy packing of units into windows of ``max_tokens`` with whole-unit overlap."""
        windows: list[tuple[int, int]] = []
        i = 0
        while i < len(units):
            used = units[i].tokens
            j = i + 1
            while j < len(units) and used + units[j].tokens <= self.max_tokens:
                used += units[j].tokens
                j += 1
            windows.append((units[i].start, units[j - 1].end))
            if j >= len(units):
                break
            # Step back over trailing units that fit the overlap, but always move forward.
            back, carried = j, 0
            while back - 1 > i and carried + units[back - 1].tokens <= self.overlap:
                back -= 1
                carried += units[back].tokens
            i = back
        return windows


def _segments(blocks: Sequence[Block], spans: Sequence[tuple[int, int]]) -> list[_Segment]:
    segments: list[_Segment] = []
    for block, (start, end) in zip(blocks, spans, strict=True):
        key = (block.page, tuple(block.section))
        if segments and (segments[-1].page, segments[-1].section) == key:
            segments[-1].blocks.append((start, end, block))
        else:
            segments.append(_Segment(block.page, tuple(block.section), [(start, end, block)]))
    return segments


def _fold_headings(segments: list[_Segment]) -> list[_Segment]:
    """A heading with no text of its own joins the next section on the same page."""
    out: list[_Segment] = []
    carry: list[tuple[int, int, Block]] = []
    for i, segment in enumerate(segments):
        following = segments[i + 1] if i + 1 < len(segments) else None
        blocks = carry + segment.blocks
        carry = []
        if segment.heading_only and following is not None and following.page == segment.page:
            carry = blocks
            continue
        out.append(_Segment(segment.page, segment.section, blocks))
    return out


def _pack_sections(sized: list[tuple[_Segment, list[_Span]]], budget: int) -> list[tuple[_Segment, list[_Span]]]:
    """Consecutive whole sections of one page joined while together they fit one chunk.

    A joined chunk's section is the path its sections share (their common parent); each
    section's own heading stays in its text. A section over the budget is never joined.
    """
    out: list[tuple[_Segment, list[_Span]]] = []
    used = 0
    for segment, units in sized:
        tokens = sum(u.tokens for u in units)
        if out and out[-1][0].page == segment.page and used + tokens <= budget:
            previous, previous_units = out[-1]
            joined = _Segment(
                segment.page, _common_path(previous.section, segment.section), previous.blocks + segment.blocks
            )
            out[-1] = (joined, previous_units + units)
            used += tokens
        else:
            out.append((segment, units))
            used = tokens
    return out


def _common_path(a: tuple[str, ...], b: tuple[str, ...]) -> tuple[str, ...]:
    shared = 0
    while shared < min(len(a), len(b)) and a[shared] == b[shared]:
        shared += 1
    return a[:shared]


def _split(text: str, start: int, end: int, pattern: re.Pattern[str]) -> list[tuple[int, int]]:
    pieces: list[tuple[int, int]] = []
    cursor = start
    for match in pattern.finditer(text, start, end):
        if match.start() > cursor:
            pieces.append((cursor, match.start()))
        cursor = match.end()
    if cursor < end:
        pieces.append((cursor, end))
    return [(s, e) for s, e in pieces if text[s:e].strip()]


def _pack_spans(spans: list[_Span], budget: int) -> list[tuple[int, int, int]]:
    out: list[tuple[int, int, int]] = []
    current: list[_Span] = []
    used = 0
    for span in spans:
        if current and used + span.tokens > budget:
            out.append((current[0].start, current[-1].end, used))
            current, used = [], 0
        current.append(span)
        used += span.tokens
    if current:
        out.append((current[0].start, current[-1].end, used))
    return out


def _cut_characters(start: int, end: int, tokens: int, budget: int) -> list[_Span]:
    pieces = -(-tokens // budget)
    step = max(1, -(-(end - start) // pieces))
    return [_Span(s, min(s + step, end), min(budget, tokens)) for s in range(start, end, step)]
