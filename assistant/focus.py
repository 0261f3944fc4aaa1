"""Offered passages cut down to the run of sentences that best answers the question.

A 1.5B model reads about 70 prompt tokens a second on two cores, so five whole 200-token passages
cost 14 s before the first token. ``focus`` keeps the best-ranked passage whole and, of each other
passage longer than the budget, the consecutive sentences that match the question best (key-term
coverage and embedding similarity, as the extractive fallback scores them) up to ``tokens``, with
"…" where text was left out. The model reads that excerpt (``Source.excerpt``); the citation
check, the extractive fallback and what the user is shown keep the whole passage
(``Source.text``), which contains it.

Off by default (``Settings.source_tokens = 0``): at 100 tokens the 1.5B's prompts on the Python
manual's dev half were only 15 % shorter (969 → 824 tokens) and four more of its answers were not
kept (bench/README.md, "Shorter sources for a sooner first token").
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace

import numpy as np

from assistant.events import Source
from assistant.sentences import SENTENCE
from store.terms import coverage

ELLIPSIS = "…"


def focus(
    question: str,
    sources: Sequence[Source],
    embedder,
    tokens: int,
    count_tokens: Callable[[str], int],
    keep_whole: int = 1,
) -> list[Source]:
    """``sources`` with an excerpt of at most about ``tokens`` tokens for each longer passage (0: none).

    The first ``keep_whole`` passages (the best ranked) stay whole: on the dev halves of three
    corpora, cutting the first passage too lost the answer's words for up to 4 questions more per
    corpus than cutting the others only (bench/README.md). A passage of one sentence, or whose best sentence
    alone is over the budget, keeps that sentence whole: a sentence is never cut."""
    if tokens <= 0:
        return list(sources)
    spans = {s.n: _sentence_spans(s.text) for s in sources[keep_whole:] if count_tokens(s.text) > tokens}
    spans = {n: found for n, found in spans.items() if len(found) > 1}
    if not spans:
        return list(sources)
    by_n = {s.n: s for s in sources}
    sentences = [by_n[n].text[a:b] for n, found in spans.items() for a, b in found]
    vectors = embedder.encode([question, *sentences])
    similarity = np.clip(vectors[1:] @ vectors[0], 0.0, 1.0)
    scores = iter(0.5 * float(sim) + 0.5 * coverage(question, [text]) for sim, text in zip(similarity, sentences))
    out = []
    for source in sources:
        found = spans.get(source.n)
        if found is None:
            out.append(source)
            continue
        costs = [count_tokens(source.text[a:b]) for a, b in found]
        first, last = best_window([next(scores) for _ in found], costs, tokens)
        excerpt = source.text[found[first][0] : found[last][1]]
        before = ELLIPSIS + " " if source.text[: found[first][0]].strip() else ""
        after = " " + ELLIPSIS if source.text[found[last][1] :].strip() else ""
        out.append(replace(source, excerpt=f"{before}{excerpt}{after}"))
    return out


def best_window(scores: Sequence[float], costs: Sequence[int], budget: int) -> tuple[int, int]:
    """(first, last) index of the consecutive items with the highest total score whose costs fit the
    budget; the best single item when none fits. Ties go to the earliest window."""
    best = (float("-inf"), 0, 0)
    for first in range(len(scores)):
        total, used, last = 0.0, 0, first - 1
        while last + 1 < len(scores) and used + costs[last + 1] <= budget:
            last += 1
            used += costs[last]
            total += scores[last]
        if last < first:  # this sentence alone is over the budget
            last, total = first, scores[first]
        if total > best[0]:
            best = (total, first, last)
    return best[1], best[2]


def _sentence_spans(text: str) -> list[tuple[int, int]]:
    """(start, end) of each sentence in ``text``, so an excerpt keeps the passage's own line breaks."""
    return [(m.start(), m.end()) for m in SENTENCE.finditer(text) if m.group(0).strip()]
