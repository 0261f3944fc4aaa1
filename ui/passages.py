"""The passage page (``/passage/{kb}/{chunk_id}``): where a citation's url leads.

One stored passage with its document, page and section (``KnowledgeBase.passage``), as a plain
page of the web app (behind its login when a password is set). The chunk is read by its stable id
(``doc_id:n``), which ``SearchHit.chunk_id`` and the API's citations carry.
"""

from __future__ import annotations

import html

from store.knowledge_base import KnowledgeBase
from store.records import where


def passage_html(kb: KnowledgeBase, chunk_id: str) -> str:
    p = kb.passage(chunk_id)
    place = where(p["page"], p["section"], p.get("page_label"))
    title = html.escape(p["source"] + (f" ({place})" if place else ""))
    return (
        "<!doctype html><html><head><meta charset='utf-8'>"
        f"<title>{title}</title></head><body style='font-family: sans-serif; max-width: 50em; margin: 2em auto'>"
        f"<p>Knowledge base <b>{html.escape(kb.name)}</b> · passage <code>{html.escape(p['chunk_id'])}</code></p>"
        f"<h2>{title}</h2><blockquote style='white-space: pre-wrap'>{html.escape(p['text'])}</blockquote>"
        "</body></html>"
    )
