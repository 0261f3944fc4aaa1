"""Retrieval quality per corpus, per search mode and per configuration, on a half of each question set.

For each corpus (``bench/corpus.py``) a knowledge base is built once and cached under
``bench/.cache/retrieval-<corpus>-<kb>/`` (``<kb>`` names the chunking: configurations that
only change how results are searched share one). Then, on the chosen half of the corpus's
questions (``bench/questions.py``; dev for choosing settings, test for reporting), per
configuration and per mode (hybrid, vector, keyword), it prints:

- R@1, R@5, MRR: whether the gold page is the first passage, among the first 5, and the mean
  reciprocal rank of its first passage in the top 10, at passage level (the passages as Chat
  would offer them, not de-duplicated pages); answerable questions only;
- kw@5: the share of questions whose keywords all appear in the text of the top 5 passages;
- p50 ms: the median search time (query embedding included), with the 1-minute load average
  when the configuration finished (``os.getloadavg``), since a busy machine slows every figure;
- then, for hybrid search, each configuration against the first one question by question: how
  many questions it wins and loses at R@1 and R@5 (one question is 0.03-0.04 on a half).

Configurations (``--config``, repeatable): ``current`` is today's defaults; the others change one
thing (``CONFIGS``; ``nb*`` grow the top 5 with their neighbouring passages, which moves only
kw@5, and its latency; ``mpnet`` indexes with all-mpnet-base-v2, installed by ``make
embedder-mpnet``: building its knowledge base takes about ten times MiniLM's time); ``baseline``
is the plain pipeline of ``bench/baseline.py`` (250-word chunks, BM25 + MiniLM fused by RRF
k = 60, nothing tuned).

Run from the repository root: ``.venv/bin/python bench/retrieval.py --corpus debian-policy --half dev``.
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
import shutil  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable, Sequence  # noqa: E402
from dataclasses import dataclass, field  # noqa: E402

from assistant.evaluation import MRR_DEPTH, QAItem  # noqa: E402
from bench.corpus import CORPORA, DEFAULT_CACHE, corpus  # noqa: E402
from bench.questions import BATCHES, HALVES, half, load, question_files  # noqa: E402

MODES = ("hybrid", "vector", "keyword")
BASELINE = "baseline"


@dataclass(frozen=True)
class Config:
    """A named configuration: the settings its knowledge base is built with, and those it searches with."""

    kb: dict = field(default_factory=dict)  # chunking: a separate knowledge base per distinct value
    search: dict = field(default_factory=dict)
    embedder: str | None = None  # a bundled embedder other than the default: its own knowledge base

    @property
    def kb_key(self) -> str:
        """Names the cached knowledge base by its effective chunking (defaults included), so a
        changed default builds a new one instead of reusing a stale cache."""
        from store.settings import Settings

        defaults = Settings.load(env={})
        chunking = {
            "chunk_tokens": defaults.chunk_tokens,
            "chunk_overlap": defaults.chunk_overlap,
            "pack_sections": defaults.pack_sections,
            **self.kb,
        }
        # Unpacked sections (the default) are named as before packing existed: those caches stay valid.
        key = "-".join(f"{k}{v}" for k, v in sorted(chunking.items()) if (k, v) != ("pack_sections", False))
        return f"{key}-{self.embedder}" if self.embedder else key


CONFIGS: dict[str, Config] = {
    "current": Config(),
    # The settings before issue 13's measurements (chosen on the Python manual's own 62 questions).
    "before": Config(
        kb={"chunk_tokens": 200, "chunk_overlap": 32, "pack_sections": False},
        search={"rrf_k": 10, "keyword_weight": 0.5, "diversity": "none"},
    ),
    "dedupe": Config(search={"diversity": "dedupe"}),
    "ev0.25": Config(search={"evidence_weight": 0.25}),
    "ev0.5": Config(search={"evidence_weight": 0.5}),
    "ev1": Config(search={"evidence_weight": 1.0}),
    # Page fusion (store.ranking.page_fusion): the best passage of each page lifted by its page's fused rank.
    "page0.1": Config(search={"page_weight": 0.1}),
    "page0.25": Config(search={"page_weight": 0.25}),
    "page0.5": Config(search={"page_weight": 0.5}),
    "page1": Config(search={"page_weight": 1.0}),
    "cap1": Config(search={"diversity": "cap", "per_document_cap": 1}),
    "cap2": Config(search={"diversity": "cap", "per_document_cap": 2}),
    "cap3": Config(search={"diversity": "cap", "per_document_cap": 3}),
    "mmr0.5": Config(search={"diversity": "mmr", "mmr_lambda": 0.5}),
    "mmr0.7": Config(search={"diversity": "mmr", "mmr_lambda": 0.7}),
    "mmr0.85": Config(search={"diversity": "mmr", "mmr_lambda": 0.85}),
    "rrf60": Config(search={"rrf_k": 60, "keyword_weight": 1.0}),
    # The dev halves' best mean MRR in bench/fusion.py (vector-led: keyword hits join from about rank 7).
    "rrf1-kw0.25": Config(search={"rrf_k": 1, "keyword_weight": 0.25}),
    # Neighbouring passages (store.neighbours): the top 5 grown as Chat would offer them; only kw@5 can move.
    "nb400": Config(search={"neighbour_tokens": 400}),
    "nb600": Config(search={"neighbour_tokens": 600}),
    "chunk128": Config(kb={"chunk_tokens": 128, "chunk_overlap": 24}),
    "chunk128-cap2": Config(
        kb={"chunk_tokens": 128, "chunk_overlap": 24}, search={"diversity": "cap", "per_document_cap": 2}
    ),
    # MiniLM reads at most 256 word pieces: the largest chunk it embeds whole (most short sections fit).
    "chunk256": Config(kb={"chunk_tokens": 256, "chunk_overlap": 32}),
    "pack": Config(kb={"pack_sections": True}),
    # The stronger bundled embedder (`make embedder-mpnet`), with today's chunking and search.
    "mpnet": Config(embedder="all-mpnet-base-v2"),
    BASELINE: Config(),  # bench/baseline.py
}
DEFAULT_CONFIGS = ("current", "cap2", "mmr0.7", BASELINE)

Search = Callable[[str, int, str], list]  # (query, k, mode) -> passages with .source and .text


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


@dataclass
class Scores:
    first: list[float] = field(default_factory=list)
    top5: list[float] = field(default_factory=list)
    reciprocal: list[float] = field(default_factory=list)
    keywords: list[float] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)

    def row(self) -> list[str]:
        def mean(values: list[float]) -> str:
            return f"{statistics.fmean(values):.3f}" if values else "-"

        p50 = f"{statistics.median(self.seconds) * 1000:.1f}" if self.seconds else "-"
        return [mean(self.first), mean(self.top5), mean(self.reciprocal), mean(self.keywords), p50]


def score(search: Search, items: Sequence[QAItem], mode: str) -> Scores:
    """Every question of ``items`` searched once in ``mode``; answerable ones scored against their pages."""
    scores = Scores()
    for item in items:
        started = time.perf_counter()
        passages = search(item.question, MRR_DEPTH, mode)
        scores.seconds.append(time.perf_counter() - started)
        if item.unanswerable:
            continue
        ranks = [rank for rank, p in enumerate(passages, start=1) if p.source in item.sources]
        scores.first.append(float(bool(ranks) and ranks[0] == 1))
        scores.top5.append(float(bool(ranks) and ranks[0] <= 5))
        scores.reciprocal.append(1.0 / ranks[0] if ranks else 0.0)
        if item.keywords:
            text = " ".join(p.text for p in passages[:5]).lower()
            scores.keywords.append(float(all(k.lower() in text for k in item.keywords)))
    return scores


def config_embedder(config: Config, cache: Path, default):
    """The embedder ``config`` indexes and searches with: ``default`` unless it names another bundled
    one, which the app's own ``from_settings`` assembles once under ``cache/embedders``."""
    if not config.embedder:
        return default
    from store.embedding import from_settings
    from store.settings import Settings

    if config.embedder not in _EMBEDDERS:
        settings = Settings.load(home=cache / "embedders", env={}, embedder=config.embedder)
        _EMBEDDERS[config.embedder] = from_settings(settings)
    return _EMBEDDERS[config.embedder]


_EMBEDDERS: dict = {}


def knowledge_base(name: str, config: Config, cache: Path, embedder, root: Path):
    """The corpus's knowledge base for ``config`` (built once, cached), opened with its search settings."""
    from store.knowledge_base import KnowledgeBase
    from store.settings import Settings

    embedder = config_embedder(config, cache, embedder)
    home = cache / f"retrieval-{name}-{config.kb_key}"
    done = home / ".complete"
    if not done.is_file():
        if home.exists():
            shutil.rmtree(home)
        settings = Settings.load(home=home, env={}, **config.kb)
        log(f"building {home.name} ...")
        started = time.monotonic()
        with KnowledgeBase.open(settings, "bench", embedder) as kb:
            for event in kb.add([root]):
                if event.status == "failed":
                    log(f"  failed: {event.source}: {event.reason}")
            log(f"  {kb.stats()['chunks']} chunks in {time.monotonic() - started:.0f} s")
        done.touch()
    return KnowledgeBase.open(Settings.load(home=home, env={}, **config.kb, **config.search), "bench", embedder)


def _grown(kb) -> Search:
    """``kb.search`` with the first 5 passages grown with their neighbours, as Chat offers them."""

    def search(query: str, k: int, mode: str) -> list:
        hits = kb.search(query, k, mode)
        return kb.with_neighbours(hits[:5], kb.settings.neighbour_tokens) + hits[5:]

    return search


def run_corpus(
    name: str, configs: Sequence[str], which: str, cache: Path, embedder, batch: str = "both"
) -> list[list[str]]:
    root, files = corpus(name, cache)
    items = half(load(question_files(name, batch)), which)
    answerable = [i for i in items if not i.unanswerable]
    rows = []
    sizes = []
    hybrid: dict[str, Scores] = {}
    for config_name in configs:
        if config_name == BASELINE:
            from bench.baseline import Baseline

            base = Baseline(root, files, cache / f"retrieval-{name}-{BASELINE}", embedder)
            search: Search = base.search
            sizes.append(f"{config_name} {len(base)}")
            close = None
        else:
            kb = knowledge_base(name, CONFIGS[config_name], cache, embedder, root)
            search = _grown(kb) if kb.settings.neighbour_tokens else kb.search
            sizes.append(f"{config_name} {kb.stats()['chunks']}")
            close = kb.close
        for mode in MODES:
            scores = score(search, items, mode)
            rows.append([config_name, mode, *scores.row(), f"{os.getloadavg()[0]:.2f}"])
            if mode == "hybrid":
                hybrid[config_name] = scores
        if close:
            close()
    with_keywords = sum(1 for i in answerable if i.keywords)
    print(
        f"\n{name}, {which} half: {len(items)} questions ({len(answerable)} answerable, {with_keywords} with "
        f"keywords); passages: {', '.join(sizes)}"
    )
    for line in paired(hybrid):
        print(line)
    return rows


def paired(hybrid: dict[str, Scores]) -> list[str]:
    """Each configuration's hybrid search against the first one's, question by question: how many
    questions it finds first (R@1) or in the top 5 (R@5) that the first does not, and how many it
    loses. On a half of 24-29 answerable questions one question is 0.03-0.04: this says whether a
    difference in the table is one question or several."""
    if len(hybrid) < 2:
        return []
    (reference, base), *others = hybrid.items()
    lines = []
    for name, scores in others:
        cells = []
        for label, mine, theirs in (("R@1", scores.first, base.first), ("R@5", scores.top5, base.top5)):
            won = sum(1 for a, b in zip(mine, theirs, strict=True) if a > b)
            lost = sum(1 for a, b in zip(mine, theirs, strict=True) if a < b)
            cells.append(f"{label} +{won} -{lost}")
        lines.append(f"hybrid {name} against {reference}, questions won and lost: {', '.join(cells)}")
    return lines


def table(rows: list[list[str]]) -> str:
    header = ["config", "mode", "R@1", "R@5", "MRR", "kw@5", "p50 ms", "load"]
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    lines = [" | ".join(str(c).ljust(w) for c, w in zip(r, widths, strict=True)) for r in [header, *rows]]
    lines.insert(1, "-+-".join("-" * w for w in widths))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--corpus", action="append", choices=sorted(CORPORA), help="repeatable; default: all")
    parser.add_argument("--half", choices=HALVES, default="test", help="default test")
    parser.add_argument(
        "--batch", choices=BATCHES, default="both", help="question batches (bench/questions.py); default both"
    )
    parser.add_argument(
        "--config", action="append", choices=sorted(CONFIGS), help=f"repeatable; default: {DEFAULT_CONFIGS}"
    )
    parser.add_argument("--cache-dir", type=Path, default=DEFAULT_CACHE, help=f"default {DEFAULT_CACHE}")
    args = parser.parse_args(argv)
    from store.embedding import Embedder

    embedder = Embedder()
    for name in args.corpus or list(CORPORA):
        rows = run_corpus(
            name, args.config or DEFAULT_CONFIGS, args.half, args.cache_dir.resolve(), embedder, args.batch
        )
        print(table(rows), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
