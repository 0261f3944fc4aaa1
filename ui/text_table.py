"""Plain-text tables for the command line: columns padded to their widest cell."""

from __future__ import annotations

from collections.abc import Sequence


def format_table(rows: Sequence[Sequence[str]], notes: Sequence[str] = ()) -> str:
    """``rows`` (the first one is the header) as left-aligned columns two spaces apart.

    ``notes``: one per row after the header; a non-empty one gets a line of its own, indented,
    under its row (``stale: pump.md removed``).
    """
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows]
    for i, note in reversed(list(enumerate(notes, start=1))):
        if note:
            lines.insert(i + 1, f"  {note}")
    return "\n".join(lines)
