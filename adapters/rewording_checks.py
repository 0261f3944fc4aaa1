"""The checks a rewording must pass against its source row (``adapters.rewording``).

They run cheapest first; a candidate is counted under the first it fails (``REASONS``):

- ``malformed``: not a question of a sensible length (``adapters.datagen_filters.malformed``);
- ``too_close``: its source question barely reworded: the same normalised text, fewer than
  ``MIN_WORD_EDITS`` words changed, or all-word Jaccard similarity ``NEAR_COPY_SIMILARITY`` or more;
- ``in_training``: as near (equal normalised text or that Jaccard similarity) to another question
  of the file, which is trained on: it would not be held out;
- ``duplicate``: a near-duplicate of a rewording already kept (``datagen_filters.Duplicates``);
- ``meaning_changed``: its numbers and codes (words with a digit) are not its source's, or the
  embedding cosine with its source question is under ``MIN_MEANING_COSINE``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

import numpy as np

from adapters.datagen_filters import Duplicates, jaccard, malformed, normalise

REASONS = ("malformed", "too_close", "in_training", "duplicate", "meaning_changed")
MIN_WORD_EDITS = 2  # "How do I reset the controller?" -> "How do I restart the controller?" is one edit: too close
NEAR_COPY_SIMILARITY = 0.8  # all-word Jaccard; a reordering of the same words scores 1.0
# Cosine of all-MiniLM-L6-v2 (store.embedding.Embedder(), bundled) between source and rewording. On 13 real
# good rewordings: 0.76-0.96 ("How often should the compressor oil be changed?" -> "At what interval does the
# compressor need fresh oil?" 0.77; "What is the maximum operating temperature of the Orvane R3?" -> "How hot can
# the Orvane R3 get while it is running before it is out of spec?" 0.76; "Which fuse protects the control unit?"
# -> "What fuse is the control unit protected by?" 0.96). On 16 bad ones, another question on the same subject:
# 0.01-0.74 for 11 ("What size are the wheel nuts?" for their torque 0.74, "What causes a controller fault?" for
# how to reset it 0.68, "What is the capital of France?" 0.23), but 0.77-0.96 for 5 that change one detail
# ("weight" for "capacity" 0.80, "take to charge" for "last on a charge" 0.77, "children" for "adults" 0.93,
# "minimum" for "maximum" 0.96, "E05" for "E04" 0.89): an embedding cannot see those; the digit check catches
# the changed code, the other 4 pass.
MIN_MEANING_COSINE = 0.75
_DIGITS = re.compile(r"\b\w*\d\w*\b")


def word_edits(a: str, b: str) -> int:
    """Word-level edit distance between two normalised texts (insert, delete, replace one word)."""
    x, y = normalise(a).split(), normalise(b).split()
    previous = list(range(len(y) + 1))
    for i in range(1, len(x) + 1):
        current = [i] + [0] * len(y)
        for j in range(1, len(y) + 1):
            current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (x[i - 1] != y[j - 1]))
        previous = current
    return previous[-1]


def _words(text: str) -> frozenset[str]:
    return frozenset(normalise(text).split())


def near_copy(a: str, b: str) -> bool:
    """The same normalised text, or all-word Jaccard similarity ``NEAR_COPY_SIMILARITY`` or more."""
    return normalise(a) == normalise(b) or jaccard(_words(a), _words(b)) >= NEAR_COPY_SIMILARITY


def too_close(candidate: str, source: str) -> str | None:
    """``too_close`` when the candidate is its source question with a word or so changed."""
    return "too_close" if near_copy(candidate, source) or word_edits(candidate, source) < MIN_WORD_EDITS else None


def same_digits(candidate: str, source: str) -> bool:
    """The candidate keeps its source's numbers and codes and adds none ("E04" is not "E05")."""
    return set(_DIGITS.findall(candidate.lower())) == set(_DIGITS.findall(source.lower()))


def cosine(embedder, a: str, b: str) -> float:
    """Cosine of two texts' embeddings (the embedder's vectors are normalised)."""
    vectors = embedder.encode([a, b])
    return float(np.dot(vectors[0], vectors[1]))


class Checks:
    """The checks of ``REASONS`` over one file's questions and the rewordings kept so far."""

    def __init__(self, questions: Iterable[tuple[int, str]], embedder, kept: Iterable[str] = ()):
        """``questions``: (line, question) of every row trained on."""
        self.embedder = embedder
        self.trained = [(line, normalise(question), _words(question)) for line, question in questions]
        self.kept = Duplicates(kept)

    def check(self, candidate: str, source: str, line: int) -> tuple[str | None, float | None]:
        """(the first failed check's reason or None, the cosine with the source question when computed)."""
        reason = (
            malformed(candidate, None)
            or too_close(candidate, source)
            or self._in_training(candidate, line)
            or self.kept.check(candidate)
        )
        if reason:
            return reason, None
        if not same_digits(candidate, source):
            return "meaning_changed", None
        similarity = cosine(self.embedder, source, candidate)
        return ("meaning_changed" if similarity < MIN_MEANING_COSINE else None), similarity

    def keep(self, candidate: str) -> None:
        self.kept.add(candidate)

    def _in_training(self, candidate: str, line: int) -> str | None:
        text, words = normalise(candidate), _words(candidate)
        for other, other_text, other_words in self.trained:
            if other != line and (text == other_text or jaccard(words, other_words) >= NEAR_COPY_SIMILARITY):
                return "in_training"
        return None
