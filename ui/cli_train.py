"""Fine-tune commands: ``train``, ``runs list|cancel``, ``export``, ``models list``.

Each handler parses, calls one facade in ``adapters`` (or the registry), and prints. A run is
prepared by ``adapters.service.prepare`` (as in the web app) and trains in a child process
(``adapters.process``); the progress bar is drawn from its events and the last line printed is
the run id. Ctrl-C stops the run cleanly after a checkpoint. The advanced ``train`` flags are
built from the settings' declaration (``adapters.job.training_settings``).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from typing import Any

from store.errors import DomainsmithError
from ui.assembly_bar import with_assembly_bar
from ui.services import Services
from ui.text_table import format_table

EXIT_OK, EXIT_ERROR, EXIT_CANCELLED = 0, 1, 3


def register(sub: argparse._SubParsersAction) -> None:
    from adapters.export import DEFAULT_QUANT, QUANTS
    from adapters.hyperparameters import ABSTAIN_SHARE, DEFAULT_PRESET, PRESETS
    from adapters.job import METHODS

    train = sub.add_parser("train", help="train an adapter on your Q&A file or a knowledge base (child process)")
    source = train.add_mutually_exclusive_group(required=True)
    source.add_argument("--data", metavar="FILE", help="Q&A as .jsonl (question/answer or messages) or .csv")
    source.add_argument("--from-kb", metavar="NAME", help="train on a knowledge base's text and sections")
    source.add_argument("--resume", metavar="RUN_ID", help="continue an interrupted run from its last checkpoint")
    train.add_argument(
        "--grounded",
        metavar="KB",
        help="with --data: render each question in Chat's prompt with "
        "sources retrieved from this knowledge base; the answer cites its source, or abstains",
    )
    train.add_argument(
        "--abstain-share",
        type=float,
        metavar="SHARE",
        help="with --grounded: the share of answered questions also trained without their passage, "
        f"to refuse (0 to 1; default {ABSTAIN_SHARE:g}, or 0 when the rows have refusals of their own, "
        "such as generated unanswerable rows)",
    )
    train.add_argument(
        "--base",
        metavar="MODEL",
        help="a bundled model (qwen2.5-coder-0.5b-instruct, qwen2.5-coder-1.5b-instruct, smollm2-135m), "
        "a .gguf file or a Hugging Face folder (default: qwen2.5-coder-0.5b-instruct, assembled on first use)",
    )
    train.add_argument(
        "--eval",
        metavar="FILE",
        dest="eval_data",
        help="a Q&A file asked before and after training and never trained on (hand-written, or "
        "`data reword`'s rewordings): your own rows all train, so this is how they are measured",
    )
    train.add_argument("--preset", choices=PRESETS, default=DEFAULT_PRESET, help=f"default: {DEFAULT_PRESET}")
    train.add_argument(
        "--method", choices=METHODS, default="auto", help="auto (default) picks by model size and memory"
    )
    add_training_settings(train.add_argument_group("advanced settings (override the preset)"))
    train.set_defaults(handler=cmd_train)

    runs_sub = _with_list(
        sub, "runs", "training runs: list, cancel", "list training runs with their status", cmd_runs_list
    )
    cancel = runs_sub.add_parser("cancel", help="stop a running training after its current step")
    cancel.add_argument("run_id", metavar="RUN_ID")
    cancel.set_defaults(handler=cmd_runs_cancel)

    export = sub.add_parser("export", help="merge a run's adapter, convert to GGUF, check it and register it")
    export.add_argument("run_id", metavar="RUN_ID")
    export.add_argument(
        "--quant",
        default=DEFAULT_QUANT,
        type=str.lower,
        choices=QUANTS,
        help=f"GGUF type (default {DEFAULT_QUANT}, the best size/quality measured)",
    )
    export.add_argument("--name", help="registry name (default RUN_ID-QUANT)")
    export.add_argument("--json", action="store_true")
    export.set_defaults(handler=cmd_export)

    _with_list(
        sub,
        "models",
        "bundled and exported models",
        "list bundled models (with their state) and exported ones",
        cmd_models_list,
    )


def _with_list(
    sub: argparse._SubParsersAction,
    command: str,
    help: str,
    list_help: str,
    handler: Callable[[Services, argparse.Namespace], int],
) -> argparse._SubParsersAction:
    """``COMMAND`` with its subcommands, the first of them ``list [--json]``; returns the subcommands."""
    commands = sub.add_parser(command, help=help).add_subparsers(
        dest=f"{command}_command", metavar=f"{command.upper()}_COMMAND", required=True
    )
    listing = commands.add_parser("list", help=list_help)
    listing.add_argument("--json", action="store_true")
    listing.set_defaults(handler=handler)
    return commands


# -- train ---------------------------------------------------------------------------------------


def add_training_settings(group: argparse._ArgumentGroup) -> None:
    """One flag per declared training setting that has one; blank hyperparameters keep the preset's value."""
    from adapters.job import training_settings

    for s in training_settings():
        if s.spec.flag:
            extra = {"metavar": s.spec.metavar} if s.spec.metavar else {}
            group.add_argument(s.spec.flag, type=s.type, dest=s.name, default=s.blank, help=s.spec.help, **extra)


def cmd_train(services: Services, args: argparse.Namespace) -> int:
    from adapters import catalogue, service
    from adapters.base_model import needs_assembly, resolve_base
    from adapters.job import training_settings

    settings = services.settings
    if args.resume:
        job = catalogue.resume(settings, args.resume)
        print(f"resuming run {job.run_id} from its last checkpoint", file=sys.stderr)
        return _follow(settings, job)
    if args.grounded and not args.data:
        raise DomainsmithError("--grounded needs --data (the Q&A to join with the knowledge base)")
    if args.abstain_share is not None and not args.grounded:
        raise DomainsmithError("--abstain-share needs --grounded (it shapes the grounded examples)")
    overrides = {s.name: getattr(args, s.name) for s in training_settings() if s.spec.flag and not s.of_job}
    request = service.TrainRequest(
        data=args.data,
        kb=args.from_kb,
        grounded=args.grounded,
        base=args.base,
        preset=args.preset,
        method=args.method,
        seed=args.seed,
        val_fraction=args.val_fraction,
        overrides=overrides,
        eval_data=args.eval_data,
        abstain_share=args.abstain_share,
    )

    def say_notes(data: service.PreparedData) -> None:
        for note in data.data_notes:
            print(f"note: {args.data}, {note}", file=sys.stderr)
        if data.grounding:
            print(data.grounding, file=sys.stderr)

    base = needs_assembly(args.base, settings)
    with_assembly_bar(base, lambda bar: resolve_base(args.base, settings, bar) if bar else None)
    job, _data = service.prepare(settings, request, lambda name: services.kb(name, create=False), say_notes)
    print(
        f"run {job.run_id}: {job.n_train} training and {job.n_val} validation examples, "
        f"preset {job.preset}; {job.method_reason}",
        file=sys.stderr,
    )
    if not job.n_val:
        print(
            "every row trains and none is held out: to measure the adapter on questions it never saw, "
            "pass --eval FILE (hand-written, or `python app.py data reword`'s rewordings)",
            file=sys.stderr,
        )
    if job.rag:
        print(
            f"with retrieval on: {job.rag['questions']} held-out questions asked through {job.rag['kb']} "
            "by the base and the adapted model"
            if job.rag["questions"]
            else "with retrieval on: no held-out question to ask",
            file=sys.stderr,
        )
    return _follow(settings, job)


def _follow(settings: Any, job: Any) -> int:
    from tqdm import tqdm

    from adapters import process
    from adapters.events import TERMINAL

    final = None
    events = process.train(settings, job)
    bar = tqdm(total=None, unit="step", desc=f"train {job.run_id}", file=sys.stderr, disable=None, dynamic_ncols=True)
    postfix: dict[str, str] = {}
    try:
        for event in events:
            if event.kind in TERMINAL:
                final = event
            elif event.kind == "start":
                bar.total, bar.n = event.total_steps, event.start_step
                bar.refresh()
            elif event.kind == "step":
                bar.total, bar.n = event.total_steps, event.step
                postfix.update(loss=f"{event.loss:.3f}", tok_s=f"{event.tokens_per_s:.0f}")
                bar.set_postfix(postfix, refresh=False)
                bar.refresh()
            elif event.kind == "eval":
                postfix["val"] = f"{event.val_loss:.3f}"
            elif event.kind == "status":
                bar.set_description_str(f"train {job.run_id}: {event.message}")
    finally:
        events.close()
        bar.close()
    if final is None or final.kind == "failed":
        message = final.message if final else "the training process ended without a result"
        if final and final.log_tail:
            print(final.log_tail, file=sys.stderr)
        raise DomainsmithError(message)
    if final.kind == "cancelled":
        print(
            f"cancelled at step {final.step}; resume with `python app.py train --resume {job.run_id}`", file=sys.stderr
        )
        print(job.run_id)
        return EXIT_CANCELLED
    _print_metrics(final.metrics or {})
    print(job.run_id)
    return EXIT_OK


def _print_metrics(metrics: dict[str, Any]) -> None:
    if "val_loss_before" in metrics:
        kept = f"; epoch {metrics['kept_epoch']} kept, the lowest (--patience)" if "kept_epoch" in metrics else ""
        print(
            f"validation loss {metrics['val_loss_before']:.3f} -> {metrics['val_loss_after']:.3f} "
            f"(perplexity {metrics['perplexity_before']:.1f} -> {metrics['perplexity_after']:.1f}){kept}",
            file=sys.stderr,
        )
    if "answers_base" in metrics:
        b, a = metrics["answers_base"], metrics["answers_adapted"]
        print(
            f"held-out answers ({a['count']}): "
            f"keyword recall {b['keyword_recall']:.2f} -> {a['keyword_recall']:.2f}, "
            f"ROUGE-L {b['rouge_l']:.2f} -> {a['rouge_l']:.2f} (base -> adapted)",
            file=sys.stderr,
        )
    if "rag_base" in metrics:
        print(rag_table(metrics), file=sys.stderr)


RAG_ROWS = (
    ("keyword_accuracy", "keyword accuracy"),
    ("citation_support", "citation support"),
    ("abstention_precision", "abstention precision"),
    ("abstention_recall", "abstention recall"),
    ("quoted_passage", "quoted a passage instead"),
)


def rag_table(metrics: dict[str, Any]) -> str:
    """Base and adapted side by side with retrieval on (the ``eval rag`` measures), the base model
    alone without retrieval beside them, and each question set apart when there are several."""
    from adapters.finetune import SET_LABELS

    about = metrics.get("rag", {})
    kb = about.get("kb", "knowledge base")
    plain = metrics.get("rag_plain") or {}
    title = f"with retrieval on ({kb}, {{count}} held-out questions)"
    tables = [_rag_rows(title, metrics["rag_base"], metrics["rag_adapted"], plain)]
    for kind, models in (metrics.get("rag_sets") or {}).items():
        label = SET_LABELS.get(kind, kind)
        tables.append(_rag_rows(f"  {label} ({{count}})", models["base"], models["adapted"], models.get("plain") or {}))
    return "\n".join(tables)


def _rag_rows(title: str, base: dict, adapted: dict, plain: dict) -> str:
    rows = [(title.format(count=base.get("count", 0)), "base", "adapted", "no retrieval" if plain else "")]
    rows += [
        (f"  {label}", _num(base.get(key)), _num(adapted.get(key)), _num(plain.get(key)) if plain else "")
        for key, label in RAG_ROWS
    ]
    width = max(len(r[0]) for r in rows)
    return "\n".join(f"{r[0]:<{width}}  {r[1]:>7}  {r[2]:>7}  {r[3]:>12}".rstrip() for r in rows)


# -- runs, export, models ---------------------------------------------------------------------------


def cmd_runs_list(services: Services, args: argparse.Namespace) -> int:
    from adapters import catalogue

    check = services.lineage_check()  # stale: a document its data came from was removed or replaced since
    runs = [{**r, **check.fields(r["lineage"])} for r in catalogue.list_runs(services.settings)]
    if args.json:
        print(json.dumps({"runs": runs}, indent=2))
    elif not runs:
        print("no training runs yet: start one with `python app.py train --data FILE`")
    else:
        rows = [("RUN", "STATUS", "STEP", "LOSS", "VAL", "METHOD", "BASE", "DATA", "CREATED")]
        for r in runs:
            data = r["source"].get("path") or f"kb:{r['source'].get('name', '')}"
            rows.append(
                (
                    r["run_id"],
                    r["status"],
                    f"{r['step']}/{r['total_steps']}",
                    _num(r["loss"]),
                    _num(r["val_loss"]),
                    r["method"],
                    r["base"],
                    data,
                    r["created"][:16].replace("T", " "),
                )
            )
        print(format_table(rows, [check.marker(r["lineage"]) for r in runs]))
    return EXIT_OK


def cmd_runs_cancel(services: Services, args: argparse.Namespace) -> int:
    from adapters import process

    if process.cancel(services.settings, args.run_id):
        print(f"asked run {args.run_id} to stop after its current step")
        return EXIT_OK
    print(f"run {args.run_id} is not training", file=sys.stderr)
    return EXIT_ERROR


def cmd_export(services: Services, args: argparse.Namespace) -> int:
    from adapters.export import export

    record = export(
        services.settings, args.run_id, args.quant, name=args.name, progress=lambda stage: print(stage, file=sys.stderr)
    )
    if args.json:
        print(
            json.dumps(
                {"model": record.name, "path": record.file, "quant": record.quant, "size_bytes": record.size_bytes}
            )
        )
    else:
        smoke = record.metrics.get("smoke_test", {})
        print(f"greedy agreement with the merged model: {smoke.get('greedy_agreement', 0):.0%}", file=sys.stderr)
        print(record.name)
        print(record.file)
    return EXIT_OK


def cmd_models_list(services: Services, args: argparse.Namespace) -> int:
    from store import embedder_catalogue, model_catalogue

    models = services.registry.list()
    check = services.lineage_check()
    settings = services.settings
    home = settings.home
    bundled = [model_catalogue.describe(m, home) for m in model_catalogue.CATALOGUE]
    configured = None if settings.embedder_path else settings.embedder
    embedders = [embedder_catalogue.describe(e, home, configured) for e in embedder_catalogue.EMBEDDERS]
    if args.json:
        listed = [{**m.to_json(), **check.fields(m.lineage)} for m in models]
        data = {"models": listed, "bundled": bundled, "embedders": embedders}
        print(json.dumps(data, indent=2))
        return EXIT_OK
    rows = [("BUNDLED", "STATE", "SIZE", "ROLES", "LICENCE", "WHAT IT COSTS")]
    rows += [
        (
            b["key"],
            b["state"],
            f"{b['size_bytes'] / 2**20:.0f} MB" if b["size_bytes"] else "-",
            ", ".join(b["roles"]),
            b["licence"],
            b["cost"],
        )
        for b in bundled
    ]
    print(format_table(rows))
    print()
    rows = [("EMBEDDER", "STATE", "DIMENSIONS", "WHAT IT COSTS")]
    rows += [
        (e["name"] + (" (configured)" if e["configured"] else ""), e["state"], str(e["dim"]), e["cost"])
        for e in embedders
    ]
    print(format_table(rows))
    if settings.embedder_path:
        print(f"configured: the folder {settings.embedder_path} (embedder_path)")
    print()
    if not models:
        print("no exported models yet: train with `python app.py train`, then `python app.py export RUN_ID`")
    else:
        rows = [("NAME", "QUANT", "SIZE", "BASE", "RUN", "CREATED", "FILE")]
        rows += [
            (
                m.name,
                m.quant,
                f"{m.size_bytes / 2**20:.1f} MB",
                m.base,
                m.run_id,
                m.created_at[:16].replace("T", " "),
                m.file,
            )
            for m in models
        ]
        print(format_table(rows, [check.marker(m.lineage) for m in models]))
    return EXIT_OK


def _num(value: Any) -> str:
    return "-" if value is None else f"{value:.3f}"
