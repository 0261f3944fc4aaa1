"""The command line: ``python app.py SUBCOMMAND``. Each command parses, calls one facade, prints.

Library errors (``DomainsmithError``) become a one-line message on stderr and exit status 1;
nothing here holds logic the web UI would need too.
"""

from __future__ import annotations

import argparse
import json
import sys
import textwrap
from collections.abc import Callable

from store.errors import DomainsmithError
from store.knowledge_base import SEARCH_MODES, KnowledgeBase
from store.records import IngestEvent
from ui.services import Services
from ui.text_table import format_table

EXIT_OK, EXIT_ERROR, EXIT_PARTIAL = 0, 1, 3


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python app.py",
        description="Domainsmith: a local assistant that turns a small open LLM into an expert in your field. "
        "Without a subcommand, starts the web app.",
    )
    parser.add_argument("--home", help="data folder (default: $DOMAINSMITH_HOME or ~/.domainsmith)")
    parser.add_argument("--config", help="TOML config file (default: $DOMAINSMITH_HOME/config.toml)")
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress details to stderr")
    sub = parser.add_subparsers(dest="command", metavar="SUBCOMMAND")

    serve = sub.add_parser("serve", help="start the web app (the default)")
    add_serve_arguments(serve)
    add_serve_arguments(parser)

    kb = sub.add_parser("kb", help="manage knowledge bases: add, list, search, remove, reindex")
    kb_sub = kb.add_subparsers(dest="kb_command", metavar="KB_COMMAND", required=True)

    add = kb_sub.add_parser("add", help="add files and folders (folders are walked recursively)")
    add.add_argument("paths", nargs="+", metavar="PATH")
    _kb_option(add)
    add.add_argument("--json", action="store_true", help="print the summary as JSON")
    add.set_defaults(handler=cmd_kb_add)

    ls = kb_sub.add_parser("list", help="list the documents of a knowledge base")
    _kb_option(ls)
    ls.add_argument("--json", action="store_true")
    ls.set_defaults(handler=cmd_kb_list)

    search = kb_sub.add_parser("search", help="search passages")
    search.add_argument("query", metavar="QUERY")
    _kb_option(search)
    search.add_argument("-k", type=int, default=5, metavar="N", help="number of results (default 5)")
    search.add_argument("--mode", choices=SEARCH_MODES, default="hybrid", help="default: hybrid")
    search.add_argument("--json", action="store_true")
    search.set_defaults(handler=cmd_kb_search)

    remove = kb_sub.add_parser("remove", help="remove a document (see `kb list` for ids)")
    remove.add_argument("doc_id", metavar="DOC_ID")
    _kb_option(remove)
    remove.set_defaults(handler=cmd_kb_remove)

    reindex = kb_sub.add_parser("reindex", help="re-embed every chunk with the configured embedder")
    _kb_option(reindex)
    reindex.set_defaults(handler=cmd_kb_reindex)

    bases = kb_sub.add_parser("bases", help="list the knowledge bases")
    bases.add_argument("--json", action="store_true")
    bases.set_defaults(handler=cmd_kb_bases)

    check = kb_sub.add_parser("check", help="verify that SQLite, full-text and vector indexes agree")
    _kb_option(check)
    check.set_defaults(handler=cmd_kb_check)

    from ui import cli_chat, cli_data, cli_keys, cli_models, cli_train

    cli_chat.register(sub)  # ask, eval rag
    cli_train.register(sub)  # train
    cli_models.register(sub)  # runs, export, models
    cli_keys.register(sub)  # keys create, list, revoke
    cli_data.register(sub)  # data generate, data reword
    return parser


def add_serve_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default=None, help="web app: address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=None, help="web app: port (default 7860)")


def _kb_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--kb", default=None, metavar="NAME", help="knowledge base (default: 'default')")


def run(services: Services, args: argparse.Namespace) -> int:
    """Run the parsed subcommand; returns the exit status."""
    handler: Callable[[Services, argparse.Namespace], int] = args.handler
    try:
        return handler(services, args)
    except DomainsmithError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


# -- kb commands -------------------------------------------------------------------------------


def cmd_kb_add(services: Services, args: argparse.Namespace) -> int:
    from tqdm import tqdm

    kb = services.kb(args.kb)
    summary = None
    with tqdm(total=None, unit="file", desc=f"kb {kb.name}", file=sys.stderr, disable=None, dynamic_ncols=True) as bar:
        for event in kb.add(args.paths):
            if event.status == "done":
                summary = event.summary
                continue
            bar.total = event.total
            bar.n = event.done
            ocr = f" (OCR page {event.pages_done}/{event.pages_total})" if event.status == "reading" else ""
            bar.set_postfix_str(_short(event.source) + ocr, refresh=False)
            bar.refresh()
            if event.status == "failed":
                bar.write(f"failed: {event.source}: {event.reason}", file=sys.stderr)
            elif event.notes:
                bar.write(f"{event.status}: {event.source}: {'; '.join(event.notes)}", file=sys.stderr)
    assert summary is not None
    if args.json:
        print(json.dumps({"kb": kb.name, **summary.to_json()}, indent=2))
    else:
        print(
            f"{kb.name}: {len(summary.added)} added, {len(summary.replaced)} replaced, "
            f"{len(summary.unchanged)} unchanged, {len(summary.skipped)} skipped, {len(summary.failed)} failed "
            f"({summary.chunks_added} chunks in {summary.seconds:.1f} s)"
        )
        for source, reason in summary.skipped:
            print(f"  skipped {source}: {reason}")
        for source, reason in summary.failed:
            print(f"  FAILED  {source}: {reason}")
    return EXIT_PARTIAL if summary.failed else EXIT_OK


def cmd_kb_list(services: Services, args: argparse.Namespace) -> int:
    kb = services.kb(args.kb)
    docs = kb.documents()
    if args.json:
        print(
            json.dumps(
                {
                    "kb": kb.name,
                    "documents": [
                        {
                            "id": d.id,
                            "name": d.name,
                            "source": d.source,
                            "type": d.kind,
                            "pages": d.pages,
                            "chunks": d.chunks,
                            "size_bytes": d.size_bytes,
                            "added": d.added_at,
                        }
                        for d in docs
                    ],
                },
                indent=2,
            )
        )
        return EXIT_OK
    if not docs:
        print(f"knowledge base {kb.name!r} is empty: add documents with `python app.py kb add PATH --kb {kb.name}`")
        return EXIT_OK
    rows = [("ID", "TYPE", "PAGES", "CHUNKS", "SIZE", "ADDED", "SOURCE")]
    rows += [
        (
            d.id,
            d.kind,
            str(d.pages or "-"),
            str(d.chunks),
            _size(d.size_bytes),
            d.added_at[:16].replace("T", " "),
            d.source,
        )
        for d in docs
    ]
    print(format_table(rows))
    return EXIT_OK


def search_results(kb: KnowledgeBase, query: str, k: int, mode: str) -> dict:
    """What ``kb search --json`` prints (and ``POST /v1/kb/{name}/search`` returns)."""
    return {"query": query, "results": [h.to_json() for h in kb.search(query, k=k, mode=mode)]}


def cmd_kb_search(services: Services, args: argparse.Namespace) -> int:
    kb = services.kb(args.kb)
    if args.json:
        print(json.dumps(search_results(kb, args.query, args.k, args.mode), indent=2, ensure_ascii=False))
        return EXIT_OK
    hits = kb.search(args.query, k=args.k, mode=args.mode)
    if not hits:
        empty = kb.stats()["chunks"] == 0
        print(f"knowledge base {kb.name!r} is empty: nothing to search" if empty else "no matching passages")
        return EXIT_OK
    for hit in hits:
        where = hit.where
        print(
            f"[{hit.rank}] {hit.source}" + (f" ({where})" if where else "") + f"  score {hit.score:.4g}  {hit.chunk_id}"
        )
        print(textwrap.indent(textwrap.shorten(hit.text, 400, placeholder=" ..."), "    "))
    return EXIT_OK


def cmd_kb_remove(services: Services, args: argparse.Namespace) -> int:
    kb = services.kb(args.kb, create=False)
    doc = kb.remove(args.doc_id)
    print(f"removed {doc.source} ({doc.id}, {doc.chunks} chunks) from {kb.name}")
    return EXIT_OK


def cmd_kb_reindex(services: Services, args: argparse.Namespace) -> int:
    from tqdm import tqdm

    kb = services.kb(args.kb, create=False, allow_embedder_change=True)
    with tqdm(total=None, unit="chunk", desc=f"reindex {kb.name}", file=sys.stderr, disable=None) as bar:

        def progress(done: int, total: int) -> None:
            bar.total, bar.n = total, done
            bar.refresh()

        count = kb.reindex(progress)
    print(f"re-embedded {count} chunks of {kb.name} with {kb.embedder.name}; vector index rebuilt")
    return EXIT_OK


def cmd_kb_bases(services: Services, args: argparse.Namespace) -> int:
    bases = services.knowledge_bases()
    if args.json:
        print(json.dumps({"knowledge_bases": bases}, indent=2))
    elif not bases:
        print("no knowledge bases yet: create one with `python app.py kb add PATH --kb NAME`")
    else:
        print(
            format_table(
                [("NAME", "DOCUMENTS", "CHUNKS", "EMBEDDER", "CREATED")]
                + [
                    (
                        b["name"],
                        str(b["documents"]),
                        str(b["chunks"]),
                        b["embedder"],
                        b["created_at"][:16].replace("T", " "),
                    )
                    for b in bases
                ]
            )
        )
    return EXIT_OK


def cmd_kb_check(services: Services, args: argparse.Namespace) -> int:
    kb = services.kb(args.kb, create=False)
    counts = kb.check()
    print(
        f"{kb.name}: consistent ({counts['documents']} documents, {counts['chunks']} chunks, "
        f"{counts['indexed']} vectors indexed)"
    )
    return EXIT_OK


# -- formatting --------------------------------------------------------------------------------


def _size(n: int) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return str(n)


def _short(text: str, width: int = 40) -> str:
    return text if len(text) <= width else "..." + text[-(width - 3) :]


__all__ = ["build_parser", "run", "IngestEvent"]
