"""A PDF's extracted lines cleaned with what the whole document shows.

Two things need more than one page to get right:

- Running headers and footers: a line at the top or bottom of most pages (the manual's title, the
  chapter's name, "Page 12 of 40", a bare page number) is layout, not content. Repeated in every
  chunk, it pollutes search and wastes the model's context. A line counts as running when, with
  its page's number or label written as ``#``, it sits among the first or last two lines of at
  least half the pages (and of three at least), shorter than a full body line and not ending a
  sentence; headings the PDF's outline names are kept. The page's number (or label) alone on such
  a line goes on any page, even where few pages show it alone (the first pages of chapters, whose
  other pages carry the chapter's name beside the number).
- Words hyphenated at line ends: "configu-" + "ration" is one word, "read-" + "only" a compound.
  The document's own vocabulary decides: the compound is kept when the document writes it with
  its hyphen elsewhere; the joined word when the document writes it whole; otherwise the hyphen
  stays only when both halves are words the document uses on their own.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence

EDGE_LINES = 2  # lines at the top and at the bottom of a page that may be running headers/footers
MIN_RUNNING_PAGES = 3
PAGE_NUMBER = "#"  # the key (``running_line_key``) of a line that is the page's number or label alone
_WORD = re.compile(r"[^\W\d_](?:[\w'’-]*[^\W\d_])?")


def running_line_key(line: str, page: int, label: str | None) -> str:
    """``line`` with its page's number (and label) written as ``#``, for comparing across pages."""
    key = line.casefold()
    for number in {str(page), (label or "").casefold()} - {""}:  # the first one only: "page 4 of 4"
        key = re.sub(rf"(?<![\w.]){re.escape(number)}(?![\w.])", "#", key, count=1)
    return key


def running_lines(
    pages: Sequence[Sequence[str]], labels: Sequence[str] = (), keep: set[str] | frozenset[str] = frozenset()
) -> set[str]:
    """The keys (``running_line_key``) of lines that repeat at the edges of most pages.

    ``pages`` holds each page's lines (blank ones are skipped); ``keep`` holds casefolded lines never to drop
    (the outline's headings).
    """
    counts: Counter[str] = Counter()
    for index, lines in enumerate(pages):
        label = labels[index] if index < len(labels) else None
        keys = {
            running_line_key(lines[i], index + 1, label) for i in _candidates(lines) if lines[i].casefold() not in keep
        }
        counts.update(key for key in keys if not _numbered_heading(key))
    needed = max(MIN_RUNNING_PAGES, (len(pages) + 1) // 2)
    return {key for key, n in counts.items() if n >= needed}


def drop_running(lines: list[str], page: int, label: str | None, running: set[str]) -> list[str]:
    """``lines`` without the running headers and footers at its top and bottom edges, and without
    the page's bare number there however few pages show theirs alone (a chapter's first page)."""
    edge = _candidates(lines)
    return [
        line
        for i, line in enumerate(lines)
        if i not in edge or running_line_key(line, page, label) not in running | {PAGE_NUMBER}
    ]


def _candidates(lines: Sequence[str]) -> set[int]:
    """Indices of the lines that may be running headers or footers: among the first or last
    ``EDGE_LINES`` non-blank lines, clearly shorter than the page's longest line (a body line runs
    to the margin), and not ending a sentence (body text does; headers and footers do not)."""
    filled = [i for i, line in enumerate(lines) if line]
    full = max((len(line) for line in lines), default=0)
    edges = set(filled[:EDGE_LINES]) | set(filled[-EDGE_LINES:])
    return {i for i in edges if len(lines[i]) < 0.7 * full and not _sentence(lines[i])}


PAGE_WORDS = frozenset({"page", "p", "pg", "pp", "seite", "página", "pagina"})


def _numbered_heading(key: str) -> bool:
    """One word and the page's number ("chapter #" where chapter N happens to sit on page N): a
    numbered heading, not a running line; "page #", a bare "#" and longer lines can be."""
    words = key.replace("#", " ").split()
    return "#" in key and len(words) == 1 and words[0].strip(".:") not in PAGE_WORDS


def _sentence(line: str) -> bool:
    return line.endswith((".", "!", "?", ";", ":")) and not line[:-1].rstrip().isdigit()


def vocabulary(pages: Sequence[Sequence[str]]) -> Counter[str]:
    """How often the document writes each word (casefolded; hyphenated compounds as one word)."""
    counts: Counter[str] = Counter()
    for lines in pages:
        for line in lines:
            counts.update(w.casefold() for w in _WORD.findall(line))
    return counts


def keeps_hyphen(left: str, right: str, words: Counter[str]) -> bool:
    """Whether a line ending in ``left`` + "-" and a next line starting with ``right`` keep the hyphen.

    ``left`` and ``right`` are the two text runs around the break; only their last and first words count.
    """
    head = _WORD.findall(left)
    tail = _WORD.findall(right)
    if not head or not tail or not right[:1].islower():  # "Wi-" + "Fi", "x-" + "2": not a split word
        return True
    a, b = head[-1].casefold(), tail[0].casefold()
    if words[f"{a}-{b}"]:
        return True
    if words[a + b]:
        return False
    # Each half was counted once where it was split: "used on its own" means seen once more.
    return words[a] >= 2 and words[b] >= 2
