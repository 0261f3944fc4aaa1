"""Stale marks in the web app: runs and exported models whose training data came from documents
that were removed or replaced since (``store.lineage``). The Fine-tune tab lists them; the run
and Chat model pickers add ``(stale: pump.md removed)`` to their labels (never to the values).
Nothing is deleted: the expert decides whether to train again.
"""

from __future__ import annotations

import html
from typing import Any

from store import lineage
from ui.services import Services


def marked_runs(services: Services, runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """``runs`` (``adapters.catalogue`` summaries) with ``stale``, ``stale_documents`` and ``stale_marker``."""
    check = services.lineage_check()
    return [{**r, **check.fields(r.get("lineage")), "stale_marker": check.marker(r.get("lineage"))} for r in runs]


def model_markers(services: Services) -> dict[str, str]:
    """``{model name: "stale: pump.md removed"}`` of the exported models that are stale."""
    check = services.lineage_check()
    marks = {m.name: check.marker(m.lineage) for m in services.registry.list()}
    return {name: mark for name, mark in marks.items() if mark}


def mark_model_choices(services: Services, choices: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """Chat's (label, value) model choices, a stale exported model's label ending in ``(stale: ...)``."""
    marks = model_markers(services)
    return [(f"{label} ({marks[value]})" if value in marks else label, value) for label, value in choices]


def dataset_marker(services: Services, path: str) -> str:
    """``stale: valve.md replaced`` when the rows of a generated data file (their ``provenance``) come
    from documents removed or replaced since; "" otherwise, and for files without provenance."""
    return services.lineage_check().marker(lineage.of_provenance(lineage.provenance_of([], path)))


def stale_report(services: Services) -> str:
    """Markdown for the Fine-tune tab: each stale run and model with the documents that changed; "" when none."""
    runs = [r for r in marked_runs(services, services.finetuner.runs()) if r["stale"]]
    models = model_markers(services)
    if not runs and not models:
        return ""
    lines = ["⚠️ **Trained on documents that changed since** (nothing was deleted: train again to catch up)"]
    lines += [f"- run {html.escape(r['run_id'])}: {html.escape(r['stale_marker'])}" for r in reversed(runs)]
    lines += [f"- model {html.escape(name)}: {html.escape(mark)}" for name, mark in models.items()]
    return "\n".join(lines)
