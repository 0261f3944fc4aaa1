"""From ``[n]`` markers in an answer to checked citations.

Each marker maps to its source; numbers that point nowhere are dropped from the text, and
sources the answer never cites are not listed. Every citation is checked against the sentence
that cites it: the share of the sentence's key terms found in the passage and the embedding
similarity of the two, averaged into ``support``; ``supported`` is ``support >= threshold``.
A small model often forgets the markers: then each sentence is attributed to the source that
supports it best, when one does.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from assistant.events import Citation, Source
from assistant.sentences import MARKER, split_sentences
from store.terms import coverage, key_terms


@dataclass(frozen=True)
class CitedAnswer:
    text: str
    citations: list[Citation]
    attributed: bool  # True when the markers were added by attribution, not written by the model


def markers(sentence: str) -> list[int]:
    return [int(n) for group in MARKER.findall(sentence) for n in group.split(",")]


def strip_markers(text: str) -> str:
    return MARKER.sub("", text).strip()


def drop_dangling(text: str, valid: set[int]) -> str:
    """Remove numbers that point to no source from the answer's markers."""

    def keep(match: re.Match) -> str:
        numbers = [n.strip() for n in match.group(1).split(",") if int(n) in valid]
        return f" [{', '.join(numbers)}]" if numbers else ""

    return MARKER.sub(keep, text)


def support_scores(embedder, claims: Sequence[str], passages: Sequence[str]) -> np.ndarray:
    """(claims × passages) support in 0..1: mean of key-term overlap and embedding cosine."""
    if not claims or not passages:
        return np.zeros((len(claims), len(passages)))
    vectors = embedder.encode(list(claims) + list(passages))
    cosine = np.clip(vectors[: len(claims)] @ vectors[len(claims) :].T, 0.0, 1.0)
    overlap = np.array([[coverage(c, [p]) if key_terms(c) else 0.0 for p in passages] for c in claims])
    return 0.5 * cosine + 0.5 * overlap


def cite(answer: str, sources: Sequence[Source], embedder, threshold: float = 0.5) -> CitedAnswer:
    by_n = {s.n: s for s in sources}
    text = drop_dangling(answer, set(by_n))
    parts = split_sentences(text)
    cited = [(strip_markers(s), [n for n in markers(s) if n in by_n]) for s in parts]
    attributed = False
    if sources and not any(numbers for _, numbers in cited):
        text, cited = _attribute(parts, sources, embedder, threshold)
        attributed = bool(any(numbers for _, numbers in cited))
    pairs = [(claim, n) for claim, numbers in cited for n in dict.fromkeys(numbers)]
    if not pairs:
        return CitedAnswer(text.strip(), [], attributed)
    claims = list(dict.fromkeys(claim for claim, _ in pairs))
    numbers = sorted({n for _, n in pairs})
    scores = support_scores(embedder, claims, [by_n[n].text for n in numbers])
    best: dict[int, float] = {}
    for claim, n in pairs:
        score = float(scores[claims.index(claim), numbers.index(n)])
        best[n] = max(best.get(n, 0.0), score)
    citations = [
        Citation(
            n=n,
            document=by_n[n].document,
            source=by_n[n].source,
            page=by_n[n].page,
            section=by_n[n].section,
            text=by_n[n].text,
            supported=best[n] >= threshold,
            support=round(best[n], 4),
        )
        for n in numbers
    ]
    return CitedAnswer(text.strip(), citations, attributed)


def _attribute(parts: list[str], sources: Sequence[Source], embedder, threshold: float):
    """Add a marker to each sentence that one source supports well enough."""
    claims = [strip_markers(p) for p in parts]
    checkable = [i for i, c in enumerate(claims) if len(key_terms(c)) >= 2]
    scores = support_scores(embedder, [claims[i] for i in checkable], [s.text for s in sources])
    cited = [(c, []) for c in claims]
    out = list(claims)
    for row, i in enumerate(checkable):
        j = int(np.argmax(scores[row]))
        if scores[row, j] >= threshold:
            n = sources[j].n
            cited[i] = (claims[i], [n])
            out[i] = f"{claims[i]} [{n}]"
    return " ".join(out), cited
