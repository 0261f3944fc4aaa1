"""Hybrid fusion settings swept on a half of each corpus's questions: rank fusion constant,
keyword weight and how many candidates each ranker contributes.

Each question is searched once per ranker (vector and keyword, 50 candidates each, on the
knowledge bases ``bench/retrieval.py`` builds and caches); every combination is then fused
offline exactly as ``store.search.search_all`` fuses (``reciprocal_rank_fusion`` then
``to_hits`` with the knowledge base's diversity setting), so a grid of dozens of settings costs one search
per question. Printed per corpus and as the mean over corpora: R@1, R@5 and MRR of the gold
page at passage level, and kw@5 (all keywords in the top 5 passages), best mean MRR first,
with today's defaults marked. Choose on ``--half dev``; report the chosen setting on test
with ``bench/retrieval.py``.

Run from the repository root: ``.venv/bin/python bench/fusion.py --half dev``.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import argparse  # noqa: E402
import itertools  # noqa: E402
import statistics  # noqa: E402
from collections.abc import Sequence  # noqa: E402
from dataclasses import dataclass  # noqa: E402

from assistant.evaluation import MRR_DEPTH, QAItem  # noqa: E402
from bench.corpus import CORPORA, DEFAULT_CACHE, corpus  # noqa: E402
from bench.questions import BATCHES, HALVES, half, load, question_files  # noqa: E402
from bench.retrieval import CONFIGS, knowledge_base, log  # noqa: E402

RRF_KS = (1, 5, 10, 20, 60)
KEYWORD_WEIGHTS = (0.0, 0.25, 0.5, 0.75, 1.0)
CANDIDATES = (10, 20, 50)  # per ranker
FETCH = 50


@dataclass(frozen=True)
class Fusion:
    rrf_k: int
    keyword_weight: float
    candidates: int

    def label(self) -> str:
        return f"k={self.rrf_k} w={self.keyword_weight:g} n={self.candidates}"


@dataclass
class Searched:
    item: QAItem
    vector: list[int]
    keyword: list[int]


def grid() -> list[Fusion]:
    return [Fusion(*combo) for combo in itertools.product(RRF_KS, KEYWORD_WEIGHTS, CANDIDATES)]


def search_once(kb, items: Sequence[QAItem]) -> list[Searched]:
    from store import fts

    out = []
    for item in items:
        vector = [i for i, _ in kb._vector_ranking(item.question, FETCH)]
        keyword = [i for i, _ in fts.keyword_search(kb.db, kb.id, item.question, FETCH)]
        out.append(Searched(item, vector, keyword))
    return out


def scores(kb, searched: Sequence[Searched], fusion: Fusion) -> dict[str, float]:
    """R@1, R@5, MRR and kw@5 of one fusion setting over already-searched questions."""
    from store.diversity import Diversity
    from store.ranking import reciprocal_rank_fusion
    from store.search import to_hits

    settings = kb.settings
    diversity = Diversity(settings.diversity, settings.per_document_cap, settings.mmr_lambda)  # as Chat's
    first, top5, reciprocal, keywords = [], [], [], []
    for s in searched:
        fused = reciprocal_rank_fusion(
            [s.vector[: fusion.candidates], s.keyword[: fusion.candidates]],
            k=fusion.rrf_k,
            weights=(1.0, fusion.keyword_weight),
        )
        hits = to_hits(kb.db, fused, MRR_DEPTH, diversity)
        ranks = [rank for rank, h in enumerate(hits, start=1) if h.source in s.item.sources]
        first.append(float(bool(ranks) and ranks[0] == 1))
        top5.append(float(bool(ranks) and ranks[0] <= 5))
        reciprocal.append(1.0 / ranks[0] if ranks else 0.0)
        if s.item.keywords:
            text = " ".join(h.text for h in hits[:5]).lower()
            keywords.append(float(all(k.lower() in text for k in s.item.keywords)))
    return {
        "R@1": statistics.fmean(first),
        "R@5": statistics.fmean(top5),
        "MRR": statistics.fmean(reciprocal),
        "kw@5": statistics.fmean(keywords) if keywords else 0.0,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--corpus", action="append", choices=sorted(CORPORA), help="repeatable; default: all")
    parser.add_argument("--half", choices=HALVES, default="dev", help="default dev")
    parser.add_argument(
        "--batch", choices=BATCHES, default="both", help="question batches (bench/questions.py); default both"
    )
    parser.add_argument("--top", type=int, default=15, help="rows printed, best mean MRR first (default 15)")
    parser.add_argument("--cache-dir", type=Path, default=DEFAULT_CACHE, help=f"default {DEFAULT_CACHE}")
    args = parser.parse_args(argv)
    from store.embedding import Embedder
    from store.settings import Settings

    defaults = Settings.load(env={})
    current = Fusion(defaults.rrf_k, defaults.keyword_weight, FETCH)
    embedder = Embedder()
    names = args.corpus or list(CORPORA)
    table: dict[Fusion, dict[str, dict[str, float]]] = {f: {} for f in grid()}
    table.setdefault(current, {})
    for name in names:
        root, _ = corpus(name, args.cache_dir.resolve())
        items = [i for i in half(load(question_files(name, args.batch)), args.half) if not i.unanswerable]
        with knowledge_base(name, CONFIGS["current"], args.cache_dir.resolve(), embedder, root) as kb:
            log(f"{name}: searching {len(items)} answerable {args.half} questions once per ranker ...")
            searched = search_once(kb, items)
            for fusion in table:
                table[fusion][name] = scores(kb, searched, fusion)
    metrics = ("R@1", "R@5", "MRR", "kw@5")

    def mean(fusion: Fusion, metric: str) -> float:
        return statistics.fmean(table[fusion][n][metric] for n in names)

    ranked = sorted(table, key=lambda f: (-mean(f, "MRR"), -mean(f, "R@5")))
    shown = ranked[: args.top] + ([current] if current not in ranked[: args.top] else [])
    header = ["fusion", *(f"mean {m}" for m in metrics), *(f"{n} R@1/R@5/MRR" for n in names)]
    rows = []
    for fusion in shown:
        mark = " (current)" if fusion == current else ""
        per = ["/".join(f"{table[fusion][n][m]:.3f}" for m in ("R@1", "R@5", "MRR")) for n in names]
        rows.append([fusion.label() + mark, *(f"{mean(fusion, m):.3f}" for m in metrics), *per])
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    print(f"\n{args.half} halves, answerable questions; {len(table)} settings, best mean MRR first")
    for r in [header, *rows]:
        print(" | ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
