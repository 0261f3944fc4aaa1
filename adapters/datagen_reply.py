"""The generator's reply read as questions and answers (``adapters.datagen``, ``adapters.rewording``).

A small model does not keep to one format: labels come as ``Q:``, ``Question 1.``, ``**A:**`` or
after a list number, and an answer may run on over several lines. What is outside any pair counts
as garbage (the "malformed" filter's count).
"""

from __future__ import annotations

import re

from assistant.sentences import MARKER

_LINE = re.compile(r"^\s*(?:[-*#\d.)\s]*)\**\s*(q|question|a|answer)\s*\d*\s*\**\s*[:.)]\**\s*(.*)$", re.I)


def parse_pairs(reply: str) -> tuple[list[tuple[str, str | None]], int]:
    """``([(question, answer or None)], garbage lines)`` from ``Q: ...`` / ``A: ...`` lines.

    An answer runs on over the lines that follow it up to the next ``Q:``; citation markers and
    quotes are removed. Text outside any pair counts as garbage.
    """
    pairs: list[list[str | None]] = []
    garbage = 0
    target: str | None = None
    for line in reply.splitlines():
        if not line.strip():
            continue
        match = _LINE.match(line)
        if match and match.group(1).lower().startswith("q"):
            pairs.append([match.group(2).strip(), None])
            target = "q"
        elif match and pairs and pairs[-1][1] is None:
            pairs[-1][1] = match.group(2).strip()
            target = "a"
        elif target and pairs and not _OTHER_LABEL.match(line):
            index = 0 if target == "q" else 1
            pairs[-1][index] = f"{pairs[-1][index] or ''} {line.strip()}".strip()
        else:
            garbage += 1
    return [(clean(q or ""), clean(a) if a is not None else None) for q, a in pairs], garbage


_OTHER_LABEL = re.compile(r"^\W*[A-Za-z]{1,12}\s*\d*\s*:")  # "B: ...", "Note: ...": not an answer's next line


def finished(text: str, label: str) -> int:
    """How many ``label`` lines ("q" or "a") of the reply so far have ended (a newline follows them)."""
    found = (_LINE.match(line) for line in text.split("\n")[:-1])
    return sum(1 for m in found if m and m.group(1).lower()[0] == label)


def clean(text: str) -> str:
    """One line of a reply without citation markers, bold marks, quotes or extra spaces."""
    text = MARKER.sub("", text).replace("**", "").strip().strip('"“”').strip()
    return " ".join(text.split())
