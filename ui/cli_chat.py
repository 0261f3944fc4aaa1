"""``python app.py ask`` and ``python app.py eval rag``."""

from __future__ import annotations

import argparse
import json
import sys

from assistant.assistant import AskOptions
from assistant.events import Done, Notice, Token, Waiting
from assistant.reply_check import refuses
from ui.assembly_bar import with_assembly_bar
from ui.services import Services


def register(sub) -> None:
    ask = sub.add_parser("ask", help="ask a question, answered from a knowledge base with citations")
    ask.add_argument("question", metavar="QUESTION")
    ask.add_argument("--kb", default=None, metavar="NAME", help="knowledge base (default: 'default')")
    ask.add_argument(
        "--model",
        default=None,
        metavar="PATH_OR_NAME",
        help="a bundled model (qwen2.5-coder-1.5b-instruct, qwen2.5-coder-0.5b-instruct, SmolLM2-135M-Instruct), "
        "a GGUF file or a registered model (default: Qwen2.5-Coder-1.5B-Instruct, assembled on first use)",
    )
    ask.add_argument("--no-kb", action="store_true", help="ask the model alone, without retrieval")
    ask.add_argument("--json", action="store_true", help="print one JSON object instead of streaming")
    ask.set_defaults(handler=cmd_ask)

    ev = sub.add_parser("eval", help="evaluate retrieval-augmented answers on a question file")
    ev_sub = ev.add_subparsers(dest="eval_command", metavar="EVAL_COMMAND", required=True)
    rag = ev_sub.add_parser("rag", help="recall@k, MRR, keyword accuracy, abstention and citation support per mode")
    rag.add_argument("qa_file", metavar="QA_FILE", help="JSONL: question, sources, keywords or unanswerable")
    rag.add_argument("--kb", default=None, metavar="NAME")
    rag.add_argument("--model", default=None, metavar="PATH_OR_NAME")
    rag.add_argument("--modes", default="hybrid,vector,keyword", help="comma-separated retrieval modes")
    rag.add_argument("-k", type=int, default=5, help="recall@k cut-off and sources per answer (default 5)")
    rag.add_argument("--retrieval-only", action="store_true", help="skip answering: retrieval metrics only")
    rag.add_argument("--json", action="store_true")
    rag.set_defaults(handler=cmd_eval_rag)


def cmd_ask(services: Services, args: argparse.Namespace) -> int:
    options = AskOptions(kb=args.kb, model=args.model, use_kb=not args.no_kb)
    assistant = services.assistant
    with_assembly_bar(assistant.needs_assembly(args.model), lambda bar: assistant.prepare(args.model, bar))
    answer = None
    pieces: list[str] = []
    line_open = False  # streamed tokens since the last line break
    status = None
    for event in services.assistant.ask(args.question, (), options):
        if isinstance(event, Notice):
            if line_open:  # a note during the answer (a second look) starts on a line of its own
                print(flush=True)
                line_open = False
            print(f"note: {event.text}", file=sys.stderr)
        elif isinstance(event, Waiting) and event.text != status:
            status = event.text
            print(status, file=sys.stderr)
        elif isinstance(event, Token) and not args.json:
            print(event.text, end="", flush=True)
            pieces.append(event.text)
            line_open = not event.text.endswith("\n")
        elif isinstance(event, Done):
            answer = event.answer
    assert answer is not None
    if args.json:
        print(json.dumps(answer.to_json(), indent=2, ensure_ascii=False))
        return 0
    streamed = "".join(pieces).strip()
    if streamed:
        print()
    if answer.abstained:
        # Unless what streamed was the refusal itself (not a reply the check refused, nor a failed second look).
        if not streamed or not refuses(streamed):
            print(f"\n{answer.text}")
        print(f"(not in the documents: {answer.reason})", file=sys.stderr)
        return 0
    if answer.citations:
        print("\nSources:")
        for c in answer.citations:
            where = c.where
            mark = "" if c.supported else "  [citation not supported by the passage]"
            print(f"  [{c.n}] {c.source}" + (f" ({where})" if where else "") + mark)
    return 0


def cmd_eval_rag(services: Services, args: argparse.Namespace) -> int:
    from assistant.evaluation import evaluate_rag, format_report, load_qa

    items = load_qa(args.qa_file)
    if not args.retrieval_only:
        assistant = services.assistant
        with_assembly_bar(assistant.needs_assembly(args.model), lambda bar: assistant.prepare(args.model, bar))
    modes = tuple(m.strip() for m in args.modes.split(",") if m.strip())
    report = evaluate_rag(
        services.assistant, items, kb=args.kb, model=args.model, modes=modes, k=args.k, answer=not args.retrieval_only
    )
    print(json.dumps(report, indent=2) if args.json else format_report(report))
    return 0
