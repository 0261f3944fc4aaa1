"""Figures the reliability suite measures, appended as JSON lines for ``bench/reliability_report.py``.

The tests call ``record(kind, **fields)``; nothing is written unless ``RELIABILITY_LOG`` names a
file (the report script sets it). The path is read once at import: the autouse fixture in
``conftest.py`` clears every ``DOMAINSMITH_*`` variable during a test, so the variable is not
one of those.

Kinds the report reads:

- ``fuzz``: ``parser``, ``inputs``, ``parsed``, ``typed_errors`` (a count per error class),
  ``max_seconds``;
- ``fault``: ``name``, ``survived`` (bool), ``lost`` (committed items missing afterwards);
- ``concurrency``: ``requests`` (served without error), ``errors``, ``seconds``, ``lost``.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

LOG_ENV = "RELIABILITY_LOG"
_PATH = os.environ.get(LOG_ENV)


def record(kind: str, **fields: object) -> None:
    """Append one measurement (no-op unless ``RELIABILITY_LOG`` was set when tests started)."""
    if not _PATH:
        return
    line = json.dumps({"kind": kind, "time": time.time(), **fields}, default=str)
    with Path(_PATH).open("a", encoding="utf-8") as handle:
        handle.write(line + "\n")


def read(path: Path) -> list[dict]:
    """Every measurement in a log file (lines that are not JSON are skipped)."""
    if not path.is_file():
        return []
    rows = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            rows.append(json.loads(line))
        except ValueError:
            continue
    return rows
