"""Validate the benchmark question files against their corpora (``bench/data/*_questions*.jsonl``).

For each corpus of ``bench.corpus.QUESTIONS`` (all of them, or those named on the command line)
it fetches the corpus (from the cache when it is there), then checks every line of its question
files (the first batch and the second, ``*_questions_b.jsonl``; ids must not repeat across them):

* a JSON object with a unique ``id`` and a non-empty ``question`` (unique too);
* answerable: ``page`` (and every ``also`` page) is a document of the curated corpus, ``keywords``
  holds 1-3 non-empty strings and each occurs, case-insensitively, in the text that the project's
  own parser (``store.parsing.parse``) extracts from ``page``;
* unanswerable (``"unanswerable": true``): ``page`` null, no ``also``, empty ``keywords``; its
  optional ``absent`` terms (what the question is about) must occur nowhere in the text of the
  whole corpus as whole words, which is parsed only when such terms are given;
* the file loads with ``assistant.evaluation.load_qa``, as the chat's evaluation reads it.

``pdf`` (``bench/pdf_corpus.py``, ``bench/data/pdf_questions.jsonl``) is checked per page: ``page``
names one of the corpus's PDFs, ``pdf_pages`` lists its gold physical pages (1-based, within the
document), and each keyword occurs in the text the project's parser extracts from those pages.

It prints a summary per file (answerable, with ``also``, unanswerable) and every problem, and
exits 1 when there is one. Parsing a whole corpus loops over every page: run it under
``nice -n 19`` on a busy machine.

    .venv/bin/python bench/check_questions.py [NAME ...]
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from assistant.evaluation import load_qa
from bench.corpus import CORPORA, QUESTIONS, CorpusError, corpus
from bench.questions import load, question_files, split
from store.parsing import parse

MAX_KEYWORDS = 3


class _Texts:
    """Lower-cased extracted text of the corpus's pages, parsed on demand and kept."""

    def __init__(self, root: Path, files: list[Path]):
        self.root = root
        self.pages = {f.relative_to(root).as_posix(): f for f in files}
        self._text: dict[str, str] = {}

    def text(self, page: str) -> str:
        if page not in self._text:
            parsed = parse(self.pages[page])
            self._text[page] = "\n".join([parsed.title, *(block.text for block in parsed.blocks)]).lower()
        return self._text[page]

    def pages_containing(self, term: str) -> list[str]:
        """The pages where ``term`` occurs as a whole word or phrase (so "PPA" does not match "apparent")."""
        pattern = re.compile(rf"(?<!\w){re.escape(term.lower())}(?!\w)")
        return [page for page in self.pages if pattern.search(self.text(page))]


def check_file(path: Path, texts: _Texts) -> tuple[list[str], dict[str, int]]:
    """The problems found in one question file and counts of its question kinds."""
    problems: list[str] = []
    counts = {"answerable": 0, "with_also": 0, "unanswerable": 0}
    seen_ids: set[str] = set()
    seen_questions: set[str] = set()
    absent_terms: list[tuple[str, str]] = []
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        return [f"{path}: cannot read: {exc}"], counts
    for number, line in enumerate(lines, start=1):
        where = f"{path.name}:{number}"
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except ValueError as exc:
            problems.append(f"{where}: not JSON ({exc})")
            continue
        if not isinstance(row, dict):
            problems.append(f"{where}: not a JSON object")
            continue
        qid = row.get("id")
        where = f"{path.name}:{number} ({qid})"
        if not isinstance(qid, str) or not qid:
            problems.append(f"{where}: missing id")
        elif qid in seen_ids:
            problems.append(f"{where}: duplicate id")
        seen_ids.add(str(qid))
        question = row.get("question")
        if not isinstance(question, str) or not question.strip():
            problems.append(f"{where}: missing question")
        elif question.strip().lower() in seen_questions:
            problems.append(f"{where}: duplicate question")
        else:
            seen_questions.add(question.strip().lower())
        keywords = row.get("keywords")
        if not isinstance(keywords, list) or not all(isinstance(k, str) and k.strip() for k in keywords):
            problems.append(f"{where}: keywords must be a list of non-empty strings")
            keywords = []
        also = row.get("also") or []
        if row.get("unanswerable"):
            counts["unanswerable"] += 1
            if row.get("page") is not None or also:
                problems.append(f"{where}: an unanswerable question has page null and no also")
            if keywords:
                problems.append(f"{where}: an unanswerable question has no keywords")
            absent = row.get("absent") or []
            if not isinstance(absent, list) or not all(isinstance(t, str) and t.strip() for t in absent):
                problems.append(f"{where}: absent must be a list of non-empty strings")
            else:
                absent_terms.extend((where, term) for term in absent)
            continue
        counts["answerable"] += 1
        page = row.get("page")
        if not isinstance(page, str) or page not in texts.pages:
            problems.append(f"{where}: page {page!r} is not a document of the corpus")
            continue
        if not isinstance(also, list) or not all(isinstance(p, str) for p in also):
            problems.append(f"{where}: also must be a list of pages")
            also = []
        if also:
            counts["with_also"] += 1
        for other in also:
            if other not in texts.pages:
                problems.append(f"{where}: also page {other!r} is not a document of the corpus")
            elif other == page:
                problems.append(f"{where}: also repeats page {page!r}")
        if not 1 <= len(keywords) <= MAX_KEYWORDS:
            problems.append(f"{where}: an answerable question has 1-{MAX_KEYWORDS} keywords, not {len(keywords)}")
        text = texts.text(page)
        missing = [keyword for keyword in keywords if keyword.lower() not in text]
        problems.extend(f"{where}: keyword {keyword!r} not in the text of {page}" for keyword in missing)
    for where, term in absent_terms:
        found = texts.pages_containing(term)
        if found:
            problems.append(f"{where}: {term!r} is in the corpus after all: {', '.join(found[:5])}")
    try:
        load_qa(path)
    except Exception as exc:  # the loader's own error, whatever it is, is a problem to report
        problems.append(f"{path.name}: assistant.evaluation.load_qa rejects it: {exc}")
    return problems, counts


def check_pdf_file(path: Path, root: Path) -> tuple[list[str], dict[str, int]]:
    """The problems of the real-PDF question file: keywords are looked for on the gold pages only."""
    problems: list[str] = []
    counts = {"answerable": 0, "with_also": 0, "unanswerable": 0}
    texts: dict[str, dict[int, str]] = {}
    seen_ids: set[str] = set()
    seen_questions: set[str] = set()
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        row = json.loads(line)
        where = f"{path.name}:{number} ({row.get('id')})"
        if row.get("id") in seen_ids:
            problems.append(f"{where}: duplicate id")
        seen_ids.add(row.get("id"))
        question = str(row.get("question") or "").strip().lower()
        if not question or question in seen_questions:
            problems.append(f"{where}: missing or duplicate question")
        seen_questions.add(question)
        counts["answerable"] += 1
        document = row.get("page")
        if not isinstance(document, str) or not (root / document).is_file():
            problems.append(f"{where}: {document!r} is not a PDF of the corpus")
            continue
        if document not in texts:
            pages: dict[int, str] = {}
            for block in parse(root / document).blocks:
                pages[block.page] = pages.get(block.page, "") + "\n" + block.text.lower()
            texts[document] = pages
        gold = row.get("pdf_pages")
        if not isinstance(gold, list) or not gold or not all(isinstance(p, int) and p >= 1 for p in gold):
            problems.append(f"{where}: pdf_pages must be a non-empty list of 1-based page numbers")
            continue
        keywords = row.get("keywords") or []
        if not 1 <= len(keywords) <= MAX_KEYWORDS:
            problems.append(f"{where}: 1-{MAX_KEYWORDS} keywords, not {len(keywords)}")
        text = "\n".join(texts[document].get(p, "") for p in gold)
        problems.extend(
            f"{where}: keyword {k!r} not on {document} page(s) {gold}" for k in keywords if k.lower() not in text
        )
    try:
        load_qa(path)
    except Exception as exc:  # the loader's own error, whatever it is, is a problem to report
        problems.append(f"{path.name}: assistant.evaluation.load_qa rejects it: {exc}")
    return problems, counts


def main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("names", nargs="*", help=f"default: all ({', '.join(QUESTIONS)}, pdf)")
    parser.add_argument("--cache-dir", type=Path, default=None)
    args = parser.parse_args(argv)
    failed = False
    for name in args.names or [*QUESTIONS, "pdf"]:
        if name == "pdf":
            from bench.pdf_corpus import QUESTIONS as PDF_QUESTIONS
            from bench.pdf_corpus import pdf_corpus

            try:
                root, files = pdf_corpus(args.cache_dir)
            except CorpusError as exc:
                print(f"pdf: error: {exc}", file=sys.stderr)
                failed = True
                continue
            problems, counts = check_pdf_file(PDF_QUESTIONS, root)
            print(
                f"pdf: {PDF_QUESTIONS.name}: {counts['answerable']} questions; {len(files)} PDFs; "
                f"{'OK' if not problems else f'{len(problems)} problem(s)'}"
            )
            for problem in problems:
                print(f"  {problem}")
            failed = failed or bool(problems)
            continue
        if name not in CORPORA or name not in QUESTIONS:
            print(f"{name}: no such corpus; known: {', '.join(QUESTIONS)}", file=sys.stderr)
            failed = True
            continue
        try:
            root, files = corpus(name, args.cache_dir)
        except CorpusError as exc:
            print(f"{name}: error: {exc}", file=sys.stderr)
            failed = True
            continue
        texts = _Texts(root, files)
        paths = question_files(name)
        for path in paths:
            problems, counts = check_file(path, texts)
            total = counts["answerable"] + counts["unanswerable"]
            print(
                f"{name}: {path.name}: {total} questions, {counts['answerable']} answerable "
                f"({counts['with_also']} with also), {counts['unanswerable']} unanswerable; {len(files)} documents; "
                f"{'OK' if not problems else f'{len(problems)} problem(s)'}"
            )
            for problem in problems:
                print(f"  {problem}")
            failed = failed or bool(problems)
        try:
            split(load(paths))  # ids unique across the batches
        except ValueError as exc:
            print(f"{name}: {exc}")
            failed = True
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
