"""The passage page (``/passage/{kb}/{chunk_id}``): where a citation's url leads.

One stored passage with its document, page and section, as a plain page of the web app (behind
its login when a password is set). The chunk is read by its stable id (``doc_id:n``), which
``SearchHit.chunk_id`` and the API's citations carry.
"""

from __future__ import annotations

import html

from store.database import row
from store.errors import DocumentNotFound
from store.knowledge_base import KnowledgeBase
from store.records import where


def passage(kb: KnowledgeBase, chunk_id: str) -> dict:
    """The passage ``chunk_id`` of ``kb``: document, source, page, section, text."""
    # TODO(store): a KnowledgeBase.chunk(chunk_id) in store/ would own this query.
    found = row(
        kb.db,
        """SELECT c.chunk_id, d.name, d.source, c.page, c.section, c.text
           FROM chunks c JOIN documents d ON d.id = c.doc_id
           WHERE c.kb_id = ? AND c.chunk_id = ?""",
        [kb.id, chunk_id],
    )
    if found is None:
        raise DocumentNotFound(f"no passage {chunk_id!r} in knowledge base {kb.name!r} (re-added or removed since?)")
    return {
        "chunk_id": found["chunk_id"],
        "document": found["name"],
        "source": found["source"],
        "page": found["page"],
        "section": found["section"],
        "text": found["text"],
    }


def passage_html(kb: KnowledgeBase, chunk_id: str) -> str:
    p = passage(kb, chunk_id)
    place = where(p["page"], p["section"])
    title = html.escape(p["source"] + (f" ({place})" if place else ""))
    return (
        "<!doctype html><html><head><meta charset='utf-8'>"
        f"<title>{title}</title></head><body style='font-family: sans-serif; max-width: 50em; margin: 2em auto'>"
        f"<p>Knowledge base <b>{html.escape(kb.name)}</b> · passage <code>{html.escape(p['chunk_id'])}</code></p>"
        f"<h2>{title}</h2><blockquote style='white-space: pre-wrap'>{html.escape(p['text'])}</blockquote>"
        "</body></html>"
    )
