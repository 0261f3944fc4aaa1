"""Question sets split once into a dev half (for choosing settings) and a test half (for reporting).

The split is fixed by a seed and by each question's ``id``, never by file order: within each
stratum (answerable, unanswerable) the questions are ordered by ``sha256(f"{SEED}:{id}")`` and
the first half (rounded up) is dev. Adding a question later moves no other question between
halves' order, and nothing here looks at answers or scores, so a split cannot be tuned.

    from bench.questions import split
    dev, test = split(load_qa(path))
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

from assistant.evaluation import QAItem

SEED = 20261201  # chosen once, before any setting was tuned on a dev half
HALVES = ("dev", "test", "all")


def _order(item: QAItem) -> str:
    return hashlib.sha256(f"{SEED}:{item.id}".encode()).hexdigest()


def split(items: Sequence[QAItem]) -> tuple[list[QAItem], list[QAItem]]:
    """(dev, test), each keeping the file's order; answerable and unanswerable split separately."""
    ids = [item.id for item in items]
    if len(set(ids)) != len(ids):
        raise ValueError("question ids must be unique to split a question set")
    dev_ids: set[str] = set()
    for unanswerable in (False, True):
        stratum = sorted((item for item in items if item.unanswerable == unanswerable), key=_order)
        dev_ids.update(item.id for item in stratum[: (len(stratum) + 1) // 2])
    return [i for i in items if i.id in dev_ids], [i for i in items if i.id not in dev_ids]


def half(items: Sequence[QAItem], which: str) -> list[QAItem]:
    """``dev``, ``test`` or ``all`` of a question set."""
    if which not in HALVES:
        raise ValueError(f"unknown half {which!r}: use one of {', '.join(HALVES)}")
    if which == "all":
        return list(items)
    dev, test = split(items)
    return dev if which == "dev" else test
