"""HTML: the main text of a page (lxml), headings h1-h6 as the section path.

The main content is the first <main>, else [role=main], else a lone <article>, else <body>;
site chrome (navigation, banners, footers, scripts, forms, Sphinx sidebars, DocBook navigation
headers and footers, and "¶" anchors)
is dropped. The tree is walked with ``lxml.etree.iterwalk``, without recursion, so deep
nesting costs time linear in the size of the page and never a RecursionError.
"""

from __future__ import annotations

import codecs
import logging
import re
from pathlib import Path
from typing import TYPE_CHECKING

from lxml import etree

from store.errors import CorruptDocument
from store.parsing.headings import HeadingTrail
from store.parsing.text import BINARY_MESSAGE, decode_text, looks_binary, normalise_space, sniff_bom
from store.records import Block, ParsedDocument

if TYPE_CHECKING:
    from store.parsing import ParseLimits

log = logging.getLogger(__name__)

_META_CHARSET = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?\s*([A-Za-z0-9_.:-]+)""", re.IGNORECASE)
# HTML5: labels browsers read as windows-1252, and "utf-16" without a BOM read as UTF-8.
_CHARSET_ALIASES = {
    "iso8859-1": "cp1252",
    "ascii": "cp1252",
    "utf-16": "utf-8",
    "utf-16-le": "utf-8",
    "utf-16-be": "utf-8",
}

_DROP_TAGS = frozenset(
    {
        "script",
        "style",
        "nav",
        "footer",
        "aside",
        "form",
        "noscript",
        "template",
        "head",
        "svg",
        "button",
        "iframe",
        "object",
        "select",
        "textarea",
    }
)
# Sphinx sidebars and "related" bars; DocBook's "Prev | Up | Next" header and footer (PostgreSQL's manual).
_DROP_CLASSES = {"div": {"sphinxsidebar", "related", "footer", "navheader", "navfooter"}, "a": {"headerlink"}}
_DROP_ROLES = frozenset({"navigation", "banner", "contentinfo", "search", "complementary"})
_SECTIONING = frozenset({"article", "main", "section"})
_BLOCK_TAGS = frozenset(
    {
        "address",
        "article",
        "aside",
        "blockquote",
        "body",
        "caption",
        "dd",
        "details",
        "dialog",
        "div",
        "dl",
        "dt",
        "fieldset",
        "figcaption",
        "figure",
        "footer",
        "form",
        "header",
        "hr",
        "li",
        "main",
        "nav",
        "ol",
        "p",
        "section",
        "summary",
        "table",
        "tbody",
        "td",
        "tfoot",
        "th",
        "thead",
        "tr",
        "ul",
    }
)
_HEADINGS = {f"h{level}": level for level in range(1, 7)}


def parse(path: Path, limits: ParseLimits) -> ParsedDocument:
    """Parse an HTML page into heading, text and table blocks of its main content."""
    text = decode_html(path.read_bytes(), path=path)
    parser = etree.HTMLParser(encoding="utf-8", huge_tree=True, remove_comments=True, remove_pis=True, no_network=True)
    try:
        root = etree.fromstring(text.encode("utf-8", errors="replace"), parser)
    except (etree.LxmlError, ValueError) as exc:
        raise CorruptDocument(f"the HTML cannot be parsed ({exc})", path=path.name) from exc
    for error in parser.error_log:
        if error.type_name == "ERR_RESOURCE_LIMIT":
            raise CorruptDocument(
                "the HTML nests elements too deeply to read (thousands of levels: a damaged page?)",
                path=path.name,
            )
    if root is None:
        return ParsedDocument(title=path.stem, blocks=[], kind="html")
    walker = _Walker(limits.max_html_depth, path.name)
    blocks = walker.walk(main_content(root))
    return ParsedDocument(title=_title(root, walker.first_h1, path), blocks=blocks, kind="html")


def decode_html(data: bytes, *, path: str | Path | None = None) -> str:
    """Decode page bytes: a BOM, then a <meta> charset, then what ``decode_text`` detects."""
    name = Path(path).name if path is not None else None
    declared = None if sniff_bom(data) else _declared_charset(data[:4096])
    if declared is None:
        return decode_text(data, path=path)
    text = data.decode(declared, errors="replace")
    if looks_binary(text):
        raise CorruptDocument(BINARY_MESSAGE, path=name)
    return text


def _declared_charset(head: bytes) -> str | None:
    match = _META_CHARSET.search(head)
    if not match:
        return None
    try:
        name = codecs.lookup(match.group(1).decode("ascii")).name
    except (LookupError, UnicodeDecodeError):
        return None
    return _CHARSET_ALIASES.get(name, name)


def main_content(root: etree._Element) -> etree._Element:
    """The element holding the page's own text (see the module docstring for the order)."""
    found = next(root.iter("main"), None)
    if found is None:
        found = next(root.iterfind(".//*[@role='main']"), None)
    if found is not None:
        return found
    articles = list(root.iter("article"))
    if len(articles) == 1:
        return articles[0]
    body = root.find("body")
    return body if body is not None else root


def _title(root: etree._Element, first_h1: str, path: Path) -> str:
    element = root.find("head/title")
    title = normalise_space("".join(element.itertext())) if element is not None else ""
    return title or first_h1 or path.stem


def _dropped(element: etree._Element, tag: str, in_section: bool) -> bool:
    if tag in _DROP_TAGS or element.get("hidden") is not None:
        return True
    if tag == "header":  # a page banner; a <header> inside an article is its title: keep it
        return not in_section
    if element.get("role") in _DROP_ROLES:
        return True
    classes = _DROP_CLASSES.get(tag)
    return bool(classes and classes.intersection((element.get("class") or "").split()))


class _Walker:
    """One pass over start/end events; text goes to the open heading, table cell or paragraph."""

    def __init__(self, max_depth: int, name: str):
        self.max_depth = max_depth
        self.name = name
        self.blocks: list[Block] = []
        self._headings = HeadingTrail()
        self._buffer: list[str] = []
        self._heading: tuple[str, list[str]] | None = None  # (tag, text parts)
        self._pre = 0
        self._tables = 0
        self._rows: list[list[str]] = []
        self._cell: list[str] | None = None

    def walk(self, container: etree._Element) -> list[Block]:
        depth = 0
        sections = 0 if container.tag == "body" or container.getparent() is None else 1
        walker = etree.iterwalk(container, events=("start", "end"))
        for event, element in walker:
            tag = element.tag
            if not isinstance(tag, str):  # an entity or a stray comment: only its tail counts
                if event == "end":
                    self._add(element.tail)
                continue
            if event == "start":
                depth += 1
                if depth > self.max_depth:
                    raise CorruptDocument(f"the HTML is nested more than {self.max_depth} levels deep", path=self.name)
                sections += tag in _SECTIONING
                if _dropped(element, tag, sections > 0):
                    walker.skip_subtree()
                    self._boundary(tag)
                    continue
                self._start(tag)
                self._add(element.text)
            else:
                depth -= 1
                sections -= tag in _SECTIONING
                self._end(tag)
                self._add(element.tail)
        self._flush()
        return self.blocks

    @property
    def _section(self) -> tuple[str, ...]:
        return self._headings.path

    @property
    def first_h1(self) -> str:
        return self._headings.first_h1

    def _add(self, text: str | None) -> None:
        if not text:
            return
        if self._tables:
            if self._cell is not None:
                self._cell.append(text)
        elif self._heading is not None:
            self._heading[1].append(text)
        else:
            self._buffer.append(text)

    def _boundary(self, tag: str) -> None:
        if tag in _BLOCK_TAGS:
            if self._tables or self._heading is not None or self._pre:
                self._add(" ")
            else:
                self._flush()

    def _start(self, tag: str) -> None:
        if tag in _HEADINGS and not self._tables and self._heading is None:
            self._flush()
            self._heading = (tag, [])
        elif tag == "table":
            if not self._tables:
                self._flush()
                self._rows = []
            self._tables += 1
        elif self._tables == 1 and tag == "tr":
            self._rows.append([])
        elif self._tables == 1 and tag in ("td", "th", "caption"):
            self._cell = []
        elif tag == "pre" and not self._tables and self._heading is None:
            self._flush()
            self._pre += 1
        elif tag == "br":  # a line break inside a paragraph: the paragraph goes on
            self._add("\n" if self._pre else " ")
        else:
            self._boundary(tag)

    def _end(self, tag: str) -> None:
        if self._heading is not None and tag == self._heading[0]:
            self._end_heading(_HEADINGS[tag], normalise_space("".join(self._heading[1])))
        elif tag == "table" and self._tables:
            self._tables -= 1
            if not self._tables:
                rows = (normalise_space(" | ".join(row)) for row in self._rows if any(row))
                self._emit("\n".join(rows), "table")
        elif self._tables == 1 and tag in ("td", "th", "caption") and self._cell is not None:
            cell = normalise_space("".join(self._cell))
            if tag == "caption" or not self._rows:
                self._rows.append([])
            self._rows[-1].append(cell)
            self._cell = None
        elif tag == "pre" and self._pre:
            self._pre -= 1
            if not self._pre:
                self._emit("".join(self._buffer).strip("\n").rstrip())
                self._buffer = []
        else:
            self._boundary(tag)

    def _end_heading(self, level: int, title: str) -> None:
        self._heading = None
        if not title:
            return
        self._headings.enter(level, title)
        self._emit(title, "heading")

    def _flush(self) -> None:
        if self._pre:
            return
        text = normalise_space("".join(self._buffer))
        self._buffer = []
        self._emit(text)

    def _emit(self, text: str, kind: str = "text") -> None:
        if text.strip():
            self.blocks.append(Block(text=text, section=self._section, kind=kind))
