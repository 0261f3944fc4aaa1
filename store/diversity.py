"""Diverse search results: near-duplicate passages dropped, a cap per document, maximal marginal relevance.

Without these, one page that says the same thing several times can take every one of the k
slots (on the Python manual, five of eight results came from one reference page). Each
function takes the candidates of one ranking, best first, and returns the chosen ones in the
order they are offered; all are deterministic (ties keep the ranking's order).

- ``drop_near_duplicates``: a passage of the same document as a better one that overlaps it by
  more than half of the shorter span, or whose words are nearly the same (Jaccard of word
  3-shingles >= ``NEAR_DUPLICATE``), is dropped.
- ``cap_per_document``: at most ``cap`` passages of one document; the slots left are filled by
  the next best of other documents, and only when there are none by the capped ones, in order.
- ``maximal_marginal_relevance``: greedily the candidate with the best
  ``lam * relevance - (1 - lam) * max cosine to those already chosen``, relevance being the
  ranking's score scaled to [0, 1] over the candidates; the cosines use the stored chunk vectors.

``choose`` applies the configured one (``Diversity.mode``: "none", "dedupe", "cap" or "mmr";
"cap" and "mmr" drop near-duplicates first), choosing among the ranking's best ``pool_size(k)``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

DIVERSITY_MODES = ("none", "dedupe", "cap", "mmr")
NEAR_DUPLICATE = 0.8  # word 3-shingle Jaccard at or above which two passages say the same
OVERLAP = 0.5  # share of the shorter span two passages of one document may share

_WORD = re.compile(r"\w+")


def pool_size(k: int) -> int:
    """How many of a ranking's best candidates diversity chooses from."""
    return max(4 * k, 20)


@dataclass(frozen=True)
class Diversity:
    """How a ranking is diversified; the default changes nothing."""

    mode: str = "none"
    per_document_cap: int = 2
    mmr_lambda: float = 0.7

    def __post_init__(self) -> None:
        if self.mode not in DIVERSITY_MODES:
            raise ValueError(f"unknown diversity {self.mode!r}: use one of {', '.join(DIVERSITY_MODES)}")
        if self.per_document_cap < 1:
            raise ValueError(f"per_document_cap must be at least 1 (got {self.per_document_cap})")
        if not 0.0 <= self.mmr_lambda <= 1.0:
            raise ValueError(f"mmr_lambda must be between 0 and 1 (got {self.mmr_lambda})")


@dataclass(frozen=True)
class Candidate:
    """One passage of a ranking: its chunk row id, score (higher is better), document and span."""

    id: int
    score: float
    doc_id: str
    text: str
    start: int = 0
    end: int = 0


def choose(
    candidates: Sequence[Candidate],
    k: int,
    diversity: Diversity,
    vectors: Callable[[Sequence[int]], np.ndarray],
) -> list[Candidate]:
    """The ``k`` candidates to offer under ``diversity``; ``vectors(ids)`` gives unit chunk vectors (MMR only)."""
    if diversity.mode == "none":
        return list(candidates[:k])
    kept = drop_near_duplicates(candidates[: pool_size(k)])
    if diversity.mode == "cap":
        return cap_per_document(kept, k, diversity.per_document_cap)
    if diversity.mode == "mmr":
        return maximal_marginal_relevance(kept, k, diversity.mmr_lambda, vectors([c.id for c in kept]))
    return kept[:k]


def _shingles(text: str, n: int = 3) -> set[tuple[str, ...]]:
    words = _WORD.findall(text.lower())
    if len(words) < n:
        return {tuple(words)} if words else set()
    return {tuple(words[i : i + n]) for i in range(len(words) - n + 1)}


def _overlaps(a: Candidate, b: Candidate) -> bool:
    shared = min(a.end, b.end) - max(a.start, b.start)
    shorter = min(a.end - a.start, b.end - b.start)
    return shorter > 0 and shared > OVERLAP * shorter


def _similar_words(a: set[tuple[str, ...]], b: set[tuple[str, ...]]) -> bool:
    """Jaccard(a, b) >= NEAR_DUPLICATE, without building the union (and not at all when sizes rule it out)."""
    if not a or not b or min(len(a), len(b)) < NEAR_DUPLICATE * max(len(a), len(b)):
        return False
    shared = len(a & b)
    return shared >= NEAR_DUPLICATE * (len(a) + len(b) - shared)


def drop_near_duplicates(candidates: Sequence[Candidate]) -> list[Candidate]:
    """Keep each candidate unless a better one of the same document is its near-duplicate: the spans
    overlap by more than half, or the words are nearly the same (shingled only when compared)."""
    kept: list[Candidate] = []
    shingles: dict[int, set[tuple[str, ...]]] = {}  # by candidate id

    def words(candidate: Candidate) -> set[tuple[str, ...]]:
        if candidate.id not in shingles:
            shingles[candidate.id] = _shingles(candidate.text)
        return shingles[candidate.id]

    def near_duplicates(a: Candidate, b: Candidate) -> bool:
        return a.doc_id == b.doc_id and (_overlaps(a, b) or _similar_words(words(a), words(b)))

    for candidate in candidates:
        if not any(near_duplicates(candidate, better) for better in kept):
            kept.append(candidate)
    return kept


def cap_per_document(candidates: Sequence[Candidate], k: int, cap: int) -> list[Candidate]:
    """The best ``k`` with at most ``cap`` per document; capped ones only fill slots nobody else can."""
    chosen: list[Candidate] = []
    spare: list[Candidate] = []
    per_document: dict[str, int] = {}
    for candidate in candidates:
        if len(chosen) == k:
            break
        if per_document.get(candidate.doc_id, 0) < cap:
            per_document[candidate.doc_id] = per_document.get(candidate.doc_id, 0) + 1
            chosen.append(candidate)
        else:
            spare.append(candidate)
    return chosen + spare[: k - len(chosen)]


def maximal_marginal_relevance(
    candidates: Sequence[Candidate], k: int, lam: float, vectors: np.ndarray
) -> list[Candidate]:
    """Greedy MMR over ``candidates`` (best first) with their unit ``vectors`` (one row each)."""
    if not candidates or k <= 0:
        return []
    scores = np.array([c.score for c in candidates], dtype=np.float64)
    spread = scores.max() - scores.min()
    relevance = (scores - scores.min()) / spread if spread > 0 else np.ones_like(scores)
    similarity = np.asarray(vectors, dtype=np.float64) @ np.asarray(vectors, dtype=np.float64).T
    chosen: list[int] = []
    closest = np.full(len(candidates), -np.inf)  # max cosine to the chosen ones so far
    left = np.ones(len(candidates), dtype=bool)
    for _ in range(min(k, len(candidates))):
        penalty = np.where(np.isfinite(closest), closest, 0.0)
        value = np.where(left, lam * relevance - (1.0 - lam) * penalty, -np.inf)
        best = int(np.argmax(value))  # the first of equal values: the better ranked
        chosen.append(best)
        left[best] = False
        closest = np.maximum(closest, similarity[best])
    return [candidates[i] for i in chosen]
