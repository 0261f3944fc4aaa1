"""The ``train`` command (``runs``, ``export`` and ``models`` are in ``ui.cli_models``).

Each handler parses, calls one facade in ``adapters`` (or the registry), and prints. A run is
prepared by ``adapters.service.prepare`` (as in the web app) and trains in a child process
(``adapters.process``); the progress bar is drawn from its events and the last line printed is
the run id. Ctrl-C stops the run cleanly after a checkpoint. The advanced ``train`` flags are
built from the settings' declaration (``adapters.job.training_settings``).
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from store.errors import DomainsmithError
from ui.assembly_bar import with_assembly_bar
from ui.services import Services

EXIT_OK, EXIT_ERROR, EXIT_CANCELLED = 0, 1, 3


def register(sub: argparse._SubParsersAction) -> None:
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
        f"to refuse (0 to 1; default {ABSTAIN_SHARE:g}, or 0 for rows generated from the documents "
        "and rows with refusals of their own)",
    )
    train.add_argument(
        "--train-unanswerable",
        action="store_true",
        help="train the generated unanswerable rows to the abstention reply (by default they are not "
        "trained, only asked before and after: trained, they made the 0.5B refuse answerable questions)",
    )
    train.add_argument(
        "--shuffle-sources",
        action="store_true",
        help="with --grounded: offer each example's sources in a random order (seeded), not Chat's "
        "rank order, so the answer is not learned to sit in the first source",
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
    if args.shuffle_sources and not args.grounded:
        raise DomainsmithError("--shuffle-sources needs --grounded (it shapes the grounded examples)")
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
        shuffle_sources=args.shuffle_sources,
        train_unanswerable=args.train_unanswerable,
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
        (
            f"  {label}",
            format_number(base.get(key)),
            format_number(adapted.get(key)),
            format_number(plain.get(key)) if plain else "",
        )
        for key, label in RAG_ROWS
    ]
    width = max(len(r[0]) for r in rows)
    return "\n".join(f"{r[0]:<{width}}  {r[1]:>7}  {r[2]:>7}  {r[3]:>12}".rstrip() for r in rows)


def format_number(value: Any) -> str:
    """A loss or a measure in a table: three decimals, or a dash when there is none."""
    return "-" if value is None else f"{value:.3f}"
