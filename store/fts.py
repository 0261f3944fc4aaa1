"""Keyword search over chunk text with SQLite FTS5 (bm25), and the query escaping it needs."""

from __future__ import annotations

import re

from sqlite_utils import Database

from store.database import rows
from store.terms import SEARCH_STOPWORDS

_TERM = re.compile(r"\w+", re.UNICODE)

# bm25 column weights: chunk text, then its context (document title and section path).
_WEIGHTS = (1.0, 2.0)


def match_expression(query: str) -> str | None:
    """An FTS5 MATCH expression: every meaningful term quoted, OR-ed, so bm25 does the ranking.

    Quoting makes user text safe: FTS5 operators and punctuation in a query are searched as
    words, never interpreted. Returns None when nothing searchable is left.
    """
    terms = [t for t in _TERM.findall(query.lower()) if t not in SEARCH_STOPWORDS] or _TERM.findall(query.lower())
    unique = list(dict.fromkeys(terms))
    if not unique:
        return None
    return " OR ".join('"' + t.replace('"', '""') + '"' for t in unique[:64])


def keyword_search(db: Database, kb_id: int, query: str, limit: int) -> list[tuple[int, float]]:
    """(chunk row id, score) best first; the score is -bm25, so higher is better."""
    expression = match_expression(query)
    if expression is None:
        return []
    found = rows(
        db,
        f"""
        SELECT chunks.id AS id, -bm25(chunks_fts, {_WEIGHTS[0]}, {_WEIGHTS[1]}) AS score
        FROM chunks_fts JOIN chunks ON chunks.id = chunks_fts.rowid
        WHERE chunks_fts MATCH ? AND chunks.kb_id = ?
        ORDER BY bm25(chunks_fts, {_WEIGHTS[0]}, {_WEIGHTS[1]})
        LIMIT ?""",
        [expression, kb_id, limit],
    )
    return [(int(r["id"]), float(r["score"])) for r in found]


def contains(db: Database, kb_id: int, word: str) -> bool:
    """Does any chunk of the knowledge base contain ``word`` (stemmed as keyword search stems it)?"""
    expression = match_expression(word)
    if expression is None:
        return True
    found = db.execute(
        """SELECT 1 FROM chunks_fts JOIN chunks ON chunks.id = chunks_fts.rowid
           WHERE chunks_fts MATCH ? AND chunks.kb_id = ? LIMIT 1""",
        [expression, kb_id],
    ).fetchone()
    return found is not None


def check_integrity(db: Database) -> None:
    """Raise sqlite3.DatabaseError when the FTS index disagrees with the chunks table."""
    db.execute("INSERT INTO chunks_fts(chunks_fts, rank) VALUES('integrity-check', 1)")
