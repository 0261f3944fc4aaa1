"""Question sets split once into a dev half (for choosing settings) and a test half (for reporting).

The split is fixed by a seed and by each question's ``id``, never by file order: within each
stratum (answerable or unanswerable, and batch) the questions are ordered by
``sha256(f"{SEED}:{id}")`` and the first half (rounded up) is dev. A batch is the letters an id
starts with (``pg`` in ``pg07``): questions written later get ids of a new batch (``pgb01``) and
are split among themselves, so no question already in a half ever moves to the other. Nothing
here looks at answers or scores, so a split cannot be tuned.

    from bench.questions import split
    dev, test = split(load_qa(path))
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from pathlib import Path

from assistant.evaluation import QAItem, load_qa
from bench.corpus import QUESTIONS

SEED = 20261201  # chosen once, before any setting was tuned on a dev half
HALVES = ("dev", "test", "all")

# A second batch of 30 questions per corpus (2026-12-03), on pages drawn at random. Kept in files of
# their own: the benches that recorded figures on the first batch (bench/chat.py, bench/loop.py,
# bench/answer_policy.py) still read only ``QUESTIONS``; the retrieval benches read both.
SECOND_BATCH: dict[str, Path] = {name: path.with_name(path.stem + "_b.jsonl") for name, path in QUESTIONS.items()}
BATCHES = ("first", "second", "both")


def question_files(name: str, batch: str = "both") -> list[Path]:
    """The question files of corpus ``name``: its ``first`` batch, its ``second`` or ``both``."""
    if batch not in BATCHES:
        raise ValueError(f"unknown batch {batch!r}: use one of {', '.join(BATCHES)}")
    return [
        path for which, path in (("first", QUESTIONS[name]), ("second", SECOND_BATCH[name])) if batch in (which, "both")
    ]


def _order(item: QAItem) -> str:
    return hashlib.sha256(f"{SEED}:{item.id}".encode()).hexdigest()


def batch(question_id: str) -> str:
    """The batch a question belongs to: the letters its id starts with (``pgb`` in ``pgb01``)."""
    return re.match(r"[^\d]*", question_id).group(0)


def split(items: Sequence[QAItem]) -> tuple[list[QAItem], list[QAItem]]:
    """(dev, test), each keeping the file's order; answerable and unanswerable split separately."""
    ids = [item.id for item in items]
    if len(set(ids)) != len(ids):
        raise ValueError("question ids must be unique to split a question set")
    strata: dict[tuple[bool, str], list[QAItem]] = {}
    for item in items:
        strata.setdefault((item.unanswerable, batch(item.id)), []).append(item)
    dev_ids: set[str] = set()
    for stratum in strata.values():
        ordered = sorted(stratum, key=_order)
        dev_ids.update(item.id for item in ordered[: (len(ordered) + 1) // 2])
    return [i for i in items if i.id in dev_ids], [i for i in items if i.id not in dev_ids]


def load(paths: Sequence[Path]) -> list[QAItem]:
    """The questions of several files (batches of one corpus), in order (``split`` checks their ids)."""
    return [item for path in paths for item in load_qa(path)]


def half(items: Sequence[QAItem], which: str) -> list[QAItem]:
    """``dev``, ``test`` or ``all`` of a question set."""
    if which not in HALVES:
        raise ValueError(f"unknown half {which!r}: use one of {', '.join(HALVES)}")
    if which == "all":
        return list(items)
    dev, test = split(items)
    return dev if which == "dev" else test
