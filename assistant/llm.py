"""The llama.cpp runtime: one ``llama_cpp.Llama`` loaded at a time, reused, streamed from.

Chat models are GGUF files only. The chat template comes from the GGUF's metadata (llama-cpp-
python applies ``tokenizer.chat_template``). llama-cpp-python keeps the tokens it evaluated last
and re-evaluates only what differs, so the fixed system prompt that starts every conversation
is evaluated once and reused by the questions that follow.
"""

from __future__ import annotations

import gc
import logging
import os
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from store.errors import ModelNotFound

log = logging.getLogger(__name__)

_GGUF_MAGIC = b"GGUF"


def check_gguf(path: Path) -> Path:
    """Refuse anything that is not a readable GGUF file, saying what it is instead."""
    if not path.exists():
        raise ModelNotFound(f"model file not found: {path}")
    if path.is_dir():
        raise ModelNotFound(f"{path} is a folder; chat needs a .gguf file (export one with `python app.py export`)")
    with open(path, "rb") as f:
        head = f.read(8)
    if head[:4] == _GGUF_MAGIC:
        return path
    suffix = path.suffix.lower()
    if suffix == ".safetensors":
        what = "a safetensors checkpoint"
    elif head[:2] == b"PK" or head[:1] == b"\x80" or suffix in (".bin", ".pt", ".pth", ".pkl", ".ckpt"):
        what = "a pickle-based checkpoint (refused: loading it could run code)"
    else:
        what = "not a GGUF file"
    raise ModelNotFound(f"{path.name} is {what}; chat models must be GGUF files")


@dataclass(frozen=True)
class LoadedModel:
    name: str
    path: Path
    context: int


class LlamaRuntime:
    """Owns the loaded model. Switching models frees the previous one first."""

    def __init__(self, context: int = 4096, threads: int = 0):
        self.context = context
        self.threads = threads or max(1, os.cpu_count() or 1)
        self._llama = None
        self._loaded: LoadedModel | None = None
        self._lock = threading.RLock()

    @property
    def loaded(self) -> LoadedModel | None:
        return self._loaded

    def load(self, path: Path, name: str | None = None) -> LoadedModel:
        path = check_gguf(Path(path).expanduser().resolve())
        with self._lock:
            if self._loaded and self._loaded.path == path:
                return self._loaded
            self.unload()
            from llama_cpp import Llama

            log.info("loading chat model %s", path)
            try:
                # Read into memory, not mmap'ed: a model file overwritten in place while loaded (cp over
                # it) would otherwise kill the whole app with SIGBUS on the next token.
                llama = Llama(
                    model_path=str(path), n_ctx=self.context, n_threads=self.threads, verbose=False, use_mmap=False
                )
                trained = _trained_context(llama)
                if trained and trained < self.context:  # never ask for more context than it was trained on
                    llama.close()
                    llama = Llama(
                        model_path=str(path), n_ctx=trained, n_threads=self.threads, verbose=False, use_mmap=False
                    )
            except (ValueError, RuntimeError) as exc:
                raise ModelNotFound(f"llama.cpp could not load {path.name}: {exc}") from exc
            self._llama = llama
            n_ctx = llama.n_ctx()
            self._loaded = LoadedModel(name or path.stem, path, n_ctx)
            return self._loaded

    def unload(self) -> None:
        with self._lock:
            if self._llama is not None:
                self._llama.close()
                self._llama = None
                self._loaded = None
                gc.collect()

    def count_tokens(self, text: str) -> int:
        with self._lock:
            self._require()
            return len(self._llama.tokenize(text.encode("utf-8"), add_bos=False, special=True))

    def stream_chat(
        self,
        messages: Sequence[dict],
        *,
        max_tokens: int,
        temperature: float = 0.0,
        seed: int = 0,
        model: LoadedModel | None = None,
    ) -> Iterator[str]:
        """Yield the assistant's reply piece by piece (the lock is held until it ends).

        ``model`` makes sure that model answers even when another request switched models between
        this caller's ``load`` and now (two chats with different models on one runtime).
        """
        with self._lock:
            if model is not None:
                self.load(model.path, model.name)
            llama = self._require()
            stream = llama.create_chat_completion(
                messages=list(messages),
                stream=True,
                max_tokens=max_tokens,
                temperature=temperature,
                top_k=1 if temperature == 0 else 40,
                seed=seed,
                repeat_penalty=1.1,
            )
            for chunk in stream:
                piece = chunk["choices"][0]["delta"].get("content")
                if piece:
                    yield piece

    def _require(self):
        if self._llama is None:
            raise ModelNotFound("no chat model is loaded")
        return self._llama


def _trained_context(llama) -> int | None:
    """``<arch>.context_length`` from the loaded model's GGUF metadata."""
    metadata = getattr(llama, "metadata", None) or {}
    value = metadata.get(f"{metadata.get('general.architecture', '')}.context_length")
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None
