"""A PDF page's text in reading order, from the boxes of pdfium's text runs: two columns read one
after the other, a table's rows kept as rows of cells.

pdfium gives a page's text in the order of its content stream: a tool that writes two columns line
by line across the page comes out interleaved, and a table's cells run together with one space
between them. ``page_text`` reads the page region by region; a page that is neither keeps pdfium's
text, and every character keeps pdfium's own text (only regrouped), so chunk offsets stay exact.
"""

from __future__ import annotations

import logging
import re
from collections import Counter

log = logging.getLogger(__name__)


Box = tuple[float, float, float, float]  # left, bottom, right, top, in PDF points (y grows upwards)
CELL = "\t"  # between the cells of a table row in the text ``text_layer`` gives (``pdf.paragraphs_of``)
_MIN_GUTTER = 6.0  # points of white between two columns, at least
_MIN_COLUMN_LINES = 3
_ALIGN = 3.0  # points: cells of one table column start (or end) this close
_WORDS = re.compile(r"\w+")


def page_text(textpage) -> str:
    """A pdfium text page's text (pypdfium2 ``PdfTextPage``) with two columns read one after the
    other and table rows kept as rows of cells joined by ``CELL``; pdfium's own text when the page
    has neither (or its layout cannot be read)."""
    text = textpage.get_text_range()
    try:
        laid_out = _layout_text(textpage, text)
    except Exception as exc:  # the geometry is a refinement: pdfium's text is still right
        log.debug("page layout not read (%s)", exc)
        return text
    if laid_out is None:
        return text
    before, after = _WORDS.findall(text), _WORDS.findall(laid_out)
    if CELL not in laid_out and after == before:
        return text  # already in reading order: pdfium's text as it gives it
    if Counter(after) != Counter(before):  # a word split or joined on the way: keep pdfium's
        return text
    return laid_out


def _layout_text(textpage, text: str) -> str | None:
    """``text`` (the page's, as pdfium orders it) rearranged: each character goes to the region its
    text run lies in (a column of a band between lines that cross both columns, a line across,
    a table row's cell), and the regions follow each other in reading order. None when the page
    has neither two columns nor a table, or when its characters and text do not match one to one."""
    count = textpage.count_chars()
    rects = [textpage.get_rect(i) for i in range(textpage.count_rects())]
    if not rects or len(text) != count:
        return None
    lines = _lines(rects)
    gutter = _gutter([[rects[i] for i in line] for line in lines])
    regions: list[list[list[int]]] = []  # per region, its cells (one unless a table row), each its rects

    def add(region_lines: list[list[int]]) -> None:
        plain: list[int] = []
        cells = [_cells([rects[i] for i in line], line) for line in region_lines]
        for n, line_cells in enumerate(cells):
            if any(0 <= m < len(cells) and _aligned(line_cells, cells[m], rects) for m in (n - 1, n + 1)):
                if plain:
                    regions.append([plain])
                    plain = []
                regions.append(line_cells)
            else:
                plain.extend(i for cell in line_cells for i in cell)
        if plain:
            regions.append([plain])

    if gutter is None:
        if not any(len(_cells([rects[i] for i in line], line)) > 1 for line in lines):
            return None
        add(lines)
    else:
        band: list[list[int]] = []
        edges = _apart([[rects[i] for i in line] for line in lines])
        for n, line in enumerate([*lines, None]):
            # A line across both columns (a title, a caption), or a header or footer set apart.
            if line is None or n in edges or any(rects[i][0] < gutter < rects[i][2] for i in line):
                add([left for left in ([i for i in ln if rects[i][2] <= gutter] for ln in band) if left])
                add([right for right in ([i for i in ln if rects[i][0] >= gutter] for ln in band) if right])
                band = []
                if line is not None:
                    add([line])
            else:
                band.append(line)
    owner = {i: (r, c) for r, cells in enumerate(regions) for c, cell in enumerate(cells) for i in cell}
    chars = _assign(textpage, text, rects, owner)
    parts = []
    for r, cells in enumerate(regions):
        texts = ["".join(chars.get((r, c), ())).strip() for c in range(len(cells))]
        parts.append(CELL.join(" ".join(t.split()) for t in texts) if len(cells) > 1 else texts[0])
    return "\r\n".join(part for part in parts if part)


def _assign(textpage, text: str, rects: list[Box], owner: dict[int, tuple[int, int]]) -> dict:
    """Each character of ``text`` in the (region, cell) whose run holds its middle; spaces and the
    line breaks pdfium adds go with the character before them. Within a region, a jump in the
    page's order (the other column's line came between) starts a new line."""
    chars: dict[tuple[int, int], list[str]] = {}
    last: dict[tuple[int, int], int] = {}
    key, guess = None, 0
    for index, char in enumerate(text):
        if not char.isspace():
            left, bottom, right, top = textpage.get_charbox(index)
            x, y = (left + right) / 2, (bottom + top) / 2
            for i in (*range(guess, min(guess + 3, len(rects))), *range(len(rects))):  # runs follow the text
                r = rects[i]
                if r[0] - 1 <= x <= r[2] + 1 and r[1] - 1 <= y <= r[3] + 1 and i in owner:
                    key, guess = owner[i], i
                    break
        if key is None:
            continue
        out = chars.setdefault(key, [])
        if last.get(key, index - 1) != index - 1 and out and not out[-1].endswith("\n"):
            out.append("\r\n")
        out.append(char)
        last[key] = index
    return chars


def _apart(lines: list[list[Box]]) -> set[int]:
    """The first and the last line when set apart from the rest by more than twice their height (a
    running header or footer, which stays where it is rather than join a column)."""
    edges = set()
    if len(lines) > 2:
        for n, m in ((0, 1), (len(lines) - 1, len(lines) - 2)):
            top, bottom = max(r[3] for r in lines[n]), min(r[1] for r in lines[n])
            other_top, other_bottom = max(r[3] for r in lines[m]), min(r[1] for r in lines[m])
            gap = bottom - other_top if n == 0 else other_bottom - top
            if gap > 2 * (top - bottom):
                edges.add(n)
    return edges


def _aligned(cells: list[list[int]], other: list[list[int]], rects: list[Box]) -> bool:
    """Whether two lines are rows of one table: as many cells (two or more), and each cell after
    the first starts (or ends: right-aligned numbers) where the other line's does."""
    if len(cells) < 2 or len(cells) != len(other):
        return False
    for cell, theirs in zip(cells[1:], other[1:], strict=True):
        left, right = min(rects[i][0] for i in cell), max(rects[i][2] for i in cell)
        their_left, their_right = min(rects[i][0] for i in theirs), max(rects[i][2] for i in theirs)
        if abs(left - their_left) > _ALIGN and abs(right - their_right) > _ALIGN:
            return False
    return True


def _lines(rects: list[Box]) -> list[list[int]]:
    """The runs (indices into ``rects``) grouped into lines, top to bottom, each line's runs left to
    right: a run joins a line (of the last few) when half its height or more overlaps the line's
    first run (a raised or lowered letter, a superscript stay on their line), or any of it when it
    is less than half as high (a comma, a period after a word in another font)."""
    lines: list[list[int]] = []
    for i in sorted(range(len(rects)), key=lambda i: -(rects[i][1] + rects[i][3])):
        _, bottom, _, top = rects[i]
        for line in reversed(lines[-3:]):
            _, line_bottom, _, line_top = rects[line[0]]
            overlap = min(top, line_top) - max(bottom, line_bottom)
            small = top - bottom < 0.5 * (line_top - line_bottom)
            if overlap > 0 and (small or overlap >= 0.5 * min(top - bottom, line_top - line_bottom)):
                line.append(i)
                break
        else:
            lines.append([i])
    return [sorted(line, key=lambda i: rects[i][0]) for line in lines]


def _gutter(lines: list[list[Box]]) -> float | None:
    """The x of the white band between two columns of body text, or None when the lines do not
    form two columns. The band lies in the middle 40% of the text's width and at most a quarter of
    the lines cross it (titles, captions); each side's lines must mostly fill a column at least
    30% of the text's width, which a table's narrow first column of short cells does not; and when
    most lines on both sides hold cells set apart, that is a table of four columns, not two
    columns of two (a table of contents in one column is still a column)."""
    rects = [r for line in lines for r in line]
    x0, x1 = min(r[0] for r in rects), max(r[2] for r in rects)
    width = x1 - x0
    if width < 100 or len(lines) < 2 * _MIN_COLUMN_LINES:
        return None
    start = int(x0 + 0.3 * width)
    cover = [0] * (int(x0 + 0.7 * width) - start + 1)
    for line in lines:  # how many lines have text at each x
        hit: set[int] = set()
        for left, _, right, _ in line:
            hit.update(range(max(int(left) + 1 - start, 0), min(int(right) - start, len(cover) - 1) + 1))
        for x in hit:
            cover[x] += 1
    least = min(cover)
    if least > 0.25 * len(lines):
        return None
    gutter, span, run = None, 0, None
    for x, count in enumerate([*cover, least + 1]):  # the widest run of x where the fewest lines cross
        if count == least and run is None:
            run = x
        elif count != least and run is not None:
            if x - run > span:
                gutter, span = start + (run + x) / 2, x - run
            run = None
    if gutter is None or span < _MIN_GUTTER:
        return None
    widths: tuple[list[float], list[float]] = ([], [])
    extents = ([x1, x0], [x1, x0])
    tabular = [0, 0]  # lines of cells set apart, per side
    for line in lines:
        if any(r[0] < gutter < r[2] for r in line):
            continue
        for side, part in enumerate(([r for r in line if r[2] <= gutter], [r for r in line if r[0] >= gutter])):
            if part:
                widths[side].append(part[-1][2] - part[0][0])
                tabular[side] += len(_cells(part, list(range(len(part))))) > 1
                extents[side][0] = min(extents[side][0], part[0][0])
                extents[side][1] = max(extents[side][1], part[-1][2])
    if all(cells > 0.5 * len(side) for cells, side in zip(tabular, widths, strict=True)):
        return None
    for side_widths, (left, right) in zip(widths, extents, strict=True):
        column = right - left
        if len(side_widths) < _MIN_COLUMN_LINES or column < 0.3 * width:
            return None
        if sorted(side_widths)[len(side_widths) // 2] < 0.5 * column:
            return None
    return gutter


def _cells(line: list[Box], ids: list[int]) -> list[list[int]]:
    """A line's runs (``ids``, left to right, with their boxes ``line``) grouped into cells: runs
    closer than a cell gap (1.5 times the line's height, 12 points at least; wider than any space
    between words) belong to one cell."""
    gap = max(12.0, 1.5 * max(r[3] - r[1] for r in line))
    cells, right = [[ids[0]]], line[0][2]
    for i, r in zip(ids[1:], line[1:], strict=True):
        if r[0] - right >= gap:
            cells.append([i])
        else:
            cells[-1].append(i)
        right = max(right, r[2])
    return cells
