"""Words, stopwords and key terms: the one home of the text rules that search, the relevance gate,
the citation check and the answer scoring share.

Two stopword lists on purpose, each tuned where it is used and measured with it:

- ``SEARCH_STOPWORDS``: dropped from keyword (FTS5) queries and from a question's key terms;
  short, so that a query keeps its words;
- ``CONTENT_STOPWORDS``: words that never carry a fact, skipped when the keywords of a reference
  answer are scored (``adapters.evaluation``, ``adapters.rag_eval``).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

SEARCH_STOPWORDS = frozenset(
    """a an and are as at be but by can do does for from has have how i if in into is it its
    me my of on or so than that the their them then there these they this to was we what when
    where which who why will with you your""".split()
)
# Words of asking, not of the subject: a passage need not contain them to answer.
QUESTION_WORDS = frozenset(
    """about also any could did does done get give got know like make many much need
    please should show tell use used using way would""".split()
)
CONTENT_STOPWORDS = frozenset(
    """a about above after again all also am an and any are as at be because been before being below between both
    but by can could did do does doing down during each few for from further had has have having he her here hers
    him his how i if in into is it its itself just me more most my no nor not now of off on once only or other our
    out over own same she should so some such than that the their them then there these they this those through to
    too under until up very was we were what when where which while who whom why will with would you your yours
    use used using must may might shall one""".split()
)

_TERM = re.compile(r"[A-Za-z0-9_]+")
_WORD = re.compile(r"[a-z0-9]+(?:[.,'-][a-z0-9]+)*")  # keeps "4,000", "1.21", "read-only" whole


def stem(word: str) -> str:
    """A light suffix stem ("replacing" and "replaces" meet at "replac")."""
    for suffix in ("ations", "ation", "ings", "ing", "ies", "ied", "es", "ed", "ly", "s"):
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            return word[: -len(suffix)]
    return word


def key_terms(text: str) -> list[str]:
    """Content words of a question, lightly stemmed (what a passage must mention to answer it)."""
    found = [w.lower() for w in _TERM.findall(text)]
    return list(
        dict.fromkeys(stem(w) for w in found if len(w) > 2 and w not in SEARCH_STOPWORDS and w not in QUESTION_WORDS)
    )


def question_words(question: str) -> list[str]:
    """The question's words that a passage answering it would contain, unstemmed (not stopwords, nor
    words of asking)."""
    found = [w for w in re.findall(r"[a-z0-9]+", question.lower()) if len(w) > 2]
    return list(dict.fromkeys(w for w in found if w not in SEARCH_STOPWORDS and w not in QUESTION_WORDS))


def coverage(question: str, passages: Sequence[str]) -> float:
    """The share of the question's key terms that the passages mention."""
    terms = key_terms(question)
    if not terms:
        return 0.0
    found = {stem(w.lower()) for text in passages for w in _TERM.findall(text)}
    return sum(term in found for term in terms) / len(terms)


def words(text: str) -> list[str]:
    """Lower-cased words, numbers with their separators kept whole."""
    return _WORD.findall(text.lower())


def keywords(reference: str) -> list[str]:
    """The content words of a reference answer, in order, without repeats."""
    seen: dict[str, None] = {}
    for word in words(reference):
        if word not in CONTENT_STOPWORDS and (len(word) >= 3 or word.isdigit()):
            seen.setdefault(word, None)
    return list(seen)
