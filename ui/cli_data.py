"""``python app.py data generate``: Q&A training rows generated from a knowledge base's own passages;
``python app.py data reword``: held-out rewordings of a Q&A file's questions, to evaluate on."""

from __future__ import annotations

import argparse
import contextlib
import json
import signal
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

from adapters.datagen import GenerateOptions, GenerationDone, GenerationProgress, GenerationReport
from ui.assembly_bar import with_assembly_bar
from ui.services import Services


def register(sub) -> None:
    data = sub.add_parser(
        "data", help="training data: generate Q&A from a knowledge base's documents, reword a Q&A file's questions"
    )
    data_sub = data.add_subparsers(dest="data_command", metavar="DATA_COMMAND", required=True)
    gen = data_sub.add_parser(
        "generate",
        help="a local model writes questions and answers from each passage; filtered, with provenance",
    )
    gen.add_argument("--kb", default=None, metavar="NAME", help="knowledge base (default: 'default')")
    gen.add_argument("--model", default=None, metavar="PATH_OR_NAME", help="any model Chat accepts (default: Chat's)")
    gen.add_argument("--per-chunk", type=int, default=2, metavar="N", help="questions asked per passage (default 2)")
    gen.add_argument(
        "--unanswerable",
        type=float,
        default=0.25,
        metavar="SHARE",
        help="unanswerable questions, as a share of the answerable rows kept (default 0.25)",
    )
    gen.add_argument("--limit", type=int, default=None, metavar="N", help="a seeded sample of N passages")
    gen.add_argument("--seed", type=int, default=0, help="sampling seed (passages, and the model when not greedy)")
    gen.add_argument("--temperature", type=float, default=0.0, help="the model's temperature (default 0: greedy)")
    gen.add_argument("--accept", action="store_true", help="mark the rows accepted (else pending review)")
    gen.add_argument("--out", required=True, metavar="FILE.jsonl", help="rows file (an interrupted run resumes it)")
    gen.add_argument("--json", action="store_true", help="print the report as JSON")
    gen.set_defaults(handler=cmd_data_generate)
    reword = data_sub.add_parser(
        "reword",
        help="a local model rewords each question of a Q&A file: held-out questions to evaluate on, checked",
    )
    reword.add_argument("--data", required=True, metavar="FILE", help="the Q&A file (.jsonl or .csv) it trains on")
    reword.add_argument("--out", required=True, metavar="FILE.jsonl", help="rewordings file (a rerun resumes it)")
    reword.add_argument(
        "--model", default=None, metavar="PATH_OR_NAME", help="any model Chat accepts (default: Chat's)"
    )
    reword.add_argument("--per-row", type=int, default=1, metavar="N", help="rewordings asked per question (default 1)")
    reword.add_argument("--limit", type=int, default=None, metavar="N", help="a seeded sample of N rows")
    reword.add_argument("--seed", type=int, default=0, help="sampling seed (rows, and the model when not greedy)")
    reword.add_argument("--temperature", type=float, default=0.0, help="the model's temperature (default 0: greedy)")
    reword.add_argument("--json", action="store_true", help="print the report as JSON")
    reword.set_defaults(handler=cmd_data_reword)


def cmd_data_generate(services: Services, args: argparse.Namespace) -> int:
    from adapters.datagen import generate, model_complete
    from adapters.datagen_review import generating

    options = GenerateOptions(
        kb=args.kb,
        model=args.model,
        per_chunk=args.per_chunk,
        unanswerable=args.unanswerable,
        limit=args.limit,
        seed=args.seed,
        accept=args.accept,
        temperature=args.temperature,
    )
    out = Path(args.out)
    if out.suffix.lower() != ".jsonl":
        from store.errors import DomainsmithError

        raise DomainsmithError(f"--out must be a .jsonl file (got {out.name})")
    assistant = services.assistant
    kb = assistant.searchable_kb(args.kb)
    with_assembly_bar(assistant.needs_assembly(args.model), lambda bar: assistant.prepare(args.model, bar))
    cancel = threading.Event()
    report = None
    with _ctrl_c_stops(cancel, "passage"):
        complete, name = model_complete(assistant, args.model, options, cancel)
        with generating(out):  # the web app's review refuses to write the file meanwhile
            for event in generate(kb, services.settings, complete, name, out, options, cancel):
                if isinstance(event, GenerationProgress):
                    _progress(event.report)
                elif isinstance(event, GenerationDone):
                    report = event.report
    assert report is not None
    return _finish(report, args.json, summary)


@contextlib.contextmanager
def _ctrl_c_stops(cancel: threading.Event, unit: str) -> Iterator[None]:
    """The first Ctrl-C sets ``cancel`` (the job stops after the current ``unit``); a second one stops at once."""
    previous = signal.getsignal(signal.SIGINT)

    def stop(signum, frame) -> None:
        cancel.set()
        signal.signal(signal.SIGINT, previous)
        print(f"\nstopping after this {unit} (Ctrl-C again to stop at once) ...", file=sys.stderr)

    in_main = threading.current_thread() is threading.main_thread()
    if in_main:
        signal.signal(signal.SIGINT, stop)
    try:
        yield
    finally:
        if in_main:
            signal.signal(signal.SIGINT, previous)


def cmd_data_reword(services: Services, args: argparse.Namespace) -> int:
    from adapters.datagen import model_complete
    from adapters.rewording import RewordDone, RewordOptions, RewordProgress, check_paths, reword, source_rows
    from store import bundled
    from store.embedding import Embedder

    options = RewordOptions(
        model=args.model, per_row=args.per_row, limit=args.limit, seed=args.seed, temperature=args.temperature
    )
    data, out = Path(args.data), Path(args.out)
    check_paths(data, out)
    source_rows(data)  # a bad file is refused before the model loads
    assistant = services.assistant
    with_assembly_bar(assistant.needs_assembly(args.model), lambda bar: assistant.prepare(args.model, bar))
    # the meaning threshold is measured with the bundled MiniLM: the knowledge bases' embedder only if it is that one
    embedder = services.embedder if services.embedder.name == bundled.EMBEDDER_NAME else Embedder()
    cancel = threading.Event()
    report = None
    with _ctrl_c_stops(cancel, "question"):
        complete, name = model_complete(
            assistant, args.model, GenerateOptions(model=args.model, temperature=args.temperature), cancel
        )
        for event in reword(data, out, complete, name, embedder, options, cancel):
            if isinstance(event, RewordProgress):
                r = event.report
                print(
                    f"\r{data.name}: {r.rows_done}/{r.rows_total} questions, {r.kept} rewordings kept, "
                    f"{sum(r.rejected.values())} rejected, {r.seconds_per_row:.1f} s/question",
                    end="",
                    file=sys.stderr,
                    flush=True,
                )
            elif isinstance(event, RewordDone):
                report = event.report
    assert report is not None
    return _finish(report, args.json, reword_summary)


def reword_summary(report) -> str:
    """The rewording report in a few lines: what was kept, and what each check removed."""
    state, rejected = _outcome(report)
    return (
        f"{state}: {report.rows_done}/{report.rows_total} questions of {report.data} with {report.model}, "
        f"{report.seconds_per_row:.1f} s per question\n{report.kept} rewordings in {report.out} "
        f"from {report.candidates} candidates\nrejected: {rejected}"
    )


def _outcome(report) -> tuple[str, str]:
    """(done or stopped, what each filter rejected) of a data command's report."""
    rejected = ", ".join(f"{reason} {n}" for reason, n in report.rejected.items() if n) or "none"
    return ("stopped (rerun the same command to resume)" if report.cancelled else "done"), rejected


def _finish(report, as_json: bool, text) -> int:
    """End the progress line, print the report (JSON or ``text(report)``); exit 130 when it was stopped."""
    print(file=sys.stderr)
    print(json.dumps(report.to_json(), indent=2) if as_json else text(report))
    return 130 if report.cancelled else 0


def _progress(report: GenerationReport) -> None:
    rejected = sum(report.rejected.values())
    print(
        f"\r{report.kb}: {report.chunks_done}/{report.chunks_total} passages, {report.kept} kept, "
        f"{report.unanswerable} unanswerable, {rejected} rejected, {report.seconds_per_chunk:.1f} s/passage",
        end="",
        file=sys.stderr,
        flush=True,
    )


def summary(report: GenerationReport) -> str:
    """The report in a few lines: what was kept, and what each filter removed."""
    state, rejected = _outcome(report)
    return (
        f"{state}: {report.chunks_done}/{report.chunks_total} passages of {report.kb} (version {report.kb_version}) "
        f"with {report.model}, {report.seconds_per_chunk:.1f} s per passage\n"
        f"{report.kept} answerable and {report.unanswerable} unanswerable rows"
        f"{f' ({report.renamed} made by renaming a name)' if report.renamed else ''} in {report.out} "
        f"from {report.candidates} candidates\nrejected: {rejected}"
    )
