"""The real-PDF corpus of issue 15: five manuals from three Debian packages, fetched, never committed.

Each PDF is taken from its package the way ``bench/corpus.py`` takes HTML (``apt-get download``
into ``bench/.cache/<package>/``, ``apt-get update`` once if apt has no list yet, ``dpkg-deb -x``),
copied to ``bench/.cache/pdf-bench/pdfs/<name>`` (gunzipped where the package ships ``.pdf.gz``)
and checked against the sha256 pinned in ``DOCUMENTS``: a different file means a different
package version, and the gold pages of ``bench/data/pdf_questions.jsonl`` would no longer hold,
so the fetch stops with an error instead.

The documents (Debian 12 packages), 482 pages in all:

=================  ======================  =====  ==============================================
name               package                 pages  why
=================  ======================  =====  ==============================================
policy.pdf         debian-policy 4.6.2.0    193   Sphinx/LaTeX; page labels: 2 title pages, roman
                                                  front matter i-viii, then 1-183 (physical page
                                                  = label + 10); running headers; a few tables
fhs-3.0.pdf        debian-policy 4.6.2.0     50   DocBook; labels offset by 7 (roman i-v);
                                                  directory and command tables on most pages
R-intro.pdf        r-doc-pdf 4.2.2           113   Texinfo; labels T-1, T-2, i-iv, then 1-107
                                                  (offset 6); running headers and footers;
                                                  two-column indexes at the end
R-data.pdf         r-doc-pdf 4.2.2            41   Texinfo; labels offset 4; tables of
                                                  connection modes and formats
ltnews.pdf         texlive-latex-base-doc     85   LaTeX News issues 1-36 in two columns (narrow
                   2022.20230122-3                 columns: many words hyphenated at line ends)
=================  ======================  =====  ==============================================

``pdf_corpus()`` returns ``(root, files)`` like the fetchers of ``bench/corpus.py``: the folder
of the five PDFs (ingest it as a whole) and their paths; a second call reuses the cache.

    .venv/bin/python bench/pdf_corpus.py        # fetch once, print the documents and page counts
"""

from __future__ import annotations

import gzip
import hashlib
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.corpus import DATA_DIR, DEFAULT_CACHE, CorpusError, _download

QUESTIONS = DATA_DIR / "pdf_questions.jsonl"
FOLDER = "pdf-bench"


@dataclass(frozen=True)
class PdfDocument:
    name: str  # the file name in the corpus folder (what a knowledge base reports as source)
    package: str
    member: str  # the path inside the package; ".gz" is gunzipped
    sha256: str  # of the PDF itself (after gunzip)
    pages: int


DOCUMENTS: tuple[PdfDocument, ...] = (
    PdfDocument(
        "policy.pdf",
        "debian-policy",
        "usr/share/doc/debian-policy/policy.pdf.gz",
        "220f9366d6deb3984e84236f02f04bdd6275d6fe7b5587acd6c689dfeb99020f",
        193,
    ),
    PdfDocument(
        "fhs-3.0.pdf",
        "debian-policy",
        "usr/share/doc/debian-policy/fhs/fhs-3.0.pdf.gz",
        "53d239e569a2d7b31a74fa09d585368c0f5a164e4624723fa2894660dd10fd23",
        50,
    ),
    PdfDocument(
        "R-intro.pdf",
        "r-doc-pdf",
        "usr/share/R/doc/manual/R-intro.pdf",
        "337ccd0b490b1e66f7e783b45f4588d0599730b4206c0c051edfe1419c568c51",
        113,
    ),
    PdfDocument(
        "R-data.pdf",
        "r-doc-pdf",
        "usr/share/R/doc/manual/R-data.pdf",
        "9381a39ffeb8545a745c2618ba955b4ae4e10b9c8373cd5bc1984fff8318f8ca",
        41,
    ),
    PdfDocument(
        "ltnews.pdf",
        "texlive-latex-base-doc",
        "usr/share/doc/texlive-doc/latex/base/ltnews.pdf",
        "d72282cce772fee744bcf9597b4f08704ec1c321d7dacc26a413177770fd8c3a",
        85,
    ),
)


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def pdf_corpus(cache_dir: Path | None = None) -> tuple[Path, list[Path]]:
    """Fetch (once) and return ``(root, pdf_files)``, every file checked against its pinned sha256."""
    cache = (Path(cache_dir) if cache_dir is not None else DEFAULT_CACHE).resolve()
    root = cache / FOLDER / "pdfs"
    root.mkdir(parents=True, exist_ok=True)
    files = []
    for doc in DOCUMENTS:
        target = root / doc.name
        if not target.is_file() or sha256_of(target) != doc.sha256:
            _extract(cache, doc, target)
        files.append(target)
    return root, files


def _extract(cache: Path, doc: PdfDocument, target: Path) -> None:
    """Copy ``doc`` out of its package's .deb into ``target`` (atomically), verifying its hash."""
    work = cache / doc.package
    work.mkdir(parents=True, exist_ok=True)
    deb = _download(work, doc.package)
    with tempfile.TemporaryDirectory(prefix="pdf-extract-", dir=cache / FOLDER) as tmp:
        result = subprocess.run(["dpkg-deb", "-x", str(deb), tmp], capture_output=True, text=True)
        if result.returncode != 0:
            raise CorpusError(f"dpkg-deb -x {deb.name} failed: {result.stderr.strip()}")
        source = Path(tmp) / doc.member
        if not source.is_file():
            raise CorpusError(f"{deb.name} has no {doc.member}: has the package layout changed?")
        partial = target.with_suffix(".part")
        if source.suffix == ".gz":
            with gzip.open(source, "rb") as src, partial.open("wb") as dest:
                shutil.copyfileobj(src, dest)
        else:
            shutil.copyfile(source, partial)
    found = sha256_of(partial)
    if found != doc.sha256:
        partial.unlink()
        raise CorpusError(
            f"{doc.name} from {deb.name} has sha256 {found}, expected {doc.sha256}: a different package "
            "version, so the gold pages of the questions may not hold"
        )
    partial.replace(target)


def main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cache-dir", type=Path, default=None, help=f"default {DEFAULT_CACHE}")
    args = parser.parse_args(argv)
    try:
        root, files = pdf_corpus(args.cache_dir)
    except CorpusError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    for doc, path in zip(DOCUMENTS, files, strict=True):
        print(f"{doc.name:12} {doc.pages:4} pages  {doc.package:24} {path.stat().st_size / 1e6:.1f} MB")
    print(f"{len(files)} PDFs, {sum(d.pages for d in DOCUMENTS)} pages, in {root}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
