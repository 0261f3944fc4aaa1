"""Retrieval for chat: hybrid search, the follow-up query, and the relevance gate.

The gate decides whether the knowledge base holds an answer at all before the model is asked.
Retrieval similarity alone does not separate unanswerable questions (on a real manual the top
similarity was 0.54 for unanswerable vs 0.57 for answerable ones), so three signals are combined:

- ``similarity``: the best vector cosine similarity;
- ``coverage``: the share of the question's key terms found in the retrieved passages (with their
  document and section names);
- ``agreement``: how much the keyword and vector top results overlap.

``relevance = 0.5 * similarity + 0.4 * coverage + 0.1 * agreement``; the threshold is a setting,
calibrated with ``python app.py eval rag`` on the shipped eval set.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Sequence

from store.fts import STOPWORDS
from store.knowledge_base import KnowledgeBase
from store.records import SearchHit

WEIGHTS = {"similarity": 0.5, "coverage": 0.4, "agreement": 0.1}
_WORD = re.compile(r"[A-Za-z0-9_]+")
_QUESTION_WORDS = frozenset("""about also any could did does done get give got know like make many much need
    please should show tell use used using way would""".split())


@dataclass(frozen=True)
class Retrieval:
    query: str
    hits: list[SearchHit]
    signals: dict[str, float] = field(default_factory=dict)
    relevance: float = 0.0
    relevant: bool = False


def key_terms(text: str) -> list[str]:
    """Content words of a question, lightly stemmed (what a passage must mention to answer it)."""
    words = [w.lower() for w in _WORD.findall(text)]
    return list(dict.fromkeys(stem(w) for w in words
                              if len(w) > 2 and w not in STOPWORDS and w not in _QUESTION_WORDS))


def stem(word: str) -> str:
    for suffix in ("ations", "ation", "ings", "ing", "ies", "ied", "es", "ed", "ly", "s"):
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            return word[: -len(suffix)]
    return word


def coverage(question: str, passages: Sequence[str]) -> float:
    terms = key_terms(question)
    if not terms:
        return 0.0
    found = {stem(w.lower()) for text in passages for w in _WORD.findall(text)}
    return sum(term in found for term in terms) / len(terms)


def retrieval_query(question: str, history: Sequence[dict]) -> str:
    """The question, preceded by the last user turn so that follow-ups ("and its torque?") resolve."""
    previous = [m["content"] for m in history if m.get("role") == "user"][-1:]
    return " ".join([*previous, question]).strip()


def retrieve(kb: KnowledgeBase, question: str, history: Sequence[dict] = (), *, k: int = 5,
             threshold: float = 0.50, mode: str = "hybrid") -> Retrieval:
    query = retrieval_query(question, history)
    results = kb.search_all(query, k=max(k, 10))
    hits = results[mode][:k]
    vector, keyword = results["vector"], results["keyword"]
    if not hits:
        return Retrieval(query, [], {}, 0.0, False)
    top_v = {h.chunk_id for h in vector[:5]}
    top_k = {h.chunk_id for h in keyword[:5]}
    signals = {
        "similarity": max(0.0, vector[0].score) if vector else 0.0,
        "coverage": coverage(question, [f"{h.document} {h.section} {h.text}" for h in hits]),
        "agreement": len(top_v & top_k) / max(1, min(len(top_v), len(top_k))) if top_v and top_k else 0.0,
    }
    relevance = sum(WEIGHTS[name] * value for name, value in signals.items())
    return Retrieval(query, hits, signals, relevance, relevance >= threshold)
