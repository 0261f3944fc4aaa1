"""Checks that a reply answers the question, and the extractive fallback when it does not.

A small model sometimes copies an unrelated source or echoes the question back. A reply must
mention the question's subject (key-term coverage or embedding similarity) and add something
the question did not already say. When it fails, the sentence of the retrieved passages that
best answers the question is quoted instead, with its citation, if one is good enough.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from assistant.events import Source
from assistant.sentences import split_sentences
from store.terms import coverage, key_terms


def addresses(question: str, reply: str, embedder, threshold: float = 0.5) -> bool:
    """Does the reply talk about what was asked, and say more than the question itself?"""
    new_terms = set(key_terms(reply)) - set(key_terms(question)) - {"answer", "question", "source", "sources"}
    if not new_terms:
        return False
    if coverage(question, [reply]) >= threshold:
        return True
    vectors = embedder.encode([question, reply])
    return float(vectors[0] @ vectors[1]) >= threshold


def quotable(sentence: str) -> bool:
    """A statement, not a question heading ("How do I ...?") or an interactive-session line (">>> ...")."""
    return not sentence.endswith("?") and not sentence.startswith((">>>", "...", "$ ", "#"))


@dataclass(frozen=True)
class Extract:
    sentence: str
    n: int
    score: float


def best_sentence(question: str, sources: Sequence[Source], embedder, max_sources: int = 3) -> Extract | None:
    """The sentence of the top passages that best matches the question (coverage + similarity)."""
    candidates: list[tuple[str, int]] = []
    for source in sources[:max_sources]:
        for sentence in split_sentences(source.text):
            sentence = " ".join(sentence.split())
            if len(key_terms(sentence)) >= 3 and quotable(sentence):
                candidates.append((sentence, source.n))
    if not candidates:
        return None
    vectors = embedder.encode([question] + [c[0] for c in candidates])
    similarity = np.clip(vectors[1:] @ vectors[0], 0.0, 1.0)
    scores = [0.5 * float(similarity[i]) + 0.5 * coverage(question, [c[0]]) for i, c in enumerate(candidates)]
    best = int(np.argmax(scores))
    return Extract(candidates[best][0], candidates[best][1], scores[best])
