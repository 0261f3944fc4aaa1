"""The benchmark corpora: public manuals fetched from Debian packages.

Three corpora of different kinds, each fetched the same way: ``apt-get download`` of the package
into ``bench/.cache/<package>/`` (running ``apt-get update`` once if apt has no list for it yet),
``dpkg-deb -x`` of the .deb, and a curated folder holding hard links (or copies) of the kept
pages only, so that a knowledge base can ingest the folder as a whole (``kb.add([root])`` walks
it and sees exactly these files). A manifest beside the folder records what was built; a second
call reuses the cache. Each fetcher returns ``(root, files)``: the curated folder and its HTML
files, absolute and sorted by their path relative to ``root``.

``CORPORA`` maps a short name to its fetcher, ``corpus(name, cache)`` calls it and
``QUESTIONS`` gives each corpus's question file under ``bench/data/``.

``python`` -- ``python_docs()``: the HTML manual of ``python3.11-doc`` (a large reference
manual of many mid-sized pages). Paths look like ``library/json.html``.

* kept: every content page: library/, tutorial/, howto/, reference/, using/, faq/, whatsnew/,
  c-api/, extending/, distutils/, install/, installing/, distributing/, includes/ and the
  top-level pages (index, glossary, about, bugs, copyright, license, download).
* left out, because they are pure indexes with no prose of their own and would only pollute
  retrieval (every identifier of the manual appears in them again, as a link):
  ``genindex*.html`` (30 pages; ``genindex-all.html`` alone is 46k words of links),
  ``py-modindex.html`` (module names with their one-line synopses, repeated from each module's
  page), ``contents.html`` (the 24k-word table of contents) and ``search.html`` (a JavaScript
  shell with no text).
* never part of the corpus: ``_static/`` (CSS/JS), ``_images/``, ``_downloads/``, ``_sources/``
  (the reST sources: duplicates of the pages), ``objects.inv``, ``searchindex.js``.

With Debian 12's 3.11.2 package this gives 497 pages (530 HTML files minus the 33 index pages);
``include_indexes=True`` keeps the index pages too (530).

``postgres`` -- ``postgres_docs()``: the HTML manual of ``postgresql-doc-15`` (DocBook output,
one page per section). Paths look like ``sql-syntax-lexical.html`` (flat folder).

* kept: the whole of Parts I-III, "Tutorial" (chapters 1-3), "The SQL Language" (chapters
  4-15: syntax, DDL, DML, queries, data types, functions, type conversion, indexes, full text
  search, concurrency control, performance tips, parallel query) and "Server Administration"
  (chapters 16-33: installation, server setup, configuration parameters, client authentication,
  roles, databases, localization, maintenance, backup, high availability, monitoring, WAL,
  logical replication, JIT, regression tests). The pages are exactly those linked from the
  table of contents of the three part pages ``tutorial.html``, ``sql.html`` and ``admin.html``
  (each chapter's page and its section pages), so the subset is deterministic and made of whole
  chapters.
* left out, for size: the manual has 1,167 HTML pages and about 1.3M words, which would make
  some 15k chunks, too slow to ingest for a benchmark. Parts IV-VIII (client interfaces, server
  programming, the SQL command reference, internals, appendixes with the release notes and
  contrib modules) are dropped as whole parts. Parts I-III are about 360k words (some 4k chunks).
* left out as pure indexes or navigation: the three part pages themselves (a table of contents
  with one intro paragraph), ``index.html`` (the book's table of contents), ``bookindex.html``
  (the index), and the images and stylesheet.

With Debian 12's 15.18 package this gives 289 pages.

``debian-policy`` -- ``debian_policy()``: the documents of the ``debian-policy`` package
(a normative text: few documents, most of them long). Paths are relative to the package's
``usr/share/doc/debian-policy/``, e.g. ``policy.html/ch-files.html`` or ``fhs/fhs-3.0.html``.

* kept: the Policy Manual's chapters and appendixes (``policy.html/ch-*.html``, ``ap-*.html``)
  and its ``upgrading-checklist.html``; the sub-policies and specifications shipped beside it as
  HTML: ``copyright-format-1.0.html`` (machine-readable debian/copyright), ``autopkgtest.html``,
  ``debconf_specification.html``, ``menu-policy-1.html``, ``perl-policy-1.html``, the
  Filesystem Hierarchy Standard ``fhs/fhs-3.0.html`` (which Policy incorporates) and the
  package's ``README.html`` (how Policy is maintained and changed).
* left out: ``policy.html/index.html`` (the manual's title page and full table of contents: every
  section title again, as links), ``policy.html/genindex.html`` and ``search.html`` (index and a
  JavaScript shell); the multi-page copies ``menu-policy.html/`` and ``perl-policy.html/``
  (the same text as the kept single-page ``menu-policy-1.html`` and ``perl-policy-1.html``);
  the same documents in other formats (``*.txt.gz``, ``policy.pdf.gz``, ``policy.epub``,
  ``_sources/``) and ``_static/``, ``_images/``, ``images/``, ``objects.inv``, ``searchindex.js``.

With Debian 12's 4.6.2.0 package this gives 30 documents (about 100k words, some 1.1k chunks).

Run ``python bench/corpus.py [NAME]`` to fetch a corpus (default ``python``) and print its size.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

PACKAGE = "python3.11-doc"
DEFAULT_CACHE = Path(__file__).resolve().parent / ".cache"
DATA_DIR = Path(__file__).resolve().parent / "data"
HTML_IN_PACKAGE = Path("usr/share/doc/python3.11/html")
INDEX_PAGES = ("search.html", "py-modindex.html", "contents.html")
SKIPPED_DIRS = ("_static", "_images", "_downloads", "_sources")
MIN_DOCUMENTS = 450  # fewer means the package layout changed and the benchmark is not comparable
MANIFEST_VERSION = 1

POSTGRES_PACKAGE = "postgresql-doc-15"
POSTGRES_HTML_IN_PACKAGE = Path("usr/share/doc/postgresql-doc-15/html")
POSTGRES_PARTS = ("tutorial.html", "sql.html", "admin.html")  # Parts I-III, see the docstring
POSTGRES_MIN_DOCUMENTS = 250

POLICY_PACKAGE = "debian-policy"
POLICY_DOCS_IN_PACKAGE = Path("usr/share/doc/debian-policy")
POLICY_SKIPPED_DIRS = ("_static", "_images", "_sources", "images", "menu-policy.html", "perl-policy.html")
POLICY_INDEX_PAGES = ("policy.html/index.html", "policy.html/genindex.html", "policy.html/search.html")
POLICY_MIN_DOCUMENTS = 25


class CorpusError(RuntimeError):
    """The corpus could not be fetched or extracted."""


def is_index_page(relative: Path) -> bool:
    """True for the Python manual's pure index pages (see the module docstring)."""
    name = relative.as_posix()
    return name in INDEX_PAGES or (len(relative.parts) == 1 and name.startswith("genindex"))


def python_docs(cache_dir: Path | None = None, *, include_indexes: bool = False) -> tuple[Path, list[Path]]:
    """Fetch (once) and return ``(html_root, html_files)`` for the Python 3.11 manual.

    ``html_files`` are absolute paths under ``html_root``, sorted by their relative path.
    """
    return _fetch(
        cache_dir,
        package=PACKAGE,
        content_dir=HTML_IN_PACKAGE,
        variant="html-all" if include_indexes else "html",
        select=lambda html: _select_pages(html, include_indexes),
        min_documents=MIN_DOCUMENTS,
        extra={"include_indexes": include_indexes},
    )


def postgres_docs(cache_dir: Path | None = None) -> tuple[Path, list[Path]]:
    """Fetch (once) and return ``(html_root, html_files)`` for Parts I-III of the PostgreSQL 15 manual."""
    return _fetch(
        cache_dir,
        package=POSTGRES_PACKAGE,
        content_dir=POSTGRES_HTML_IN_PACKAGE,
        variant="html",
        select=_select_postgres,
        min_documents=POSTGRES_MIN_DOCUMENTS,
        extra={"parts": list(POSTGRES_PARTS)},
    )


def debian_policy(cache_dir: Path | None = None) -> tuple[Path, list[Path]]:
    """Fetch (once) and return ``(docs_root, html_files)`` for the Debian Policy Manual and its companions."""
    return _fetch(
        cache_dir,
        package=POLICY_PACKAGE,
        content_dir=POLICY_DOCS_IN_PACKAGE,
        variant="html",
        select=_select_policy,
        min_documents=POLICY_MIN_DOCUMENTS,
        extra={},
    )


CORPORA: dict[str, Callable[..., tuple[Path, list[Path]]]] = {
    "python": python_docs,
    "postgres": postgres_docs,
    "debian-policy": debian_policy,
}

QUESTIONS: dict[str, Path] = {
    "python": DATA_DIR / "python_docs_questions.jsonl",
    "postgres": DATA_DIR / "postgres_questions.jsonl",
    "debian-policy": DATA_DIR / "debian_policy_questions.jsonl",
}


def corpus(name: str, cache_dir: Path | None = None) -> tuple[Path, list[Path]]:
    """Fetch (once) and return ``(root, files)`` for the corpus called ``name`` (a key of ``CORPORA``)."""
    try:
        fetch = CORPORA[name]
    except KeyError:
        raise CorpusError(f"unknown corpus {name!r}; known: {', '.join(CORPORA)}") from None
    return fetch(cache_dir)


def _fetch(
    cache_dir: Path | None,
    *,
    package: str,
    content_dir: Path,
    variant: str,
    select: Callable[[Path], list[Path]],
    min_documents: int,
    extra: dict,
) -> tuple[Path, list[Path]]:
    """Download, extract and curate one package (once); the shared body of the fetchers."""
    cache = Path(cache_dir) if cache_dir is not None else DEFAULT_CACHE
    cache = cache.resolve()
    work = cache / package
    root = work / variant
    manifest_path = work / f"{variant}.manifest.json"

    cached = _read_manifest(manifest_path, root)
    if cached is not None:
        return root, cached

    work.mkdir(parents=True, exist_ok=True)
    extracted = _extracted_html(work, package, content_dir)
    files = select(extracted)
    if len(files) < min_documents:
        raise CorpusError(
            f"{package} gave {len(files)} pages, expected at least {min_documents}: "
            f"has the package layout changed? (looked in {extracted})"
        )
    _build_tree(extracted, files, root)
    relative = [p.as_posix() for p in files]
    manifest = {
        "version": MANIFEST_VERSION,
        "package": package,
        "deb": _deb_file(work, package).name,
        **extra,
        "documents": len(relative),
        "files": relative,
    }
    tmp = manifest_path.with_suffix(".tmp")
    tmp.write_text(json.dumps(manifest, indent=1), encoding="utf-8")
    tmp.replace(manifest_path)
    return root, [root / r for r in relative]


def _read_manifest(manifest_path: Path, root: Path) -> list[Path] | None:
    """The cached file list, or None when the cache is missing, stale or incomplete."""
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if manifest.get("version") != MANIFEST_VERSION:
        return None
    files = [root / r for r in manifest.get("files", [])]
    if not files or not all(f.is_file() for f in files):
        return None
    return files


def _deb_file(work: Path, package: str = PACKAGE) -> Path:
    debs = sorted(work.glob(f"{package}_*.deb"))
    if not debs:
        raise CorpusError(f"no {package} .deb in {work}")
    return debs[-1]


def _download(work: Path, package: str = PACKAGE) -> Path:
    """``apt-get download`` the package into ``work`` (once); return the .deb."""
    try:
        return _deb_file(work, package)
    except CorpusError:
        pass
    if shutil.which("apt-get") is None:
        raise CorpusError("apt-get is not available: this benchmark needs a Debian-based system")
    cmd = ["apt-get", "download", package]
    result = subprocess.run(cmd, cwd=work, capture_output=True, text=True)
    if result.returncode != 0:
        # A fresh container often has no package lists yet ("Unable to locate package").
        update = subprocess.run(["apt-get", "update"], capture_output=True, text=True)
        if update.returncode != 0:
            raise CorpusError(
                f"`apt-get download {package}` failed ({result.stderr.strip()}) and "
                f"`apt-get update` failed too ({update.stderr.strip()})"
            )
        result = subprocess.run(cmd, cwd=work, capture_output=True, text=True)
        if result.returncode != 0:
            raise CorpusError(f"`apt-get download {package}` failed: {result.stderr.strip()}")
    return _deb_file(work, package)


def _extracted_html(work: Path, package: str = PACKAGE, content_dir: Path = HTML_IN_PACKAGE) -> Path:
    """Extract the .deb (once) and return its content folder (``content_dir`` inside the package)."""
    target = work / "extract"
    html = target / content_dir
    if (target / ".complete").is_file() and html.is_dir():
        return html
    deb = _download(work, package)
    if target.exists():
        shutil.rmtree(target)
    tmp = Path(tempfile.mkdtemp(prefix="extract-", dir=work))
    try:
        result = subprocess.run(["dpkg-deb", "-x", str(deb), str(tmp)], capture_output=True, text=True)
        if result.returncode != 0:
            raise CorpusError(f"dpkg-deb -x {deb.name} failed: {result.stderr.strip()}")
        if not (tmp / content_dir).is_dir():
            raise CorpusError(f"{deb.name} has no {content_dir}")
        (tmp / ".complete").touch()
        tmp.rename(target)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)
    return html


def _select_pages(html: Path, include_indexes: bool) -> list[Path]:
    """The kept pages of the Python manual, relative to ``html``, sorted."""
    kept = []
    for path in html.rglob("*.html"):
        relative = path.relative_to(html)
        if relative.parts[0] in SKIPPED_DIRS or path.is_symlink() or not path.is_file():
            continue
        if not include_indexes and is_index_page(relative):
            continue
        kept.append(relative)
    return sorted(kept, key=lambda p: p.as_posix())


_TOC = re.compile(r'<div class="toc">(.*?)</div>', re.DOTALL)
_HREF = re.compile(r'href="([^"#]+)(?:#[^"]*)?"')


def _toc_links(page: Path) -> list[str]:
    """The pages linked from the table of contents of a DocBook page (in order, no anchors)."""
    match = _TOC.search(page.read_text(encoding="utf-8", errors="replace"))
    if match is None:
        raise CorpusError(f"{page.name} has no table of contents: has the package layout changed?")
    return list(dict.fromkeys(_HREF.findall(match.group(1))))


def _select_postgres(html: Path) -> list[Path]:
    """Every page linked from the tables of contents of Parts I-III, relative to ``html``, sorted."""
    kept: set[str] = set()
    for part in POSTGRES_PARTS:
        for name in _toc_links(html / part):
            path = html / name
            if "/" in name or not name.endswith(".html") or path.is_symlink() or not path.is_file():
                raise CorpusError(f"{part} links to {name}, which is not a page of the manual")
            kept.add(name)
    return sorted((Path(name) for name in kept), key=lambda p: p.as_posix())


def _select_policy(docs: Path) -> list[Path]:
    """The kept documents of the debian-policy package, relative to ``docs``, sorted."""
    kept = []
    for path in docs.rglob("*.html"):
        relative = path.relative_to(docs)
        if any(part in POLICY_SKIPPED_DIRS for part in relative.parts[:-1]):
            continue
        if path.is_symlink() or not path.is_file() or relative.as_posix() in POLICY_INDEX_PAGES:
            continue
        kept.append(relative)
    return sorted(kept, key=lambda p: p.as_posix())


def _build_tree(source: Path, files: list[Path], root: Path) -> None:
    """Hard-link (or copy) the kept pages into a fresh ``root``, atomically renamed into place."""
    if root.exists():
        shutil.rmtree(root)
    tmp = Path(tempfile.mkdtemp(prefix=f"{root.name}-", dir=root.parent))
    try:
        for relative in files:
            dest = tmp / relative
            dest.parent.mkdir(parents=True, exist_ok=True)
            try:
                os.link(source / relative, dest)
            except OSError:
                shutil.copy2(source / relative, dest)
        tmp.rename(root)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)


def main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("name", nargs="?", default="python", choices=sorted(CORPORA), help="default python")
    parser.add_argument("--cache-dir", type=Path, default=None, help=f"default {DEFAULT_CACHE}")
    parser.add_argument("--include-indexes", action="store_true", help="python only: keep genindex*, py-modindex, ...")
    args = parser.parse_args(argv)
    try:
        if args.name == "python":
            root, files = python_docs(args.cache_dir, include_indexes=args.include_indexes)
        else:
            root, files = corpus(args.name, args.cache_dir)
    except CorpusError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    size = sum(f.stat().st_size for f in files)
    print(f"{len(files)} HTML documents ({size / 1e6:.1f} MB) in {root}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
