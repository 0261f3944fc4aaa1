"""The plain retrieval pipeline issue 13 compares against: nothing tuned, nothing of ours but the parser.

Each page's text (``store.parsing``, blocks joined by blank lines) is cut into 250-word chunks
without overlap; chunks are embedded as they are, without title or section, by the bundled
MiniLM (which reads its first 256 tokens); keyword search is plain BM25 over the chunk text
(SQLite FTS5, porter stemming, the query's terms OR-ed); vector search is exact cosine; hybrid
fuses the two top-50 lists by reciprocal rank fusion with k = 60 and equal weights. The chunks
and their vectors are cached under the given folder.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from store.embedding import Embedder
from store.errors import DomainsmithError
from store.fts import match_expression
from store.parsing import parse
from store.ranking import reciprocal_rank_fusion

WORDS = 250
RRF_K = 60
FETCH = 50


@dataclass(frozen=True)
class Passage:
    source: str
    text: str


class Baseline:
    """Search over 250-word chunks of ``files`` (sources relative to ``root``), cached in ``cache``."""

    def __init__(self, root: Path, files: list[Path], cache: Path, embedder: Embedder):
        self.embedder = embedder
        chunks_file, vectors_file = cache / "chunks.json", cache / "vectors.npy"
        if chunks_file.is_file() and vectors_file.is_file():
            self.passages = [Passage(**p) for p in json.loads(chunks_file.read_text(encoding="utf-8"))]
            self.vectors = np.load(vectors_file)
        else:
            self.passages = [p for path in files for p in _chunks(path, path.relative_to(root).as_posix())]
            self.vectors = embedder.encode([p.text for p in self.passages])
            cache.mkdir(parents=True, exist_ok=True)
            np.save(vectors_file, self.vectors)
            chunks_file.write_text(json.dumps([p.__dict__ for p in self.passages]), encoding="utf-8")
        self.db = sqlite3.connect(":memory:")
        self.db.execute("CREATE VIRTUAL TABLE passages USING fts5(text, tokenize='porter')")
        self.db.executemany(
            "INSERT INTO passages (rowid, text) VALUES (?, ?)", enumerate(p.text for p in self.passages)
        )

    def __len__(self) -> int:
        return len(self.passages)

    def search(self, query: str, k: int, mode: str) -> list[Passage]:
        """The ``k`` best passages for ``query`` by ``mode`` (hybrid, vector or keyword)."""
        vector = self._vector(query) if mode in ("hybrid", "vector") else []
        keyword = self._keyword(query) if mode in ("hybrid", "keyword") else []
        if mode == "hybrid":
            ranked = [i for i, _ in reciprocal_rank_fusion([vector, keyword], k=RRF_K)]
        else:
            ranked = vector or keyword
        return [self.passages[i] for i in ranked[:k]]

    def _vector(self, query: str) -> list[int]:
        scores = self.vectors @ self.embedder.encode([query])[0]
        return [int(i) for i in np.argsort(-scores, kind="stable")[:FETCH]]

    def _keyword(self, query: str) -> list[int]:
        expression = match_expression(query)
        if expression is None:
            return []
        found = self.db.execute(
            "SELECT rowid FROM passages WHERE passages MATCH ? ORDER BY bm25(passages) LIMIT ?", [expression, FETCH]
        )
        return [int(r[0]) for r in found]


def _chunks(path: Path, source: str) -> list[Passage]:
    try:
        words = "\n\n".join(block.text for block in parse(path).blocks).split()
    except DomainsmithError:  # an empty or unreadable page: the knowledge base skips it too
        return []
    return [Passage(source, " ".join(words[i : i + WORDS])) for i in range(0, len(words), WORDS)]
