"""Combining and cleaning ranked lists: reciprocal rank fusion and near-duplicate collapse."""

from __future__ import annotations

import hashlib
import re
from typing import Iterable, Sequence

RRF_K = 60


def reciprocal_rank_fusion(rankings: Sequence[Sequence[int]], k: int = RRF_K) -> list[tuple[int, float]]:
    """Fuse ranked id lists: score(id) = Σ 1 / (k + rank), rank starting at 1. Best first."""
    scores: dict[int, float] = {}
    for ranking in rankings:
        for rank, item in enumerate(ranking, start=1):
            scores[item] = scores.get(item, 0.0) + 1.0 / (k + rank)
    return sorted(scores.items(), key=lambda kv: (-kv[1], kv[0]))


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
