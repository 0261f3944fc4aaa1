"""The relevance gate calibrated across corpora: its threshold chosen on the dev halves, its
precision and recall reported on the test halves.

The gate (``assistant.retrieval.retrieve``) says "not in the documents" before the model is asked
when a question's relevance score falls below ``relevance_threshold``. For each corpus (the
knowledge bases ``bench/retrieval.py`` builds and caches, searched with today's settings) every
question of the half is retrieved once, as Chat retrieves it; then, per candidate threshold:

- refusal precision: of the questions the gate refuses, the share that are really unanswerable;
- refusal recall: of the unanswerable questions, the share the gate refuses;
- answerable kept: of the answerable questions, the share the gate lets through (a refused
  answerable question can never be answered, so this caps answer accuracy).

``--choose`` prints the dev halves' best threshold by mean balanced accuracy over corpora (ties:
the lower threshold, which refuses less). Each half holds only 3 or 4 unanswerable questions per
corpus, so read the figures as coarse.

Run from the repository root: ``.venv/bin/python bench/gate.py --half dev`` then ``--half test``.
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
import statistics  # noqa: E402
from collections.abc import Sequence  # noqa: E402

from bench.corpus import CORPORA, DEFAULT_CACHE, corpus  # noqa: E402
from bench.questions import BATCHES, HALVES, half, load, question_files  # noqa: E402
from bench.retrieval import CONFIGS, knowledge_base, log  # noqa: E402

THRESHOLDS = tuple(round(0.30 + 0.025 * i, 3) for i in range(17))  # 0.30 ... 0.70


def relevances(kb, items) -> list[tuple[float, bool]]:
    """(relevance, answerable) of each question, retrieved as Chat retrieves it."""
    from assistant.retrieval import retrieve

    return [(retrieve(kb, item.question, k=kb.settings.retrieval_k).relevance, not item.unanswerable) for item in items]


def at(scores: Sequence[tuple[float, bool]], threshold: float) -> dict[str, float | None]:
    refused = [answerable for score, answerable in scores if score < threshold]
    unanswerable = [score < threshold for score, answerable in scores if not answerable]
    answerable = [score >= threshold for score, is_answerable in scores if is_answerable]
    precision = (sum(not a for a in refused) / len(refused)) if refused else None
    recall = statistics.fmean(unanswerable) if unanswerable else None
    kept = statistics.fmean(answerable) if answerable else None
    return {"precision": precision, "recall": recall, "kept": kept}


def balanced(figures: dict[str, float | None]) -> float:
    return ((figures["recall"] or 0.0) + (figures["kept"] or 0.0)) / 2


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--corpus", action="append", choices=sorted(CORPORA), help="repeatable; default: all")
    parser.add_argument("--half", choices=HALVES, default="dev", help="default dev")
    parser.add_argument(
        "--batch", choices=BATCHES, default="both", help="question batches (bench/questions.py); default both"
    )
    parser.add_argument("--choose", action="store_true", help="print the best threshold (mean balanced accuracy)")
    parser.add_argument(
        "--config",
        choices=sorted(CONFIGS),
        default="current",
        help="bench/retrieval.py's configuration (default current)",
    )
    parser.add_argument("--cache-dir", type=Path, default=DEFAULT_CACHE, help=f"default {DEFAULT_CACHE}")
    args = parser.parse_args(argv)
    from store.embedding import Embedder

    embedder = Embedder()
    names = args.corpus or list(CORPORA)
    scores: dict[str, list[tuple[float, bool]]] = {}
    for name in names:
        root, _ = corpus(name, args.cache_dir.resolve())
        items = half(load(question_files(name, args.batch)), args.half)
        with knowledge_base(name, CONFIGS[args.config], args.cache_dir.resolve(), embedder, root) as kb:
            log(f"{name}: retrieving {len(items)} {args.half} questions ...")
            scores[name] = relevances(kb, items)

    def cell(value: float | None) -> str:
        return "-" if value is None else f"{value:.2f}"

    header = ["threshold", "mean balanced", *(f"{n} P/R/kept" for n in names)]
    rows = []
    for threshold in THRESHOLDS:
        figures = {n: at(scores[n], threshold) for n in names}
        mean = statistics.fmean(balanced(f) for f in figures.values())
        per = ["/".join(cell(figures[n][m]) for m in ("precision", "recall", "kept")) for n in names]
        rows.append([f"{threshold:.3f}", f"{mean:.3f}", *per])
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    counts = ", ".join(f"{n} {sum(not a for _, a in s)} unanswerable of {len(s)}" for n, s in scores.items())
    print(f"\nrelevance gate, {args.half} halves ({counts}); P/R: refusal precision and recall")
    for r in [header, *rows]:
        print(" | ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)))
    if args.choose:
        best = max(rows, key=lambda r: (float(r[1]), -float(r[0])))
        print(f"\nbest mean balanced accuracy on {args.half}: threshold {best[0]} ({best[1]})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
