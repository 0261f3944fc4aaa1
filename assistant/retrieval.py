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

``unknown_names``: the question's rare words that no passage of the whole knowledge base contains
("the fluxcache module", "json.autofix()"). No source can state anything about them, so the
citation check counts a sentence that names one as unsupported (``assistant.claims``): the
question's own words are otherwise taken as known, and a model asked about a plausible name the
documents lack will happily describe it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from assistant.events import Source
from store import fts
from store.knowledge_base import KnowledgeBase
from store.records import SearchHit
from store.terms import coverage, question_words

WEIGHTS = {"similarity": 0.5, "coverage": 0.4, "agreement": 0.1}


@dataclass(frozen=True)
class Retrieval:
    query: str
    hits: list[SearchHit]
    signals: dict[str, float] = field(default_factory=dict)
    relevance: float = 0.0
    relevant: bool = False
    unknown_names: tuple[str, ...] = ()


def retrieval_query(question: str, history: Sequence[dict]) -> str:
    """The question, preceded by the last user turn so that follow-ups ("and its torque?") resolve."""
    previous = [m["content"] for m in history if m.get("role") == "user"][-1:]
    return " ".join([*previous, question]).strip()


def retrieve(
    kb: KnowledgeBase,
    question: str,
    history: Sequence[dict] = (),
    *,
    k: int = 5,
    threshold: float = 0.50,
    mode: str = "hybrid",
    neighbour_tokens: int = 0,
) -> Retrieval:
    """The ``k`` best passages and the gate's verdict; with ``neighbour_tokens``, each passage is then
    grown with its section's neighbours to that size (``KnowledgeBase.with_neighbours``; the gate
    has judged the passages as found)."""
    query = retrieval_query(question, history)
    results = kb.search_all(query, k=max(k, 10))
    hits = results[mode][:k]
    vector, keyword = results["vector"], results["keyword"]
    if not hits:
        return Retrieval(query, [], {}, 0.0, False, unknown_names(kb, question))
    top_v = {h.chunk_id for h in vector[:5]}
    top_k = {h.chunk_id for h in keyword[:5]}
    signals = {
        "similarity": max(0.0, vector[0].score) if vector else 0.0,
        "coverage": coverage(question, [f"{h.document} {h.section} {h.text}" for h in hits]),
        "agreement": len(top_v & top_k) / max(1, min(len(top_v), len(top_k))) if top_v and top_k else 0.0,
    }
    relevance = sum(WEIGHTS[name] * value for name, value in signals.items())
    if neighbour_tokens > 0:
        hits = kb.with_neighbours(hits, neighbour_tokens)
    return Retrieval(query, hits, signals, relevance, relevance >= threshold, unknown_names(kb, question))


def unknown_names(kb: KnowledgeBase, question: str) -> tuple[str, ...]:
    """The question's words that the embedder's vocabulary splits (a name or a rare term, not "fast",
    which a small knowledge base may well lack) and that no chunk of the knowledge base contains.
    Words with a digit are values, not names: numbers are left to the check of quantities ("4380" is
    "4,380" in a passage), and a version the user gives ("1.0~rc1") may well be repeated in the answer."""
    words = [w for w in question_words(question) if not any(c.isdigit() for c in w)]
    if not words:
        return ()
    rare = [w for w, pieces in zip(words, kb.embedder.count_tokens(words), strict=True) if pieces > 1]
    return tuple(w for w in rare if not fts.contains(kb.db, kb.id, w))


def sources_from(hits: Sequence[SearchHit]) -> list[Source]:
    """Retrieved passages numbered ``[1]``, ``[2]``... as the prompt offers them."""
    return [
        Source(
            n=i,
            chunk_id=h.chunk_id,
            document=h.document,
            source=h.source,
            page=h.page,
            section=h.section,
            text=h.text,
            score=h.score,
            page_label=h.page_label,
            ocr=h.ocr,
        )
        for i, h in enumerate(hits, start=1)
    ]
