"""``python app.py data generate``: Q&A training rows generated from a knowledge base's own passages."""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
from pathlib import Path

from adapters.datagen import GenerateOptions, GenerationDone, GenerationProgress, GenerationReport
from ui.assembly_bar import with_assembly_bar
from ui.services import Services


def register(sub) -> None:
    data = sub.add_parser("data", help="training data: generate Q&A from a knowledge base's documents")
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
    previous = signal.getsignal(signal.SIGINT)

    def stop(signum, frame) -> None:  # the first Ctrl-C stops after the current passage; a second one at once
        cancel.set()
        signal.signal(signal.SIGINT, previous)
        print("\nstopping after this passage (Ctrl-C again to stop at once) ...", file=sys.stderr)

    in_main = threading.current_thread() is threading.main_thread()
    if in_main:
        signal.signal(signal.SIGINT, stop)
    report = None
    try:
        complete, name = model_complete(assistant, args.model, options, cancel)
        with generating(out):  # the web app's review refuses to write the file meanwhile
            for event in generate(kb, services.settings, complete, name, out, options, cancel):
                if isinstance(event, GenerationProgress):
                    _progress(event.report)
                elif isinstance(event, GenerationDone):
                    report = event.report
    finally:
        if in_main:
            signal.signal(signal.SIGINT, previous)
    assert report is not None
    print(file=sys.stderr)
    if args.json:
        print(json.dumps(report.to_json(), indent=2))
    else:
        print(summary(report))
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
    rejected = ", ".join(f"{reason} {n}" for reason, n in report.rejected.items() if n) or "none"
    state = "stopped (rerun the same command to resume)" if report.cancelled else "done"
    return (
        f"{state}: {report.chunks_done}/{report.chunks_total} passages of {report.kb} (version {report.kb_version}) "
        f"with {report.model}, {report.seconds_per_chunk:.1f} s per passage\n"
        f"{report.kept} answerable and {report.unanswerable} unanswerable rows in {report.out} "
        f"from {report.candidates} candidates\nrejected: {rejected}"
    )
