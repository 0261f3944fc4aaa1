"""Plain text: detect the encoding, refuse binary content, split paragraphs on blank lines.

The decoding helpers here are shared with the Markdown and HTML parsers, which read text too.
"""

from __future__ import annotations

import codecs
import logging
import re
from pathlib import Path
from typing import TYPE_CHECKING

from store.errors import CorruptDocument
from store.records import Block, ParsedDocument

if TYPE_CHECKING:
    from store.parsing import ParseLimits

log = logging.getLogger(__name__)

# Longest first: the UTF-32 LE BOM starts with the UTF-16 LE one.
_BOMS: tuple[tuple[bytes, str], ...] = (
    (codecs.BOM_UTF32_LE, "utf-32-le"),
    (codecs.BOM_UTF32_BE, "utf-32-be"),
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)

# Control characters that never occur in text: C0 except tab, newline, vertical tab, form
# feed and carriage return; DEL; C1 (what stray bytes turn into when read as Latin-1).
_CONTROL = re.compile(r"[\x00-\x08\x0e-\x1f\x7f-\x9f]")
_MAX_CONTROL_SHARE = 0.02
# What Western European text in windows-1252 (or Latin-1) holds beyond ASCII: accented
# letters and common punctuation, not the rarer symbols random bytes would also produce.
_WESTERN = frozenset(
    "ÀÁÂÃÄÅÆÇÈÉÊËÌÍÎÏÐÑÒÓÔÕÖØÙÚÛÜÝÞßàáâãäåæçèéêëìíîïðñòóôõöøùúûüýþÿŒœŠšŽžŸƒ€‚„…–—‘’“”•·«»¡¿°§©®™£¥¢\xa0½¼¾²³µ×÷±"
)
_MAX_ACCENTED_SHARE = 0.4
_PARAGRAPH_BREAK = re.compile(r"\n[ \t\v]*\n|\f")
BINARY_MESSAGE = "binary content, not text"


def normalise_space(text: str) -> str:
    """Collapse every run of whitespace (newlines included) into one space and trim the ends."""
    return " ".join(text.split())


def sniff_bom(data: bytes) -> tuple[str, int] | None:
    """The encoding a byte-order mark announces and the mark's length, or None."""
    for bom, encoding in _BOMS:
        if data.startswith(bom):
            return encoding, len(bom)
    return None


def looks_binary(text: str) -> bool:
    """True when decoded text holds a share of control characters no real text has."""
    sample = text[:65536]
    if not sample:
        return False
    if "\x00" in sample:
        return True
    return len(_CONTROL.findall(sample)) / len(sample) > _MAX_CONTROL_SHARE


def decode_text(data: bytes, *, path: str | Path | None = None) -> str:
    """Decode the bytes of a text file: BOM, then UTF-8, then charset-normalizer's best guess.

    Raises ``CorruptDocument`` for binary content or bytes in no encoding we can tell.
    """
    name = Path(path).name if path is not None else None
    bom = sniff_bom(data)
    if bom is not None:
        encoding, skip = bom
        text = data[skip:].decode(encoding, errors="replace")
        sample = text[:65536]
        if sample.count("\ufffd") > _MAX_CONTROL_SHARE * len(sample):
            raise CorruptDocument(f"the text cannot be decoded as {encoding}, as its byte-order mark says", path=name)
    elif b"\x00" in data:
        encoding = _utf16_without_bom(data)
        if encoding is None:
            raise CorruptDocument(BINARY_MESSAGE + " (it holds NUL bytes)", path=name)
        text = data.decode(encoding, errors="replace")
    else:
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            text = _mostly_utf8(data) or _western_decode(data) or _guess_decode(data, name)
    if looks_binary(text):
        raise CorruptDocument(BINARY_MESSAGE + " (it holds control characters)", path=name)
    return text


def _utf16_without_bom(data: bytes) -> str | None:
    """UTF-16 text without a BOM shows NULs in every other byte (for mostly-ASCII text)."""
    even, odd = data[0::2], data[1::2]
    if len(data) < 4 or len(data) % 2:
        return None
    if odd.count(0) > 0.9 * len(odd) and even.count(0) == 0:
        return "utf-16-le"
    if even.count(0) > 0.9 * len(even) and odd.count(0) == 0:
        return "utf-16-be"
    return None


def _mostly_utf8(data: bytes) -> str | None:
    """UTF-8 with a few stray bytes (a Latin-1 character pasted in): keep it UTF-8."""
    text = data.decode("utf-8", errors="replace")
    invalid = text.count("\ufffd")
    valid = len(text) - len(text.encode("ascii", errors="ignore")) - invalid  # non-ASCII, decoded
    return text if valid > invalid else None


def _western_decode(data: bytes) -> str | None:
    """windows-1252 when the bytes read as plausible Western European text in it, else None.

    charset-normalizer tends to pick windows-1250 for short French or Spanish text, turning
    "è" into "č"; Western text is mostly ASCII with a few accented letters, which text in other
    single-byte encodings (Cyrillic, Greek read as windows-1252) is not.
    """
    try:
        text = data.decode("cp1252")
    except UnicodeDecodeError:
        return None
    sample = text[:65536]
    extra = [char for char in sample if ord(char) > 127]
    if any(char not in _WESTERN for char in extra):
        return None
    letters = sum(char.isalpha() for char in sample)
    accented = sum(char.isalpha() for char in extra)
    return text if accented <= _MAX_ACCENTED_SHARE * max(letters, 1) else None


def _guess_decode(data: bytes, name: str | None) -> str:
    from charset_normalizer import from_bytes

    best = from_bytes(data).best()
    if best is None:
        raise CorruptDocument(
            "the text is not UTF-8 and its encoding could not be detected; save it as UTF-8 and add it again",
            path=name,
        )
    # Equivalent decodings are grouped; prefer the most common legacy one when it is among them.
    encoding = "cp1252" if "cp1252" in best.could_be_from_charset else best.encoding
    log.debug("%s: detected encoding %s", name, encoding)
    try:
        return data.decode(encoding)
    except (UnicodeDecodeError, LookupError):
        return str(best)


def split_paragraphs(text: str) -> list[str]:
    """Paragraphs separated by blank lines (or form feeds), whitespace collapsed, none empty."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    paragraphs = (normalise_space(part) for part in _PARAGRAPH_BREAK.split(text))
    return [p for p in paragraphs if p]


def parse(path: Path, limits: ParseLimits | None = None) -> ParsedDocument:
    """Parse a plain-text file: one block per paragraph, no pages, no sections."""
    text = decode_text(path.read_bytes(), path=path)
    blocks = [Block(text=p) for p in split_paragraphs(text)]
    return ParsedDocument(title=path.stem, blocks=blocks, kind="text")
