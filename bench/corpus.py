"""The benchmark corpus: the HTML manual of Debian's ``python3.11-doc`` package.

``python_docs()`` downloads the package with ``apt-get download`` (running ``apt-get update``
once if apt has no list for it yet), extracts it with ``dpkg-deb -x`` and builds a curated copy of
its ``html/`` folder under ``bench/.cache/`` (git-ignored). It returns that folder and the HTML
files in it; paths relative to the folder look like ``library/json.html``. A second call reuses
the cache (a manifest beside the folder records what was built).

Which pages are kept (the decision the benchmark depends on):

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

The curated folder holds hard links (or copies) of the kept pages only, so that a knowledge base
can ingest the folder as a whole: ``kb.add([root])`` walks it and sees exactly these files.

With Debian 12's 3.11.2 package this gives 497 pages (530 HTML files minus the 33 index pages);
``include_indexes=True`` keeps the index pages too (530).

Run ``python bench/corpus.py`` to fetch the corpus and print its size.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

PACKAGE = "python3.11-doc"
DEFAULT_CACHE = Path(__file__).resolve().parent / ".cache"
HTML_IN_PACKAGE = Path("usr/share/doc/python3.11/html")
INDEX_PAGES = ("search.html", "py-modindex.html", "contents.html")
SKIPPED_DIRS = ("_static", "_images", "_downloads", "_sources")
MIN_DOCUMENTS = 450  # fewer means the package layout changed and the benchmark is not comparable
MANIFEST_VERSION = 1


class CorpusError(RuntimeError):
    """The corpus could not be fetched or extracted."""


def is_index_page(relative: Path) -> bool:
    """True for the manual's pure index pages (see the module docstring)."""
    name = relative.as_posix()
    return name in INDEX_PAGES or (len(relative.parts) == 1 and name.startswith("genindex"))


def python_docs(cache_dir: Path | None = None, *, include_indexes: bool = False) -> tuple[Path, list[Path]]:
    """Fetch (once) and return ``(html_root, html_files)`` for the Python 3.11 manual.

    ``html_files`` are absolute paths under ``html_root``, sorted by their relative path.
    """
    cache = Path(cache_dir) if cache_dir is not None else DEFAULT_CACHE
    cache = cache.resolve()
    variant = "html-all" if include_indexes else "html"
    work = cache / PACKAGE
    root = work / variant
    manifest_path = work / f"{variant}.manifest.json"

    cached = _read_manifest(manifest_path, root)
    if cached is not None:
        return root, cached

    work.mkdir(parents=True, exist_ok=True)
    extracted = _extracted_html(work)
    files = _select_pages(extracted, include_indexes)
    if len(files) < MIN_DOCUMENTS:
        raise CorpusError(
            f"{PACKAGE} gave {len(files)} pages, expected at least {MIN_DOCUMENTS}: "
            f"has the package layout changed? (looked in {extracted})"
        )
    _build_tree(extracted, files, root)
    relative = [p.as_posix() for p in files]
    manifest = {
        "version": MANIFEST_VERSION,
        "package": PACKAGE,
        "deb": _deb_file(work).name,
        "include_indexes": include_indexes,
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


def _deb_file(work: Path) -> Path:
    debs = sorted(work.glob(f"{PACKAGE}_*.deb"))
    if not debs:
        raise CorpusError(f"no {PACKAGE} .deb in {work}")
    return debs[-1]


def _download(work: Path) -> Path:
    """``apt-get download`` the package into ``work`` (once); return the .deb."""
    try:
        return _deb_file(work)
    except CorpusError:
        pass
    if shutil.which("apt-get") is None:
        raise CorpusError("apt-get is not available: this benchmark needs a Debian-based system")
    cmd = ["apt-get", "download", PACKAGE]
    result = subprocess.run(cmd, cwd=work, capture_output=True, text=True)
    if result.returncode != 0:
        # A fresh container often has no package lists yet ("Unable to locate package").
        update = subprocess.run(["apt-get", "update"], capture_output=True, text=True)
        if update.returncode != 0:
            raise CorpusError(
                f"`apt-get download {PACKAGE}` failed ({result.stderr.strip()}) and "
                f"`apt-get update` failed too ({update.stderr.strip()})"
            )
        result = subprocess.run(cmd, cwd=work, capture_output=True, text=True)
        if result.returncode != 0:
            raise CorpusError(f"`apt-get download {PACKAGE}` failed: {result.stderr.strip()}")
    return _deb_file(work)


def _extracted_html(work: Path) -> Path:
    """Extract the .deb (once) and return its html/ folder."""
    target = work / "extract"
    html = target / HTML_IN_PACKAGE
    if (target / ".complete").is_file() and html.is_dir():
        return html
    deb = _download(work)
    if target.exists():
        shutil.rmtree(target)
    tmp = Path(tempfile.mkdtemp(prefix="extract-", dir=work))
    try:
        result = subprocess.run(["dpkg-deb", "-x", str(deb), str(tmp)], capture_output=True, text=True)
        if result.returncode != 0:
            raise CorpusError(f"dpkg-deb -x {deb.name} failed: {result.stderr.strip()}")
        if not (tmp / HTML_IN_PACKAGE).is_dir():
            raise CorpusError(f"{deb.name} has no {HTML_IN_PACKAGE}")
        (tmp / ".complete").touch()
        tmp.rename(target)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)
    return html


def _select_pages(html: Path, include_indexes: bool) -> list[Path]:
    """The kept pages, relative to ``html``, sorted."""
    kept = []
    for path in html.rglob("*.html"):
        relative = path.relative_to(html)
        if relative.parts[0] in SKIPPED_DIRS or path.is_symlink() or not path.is_file():
            continue
        if not include_indexes and is_index_page(relative):
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
    parser.add_argument("--cache-dir", type=Path, default=None, help=f"default {DEFAULT_CACHE}")
    parser.add_argument("--include-indexes", action="store_true", help="keep genindex*, py-modindex, ...")
    args = parser.parse_args(argv)
    try:
        root, files = python_docs(args.cache_dir, include_indexes=args.include_indexes)
    except CorpusError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    size = sum(f.stat().st_size for f in files)
    print(f"{len(files)} HTML documents ({size / 1e6:.1f} MB) in {root}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
