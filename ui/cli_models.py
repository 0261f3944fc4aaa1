"""Commands about runs and models: ``runs list|cancel``, ``export``, ``models list``.

Each handler calls one facade in ``adapters`` or ``store`` and prints a table, or JSON with
``--json`` (a contract used by tools outside the repo: fields are only ever added). Runs and
exported models whose data came from a document removed or replaced since are marked stale
(``Services.lineage_check``).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable

from ui.cli_train import EXIT_ERROR, EXIT_OK, format_number
from ui.services import Services
from ui.text_table import format_table


def register(sub: argparse._SubParsersAction) -> None:
    from adapters.export import DEFAULT_QUANT, QUANTS

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
                    format_number(r["loss"]),
                    format_number(r["val_loss"]),
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
