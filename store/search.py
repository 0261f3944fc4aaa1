"""Searching one knowledge base: vector, keyword and hybrid search, fused and turned into hits.

Vector search asks the hnswlib index for the query's embedding; keyword search asks SQLite's
FTS5 (``store.fts``); hybrid fuses the two rankings by reciprocal rank (``store.ranking``; with a
``page_weight``, the best passage of each page is lifted by its page's own fused rank).
Each ranking is a list of (chunk row id, score), best first; ``to_hits`` reads those chunks
back with their documents and anchors, drops passages whose text repeats a better one's, and
numbers the rest; a ``store.diversity.Diversity`` other than the default also drops near-duplicates
and spreads the k slots over documents (a per-document cap, or maximal marginal relevance).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from sqlite_utils import Database

from store import fts
from store.database import rows
from store.diversity import Candidate, Diversity, choose, pool_size
from store.embedding import Embedder
from store.errors import KnowledgeBaseError
from store.ranking import collapse_duplicates, page_evidence, page_fusion
from store.records import SearchHit
from store.vector_index import VectorIndex

SEARCH_MODES = ("hybrid", "vector", "keyword")

Ranking = list[tuple[int, float]]  # (chunk row id, score), best first


def check_mode(mode: str) -> str:
    if mode not in SEARCH_MODES:
        raise KnowledgeBaseError(f"unknown search mode {mode!r}: use one of {', '.join(SEARCH_MODES)}")
    return mode


def search_all(
    db: Database,
    kb_id: int,
    query: str,
    k: int,
    modes: Sequence[str],
    *,
    vector_search: Callable[[str, int], Ranking],
    rrf_k: int,
    keyword_weight: float,
    diversity: Diversity = Diversity(),
    evidence_weight: float = 0.0,
    page_weight: float = 0.0,
) -> dict[str, list[SearchHit]]:
    """The ``k`` best hits per mode; the query is embedded (``vector_search``) and run once per ranker."""
    query = (query or "").strip()
    if not query or k <= 0:
        return {mode: [] for mode in modes}
    fetch = max(4 * k, 50)
    ranked: dict[str, Ranking] = {}
    wanted = set(modes)
    if {"vector", "hybrid"} & wanted and {"keyword", "hybrid"} & wanted:
        # Both rankers: SQLite's keyword search runs on another core while the query is embedded
        # (both release the GIL), which takes a third off a hybrid search on two idle cores.
        keyword = _pool().submit(fts.keyword_search, db, kb_id, query, fetch)
        ranked["vector"] = vector_search(query, fetch)
        ranked["keyword"] = keyword.result()
    elif "keyword" in wanted:
        ranked["keyword"] = fts.keyword_search(db, kb_id, query, fetch)
    elif "vector" in wanted:
        ranked["vector"] = vector_search(query, fetch)
    if "hybrid" in modes:
        lists = [[i for i, _ in ranked["vector"]], [i for i, _ in ranked["keyword"]]]
        # The pages of every passage either list holds (the fused ones), read only when a weight needs them.
        wants_pages = page_weight > 0 or evidence_weight > 0
        pages = _pages(db, list(dict.fromkeys(lists[0] + lists[1]))) if wants_pages else {}
        ranked["hybrid"] = page_fusion(lists, pages, page_weight, k=rrf_k, weights=(1.0, keyword_weight))
        if evidence_weight > 0:
            ranked["hybrid"] = page_evidence(ranked["hybrid"], pages, evidence_weight)
    return {mode: to_hits(db, ranked[mode], k, diversity) for mode in modes}


_POOL: ThreadPoolExecutor | None = None
_POOL_LOCK = threading.Lock()


def _pool() -> ThreadPoolExecutor:
    """The threads that run keyword searches beside query embedding (created on first use)."""
    global _POOL
    with _POOL_LOCK:
        if _POOL is None:
            _POOL = ThreadPoolExecutor(max_workers=2, thread_name_prefix="keyword-search")
        return _POOL


def vector_ranking(current_index: Callable[[], VectorIndex], embedder: Embedder, query: str, k: int) -> Ranking:
    """The ``k`` nearest chunks to the query's embedding, scored by cosine similarity.

    The query is embedded before ``current_index()`` is asked for the index: that call checks
    SQLite's generation on the knowledge base's connection, which a keyword search running beside
    it holds, so asking first would make the embedding wait for the keyword search.
    """
    vector = embedder.encode([query])
    index = current_index()
    if len(index) == 0:
        return []
    labels, distances = index.query(vector, k)
    return [(int(label), 1.0 - float(d)) for label, d in zip(labels[0], distances[0], strict=True)]


def to_hits(db: Database, scored: Ranking, k: int, diversity: Diversity = Diversity()) -> list[SearchHit]:
    """The first ``k`` distinct passages of a ranking (chosen under ``diversity``), with their documents and anchors."""
    if not scored:
        return []
    # Only the best of the ranking are read back: enough distinct passages for ``choose`` (the first
    # k, or the diversity pool), read in growing windows; the choice is the same as from all of them.
    wanted = k if diversity.mode == "none" else max(k, pool_size(k))
    window = 2 * wanted
    found: dict[int, dict] = {}
    while True:
        ids = [i for i, _ in scored[:window]]
        missing = [i for i in ids if i not in found]
        if missing:
            found.update((r["id"], r) for r in _chunk_rows(db, missing))
        present = [(i, found[i]["text"]) for i in ids if i in found]
        distinct = collapse_duplicates(present)
        if len(distinct) >= wanted or window >= len(scored):
            break
        window *= 2
    score_of = dict(scored)
    candidates = [
        Candidate(i, score_of[i], found[i]["doc_id"], found[i]["text"], found[i]["start"], found[i]["end"])
        for i in distinct
    ]
    hits = []
    for rank, candidate in enumerate(choose(candidates, k, diversity, lambda ids: chunk_vectors(db, ids)), start=1):
        chunk_row = candidate.id
        r = found[chunk_row]
        hits.append(
            SearchHit(
                rank=rank,
                score=score_of[chunk_row],
                chunk_id=r["chunk_id"],
                doc_id=r["doc_id"],
                document=r["name"],
                source=r["source"],
                page=r["page"],
                page_label=r["page_label"],
                ocr=bool(r["ocr"]),
                section=r["section"],
                text=r["text"],
                start=r["start"],
                end=r["end"],
            )
        )
    return hits


def _pages(db: Database, ids: Sequence[int]) -> dict[int, tuple]:
    """Row id -> (document, page) of chunk rows ``ids`` (page None: the whole document)."""
    found = rows(db, f"SELECT id, doc_id, page FROM chunks WHERE id IN ({','.join('?' * len(ids))})", list(ids))
    return {r["id"]: (r["doc_id"], r["page"]) for r in found}


def _chunk_rows(db: Database, ids: Sequence[int]) -> list[dict]:
    return rows(
        db,
        f"""SELECT c.id, c.chunk_id, c.doc_id, d.name, d.source, c.page, c.page_label, c.section, c.text, c.start,
            c."end", c.ocr
            FROM chunks c JOIN documents d ON d.id = c.doc_id
            WHERE c.id IN ({",".join("?" * len(ids))})""",
        list(ids),
    )


def chunk_vectors(db: Database, ids: Sequence[int]) -> np.ndarray:
    """The stored (unit) embeddings of chunk rows ``ids``, one row each, in that order."""
    if not ids:
        return np.zeros((0, 0), dtype=np.float32)
    found = {
        r["chunk"]: np.frombuffer(r["vector"], dtype=np.float32)
        for r in rows(
            db, f"SELECT chunk, vector FROM embeddings WHERE chunk IN ({','.join('?' * len(ids))})", list(ids)
        )
    }
    dim = len(next(iter(found.values()))) if found else 1
    return np.stack([found.get(i, np.zeros(dim, dtype=np.float32)) for i in ids])
