"""The edges: the command line and the Gradio web app, over the services ``app.py`` builds.

- ``services.Services``: the shared, lazily built services (settings, knowledge bases, the
  assistant, the fine-tuner, the database for models and chat sessions).
- ``cli`` (+ ``cli_chat``, ``cli_train``, ``cli_models``, ``cli_keys``, ``cli_data``): ``python app.py SUBCOMMAND``;
  each command parses, calls one facade, prints.
- ``web`` builds the app from one module per tab (``knowledge_tab``, ``chat_tab``,
  ``finetune_tab`` with its ``datagen_panel``, "Generate from documents", whose background
  generations ``datagen_jobs`` runs); handlers are plain functions over ``Services``, tested
  without a browser. ``lineage_view`` marks stale runs, models and data files.
  ``gradio_errors`` turns library errors into what the page shows; ``access`` guards every route
  when a password is set.

Only this package imports gradio, and nothing below it imports this package. The front door
(``from ui import Services, build_parser, run, launch``) is imported on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from store.lazy_exports import lazy_exports

if TYPE_CHECKING:
    from ui.cli import build_parser, run
    from ui.services import Services
    from ui.web import build_ui, launch

_EXPORTS = {
    "Services": "ui.services",
    "build_parser": "ui.cli",
    "run": "ui.cli",
    "build_ui": "ui.web",
    "launch": "ui.web",
}

__all__ = ["Services", "build_parser", "build_ui", "launch", "run"]

__getattr__ = lazy_exports(__name__, _EXPORTS, globals())
