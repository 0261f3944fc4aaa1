"""Domainsmith's entry point and composition root.

``python app.py`` starts the web app on 127.0.0.1:7860; ``python app.py SUBCOMMAND`` runs a
command (``python app.py --help`` lists them). Settings come from defaults, the config file
and ``DOMAINSMITH_*`` environment variables; every service is built here from them.
"""

from __future__ import annotations

import logging
import os
import sys

# Offline always: nothing is ever fetched from a model hub.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
# OpenMP threads (llama.cpp, torch) sleep rather than spin while they wait: read once, when the
# library loads, so it is set before anything imports it. With one of two cores busy with another
# program, Chat generated 20-22 tokens/s instead of 10-12 (SmolLM2, two threads), 14-19 instead of
# 2.5-5 beside heavier load; idle, 36 instead of 41, and the same time to the first token
# (2026-12-01, issue 12). The training child process sets the same (adapters/process.py).
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from store import DomainsmithError, Settings
from ui import Services, build_parser, run


def configure_logging(verbose: bool) -> None:
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s"
    )
    # bitsandbytes warns about an optional GPU kernel package on every CPU import.
    logging.getLogger("bitsandbytes").setLevel(logging.ERROR)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    configure_logging(args.verbose)
    try:
        overrides = {"host": getattr(args, "host", None), "port": getattr(args, "port", None)}
        settings = Settings.load(home=args.home, config_file=args.config, **overrides)
    except DomainsmithError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    services = Services(settings)
    try:
        if args.command in (None, "serve"):
            from ui import launch

            return launch(services)
        return run(services, args)
    finally:
        services.close()


if __name__ == "__main__":
    sys.exit(main())
