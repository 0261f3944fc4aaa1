"""Sentence splitting shared by prompting, citation checks and the extractive fallback."""

from __future__ import annotations

import re

# A sentence runs to ., ! or ? followed by a space or the end ("0.8 mm" and "v3.11" stay whole),
# and keeps the citation markers that follow it ("... hours. [1][2]").
_BODY = r"(?:[^.!?\n]|[.!?](?=\S))+(?:[.!?]+|$)"
MARKER = re.compile(r"\s*\[(\d{1,3}(?:\s*,\s*\d{1,3})*)\]")
SENTENCE = re.compile(_BODY + r"(?:\s*\[\d{1,3}(?:\s*,\s*\d{1,3})*\])*", re.MULTILINE)


def split_sentences(text: str) -> list[str]:
    return [m.group(0).strip() for m in SENTENCE.finditer(text) if m.group(0).strip()]
