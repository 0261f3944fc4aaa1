"""The passage page (``/passage/{kb}/{chunk_id}``): where a citation's url leads.

One stored passage with its document, page and section. For a PDF it shows the cited page as an
image with the passage highlighted (``page.png`` beside it), the page label the reader's viewer
shows, and a link that opens the original PDF at that page (``file``); for other documents, the
passage marked in the text around it. A plain page of the web app, behind its login when a
password is set. The chunk is read by its stable id (``doc_id:n``), which ``SearchHit.chunk_id``
and the API's citations carry.
"""

from __future__ import annotations

import html
from urllib.parse import quote

from store.knowledge_base import KnowledgeBase
from store.passage_view import passage_view
from store.records import where

PASSAGE_PATH = "/passage"
FILE_TYPES = {
    "pdf": "application/pdf",
    "docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    "markdown": "text/markdown; charset=utf-8",
    "html": "text/plain; charset=utf-8",  # shown as text: a stored page's scripts never run here
    "text": "text/plain; charset=utf-8",
}


def passage_url(kb: str, chunk_id: str) -> str:
    return f"{PASSAGE_PATH}/{quote(kb, safe='')}/{quote(chunk_id, safe='')}"


def passage_html(kb: KnowledgeBase, chunk_id: str) -> str:
    view = passage_view(kb, chunk_id)
    p = view.passage
    place = where(p["page"], p["section"], p.get("page_label"))
    title = html.escape(p["source"] + (f" — {place}" if place else ""))
    url = passage_url(kb.name, chunk_id)
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'>",
        f"<title>{title}</title></head><body style='font-family: sans-serif; max-width: 60em; margin: 2em auto'>",
        f"<p>Knowledge base <b>{html.escape(kb.name)}</b> · passage <code>{html.escape(p['chunk_id'])}</code>"
        + (" · read by OCR" if p.get("ocr") else "")
        + "</p>",
        f"<h2>{title}</h2>",
    ]
    if view.file is not None:
        anchor = f"#page={p['page']}" if p["page"] else ""
        label = "Open the original PDF at this page" if view.kind == "pdf" else "Open the original file"
        parts.append(f"<p><a id='ds-original' href='{url}/file{anchor}' target='_blank'>{label}</a></p>")
    elif view.file_problem:
        parts.append(f"<p><i>{html.escape(view.file_problem)}</i></p>")
    if view.page_image_available:
        alt = html.escape(f"page {p.get('page_label') or p['page']} with the passage highlighted")
        parts.append(
            f"<img id='ds-page' src='{url}/page.png' alt='{alt}' "
            "style='max-width: 100%; border: 1px solid #ccc; box-shadow: 0 1px 4px #0002'>"
        )
        parts.append("<h3>The passage</h3>")
        parts.append(f"<blockquote style='white-space: pre-wrap'>{html.escape(p['text'])}</blockquote>")
    else:
        parts.append(
            "<div id='ds-context' style='white-space: pre-wrap; line-height: 1.5'>"
            f"{'…' if view.before else ''}{html.escape(view.before)}"
            f"<mark id='ds-passage'>{html.escape(p['text'])}</mark>"
            f"{html.escape(view.after)}{'…' if view.after else ''}</div>"
        )
    parts.append("</body></html>")
    return "".join(parts)
