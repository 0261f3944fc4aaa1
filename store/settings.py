"""One typed settings object: defaults < config file < ``DOMAINSMITH_*`` environment < overrides.

``DOMAINSMITH_HOME`` (default ``~/.domainsmith``) holds all data::

    domainsmith.db   SQLite: knowledge bases, documents, chunks, embeddings, FTS, models
    index/           one hnswlib file per knowledge base (derived, rebuildable)
    models/ runs/ uploads/

The config file is TOML: ``$DOMAINSMITH_CONFIG`` or ``$DOMAINSMITH_HOME/config.toml``, with
the field names below as keys (``chunk_tokens = 180``). Values are read as each field's declared
type (``store.coerce``); a bad one is a ``ConfigError`` naming the key, where it came from and the
type expected. Every field carries a one-line help (``Settings.describe()``), documented in the
README's Settings table. Settings are passed to the services; nothing in the library reads the
environment by itself.
"""

from __future__ import annotations

import dataclasses
import functools
import os
import re
import tomllib
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from store.coerce import coerce, expected
from store.errors import ConfigError
from store.parsing import ParseLimits

ENV_PREFIX = "DOMAINSMITH_"


def _setting(default: Any, help: str) -> Any:
    """A setting's default and its one-line help (the README's Settings table documents each)."""
    return field(default=default, metadata={"help": help})


@dataclass(frozen=True)
class Settings:
    home: Path = field(
        default_factory=lambda: Path.home() / ".domainsmith",
        metadata={"help": "the folder holding all data (set by DOMAINSMITH_HOME or --home only)"},
    )
    # Embedding: a bundled embedder (store/embedder_catalogue.py), or any local folder (embedder_path wins).
    # Changing either needs `kb reindex` for each existing knowledge base.
    embedder: str = _setting(
        "all-MiniLM-L6-v2", "the bundled embedder: all-MiniLM-L6-v2 or all-mpnet-base-v2 (`make embedder-mpnet`)"
    )
    embedder_path: str | None = _setting(None, "any local sentence-transformers folder (safetensors only)")
    embed_batch_size: int = _setting(32, "chunks per embedding batch")
    # Chunking, in embedder tokens. MiniLM embeds 256 tokens; the title/section prefix needs room.
    chunk_tokens: int = _setting(200, "chunk size, in embedder tokens")
    chunk_overlap: int = _setting(32, "overlap between consecutive chunks, in embedder tokens")
    # Packing gained a few first places on three corpora and lost one (bench/README.md, "Packed
    # sections" and "Both batches"), but a packed passage cites its sections' shared parent instead
    # of its own section: opt-in.
    pack_sections: bool = _setting(
        False, "chunking: consecutive short sections of a page share a chunk, up to chunk_tokens"
    )
    # Limits on input files.
    max_file_mb: float = _setting(200.0, "files over this many megabytes are refused")
    max_pdf_pages: int = _setting(20_000, "PDFs with more pages are refused")
    # OCR of scanned PDF pages (store/parsing/ocr.py: pypdfium2 renders, Tesseract reads).
    ocr: str = _setting("auto", "scanned PDF pages: auto (pages without a text layer), off, or always (every page)")
    ocr_languages: str = _setting("eng", "Tesseract languages, joined by '+' (eng+deu); each needs tesseract-ocr-LANG")
    ocr_page_seconds: float = _setting(60.0, "OCR stops on a page after this many seconds (the page is left unread)")
    # Vector index (hnswlib).
    hnsw_m: int = _setting(16, "vector index: links per node")
    hnsw_ef_construction: int = _setting(200, "vector index: candidates considered while building")
    hnsw_ef_search: int = _setting(128, "vector index: candidates considered while searching")
    # Hybrid search: reciprocal rank fusion of vector and keyword results (see store/ranking.py).
    rrf_k: int = _setting(10, "hybrid search: the rank fusion constant")
    keyword_weight: float = _setting(0.5, "hybrid search: the weight of the keyword ranking")
    # Page fusion (store.ranking.page_fusion): 0.5 won on the dev halves of three corpora and lost on the
    # test halves (bench/README.md, "Page fusion"), so it is off by default.
    page_weight: float = _setting(
        0.0, "hybrid search: how much the fused rank of a page lifts its best passage (0: off)"
    )
    evidence_weight: float = _setting(
        0.0, "hybrid search: how much the other passages of a hit's page add to its score (0: off)"
    )
    # Diverse results (see store/diversity.py); "none" keeps the ranking as it is. A cap of 3 per
    # document was chosen on the dev halves of three corpora (bench/retrieval.py, issue 13): it never
    # lowered recall@1, @5 or MRR there, and on the test halves it raised PostgreSQL's recall@5.
    diversity: str = _setting("cap", "search results: none, dedupe, cap (per document) or mmr")
    per_document_cap: int = _setting(3, "diversity 'cap': at most this many passages of one document")
    mmr_lambda: float = _setting(0.7, "diversity 'mmr': relevance against novelty (1: relevance only)")
    # Chat (llama.cpp). chat_model: a bundled model key, a GGUF path or a registry name; None = the default
    # bundled model (Qwen2.5-Coder-1.5B-Instruct; SmolLM2-135M-Instruct when its packages are not installed).
    chat_model: str | None = _setting(None, "a bundled model key, a GGUF path or a registered model name")
    # Training: None = Qwen2.5-Coder-0.5B-Instruct (SmolLM2-135M-Instruct when not installed).
    train_base: str | None = _setting(None, "the default base of 'Train adapter': a bundled model key, .gguf or folder")
    chat_context: int = _setting(4096, "llama.cpp context window, in tokens (also assumed of a remote model)")
    chat_threads: int = _setting(0, "llama.cpp threads (0: one per free core, chosen for each answer)")
    temperature: float = _setting(0.0, "sampling temperature of answers")
    max_tokens: int = _setting(320, "the longest answer, in tokens")
    retrieval_k: int = _setting(5, "passages offered to the model")
    neighbour_tokens: int = _setting(0, "passages offered grow with their section's neighbours to this size (0: off)")
    source_tokens: int = _setting(
        0, "the model reads of each passage its sentences that best match the question, up to this many tokens (0: all)"
    )
    # Relevance gate (see assistant/retrieval.py); calibrated with `python app.py eval rag`.
    relevance_threshold: float = _setting(0.50, "the abstention gate: below it, 'not in the documents'")
    support_threshold: float = _setting(0.5, "the citation check: a cited passage must support its sentence")
    second_look_relevance: float = _setting(
        0.55, "when the model refuses though a passage scored at least this relevant, it is asked once more (0: off)"
    )
    max_question_chars: int = _setting(4000, "longer questions are cut to this many characters, with a notice")
    indexing_wait_seconds: float = _setting(
        900.0, "a question to a knowledge base that is being added to waits this long for the batch"
    )
    # Remote generation (assistant/remote_llm.py): the model "remote:NAME" answers on an OpenAI-compatible
    # server (vLLM, llama.cpp's server, Ollama); retrieval, prompt and citation check stay here.
    remote_url: str | None = _setting(None, "an OpenAI-compatible server's base URL, e.g. http://gpu-host:8000/v1")
    remote_model: str | None = _setting(None, "the model the remote server answers with (Chat's 'remote:NAME')")
    remote_api_key: str | None = field(
        default=None, repr=False, metadata={"help": "the remote server's API key, sent as a Bearer token (optional)"}
    )
    remote_timeout: float = _setting(60.0, "seconds to wait for the remote server's reply and for each next token")
    remote_retries: int = _setting(2, "new connection attempts to the remote server, only before any token came")
    # Web app.
    host: str = _setting("127.0.0.1", "web app address")
    port: int = _setting(7860, "web app port")
    username: str = _setting("admin", "the login name when a password is set")
    password: str | None = _setting(None, "set a password to require a login")
    default_kb: str = _setting("default", "the knowledge base used when none is named")

    @property
    def db_path(self) -> Path:
        return self.home / "domainsmith.db"

    @property
    def index_dir(self) -> Path:
        return self.home / "index"

    @property
    def uploads_dir(self) -> Path:
        return self.home / "uploads"

    @property
    def parse_limits(self) -> ParseLimits:
        return ParseLimits(
            max_file_bytes=int(self.max_file_mb * 1024 * 1024),
            max_pages=self.max_pdf_pages,
            ocr=self.ocr,
            ocr_languages=self.ocr_languages,
            ocr_page_seconds=self.ocr_page_seconds,
        )

    def ensure_home(self) -> Path:
        for folder in (self.home, self.index_dir, self.uploads_dir):
            folder.mkdir(parents=True, exist_ok=True)
        return self.home

    def replace(self, **changes: Any) -> Settings:
        return dataclasses.replace(self, **_coerce_all(type(self), changes, source="override"))

    @classmethod
    def describe(cls) -> list[tuple[str, Any, str]]:
        """(name, default, help) of every setting, in declaration order."""
        return [
            (f.name, f.default_factory() if f.default is dataclasses.MISSING else f.default, f.metadata["help"])
            for f in fields(cls)
        ]

    @classmethod
    def load(
        cls,
        home: Path | str | None = None,
        config_file: Path | str | None = None,
        env: Mapping[str, str] | None = None,
        **overrides: Any,
    ) -> Settings:
        """Build settings from defaults, the config file, the environment and explicit overrides."""
        env = os.environ if env is None else env
        values: dict[str, Any] = {}
        home_value = home or env.get(ENV_PREFIX + "HOME")
        resolved_home = Path(home_value).expanduser() if home_value else cls().home
        config_path = config_file or env.get(ENV_PREFIX + "CONFIG") or resolved_home / "config.toml"
        config_path = Path(config_path).expanduser()
        if config_path.is_file():
            values.update(_coerce_all(cls, _read_toml(config_path), source=str(config_path)))
        env_values = {
            f.name: env[ENV_PREFIX + f.name.upper()] for f in fields(cls) if ENV_PREFIX + f.name.upper() in env
        }
        values.update(_coerce_all(cls, env_values, source="environment"))
        values.update(_coerce_all(cls, {k: v for k, v in overrides.items() if v is not None}, source="override"))
        values["home"] = resolved_home  # the home chooses the config file, so only args/env set it
        settings = cls(**values)
        settings.validate()
        return settings

    def validate(self) -> None:
        if not self.embedder_path:
            from store import embedder_catalogue

            embedder_catalogue.get(self.embedder)  # ConfigError naming the bundled embedders
        if self.chunk_tokens < 16:
            raise ConfigError(f"chunk_tokens must be at least 16 (got {self.chunk_tokens})")
        if not 0 <= self.chunk_overlap < self.chunk_tokens // 2:
            raise ConfigError(f"chunk_overlap must be between 0 and half of chunk_tokens (got {self.chunk_overlap})")
        from store.diversity import Diversity

        try:
            Diversity(self.diversity, self.per_document_cap, self.mmr_lambda)
        except ValueError as exc:
            raise ConfigError(str(exc)) from None
        if self.neighbour_tokens < 0:
            raise ConfigError(f"neighbour_tokens must be 0 (off) or more (got {self.neighbour_tokens})")
        if self.source_tokens < 0:
            raise ConfigError(f"source_tokens must be 0 (whole passages) or more (got {self.source_tokens})")
        if self.max_file_mb <= 0:
            raise ConfigError("max_file_mb must be positive")
        from store.parsing.ocr import MODES

        if self.ocr not in MODES:
            raise ConfigError(f"ocr must be one of {', '.join(MODES)} (got {self.ocr!r})")
        if not re.fullmatch(r"[a-z_]+(\+[a-z_]+)*", self.ocr_languages) or self.ocr_page_seconds <= 0:
            raise ConfigError(
                f"ocr_languages must be Tesseract language codes joined by '+', such as eng+deu "
                f"(got {self.ocr_languages!r}), and ocr_page_seconds positive"
            )
        if self.chat_context < 512:
            raise ConfigError(f"chat_context must be at least 512 tokens (got {self.chat_context})")
        if self.remote_url is not None and not self.remote_url.startswith(("http://", "https://")):
            raise ConfigError(f"remote_url must start with http:// or https:// (got {self.remote_url!r})")
        if self.remote_timeout <= 0 or not 0 <= self.remote_retries <= 10:
            raise ConfigError("remote_timeout must be positive and remote_retries between 0 and 10")
        if not 1 <= self.port <= 65535:
            raise ConfigError(f"port must be between 1 and 65535 (got {self.port})")


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"cannot read the config file: {exc}", path=path) from exc
    return data


@functools.cache
def _field_types(cls: type[Settings]) -> dict[str, Any]:
    """Each field's real type (``int | None``, not the string the annotation is under PEP 563)."""
    hints = typing.get_type_hints(cls)
    return {f.name: hints[f.name] for f in fields(cls)}


def _coerce_all(cls: type[Settings], values: Mapping[str, Any], source: str) -> dict[str, Any]:
    """``values`` as their fields' types; ``ConfigError`` naming the key, the source and the type expected."""
    hints = _field_types(cls)
    out: dict[str, Any] = {}
    for name, value in values.items():
        if name not in hints:
            raise ConfigError(f"unknown setting {name!r} (from {source})")
        try:
            out[name] = coerce(value, hints[name])
        except ValueError:
            where = f"{source} {ENV_PREFIX}{name.upper()}" if source == "environment" else source
            raise ConfigError(f"setting {name} must be {expected(hints[name])}, got {value!r} (from {where})") from None
    return out
