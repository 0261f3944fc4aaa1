"""Combining and cleaning ranked lists: rank fusion, page fusion, page evidence, near-duplicate collapse."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Sequence

# Measured on the Python manual's 55 answerable bench questions (bench/ingest.py), recall@5 of
# the answering page: vector 0.927, keyword 0.836; classic RRF (k=60, equal weights) 0.891;
# k=10 with keyword weighted 0.5: 0.945. A small k trusts the top of each list; the weight
# reflects that keyword search alone is the weaker ranker.
RRF_K = 10


def reciprocal_rank_fusion(
    rankings: Sequence[Sequence[int]], k: int = RRF_K, weights: Sequence[float] | None = None
) -> list[tuple[int, float]]:
    """Fuse ranked id lists: score(id) = Σ w / (k + rank), rank starting at 1. Best first."""
    weights = weights or [1.0] * len(rankings)
    scores: dict[int, float] = {}
    for ranking, weight in zip(rankings, weights, strict=False):
        for rank, item in enumerate(ranking, start=1):
            scores[item] = scores.get(item, 0.0) + weight / (k + rank)
    return sorted(scores.items(), key=lambda kv: (-kv[1], kv[0]))


def page_fusion(
    rankings: Sequence[Sequence[int]],
    pages: dict[int, tuple],
    weight: float,
    k: int = RRF_K,
    weights: Sequence[float] | None = None,
) -> list[tuple[int, float]]:
    """Rank fusion of passages, with each page's best passage lifted by the fusion of pages.

    Each ranking is read twice: as passages, and as pages (a page ranks where its first passage
    does; ``pages``: row id -> (document, page)). Both are fused by reciprocal rank; the first
    passage of each page in the fused order gains ``weight`` times its page's fused score, the
    page's other passages keep their own. A page that both rankers put near the top through
    different passages (vector search likes one, keyword search another) thus leads, and no page
    gains from being long: per ranker only its best passage counts. ``weight`` 0 is plain fusion.
    """
    fused = reciprocal_rank_fusion(rankings, k=k, weights=weights)
    if weight <= 0:
        return fused
    page_of = {}  # row id -> a small int per page (pages mix None and numbers: not sortable as keys)
    numbered: dict[tuple, int] = {}
    for ranking in rankings:
        for item in ranking:
            page_of[item] = numbered.setdefault(pages.get(item, ("passage", item)), len(numbered))
    page_rankings = [list(dict.fromkeys(page_of[i] for i in ranking)) for ranking in rankings]
    page_score = dict(reciprocal_rank_fusion(page_rankings, k=k, weights=weights))
    led: set[int] = set()
    out = []
    for item, score in fused:
        page = page_of[item]
        if page not in led:
            led.add(page)
            score += weight * page_score[page]
        out.append((item, score))
    return sorted(out, key=lambda kv: (-kv[1], kv[0]))


def page_evidence(
    scored: Sequence[tuple[int, float]], pages: dict[int, tuple], weight: float, others: int = 2
) -> list[tuple[int, float]]:
    """Each passage's score plus ``weight`` times the scores of the best ``others`` other passages of
    its page (``pages``: row id -> (document, page)); best first. Evidence spread over a page lifts it:
    a long page that answers in several places against a short one that repeats the question's words.
    """
    if weight <= 0:
        return list(scored)
    by_page: dict[tuple, list[float]] = {}
    for item, score in scored:
        by_page.setdefault(pages.get(item, (item,)), []).append(score)
    out = []
    for item, score in scored:
        group = sorted(by_page[pages.get(item, (item,))], reverse=True)
        group.remove(score)
        out.append((item, score + weight * sum(group[:others])))
    return sorted(out, key=lambda kv: (-kv[1], kv[0]))


_SPACE = re.compile(r"\s+")


def text_fingerprint(text: str) -> str:
    return hashlib.blake2b(_SPACE.sub(" ", text.strip().lower()).encode(), digest_size=12).hexdigest()


def collapse_duplicates(items: Iterable[tuple[int, str]]) -> list[int]:
    """Keep the first of items whose text is the same once case and spacing are ignored."""
    seen: set[str] = set()
    kept: list[int] = []
    for item, text in items:
        fingerprint = text_fingerprint(text)
        if fingerprint not in seen:
            seen.add(fingerprint)
            kept.append(item)
    return kept
