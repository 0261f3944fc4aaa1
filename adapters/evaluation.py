"""Before/after evaluation: validation loss and perplexity, and answer quality on held-out Q&A.

Answer quality is scored two ways, both plain Python so the same scoring runs on transformers
output (in the worker) and llama.cpp output (export smoke test, benches):

- keyword recall: the share of the reference answer's content words (numbers, names, terms)
  found in the reply; ``all_keywords`` is the strict form the fact benchmark uses;
- ROUGE-L: the F1 of the longest common subsequence of words.

When a knowledge base is involved, ``adapters.rag_eval`` also asks the held-out questions with
retrieval on, in Chat's prompt, and scores them the way ``eval rag`` does.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

from store.terms import keywords, words


def keyword_recall(reply: str, reference: str | Sequence[str]) -> float:
    expected = keywords(reference) if isinstance(reference, str) else [k.lower() for k in reference]
    if not expected:
        return 1.0
    have = set(words(reply))
    text = " ".join(words(reply))
    return sum(1 for k in expected if k in have or (" " in k and k in text)) / len(expected)


def all_keywords(reply: str, expected: Sequence[str]) -> bool:
    """True when every expected keyword (a word or a phrase) appears in the reply."""
    return keyword_recall(reply, list(expected)) == 1.0


def rouge_l(reply: str, reference: str) -> float:
    a, b = words(reply), words(reference)
    if not a or not b:
        return 0.0
    previous = [0] * (len(b) + 1)
    for x in a:
        current = [0]
        for j, y in enumerate(b, start=1):
            current.append(previous[j - 1] + 1 if x == y else max(previous[j], current[j - 1]))
        previous = current
    lcs = previous[-1]
    if lcs == 0:
        return 0.0
    precision, recall = lcs / len(a), lcs / len(b)
    return 2 * precision * recall / (precision + recall)


def answer_scores(replies: Iterable[str], references: Iterable[str]) -> dict[str, float]:
    pairs = list(zip(replies, references, strict=False))
    if not pairs:
        return {"keyword_recall": 0.0, "rouge_l": 0.0, "count": 0}
    return {
        "keyword_recall": round(sum(keyword_recall(r, ref) for r, ref in pairs) / len(pairs), 4),
        "rouge_l": round(sum(rouge_l(r, ref) for r, ref in pairs) / len(pairs), 4),
        "count": len(pairs),
    }


def perplexity(loss: float) -> float:
    return math.exp(min(loss, 50.0))
