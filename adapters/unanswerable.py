"""Unanswerable questions made from answerable ones: the name a question asks about, renamed to one no
document uses.

Asked for a question its passage does not answer, a small generator nearly always writes one the
knowledge base does answer ("What is the purpose of the /etc directory?"): Qwen2.5-Coder-0.5B kept 3
unanswerable questions from 300 passages of the Debian Policy manual, and none usable on a sample of
14 with three other prompts; asked to rename the subject instead, it copied the question. So when the
model's question fails the checks, one of the passage's accepted questions is taken and its most
specific name is replaced by an invented word the knowledge base never uses: the rarest in the
knowledge base of the words that make up its identifiers and quoted terms, else its hyphenated
words, else its capitalised ones; never a word of a name several document titles share, nor one the
question says twice. "Which oil goes into the Vantor K7 gearbox?" becomes "Which oil goes into the
Quillon K7 gearbox?". A plausible name the documents do not have is what makes a grounded model
invent an answer; the right reply is Chat's abstention.
"""

from __future__ import annotations

import hashlib
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from store import fts
from store.knowledge_base import KnowledgeBase
from store.terms import QUESTION_WORDS, SEARCH_STOPWORDS

# Pronounceable made-up words (none an English word); one absent from the knowledge base is used.
INVENTED = (
    "quillon", "vextra", "morlan", "tessaro", "brennik", "calvex", "dorvane", "elstrin", "fennix", "galdor",
    "hexmire", "istrel", "jorvik", "kestran", "lumora", "marvex", "nolbrin", "orrick", "pellion", "quorvan",
    "ravonne", "sarkon", "tilvane", "ulmarra", "varnis", "wextral", "xandril", "yarnex", "zephlin", "corvane",
)  # fmt: skip
MAX_DOCUMENTS = 200  # a word in more chunks than this is not a name

# The kinds of names, most specific first: identifiers (fonts.dir, /var/games, json.dumps, K7, PostgreSQL)
# and quoted or backticked terms; hyphenated words (dpkg-shlibdeps, but also boot-time); capitalised
# words (Vantor). The subject is taken from the first kind the question has.
_NAME_KINDS = (
    re.compile(r"`[^`]+`|\"[^\"]+\"|/?\w+(?:[_./:]\w+)+|\b\w*(?:[a-z][A-Z]|\d[A-Za-z]|[A-Za-z]\d)\w*\b"),
    re.compile(r"\b\w+(?:-\w+)+\b"),
    re.compile(r"\b[A-Z]\w+\b"),
)
_LETTERS = re.compile(r"[A-Za-z]{3,}")
_WORDS = re.compile(r"\w+")
_TITLE_PARTS = re.compile(r"\s+[—–|-]\s+|:\s+")


@dataclass(frozen=True)
class Renamed:
    question: str  # the unanswerable question
    original: str  # the answerable question it was made from
    name: str  # the word replaced ...
    invented: str  # ... and its replacement

    def to_json(self) -> dict:
        """The row's ``renamed`` field: what the question was made from, for the reviewer."""
        return {"renamed": {"from": self.original, "name": self.name, "invented": self.invented}}


def rename(question: str, kb: KnowledgeBase, seed: int = 0) -> Renamed | None:
    """``question`` with its most specific name replaced by an invented word, or None when it names nothing
    the knowledge base holds (or every invented word occurs in it)."""
    word = subject_word(question, kb)
    if word is None:
        return None
    start = int(hashlib.sha256(f"{seed}\n{question}".encode()).hexdigest(), 16) % len(INVENTED)
    for offset in range(len(INVENTED)):
        invented = INVENTED[(start + offset) % len(INVENTED)]
        if not fts.contains(kb.db, kb.id, invented):
            replacement = _same_case(invented, word)
            renamed = re.sub(rf"(?<![A-Za-z]){re.escape(word)}(?![A-Za-z])", replacement, question, count=1)
            return Renamed(_article(renamed, replacement), question, word, replacement)
    return None


def subject_word(question: str, kb: KnowledgeBase) -> str | None:
    """The word of the question's most specific names that the fewest chunks contain (at least one does),
    as written. A collection's name is context, not a subject ("... in the Debian Policy Manual?",
    ``title_words``), and so are the question's first word, its stopwords and the words it says twice."""
    first_word = question.split(maxsplit=1)[0] if question.strip() else ""
    skip = title_words(kb, question)
    for kind in _NAME_KINDS:
        candidates: list[str] = []
        for match in kind.finditer(question):
            if match.group() == first_word:  # "Which", "How": capitalised only by the sentence
                continue
            for letters in _LETTERS.findall(match.group()):
                lower = letters.lower()
                if lower in SEARCH_STOPWORDS | QUESTION_WORDS | skip or letters in candidates:
                    continue
                if len(re.findall(rf"(?<![A-Za-z]){lower}(?![A-Za-z])", question.lower())) == 1:
                    candidates.append(letters)  # a word said twice names a subject that renaming once keeps
        counted = [(documents(kb, word), index, word) for index, word in enumerate(candidates)]
        present = [c for c in counted if 0 < c[0] <= MAX_DOCUMENTS]
        if present:
            return min(present)[2]
    return None


def title_words(kb: KnowledgeBase, question: str) -> frozenset[str]:
    """The lower-cased words of the collection names the question says whole: a title, or a part of
    one between dashes, that several documents share ("... — Debian Policy Manual v4.6.2.0") names where
    to look, not what is asked. One document's own title ("Vantor K7 turbine") may well be the subject."""
    said = " " + " ".join(_WORDS.findall(question.lower())) + " "
    found = kb.db.execute("SELECT title FROM documents WHERE kb_id = ?", [kb.id]).fetchall()
    shared = Counter(
        name
        for (title,) in found
        for name in {" ".join(_WORDS.findall(p.lower())) for p in _TITLE_PARTS.split(title or "")}
    )
    return frozenset(
        w for name, n in shared.items() if n > 1 and name and f" {name} " in said for w in _LETTERS.findall(name)
    )


def documents(kb: KnowledgeBase, word: str) -> int:
    """How many chunks contain ``word`` (stemmed as keyword search stems), up to MAX_DOCUMENTS + 1."""
    return len(fts.keyword_search(kb.db, kb.id, word, MAX_DOCUMENTS + 1))


def first_renamable(questions: Sequence[str], kb: KnowledgeBase, seed: int = 0) -> Renamed | None:
    for question in questions:
        renamed = rename(question, kb, seed)
        if renamed is not None:
            return renamed
    return None


def _same_case(word: str, like: str) -> str:
    if like.isupper() and len(like) > 1:
        return word.upper()
    return word.capitalize() if like[0].isupper() else word


def _article(question: str, word: str) -> str:
    """ "a Istrel K7" -> "an Istrel K7" (and "an Quillon" -> "a Quillon")."""
    article = "an" if word[0].lower() in "aeiou" else "a"
    return re.sub(rf"\b([Aa])n? (?={re.escape(word)}\b)", lambda m: m.group(1) + article[1:] + " ", question)
