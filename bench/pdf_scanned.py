"""Scanned PDFs (issue 15): the real-PDF bench's pages printed and scanned, read back by OCR, against
their text layer.

The documents are ``bench/pdf_corpus.py``'s and the questions ``bench/data/pdf_questions.jsonl``
with their gold physical pages; the scoring is ``bench/pdf_pages.py``'s (``run``, ``summary``).
For each document a set of its pages is taken (below) and written twice:

- ``text``: those pages as they are (pypdf copies them into a smaller PDF of the same name), read
  from their text layer by today's parser;
- ``scan``: each of those pages rendered by pypdfium2 at ``--dpi`` (200) in grayscale, turned by a
  small angle (0.5 to 1.5 degrees either way, seeded), with light Gaussian noise and a sprinkle of
  black and white specks, and rebuilt as an image-only PDF of the same page size (PIL writes each
  page as a JPEG); ingested with ``ocr = "always"`` so Tesseract reads every page.

Both knowledge bases are built with the app's default settings otherwise (embedder, chunking,
search), each from the same pages, so the comparison is like for like; the figures are not those
of ``bench/pdf_pages.py``, whose knowledge base holds every page (more pages to confuse a
question with). Page numbers are those of the smaller PDFs; the bench maps each gold page to its
place in them and checks the mapping before it scores: each kept page's text in the smaller text
PDF is the original page's (pdfium), and each scanned page has the original's size and no text;
after OCR, it reports on how many scanned pages the words read are most like their own original
page's. Tesseract runs with ``OMP_THREAD_LIMIT=1`` (``--omp-thread-limit``): with its default of
two threads it was 8 times slower on two busy cores (bench/README.md).

Pages kept, per document: every gold page of a question on it, and its ``--neighbours`` (1) pages
before and after (the pages a question could be confused with); ``--pages-per-doc N`` keeps at
most N (gold pages first, then the nearest neighbours); ``--all-pages`` keeps every page (482 pages:
about 45 minutes of OCR at the 5.4 s a page measured here); ``--docs`` limits the documents.

It prints, per run (text, scan) and search mode, R@1, R@5 and MRR over the dev, test and all
questions; for each run, the share of questions whose keywords (``keywords`` in the question file)
are found in the text stored for the gold page; the OCR time (pdfium's rendering and Tesseract,
per page) as pages per second; the build times; and the 1-minute load average at the start and the
end (OCR shares two cores with whatever else runs).

    .venv/bin/python bench/pdf_scanned.py                         # gold pages and 1 neighbour each way
    .venv/bin/python bench/pdf_scanned.py --docs R-data.pdf --pages-per-doc 10
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
import inspect  # noqa: E402
import io  # noqa: E402
import json  # noqa: E402
import random  # noqa: E402
import re  # noqa: E402
import shutil  # noqa: E402
import time  # noqa: E402
from collections.abc import Iterator, Sequence  # noqa: E402
from contextlib import contextmanager  # noqa: E402
from dataclasses import dataclass  # noqa: E402

from bench.corpus import DEFAULT_CACHE  # noqa: E402
from bench.pdf_corpus import DOCUMENTS, QUESTIONS, pdf_corpus  # noqa: E402
from bench.pdf_pages import AFTER_SOURCES, MODES, PdfQuestion, load_questions, run, summary  # noqa: E402
from bench.questions import split  # noqa: E402

RUNS = ("text", "scan")
SCAN_SOURCES = ("store/parsing/ocr.py",)  # and the scan's settings (``cache_key``)


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


@dataclass(frozen=True)
class Options:
    docs: tuple[str, ...]
    neighbours: int
    pages_per_doc: int | None
    all_pages: bool
    dpi: int
    seed: int


def kept_pages(questions: Sequence[PdfQuestion], options: Options) -> dict[str, list[int]]:
    """Per document, the original physical pages (1-based, in order) that the bench keeps."""
    kept: dict[str, list[int]] = {}
    for doc in DOCUMENTS:
        if doc.name not in options.docs:
            continue
        if options.all_pages:
            kept[doc.name] = list(range(1, doc.pages + 1))
            continue
        gold = sorted({p for q in questions if q.document == doc.name for p in q.pages})
        ranked = list(gold)
        for distance in range(1, options.neighbours + 1):
            for page in gold:
                for near in (page - distance, page + distance):
                    if 1 <= near <= doc.pages and near not in ranked:
                        ranked.append(near)
        if options.pages_per_doc is not None:
            ranked = ranked[: options.pages_per_doc]
        if ranked:
            kept[doc.name] = sorted(ranked)
    return kept


def mapped_questions(questions: Sequence[PdfQuestion], kept: dict[str, list[int]]) -> list[PdfQuestion]:
    """The questions whose gold pages were kept, their gold pages renumbered as in the smaller PDFs."""
    out = []
    for q in questions:
        pages = kept.get(q.document, [])
        gold = frozenset(pages.index(p) + 1 for p in q.pages if p in pages)
        if gold:
            out.append(PdfQuestion(q.item, q.document, gold))
    return out


def write_text_subset(source: Path, pages: list[int], out: Path) -> None:
    from pypdf import PdfReader, PdfWriter

    writer = PdfWriter()
    reader = PdfReader(source)
    for page in pages:
        writer.add_page(reader.pages[page - 1])
    with out.open("wb") as handle:
        writer.write(handle)


def scanned(image, rng: random.Random):
    """A rendered page as a scanner gives it back: turned 0.5-1.5 degrees, light noise, specks."""
    import numpy as np
    from PIL import Image

    angle = rng.uniform(0.5, 1.5) * rng.choice((-1, 1))
    turned = image.rotate(angle, resample=Image.Resampling.BICUBIC, expand=False, fillcolor=255)
    pixels = np.asarray(turned, dtype=np.float32)
    noise = np.random.default_rng(rng.randrange(2**32))
    pixels = pixels + noise.normal(0.0, 12.0, pixels.shape)
    specks = noise.random(pixels.shape)
    pixels[specks < 0.0005] = 0.0
    pixels[specks > 0.9995] = 255.0
    return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8), mode="L"), angle


def write_scan(source: Path, out: Path, dpi: int, rng: random.Random) -> list[float]:
    """``source`` rendered page by page and rebuilt as an image-only PDF; the angles used."""
    import pypdfium2
    from pypdf import PdfReader, PdfWriter

    document = pypdfium2.PdfDocument(str(source))
    writer = PdfWriter()
    angles = []
    try:
        for index in range(len(document)):
            page = document[index]
            width, height = page.get_size()
            image = page.render(scale=dpi / 72, grayscale=True).to_pil().convert("L")
            page.close()
            noisy, angle = scanned(image, rng)
            angles.append(angle)
            buffer = io.BytesIO()
            noisy.save(buffer, format="PDF", resolution=dpi, quality=85)
            writer.add_page(PdfReader(buffer).pages[0])
            writer.pages[-1].scale_to(width, height)
    finally:
        document.close()
    with out.open("wb") as handle:
        writer.write(handle)
    return angles


def check_mapping(root: Path, text_dir: Path, scan_dir: Path, kept: dict[str, list[int]]) -> None:
    """Each kept page is the original one: same text (pdfium) in the text PDF; in the scan, the
    same page size and no text at all. Stops the bench otherwise."""
    import pypdfium2

    for name, pages in kept.items():
        original = pypdfium2.PdfDocument(str(root / name))
        text = pypdfium2.PdfDocument(str(text_dir / name))
        scan = pypdfium2.PdfDocument(str(scan_dir / name))
        try:
            if not len(text) == len(scan) == len(pages):
                raise SystemExit(f"{name}: {len(pages)} pages kept, {len(text)} written, {len(scan)} scanned")
            for at, page in enumerate(pages):
                want = original[page - 1]
                size = want.get_size()
                if text[at].get_textpage().get_text_range() != want.get_textpage().get_text_range():
                    raise SystemExit(f"{name}: page {at + 1} of the text PDF is not page {page}")
                got = scan[at].get_size()
                if max(abs(a - b) for a, b in zip(got, size, strict=True)) > 1:
                    raise SystemExit(f"{name}: scanned page {at + 1} is {got}, page {page} is {size}")
                if scan[at].get_textpage().count_chars():
                    raise SystemExit(f"{name}: scanned page {at + 1} has a text layer")
        finally:
            for document in (original, text, scan):
                document.close()


def build_pdfs(root: Path, home: Path, kept: dict[str, list[int]], options: Options) -> tuple[Path, Path]:
    """The text and the scanned PDFs of the kept pages (once, cached under ``home``)."""
    text_dir, scan_dir = home / "text-pdfs", home / "scan-pdfs"
    done = home / ".pdfs-complete"
    if not done.is_file():
        for folder in (text_dir, scan_dir):
            shutil.rmtree(folder, ignore_errors=True)
            folder.mkdir(parents=True)
        rng = random.Random(options.seed)
        angles: dict[str, list[float]] = {}
        for name, pages in kept.items():
            write_text_subset(root / name, pages, text_dir / name)
            angles[name] = write_scan(text_dir / name, scan_dir / name, options.dpi, rng)
            log(f"  {name}: {len(pages)} pages written and scanned")
        (home / "pages.json").write_text(json.dumps({"kept": kept, "angles": angles}, indent=1))
        done.touch()
    check_mapping(root, text_dir, scan_dir, kept)
    return text_dir, scan_dir


@dataclass
class OcrClock:
    pages: int = 0
    seconds: float = 0.0


@contextmanager
def timed_ocr(clock: OcrClock) -> Iterator[None]:
    """Count the pages OCR reads and the time it takes (pdfium's rendering and Tesseract)."""
    from store.parsing import ocr

    original = ocr.page_reader

    @contextmanager
    def page_reader(*args, **kwargs):
        with original(*args, **kwargs) as read:

            def timed(index: int):
                started = time.monotonic()
                try:
                    return read(index)
                finally:
                    clock.pages += 1
                    clock.seconds += time.monotonic() - started
                    if clock.pages % 10 == 0:
                        log(f"  OCR: {clock.pages} pages in {clock.seconds:.0f} s")

            yield timed

    ocr.page_reader = page_reader
    try:
        yield
    finally:
        ocr.page_reader = original


def knowledge_base(name: str, folder: Path, home: Path, embedder):
    """The knowledge base of one run, built once (cached), opened with the app's settings."""
    from store.knowledge_base import KnowledgeBase
    from store.settings import Settings

    ocr = "always" if name == "scan" else "auto"
    kb_home = home / f"kb-{name}"
    done = kb_home / ".complete"
    if not done.is_file():
        shutil.rmtree(kb_home, ignore_errors=True)
        log(f"building the {name} knowledge base (ocr = {ocr}) ...")
        clock = OcrClock()
        started = time.monotonic()
        with (
            timed_ocr(clock),
            KnowledgeBase.open(Settings.load(home=kb_home, env={}, ocr=ocr), "bench", embedder) as kb,
        ):
            for event in kb.add([folder]):
                if event.status == "failed":
                    log(f"  failed: {event.source}: {event.reason}")
            seconds = time.monotonic() - started
            chunks = kb.stats()["chunks"]
        load = os.getloadavg()[0]
        build = {"seconds": round(seconds, 1), "chunks": chunks, "load": load}
        build |= {"ocr_pages": clock.pages, "ocr_seconds": round(clock.seconds, 1)}
        log(
            f"  {chunks} chunks in {seconds:.0f} s (OCR: {clock.pages} pages in {clock.seconds:.0f} s; load {load:.2f})"
        )
        (kb_home / "build.json").write_text(json.dumps(build))
        done.touch()
    kb = KnowledgeBase.open(Settings.load(home=kb_home, env={}, ocr=ocr), "bench", embedder)
    return kb, json.loads((kb_home / "build.json").read_text())


def keywords_on_gold(kb, questions: Sequence[PdfQuestion], keywords: dict[str, list[str]]) -> float:
    """The share of questions whose keywords all appear (case and spacing aside) in the text the
    knowledge base stores for a gold page: OCR's fidelity where it matters."""
    found = 0
    for q in questions:
        rows = kb.db.execute(
            "SELECT c.text FROM chunks c JOIN documents d ON d.id = c.doc_id "
            f"WHERE c.kb_id = ? AND d.source = ? AND c.page IN ({', '.join('?' * len(q.pages))})",
            [kb.id, q.document, *sorted(q.pages)],
        ).fetchall()
        page_text = " ".join(" ".join(text.split()).casefold() for (text,) in rows)
        found += all(" ".join(k.split()).casefold() in page_text for k in keywords.get(q.item.id, []))
    return found / len(questions) if questions else 0.0


def _page_words(text: str) -> set[str]:
    return {w.casefold() for w in re.findall(r"[^\W\d_]{4,}", text)}


def ocr_pages_match(kb, text_dir: Path, kept: dict[str, list[int]]) -> tuple[int, int, float]:
    """The page numbers of the scan mean the original pages: for each kept page (with 10 words at
    least), whether the words OCR stored for page k are most like page k's own (its text layer;
    Jaccard similarity of the sets of words of 4 letters or more) among the kept pages of its
    document. Returns (pages matched, pages checked, mean share of each page's words that OCR
    found on it)."""
    import pypdfium2

    matched, checked, shares = 0, 0, []
    for name, pages in kept.items():
        document = pypdfium2.PdfDocument(str(text_dir / name))
        try:
            truth = [_page_words(document[i].get_textpage().get_text_range()) for i in range(len(pages))]
        finally:
            document.close()
        for k, words in enumerate(truth, start=1):
            if len(words) < 10:
                continue
            rows = kb.db.execute(
                "SELECT c.text FROM chunks c JOIN documents d ON d.id = c.doc_id "
                "WHERE c.kb_id = ? AND d.source = ? AND c.page = ?",
                [kb.id, name, k],
            ).fetchall()
            read = _page_words(" ".join(text for (text,) in rows))
            scores = [len(read & other) / len(read | other) for other in truth]  # Jaccard
            checked += 1
            matched += max(range(len(scores)), key=lambda j: (scores[j], j == k - 1)) == k - 1
            shares.append(len(read & words) / len(words))
    return matched, checked, sum(shares) / len(shares) if shares else 0.0


def cache_key(kept: dict[str, list[int]], options: Options) -> str:
    digest = hashlib.sha256()
    for doc in DOCUMENTS:
        digest.update(f"{doc.name}:{doc.sha256}\n".encode())
    digest.update(json.dumps({"kept": kept, "dpi": options.dpi, "seed": options.seed}, sort_keys=True).encode())
    for source in (*AFTER_SOURCES, *SCAN_SOURCES):
        digest.update((ROOT / source).read_bytes())
    for function in (scanned, write_scan, write_text_subset):  # how the PDFs are made
        digest.update(inspect.getsource(function).encode())
    from store.settings import Settings

    defaults = Settings.load(env={})
    return f"pdf-scanned-{digest.hexdigest()[:10]}-t{defaults.chunk_tokens}o{defaults.chunk_overlap}"


def table(rows: list[list[str]]) -> str:
    header = ["run", "mode", "half", "R@1", "R@5", "MRR", "n"]
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    lines = [" | ".join(str(c).ljust(w) for c, w in zip(r, widths, strict=True)) for r in [header, *rows]]
    lines.insert(1, "-+-".join("-" * w for w in widths))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    names = [doc.name for doc in DOCUMENTS]
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--docs", nargs="+", choices=names, default=names, help="default: all five")
    parser.add_argument("--neighbours", type=int, default=1, help="pages kept before and after each gold page")
    parser.add_argument("--pages-per-doc", type=int, help="keep at most N pages per document (gold pages first)")
    parser.add_argument("--all-pages", action="store_true", help="keep every page (about 45 minutes of OCR)")
    parser.add_argument("--dpi", type=int, default=200, help="the scan's resolution (default 200)")
    parser.add_argument("--seed", type=int, default=15, help="of the angles and the noise")
    parser.add_argument("--cache-dir", type=Path, default=DEFAULT_CACHE, help=f"default {DEFAULT_CACHE}")
    parser.add_argument(
        "--omp-thread-limit", type=int, default=1, help="Tesseract's OpenMP threads (OMP_THREAD_LIMIT); 0: unset"
    )
    args = parser.parse_args(argv)
    if args.omp_thread_limit:  # read by each Tesseract process pytesseract starts (it passes os.environ)
        os.environ["OMP_THREAD_LIMIT"] = str(args.omp_thread_limit)
    load_start = os.getloadavg()[0]
    options = Options(tuple(args.docs), args.neighbours, args.pages_per_doc, args.all_pages, args.dpi, args.seed)
    from store.embedding import Embedder

    cache = args.cache_dir.resolve()
    root, _ = pdf_corpus(cache)
    all_questions = load_questions()
    keywords = {
        row["id"]: row.get("keywords", [])
        for row in map(json.loads, QUESTIONS.read_text(encoding="utf-8").splitlines())
        if row
    }
    kept = kept_pages(all_questions, options)
    questions = mapped_questions(all_questions, kept)
    dev, test = split([q.item for q in questions])
    halves = {"dev": {i.id for i in dev}, "test": {i.id for i in test}, "all": {q.item.id for q in questions}}
    home = cache / cache_key(kept, options)
    home.mkdir(parents=True, exist_ok=True)
    log(f"{sum(map(len, kept.values()))} pages of {len(kept)} PDFs kept, {len(questions)} questions; in {home}")
    text_dir, scan_dir = build_pdfs(root, home, kept, options)
    embedder = Embedder()
    started = time.monotonic()
    rows: list[list[str]] = []
    builds: dict[str, dict] = {}
    fidelity: dict[str, float] = {}
    for name, folder in zip(RUNS, (text_dir, scan_dir), strict=True):
        kb, builds[name] = knowledge_base(name, folder, home, embedder)
        try:
            fidelity[name] = keywords_on_gold(kb, questions, keywords)
            if name == "scan":
                page_match = ocr_pages_match(kb, text_dir, kept)
            labels = {doc: [str(i) for i in range(1, len(pages) + 1)] for doc, pages in kept.items()}
            for mode in MODES:
                outcomes = run(kb, questions, mode, labels)
                for which in ("dev", "test", "all"):
                    rows.append([name, mode, which, *summary([outcomes[i] for i in outcomes if i in halves[which]])])
        finally:
            kb.close()
    rows = [row[:6] + row[7:] for row in rows]  # the label column means nothing here: pages are renumbered
    scan = builds["scan"]
    pages = sum(map(len, kept.values()))
    per_doc = ", ".join(f"{doc} {len(p)}" for doc, p in kept.items())
    near = f"{options.neighbours} neighbour{'s' * (options.neighbours != 1)}"
    print(
        f"\n{len(questions)} questions ({len(dev)} dev, {len(test)} test) on {pages} pages of {len(kept)} PDFs "
        f"({per_doc}): "
        + ("every page" if options.all_pages else f"the gold pages and {near} each way")
        + (f", at most {options.pages_per_doc} a document" if options.pages_per_doc else "")
        + "; the text and the scan runs hold the same pages."
    )
    print(
        f"scan: {options.dpi} dpi grayscale, turned 0.5-1.5 degrees, Gaussian noise (sigma 12) and 0.1% specks, "
        f"seed {options.seed}; OCR at 300 dpi (ocr = always), "
        f"OMP_THREAD_LIMIT={os.environ.get('OMP_THREAD_LIMIT', 'unset')}"
    )
    print(
        f"OCR: {scan['ocr_pages']} pages in {scan['ocr_seconds']:.0f} s = "
        f"{scan['ocr_pages'] / max(scan['ocr_seconds'], 1e-9):.2f} pages/s "
        f"({scan['ocr_seconds'] / max(scan['ocr_pages'], 1):.2f} s a page)"
    )
    print(
        f"page numbers: on {page_match[0]} of {page_match[1]} scanned pages, the words OCR stored for the page "
        f"are most like its own original page's (of the document's kept pages); OCR found "
        f"{page_match[2]:.0%} of a page's words on average"
    )
    for name in RUNS:
        b = builds[name]
        print(
            f"{name}: {b['chunks']} passages, built in {b['seconds']:.0f} s at load {b['load']:.2f}; "
            f"keywords found on the gold page: {fidelity[name]:.3f}"
        )
    print(
        f"searched in {time.monotonic() - started:.0f} s; load average {load_start:.2f} at the start, "
        f"{os.getloadavg()[0]:.2f} at the end"
    )
    print(table(rows))
    recall = {row[0]: float(row[4]) for row in rows if row[1] == "hybrid" and row[2] == "all"}
    gap = recall["text"] - recall["scan"]
    verdict = "within" if gap <= 0.05 else "NOT within"
    print(
        f"hybrid page-recall@5, all questions: text {recall['text']:.3f}, scan {recall['scan']:.3f} "
        f"({verdict} 0.05 of the text layer)",
        flush=True,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
