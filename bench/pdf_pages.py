"""Page-level retrieval on real PDFs (issue 15): page-recall@1, @5 and MRR per search mode, before and after.

The corpus is ``bench/pdf_corpus.py`` (five manuals from three Debian packages, 482 pages: page
labels, two columns, tables, running headers) and the questions are
``bench/data/pdf_questions.jsonl``: 45 questions written by reading the pages, each with its
document (``page``, as in the other question files, so ``assistant.evaluation.load_qa`` reads it)
and its gold physical pages (``pdf_pages``, 1-based, as pypdf counts them and as chunks store
``page``). A passage is a hit when its document and its physical page are gold ones.

Two parsers, everything else the same (the app's default settings, the same embedder, chunking,
search and questions):

- ``after``: today's ``store/parsing/pdf.py`` (page labels, running headers and footers dropped,
  words hyphenated at line ends rejoined; OCR is on "auto" as in the app, and no page of these
  PDFs lacks a text layer);
- ``before``: ``store/parsing/pdf.py`` as of commit ``b053c94``, the last commit before that work,
  read with ``git show`` and loaded as a module of its own; while the ``before`` knowledge base is
  built, ``store.parsing.pdf.parse`` is swapped for its ``parse`` (``store.parsing.parse`` looks
  the format module's ``parse`` up at each call, so nothing else changes). Its imports
  (``store.errors``, ``store.parsing.text``, ``store.records``) still offer what it used.

Each knowledge base is built once and cached under ``bench/.cache/pdf-pages-<parser>-<hash>-<chunking>/``;
the hash covers the PDFs' pinned sha256 and the parser's source (for ``after``, today's
``pdf.py`` and ``pdf_text.py``), so before and after never share a cache and an edited parser
builds anew.

For each parser, mode (hybrid, vector, keyword) and half (``bench/questions.py``: dev for choosing,
test for reporting, and all) it prints:

- R@1, R@5: the share of questions whose first passage, or any of the first 5, is on a gold page
  (passages as ranked, not de-duplicated by page);
- MRR: the mean reciprocal rank of the first gold passage within the top 10 (0 when absent);
- label: among the questions whose gold page was found, the share where the page number a citation
  shows (the passage's ``page_label``, else its physical page) is the one a PDF viewer shows for
  that page (pypdf's ``page_labels``, which are the physical numbers when a PDF has none).

The build time, chunk count and the 1-minute load average are printed too.

    .venv/bin/python bench/pdf_pages.py                      # both parsers, all halves
    .venv/bin/python bench/pdf_pages.py --parser after --half dev
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
import hashlib  # noqa: E402
import importlib.util  # noqa: E402
import json  # noqa: E402
import shutil  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import time  # noqa: E402
from collections.abc import Iterator, Sequence  # noqa: E402
from contextlib import contextmanager  # noqa: E402
from dataclasses import dataclass  # noqa: E402
from types import ModuleType  # noqa: E402

from assistant.evaluation import MRR_DEPTH, QAItem, load_qa  # noqa: E402
from bench.corpus import DEFAULT_CACHE  # noqa: E402
from bench.pdf_corpus import DOCUMENTS, QUESTIONS, pdf_corpus  # noqa: E402
from bench.questions import split  # noqa: E402

MODES = ("hybrid", "vector", "keyword")
PARSERS = ("before", "after")
BEFORE_COMMIT = "b053c94"  # the parser before issue 15's page labels, header/footer and hyphenation work
AFTER_SOURCES = (
    "store/parsing/pdf.py",
    "store/parsing/pdf_text.py",
    "store/parsing/pdf_pages.py",
    "store/parsing/pdf_layout.py",
)


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


@dataclass(frozen=True)
class PdfQuestion:
    item: QAItem
    document: str
    pages: frozenset[int]


def load_questions(path: Path = QUESTIONS) -> list[PdfQuestion]:
    """The question file through ``load_qa`` (as every bench reads it), with each line's gold pages."""
    items = {item.id: item for item in load_qa(path)}
    questions = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            row = json.loads(line)
            questions.append(PdfQuestion(items[row["id"]], row["page"], frozenset(row["pdf_pages"])))
    return questions


def before_source() -> str:
    result = subprocess.run(
        ["git", "show", f"{BEFORE_COMMIT}:store/parsing/pdf.py"], cwd=ROOT, capture_output=True, text=True
    )
    if result.returncode != 0:
        raise SystemExit(f"cannot read the 'before' parser from git ({result.stderr.strip()}): run in a clone")
    return result.stdout


def _before_module() -> ModuleType:
    spec = importlib.util.spec_from_loader("bench._pdf_parser_before", loader=None)
    module = importlib.util.module_from_spec(spec)
    exec(compile(before_source(), f"{BEFORE_COMMIT}:store/parsing/pdf.py", "exec"), module.__dict__)
    return module


@contextmanager
def parser(name: str) -> Iterator[None]:
    """Ingest with the named PDF parser; ``after`` is today's, untouched."""
    if name == "after":
        yield
        return
    import store.parsing.pdf as current

    original = current.parse
    old_parse = _before_module().parse

    def parse(path, limits, *_progress, **_kwargs):  # the old parser reports no per-page progress
        return old_parse(path, limits)

    current.parse = parse
    try:
        yield
    finally:
        current.parse = original


def cache_key(name: str) -> str:
    digest = hashlib.sha256()
    for doc in DOCUMENTS:
        digest.update(f"{doc.name}:{doc.sha256}\n".encode())
    if name == "before":
        digest.update(before_source().encode())
    else:
        for source in AFTER_SOURCES:
            digest.update((ROOT / source).read_bytes())
    from store.settings import Settings

    defaults = Settings.load(env={})
    return f"pdf-pages-{name}-{digest.hexdigest()[:10]}-t{defaults.chunk_tokens}o{defaults.chunk_overlap}"


def knowledge_base(name: str, cache: Path, embedder, root: Path):
    """The PDFs' knowledge base built with parser ``name`` (once, cached), opened with the app's settings."""
    from store.knowledge_base import KnowledgeBase
    from store.settings import Settings

    home = cache / cache_key(name)
    done = home / ".complete"
    if not done.is_file():
        if home.exists():
            shutil.rmtree(home)
        log(f"building {home.name} ...")
        started = time.monotonic()
        with parser(name), KnowledgeBase.open(Settings.load(home=home, env={}), "bench", embedder) as kb:
            for event in kb.add([root]):
                if event.status == "failed":
                    log(f"  failed: {event.source}: {event.reason}")
            seconds = time.monotonic() - started
            chunks = kb.stats()["chunks"]
        load = os.getloadavg()[0]
        log(f"  {chunks} chunks in {seconds:.0f} s (load {load:.2f})")
        (home / "build.json").write_text(json.dumps({"seconds": round(seconds, 1), "chunks": chunks, "load": load}))
        done.touch()
    return KnowledgeBase.open(Settings.load(home=home, env={}), "bench", embedder), home


def viewer_labels(root: Path) -> dict[str, list[str]]:
    """Each PDF's page labels as a viewer shows them (pypdf), for the label check."""
    from pypdf import PdfReader

    return {doc.name: list(PdfReader(root / doc.name).page_labels) for doc in DOCUMENTS}


@dataclass
class Outcome:
    rank: int | None  # of the first gold passage within MRR_DEPTH
    label_ok: bool | None  # the page number its citation shows is the viewer's label
    top: tuple[str, ...] = ()  # the first 3 passages' document:page, for --misses


def run(kb, questions: Sequence[PdfQuestion], mode: str, labels: dict[str, list[str]]) -> dict[str, Outcome]:
    outcomes = {}
    for q in questions:
        hits = kb.search(q.item.question, MRR_DEPTH, mode)
        rank, label_ok = None, None
        for position, hit in enumerate(hits, start=1):
            if hit.source == q.document and hit.page in q.pages:
                rank = position
                label_ok = (hit.page_label or str(hit.page)) == labels[q.document][hit.page - 1]
                break
        outcomes[q.item.id] = Outcome(rank, label_ok, tuple(f"{h.source}:{h.page}" for h in hits[:3]))
    return outcomes


def summary(outcomes: Sequence[Outcome]) -> list[str]:
    def mean(values: list[float]) -> str:
        return f"{statistics.fmean(values):.3f}" if values else "-"

    ranks = [o.rank for o in outcomes]
    labels = [float(o.label_ok) for o in outcomes if o.label_ok is not None]
    return [
        mean([float(r == 1) for r in ranks]),
        mean([float(r is not None and r <= 5) for r in ranks]),
        mean([1.0 / r if r else 0.0 for r in ranks]),
        mean(labels),
        str(len(ranks)),
    ]


def table(rows: list[list[str]]) -> str:
    header = ["parser", "mode", "half", "R@1", "R@5", "MRR", "label", "n"]
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    lines = [" | ".join(str(c).ljust(w) for c, w in zip(r, widths, strict=True)) for r in [header, *rows]]
    lines.insert(1, "-+-".join("-" * w for w in widths))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    arg_parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    arg_parser.add_argument("--parser", action="append", choices=PARSERS, help="repeatable; default: both")
    arg_parser.add_argument("--half", action="append", choices=("dev", "test", "all"), help="default: all three")
    arg_parser.add_argument("--cache-dir", type=Path, default=DEFAULT_CACHE, help=f"default {DEFAULT_CACHE}")
    arg_parser.add_argument("--misses", action="store_true", help="list the hybrid misses at rank 1 per parser")
    args = arg_parser.parse_args(argv)
    from store.embedding import Embedder

    cache = args.cache_dir.resolve()
    root, _ = pdf_corpus(cache)
    questions = load_questions()
    dev, test = split([q.item for q in questions])
    halves = {"dev": {i.id for i in dev}, "test": {i.id for i in test}, "all": {q.item.id for q in questions}}
    labels = viewer_labels(root)
    embedder = Embedder()
    started = time.monotonic()
    rows: list[list[str]] = []
    builds = []
    for name in args.parser or PARSERS:
        kb, home = knowledge_base(name, cache, embedder, root)
        build = json.loads((home / "build.json").read_text())
        builds.append(
            f"{name}: {build['chunks']} passages, built in {build['seconds']:.0f} s at load {build['load']:.2f}"
        )
        try:
            for mode in MODES:
                outcomes = run(kb, questions, mode, labels)
                for which in args.half or ("dev", "test", "all"):
                    rows.append([name, mode, which, *summary([outcomes[i] for i in outcomes if i in halves[which]])])
                if args.misses and mode == "hybrid":
                    for q in questions:
                        o = outcomes[q.item.id]
                        if o.rank != 1:
                            log(
                                f"  {name} miss {q.item.id} rank {o.rank}: {q.document} p{sorted(q.pages)} "
                                f"{q.item.question} -- top 3: {', '.join(o.top)}"
                            )
        finally:
            kb.close()
    print(
        f"\n{len(questions)} questions ({len(dev)} dev, {len(test)} test) on {len(DOCUMENTS)} PDFs, "
        f"{sum(d.pages for d in DOCUMENTS)} pages; {'; '.join(builds)}; ran "
        f"{time.monotonic() - started:.0f} s, load {os.getloadavg()[0]:.2f}"
    )
    print(table(rows), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
