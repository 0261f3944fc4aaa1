"""The services the CLI and the web UI share, built once by ``app.py`` from the settings.

Knowledge bases are opened on first use and kept open; they share one embedder so the model
is loaded once per process. A lock per knowledge base serialises writes from UI events. The
models registry and the saved chat sessions use the services' own database connection, opened
on first use: listing models or chats opens no knowledge base.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from store import embedding, model_catalogue
from store.database import open_db
from store.embedding import Embedder
from store.knowledge_base import KnowledgeBase, list_knowledge_bases, validate_name
from store.lineage import LineageCheck
from store.registry import ModelRegistry
from store.sessions import SessionStore
from store.settings import Settings

if TYPE_CHECKING:
    from sqlite_utils import Database

    from adapters.finetune import FineTuner
    from assistant.assistant import Assistant


@dataclass
class Services:
    settings: Settings
    _embedder: Embedder | None = None
    _kbs: dict[str, KnowledgeBase] = field(default_factory=dict)
    _locks: dict[str, threading.RLock] = field(default_factory=dict)
    _guard: threading.Lock = field(default_factory=threading.Lock)
    _embedder_lock: threading.Lock = field(default_factory=threading.Lock)
    _assistant: Assistant | None = None
    _finetuner: FineTuner | None = None
    _db: Database | None = None

    @property
    def embedder(self) -> Embedder:
        """The one embedder of this process, loaded on first use (under its own lock: a load takes
        seconds, and listing models or asking the assistant to wait must not queue behind it)."""
        with self._embedder_lock:
            if self._embedder is None:
                self._embedder = embedding.from_settings(self.settings)
            return self._embedder

    def kb(self, name: str | None = None, *, create: bool = True, allow_embedder_change: bool = False) -> KnowledgeBase:
        """The open knowledge base ``name`` (the default one when None)."""
        name = validate_name(name or self.settings.default_kb)
        embedder = self.embedder
        with self._guard:
            kb = self._kbs.get(name)
            if kb is None:
                kb = KnowledgeBase.open(
                    self.settings, name, embedder, create=create, allow_embedder_change=allow_embedder_change
                )
                self._kbs[name] = kb
                self._locks[name] = threading.RLock()
            return kb

    def kb_lock(self, name: str | None = None) -> threading.RLock:
        self.kb(name)
        return self._locks[validate_name(name or self.settings.default_kb)]

    @property
    def assistant(self) -> Assistant:
        from assistant.assistant import Assistant
        from assistant.llm import LlamaRuntime

        with self._guard:
            if self._assistant is None:
                s = self.settings
                runtime = LlamaRuntime(context=s.chat_context, threads=s.chat_threads)
                self._assistant = Assistant(s, runtime, lambda name: self.kb(name), load_embedder=lambda: self.embedder)
            return self._assistant

    @property
    def finetuner(self) -> FineTuner:
        from adapters.finetune import FineTuner

        with self._guard:
            if self._finetuner is None:
                self._finetuner = FineTuner(self.settings, lambda name: self.kb(name, create=False))
            return self._finetuner

    @property
    def db(self) -> Database:
        """The services' connection to the database (registry, chat sessions), opened on first use."""
        with self._guard:
            if self._db is None:
                self._db = open_db(self.settings.db_path)
            return self._db

    @property
    def registry(self) -> ModelRegistry:
        return ModelRegistry(self.db)

    def lineage_check(self) -> LineageCheck:
        """Staleness of runs' and models' training data (``store.lineage``): make one per listing."""
        return LineageCheck(lambda: self.db)

    @property
    def sessions(self) -> SessionStore:
        return SessionStore(self.db)

    def models(self) -> list[str]:
        """Chat model choices: the default, the other bundled models installed here, then exported models."""
        return [value for _label, value in self.model_choices()]

    def model_choices(self) -> list[tuple[str, str]]:
        """(label, value) of each Chat model choice; a bundled model's label says what it costs.

        The remote model (``remote_url`` and ``remote_model`` set) follows the bundled ones as ``remote:NAME``.
        """
        default = self.default_model()
        bundled = model_catalogue.choices(model_catalogue.CHAT, self.settings.home)
        choices = [(m.label(), m.name) for m in bundled]
        if self.settings.remote_url and self.settings.remote_model:
            from assistant.remote_llm import PREFIX

            where = url_host(self.settings.remote_url)
            choices.append(
                (f"{self.settings.remote_model}: on the remote server {where}", PREFIX + self.settings.remote_model)
            )
        first = [c for c in choices if c[1] == default] or [(default, default)]
        return first + [c for c in choices if c[1] != default] + [(m.name, m.name) for m in self.registry.list()]

    def default_model(self) -> str:
        """Chat's default model: the configured ``chat_model``, else the default bundled model."""
        spec = self.settings.chat_model
        bundled = model_catalogue.resolve(spec, model_catalogue.CHAT, self.settings.home)
        return bundled.name if bundled else str(spec)

    def base_choices(self) -> list[tuple[str, str]]:
        """(label, value) of each bundled training base installed here, the default (``train_base``) first."""
        home = self.settings.home
        spec = self.settings.train_base
        default = model_catalogue.find(spec) if spec else None
        bundled = model_catalogue.choices(model_catalogue.BASE, home)
        if spec and default is None:  # a path configured as the default base
            return [(spec, spec)] + [(m.label(), m.name) for m in bundled]
        default = default or bundled[0]
        return [(default.label(), default.name)] + [(m.label(), m.name) for m in bundled if m is not default]

    def knowledge_bases(self) -> list[dict]:
        return list_knowledge_bases(self.settings)

    def close(self) -> None:
        with self._guard:
            if self._assistant is not None:
                self._assistant.runtime.unload()
                if self._assistant.remote is not None:
                    self._assistant.remote.close()
            for kb in self._kbs.values():
                kb.close()
            self._kbs.clear()
            if self._db is not None:
                self._db.close()
                self._db = None


def url_host(url: str) -> str:
    """``host:port`` of a URL, for labels (no credentials, no path)."""
    from urllib.parse import urlsplit

    return urlsplit(url).netloc.rsplit("@", 1)[-1] or url
