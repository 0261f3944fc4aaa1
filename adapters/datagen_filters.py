"""The filters a generated question and answer must pass to become training data (``adapters.datagen``).

Each filter is a plain function over one candidate that returns None when it passes, else the
reason name it is counted under (``REASONS``). They run cheapest first, so a row is counted under
the first filter it fails:

- ``malformed``: not a question, too short or too long, or an answer that is empty or too long;
- ``duplicate``: the question is a near-duplicate of one already kept (normalised token sets,
  Jaccard similarity ``DUPLICATE_SIMILARITY`` or more);
- ``restated``: the answer says nothing the question does not (no new key term, or token sets
  ``RESTATED_SIMILARITY`` alike);
- ``copied``: the answer copies its passage: a verbatim run of ``COPY_RUN_WORDS`` words or more;
- ``unsupported``: Chat's answer policy (``assistant.reply_check.check_reply``, claims included)
  does not keep the answer cited to its passage: the same check Chat applies to a model's reply;
- ``round_trip``: Chat's retrieval (``assistant.retrieval.retrieve`` with the settings' k, mode and
  relevance threshold) does not pass the gate or does not rank the passage in its top k.

Unanswerable questions pass ``unanswerable`` instead: the relevance gate refuses them, or at
least ``ABSENT_SHARE`` of their key words occur nowhere in the knowledge base (FTS5 look-up) and
no retrieved sentence comes near answering them (Chat's extractive fallback's score).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from assistant.events import Source
from assistant.extractive import best_sentence
from assistant.reply_check import check_reply, is_abstention
from assistant.retrieval import retrieve, sources_from
from store import fts
from store.knowledge_base import KnowledgeBase
from store.settings import Settings
from store.terms import SEARCH_STOPWORDS, key_terms, question_words

REASONS = ("malformed", "duplicate", "restated", "copied", "unsupported", "round_trip", "answerable_in_kb")
DUPLICATE_SIMILARITY = 0.8
RESTATED_SIMILARITY = 0.8
COPY_RUN_WORDS = 20
ABSENT_SHARE = 0.5
# Chat quotes a sentence scoring 0.5 (support_threshold); an unanswerable question's best sentence must
# score clearly less. On the test manuals: 0.12-0.41 for questions they do not answer, 0.45 for a reworded
# answerable one, 0.90 for a plain answerable one.
EXTRACT_CEILING = 0.4
QUESTION_WORDS_RANGE = (4, 40)  # words in a question
MAX_ANSWER_WORDS = 80

_WORD = re.compile(r"[a-z0-9]+")


@dataclass(frozen=True)
class Passage:
    """The chunk a question was generated from, with what Chat shows of it."""

    chunk_id: str
    doc_id: str
    document: str
    source: str
    text: str
    page: int | None = None
    page_label: str | None = None
    section: str = ""
    document_hash: str = ""

    def as_source(self) -> Source:
        return Source(
            1, self.chunk_id, self.document, self.source, self.page, self.section, self.text, 1.0, self.page_label
        )


def normalise(text: str) -> str:
    """Lower-case words only: what two questions are compared on."""
    return " ".join(_WORD.findall(text.lower()))


def token_set(text: str) -> frozenset[str]:
    return frozenset(w for w in _WORD.findall(text.lower()) if w not in SEARCH_STOPWORDS)


def jaccard(a: frozenset[str], b: frozenset[str]) -> float:
    return len(a & b) / len(a | b) if a or b else 1.0


def malformed(question: str, answer: str | None) -> str | None:
    """``malformed`` unless the question is a question of a sensible length and the answer is short text."""
    words = len(question.split())
    low, high = QUESTION_WORDS_RANGE
    if not question.endswith("?") or not low <= words <= high or len(key_terms(question)) < 2:
        return "malformed"
    if answer is not None and (not answer.strip() or len(answer.split()) > MAX_ANSWER_WORDS or "?" in answer[-2:]):
        return "malformed"
    if answer is not None and re.search(r"^\s*(q|a|question|answer)\s*:", answer, re.I | re.M):
        return "malformed"
    return None


class Duplicates:
    """The questions kept so far; ``check`` says whether a new one nearly repeats one of them."""

    def __init__(self, questions: Iterable[str] = ()):
        self._exact: set[str] = set()
        self._sets: list[frozenset[str]] = []
        for question in questions:
            self.add(question)

    def check(self, question: str, besides: str | None = None) -> str | None:
        """``duplicate`` when the question nearly repeats a kept one other than ``besides`` (the question
        a renamed one was made from: they differ by one name, on purpose)."""
        if normalise(question) in self._exact:
            return "duplicate"
        tokens = token_set(question)
        own = token_set(besides) if besides is not None else None
        if any(jaccard(tokens, seen) >= DUPLICATE_SIMILARITY for seen in self._sets if seen != own):
            return "duplicate"
        return None

    def add(self, question: str) -> None:
        self._exact.add(normalise(question))
        self._sets.append(token_set(question))


def restated(question: str, answer: str) -> str | None:
    """``restated`` when the answer adds no key term to the question, or says nearly its words."""
    new = set(key_terms(answer)) - set(key_terms(question))
    if not new or jaccard(token_set(question), token_set(answer)) >= RESTATED_SIMILARITY:
        return "restated"
    return None


def longest_common_run(a: str, b: str) -> int:
    """The longest run of consecutive words the two texts share (case and punctuation ignored)."""
    x, y = _WORD.findall(a.lower()), _WORD.findall(b.lower())
    best, previous = 0, [0] * (len(y) + 1)
    for i in range(1, len(x) + 1):
        current = [0] * (len(y) + 1)
        for j in range(1, len(y) + 1):
            if x[i - 1] == y[j - 1]:
                current[j] = previous[j - 1] + 1
                best = max(best, current[j])
        previous = current
    return best


def copied(answer: str, passage: Passage) -> str | None:
    """``copied`` when the answer copies ``COPY_RUN_WORDS`` consecutive words of its passage or more."""
    return "copied" if longest_common_run(answer, passage.text) >= COPY_RUN_WORDS else None


def unsupported(question: str, answer: str, passage: Passage, embedder, threshold: float) -> str | None:
    """``unsupported`` unless Chat would keep this answer, cited to its passage, as the model's own reply."""
    if is_abstention(answer):
        return "unsupported"
    checked = check_reply(f"{answer.rstrip()} [1]", question, [passage.as_source()], embedder, threshold)
    if checked.abstained or checked.extractive or not any(c.supported for c in checked.citations):
        return "unsupported"
    return None


def chat_retrieval(kb: KnowledgeBase, question: str, settings: Settings):
    """What Chat retrieves for ``question`` (its k, mode and relevance threshold)."""
    return retrieve(kb, question, k=settings.retrieval_k, threshold=settings.relevance_threshold, mode="hybrid")


def round_trip(kb: KnowledgeBase, question: str, passage: Passage, settings: Settings) -> str | None:
    """``round_trip`` unless Chat's retrieval passes the gate and ranks the passage in its top k."""
    found = chat_retrieval(kb, question, settings)
    if not found.relevant or passage.chunk_id not in {h.chunk_id for h in found.hits}:
        return "round_trip"
    return None


def absent_terms(kb: KnowledgeBase, question: str) -> list[str]:
    """The question's key words that no passage of the knowledge base contains (FTS5, stemmed as search)."""
    return [w for w in question_words(question) if not fts.contains(kb.db, kb.id, w)]


def unanswerable(kb: KnowledgeBase, question: str, settings: Settings) -> str | None:
    """``answerable_in_kb`` unless Chat's gate refuses the question, or at least ``ABSENT_SHARE`` of its
    key words are absent from the knowledge base and no retrieved sentence answers it well enough for
    Chat's extractive fallback to come close (``EXTRACT_CEILING``; "What is the actual capacity of the
    mixer?" has two absent words of four, and "The drum holds 340 litres" answers it)."""
    found = chat_retrieval(kb, question, settings)
    if not found.relevant:
        return None
    words = question_words(question)
    if words and len(absent_terms(kb, question)) >= ABSENT_SHARE * len(words):
        extract = best_sentence(question, sources_from(found.hits), kb.embedder)
        if extract is None or extract.score < EXTRACT_CEILING:
            return None
    return "answerable_in_kb"


def answerable_checks(
    question: str,
    answer: str,
    passage: Passage,
    kb: KnowledgeBase,
    settings: Settings,
    duplicates: Duplicates,
) -> str | None:
    """Every filter of an answerable candidate in order; the first failure's reason, or None."""
    return (
        malformed(question, answer)
        or duplicates.check(question)
        or restated(question, answer)
        or copied(answer, passage)
        or unsupported(question, answer, passage, kb.embedder, settings.support_threshold)
        or round_trip(kb, question, passage, settings)
    )


def unanswerable_checks(question: str, kb: KnowledgeBase, settings: Settings, duplicates: Duplicates) -> str | None:
    """The filters of an unanswerable candidate (its answer is the abstention reply, not checked)."""
    return malformed(question, None) or duplicates.check(question) or unanswerable(kb, question, settings)
