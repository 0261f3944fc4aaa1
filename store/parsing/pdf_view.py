"""A cited PDF page as an image, with the cited passage's words highlighted.

The page's words and their boxes come from its text layer (pdfium's character boxes) or, for a
page that was read by OCR, from Tesseract's word boxes on the same render. The passage is
matched against the page's words in order (``difflib``: the stored passage is the cleaned text,
with headers dropped and hyphenation rejoined, so the match is approximate by design), and the
matched words are painted over in translucent yellow.
"""

from __future__ import annotations

import difflib
import io
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from store.parsing.ocr import render_scale

Box = tuple[float, float, float, float]  # left, top, right, bottom in image pixels
_TOKEN = re.compile(r"\w+")
VIEW_DPI = 110  # sharp enough to read on screen
HIGHLIGHT = (255, 221, 0, 255)  # marker yellow


@dataclass(frozen=True)
class PageImage:
    png: bytes
    width: int
    height: int
    highlighted: int  # how many words the highlight covers


def tokens(text: str) -> list[str]:
    return [t.casefold() for t in _TOKEN.findall(text)]


def render_page(path: Path, page: int, passage: str, *, ocr: bool = False, dpi: int = VIEW_DPI) -> PageImage:
    """Physical page ``page`` (1-based) of the PDF at ``path`` as a PNG with ``passage`` highlighted."""
    import pypdfium2
    from PIL import Image, ImageDraw

    document = pypdfium2.PdfDocument(str(path))
    try:
        if not 1 <= page <= len(document):
            raise ValueError(f"the PDF has no page {page}")
        pdf_page = document[page - 1]
        width, height = pdf_page.get_size()
        scale = render_scale(width, height, dpi)
        image = pdf_page.render(scale=scale).to_pil().convert("RGBA")
        words = _ocr_words(image) if ocr else _layer_words(pdf_page, scale, height)
        pdf_page.close()
    finally:
        document.close()
    boxes = highlight(words, passage)
    overlay = image.copy()
    draw = ImageDraw.Draw(overlay)
    for band in merge_lines(boxes):
        draw.rectangle(band, fill=HIGHLIGHT)
    composed = Image.blend(image, overlay, 0.4)  # the page shows through the marker
    out = io.BytesIO()
    composed.convert("RGB").save(out, format="PNG", optimize=True)
    return PageImage(out.getvalue(), composed.width, composed.height, len(boxes))


def highlight(words: Sequence[tuple[str, Box]], passage: str) -> list[Box]:
    """The boxes of the page's words that belong to ``passage``: the words of the matching runs
    (at least two words long) between the first and the last of them."""
    page_tokens = [tokens(word) for word, _ in words]
    flat: list[str] = []
    owner: list[int] = []
    for index, parts in enumerate(page_tokens):
        for part in parts:
            flat.append(part)
            owner.append(index)
    wanted = tokens(passage)
    if not flat or not wanted:
        return []
    matcher = difflib.SequenceMatcher(None, flat, wanted, autojunk=False)
    runs = [m for m in matcher.get_matching_blocks() if m.size >= 2]
    if not runs:
        return []
    first, last = runs[0].a, runs[-1].a + runs[-1].size - 1
    chosen = sorted({owner[i] for i in range(first, last + 1)})
    return [words[i][1] for i in chosen]


def merge_lines(boxes: Sequence[Box]) -> list[Box]:
    """Neighbouring word boxes of one line joined into one band (a marker stroke, not confetti)."""
    merged: list[Box] = []
    for box in boxes:
        if merged:
            left, top, right, bottom = merged[-1]
            height = max(bottom - top, box[3] - box[1], 1.0)
            overlap = min(bottom, box[3]) - max(top, box[1])
            if overlap >= 0.5 * height and 0 <= box[0] - right <= 1.5 * height:
                merged[-1] = (left, min(top, box[1]), box[2], max(bottom, box[3]))
                continue
        merged.append(box)
    return merged


def _layer_words(page, scale: float, height: float) -> list[tuple[str, Box]]:
    """The words of a page's text layer with their boxes, from pdfium's character boxes."""
    textpage = page.get_textpage()
    try:
        text = textpage.get_text_range()
        count = min(textpage.count_chars(), len(text))
        words: list[tuple[str, Box]] = []
        current: list[str] = []
        box: list[float] | None = None
        for i in range(count):
            char = text[i]
            if char.isspace():
                if current and box is not None:
                    words.append(("".join(current), _pixels(box, scale, height)))
                current, box = [], None
                continue
            left, bottom, right, top = textpage.get_charbox(i)
            current.append(char)
            box = (
                [left, bottom, right, top]
                if box is None
                else [min(box[0], left), min(box[1], bottom), max(box[2], right), max(box[3], top)]
            )
        if current and box is not None:
            words.append(("".join(current), _pixels(box, scale, height)))
        return words
    finally:
        textpage.close()


def _pixels(box: Sequence[float], scale: float, height: float) -> Box:
    """A PDF-space box (origin bottom left, points) in image pixels (origin top left)."""
    left, bottom, right, top = box
    return (left * scale - 1, (height - top) * scale - 1, right * scale + 1, (height - bottom) * scale + 1)


def _ocr_words(image) -> list[tuple[str, Box]]:
    """Tesseract's words on the rendered page, with their boxes."""
    import pytesseract

    data = pytesseract.image_to_data(image.convert("L"), output_type=pytesseract.Output.DICT, timeout=60)
    return [
        (word, (left, top, left + w, top + h))
        for word, left, top, w, h in zip(
            data["text"], data["left"], data["top"], data["width"], data["height"], strict=True
        )
        if word.strip()
    ]
