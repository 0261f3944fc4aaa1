"""Markdown: markdown-it-py tokens to blocks; the heading hierarchy gives the section path.

Inline markup is dropped (emphasis, link targets, images keep their alt text), code blocks
are kept verbatim, lists become one block with an item per line, tables one "table" block.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import TYPE_CHECKING

from markdown_it import MarkdownIt

from store.errors import CorruptDocument
from store.parsing.headings import HeadingTrail
from store.parsing.text import decode_text, normalise_space
from store.records import Block, ParsedDocument

if TYPE_CHECKING:
    from markdown_it.token import Token

    from store.parsing import ParseLimits

log = logging.getLogger(__name__)

# YAML front matter (Jekyll, Hugo, MkDocs): a "---" fence on the first line, closed by "---"/"...".
_FRONT_MATTER = re.compile(r"\A---[ \t]*\r?\n(.*?\r?\n)(?:---|\.\.\.)[ \t]*(?:\r?\n|\Z)", re.DOTALL)
_FRONT_MATTER_TITLE = re.compile(r"^title:[ \t]*(.+?)[ \t]*$", re.MULTILINE)
_HTML_TAG = re.compile(r"<!--.*?-->|<[^>]*>", re.DOTALL)
_LIST_OPEN = ("bullet_list_open", "ordered_list_open")
_LIST_CLOSE = ("bullet_list_close", "ordered_list_close")


def parse(path: Path, limits: ParseLimits) -> ParsedDocument:
    """Parse a Markdown file into heading, text and table blocks."""
    text = decode_text(path.read_bytes(), path=path)
    text, meta_title = _strip_front_matter(text)
    parser = MarkdownIt("commonmark").enable("table")
    try:
        tokens = parser.parse(text)
    except RecursionError as exc:  # markdown-it caps nesting, but be sure nothing escapes
        raise CorruptDocument("the Markdown is nested too deeply to read", path=path.name) from exc
    builder = _Builder()
    blocks = builder.build(tokens)
    title = builder.first_h1 or meta_title or path.stem
    return ParsedDocument(title=title, blocks=blocks, kind="markdown")


def _strip_front_matter(text: str) -> tuple[str, str]:
    """Remove YAML front matter (it would read as a rule and a heading); return its title."""
    match = _FRONT_MATTER.match(text.lstrip("\ufeff"))
    if not match:
        return text, ""
    title = _FRONT_MATTER_TITLE.search(match.group(1))
    value = title.group(1).strip("'\"") if title else ""
    return text.lstrip("\ufeff")[match.end() :], normalise_space(value)


def inline_text(token: Token) -> str:
    """The readable text of an inline token: text, code spans, image alt text; no markup."""
    parts: list[str] = []
    for child in token.children or ():
        if child.type in ("text", "code_inline"):
            parts.append(child.content)
        elif child.type == "image":
            parts.append(child.content or "".join(c.content for c in child.children or ()))
        elif child.type in ("softbreak", "hardbreak"):
            parts.append(" ")
    return normalise_space("".join(parts))


class _Builder:
    """Walks the flat token stream once, keeping the heading stack and open lists/tables."""

    def __init__(self) -> None:
        self.blocks: list[Block] = []
        self._headings = HeadingTrail()
        self._list_depth = 0
        self._list_lines: list[str] = []
        self._markers: list[str] = []
        self._table_rows: list[list[str]] | None = None

    @property
    def _section(self) -> tuple[str, ...]:
        return self._headings.path

    @property
    def first_h1(self) -> str:
        return self._headings.first_h1

    def _emit(self, text: str, kind: str = "text") -> None:
        if text.strip():
            self.blocks.append(Block(text=text, section=self._section, kind=kind))

    def build(self, tokens: list[Token]) -> list[Block]:
        pending_heading: int | None = None
        for token in tokens:
            kind = token.type
            if kind == "heading_open":
                pending_heading = int(token.tag[1:])
            elif kind == "inline" and pending_heading is not None:
                self._heading(pending_heading, inline_text(token))
                pending_heading = None
            elif kind in _LIST_OPEN:
                self._list_depth += 1
                self._markers.append("1." if kind == "ordered_list_open" else "-")
            elif kind == "list_item_open" and self._markers:
                # ordered items carry their number in info ("3") and the delimiter in markup (".")
                self._markers[-1] = f"{token.info}{token.markup}" if token.info else token.markup or "-"
            elif kind in _LIST_CLOSE:
                self._list_depth -= 1
                self._markers.pop()
                if self._list_depth == 0:
                    self._emit("\n".join(self._list_lines))
                    self._list_lines = []
            elif kind == "table_open":
                self._table_rows = []
            elif kind == "table_close" and self._table_rows is not None:
                rows = (normalise_space(" | ".join(row)) for row in self._table_rows if any(row))
                self._emit("\n".join(rows), "table")
                self._table_rows = None
            elif kind == "tr_open" and self._table_rows is not None:
                self._table_rows.append([])
            elif kind == "inline":
                self._inline(token)
            elif kind in ("fence", "code_block"):
                self._text(token.content.strip("\n"), verbatim=True)
            elif kind == "html_block":
                self._text(normalise_space(_HTML_TAG.sub(" ", token.content)))
        return self.blocks

    def _heading(self, level: int, title: str) -> None:
        if not title:
            return
        self._headings.enter(level, title)
        self._emit(title, "heading")

    def _inline(self, token: Token) -> None:
        text = inline_text(token)
        if self._table_rows is not None and self._table_rows:
            self._table_rows[-1].append(text)
        else:
            self._text(text)

    def _text(self, text: str, verbatim: bool = False) -> None:
        if not text.strip():
            return
        if self._list_depth:
            indent = "  " * (self._list_depth - 1)
            if verbatim:
                self._list_lines.extend(indent + "  " + line for line in text.splitlines())
            else:
                self._list_lines.append(f"{indent}{self._markers[-1]} {text}")
        else:
            self._emit(text)
