"""The llama.cpp runtime: one ``llama_cpp.Llama`` loaded at a time, reused, streamed from.

Chat models are GGUF files only. The chat template comes from the GGUF's metadata (llama-cpp-
python applies ``tokenizer.chat_template``). llama-cpp-python keeps the tokens it evaluated last
and re-evaluates only what differs, so the fixed system prompt that starts every conversation
is evaluated once and reused by the questions that follow.

Generation threads are chosen per answer (``chat_threads``): with the setting at 0, one per core
that the app's own heavy work (``store.workload``: an ingestion, a training, an export) leaves
free. llama.cpp threads wait for each other at every barrier, once per generated token: on 2
cores with one taken by another job, 2 threads generated 24 tokens/s and 1 thread 38 (SmolLM2).
"""

from __future__ import annotations

import contextlib
import gc
import logging
import os
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from store.errors import ModelNotFound
from store.workload import PROCESS, Workload

log = logging.getLogger(__name__)

_GGUF_MAGIC = b"GGUF"
# llama-cpp-python's name for the chat template a GGUF carries in its metadata.
GGUF_TEMPLATE = "chat_template.default"


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


def choose_threads(requested: int, cpus: int, busy: Sequence[str]) -> int:
    """llama.cpp threads for one answer: ``requested`` when set, else one per core left free.

    Each running job of this app takes one core away (1 thread on 2 cores during an ingestion).
    Other chats do not count: answers on one runtime are serialised by its lock.
    """
    if requested > 0:
        return requested
    return max(1, cpus - len(busy))


def cpu_count() -> int:
    """The cores this process may run on (its affinity mask where the OS has one)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


class LlamaRuntime:
    """Owns the loaded model. Switching models frees the previous one first.

    ``threads`` 0 (auto) chooses the threads of each answer from ``workload`` (the process's own
    record unless given); any other value is used for every answer.
    """

    def __init__(self, context: int = 4096, threads: int = 0, workload: Workload | None = None):
        self.context = context
        self.requested_threads = threads
        self.cpus = cpu_count()
        self.threads = threads or self.cpus  # at load; each answer then chooses again (last_threads)
        self.last_threads = self.threads
        self.workload = workload or PROCESS
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
        prefix: str = "",
    ) -> Iterator[str]:
        """Yield the assistant's reply piece by piece (the lock is held until it ends).

        ``model`` makes sure that model answers even when another request switched models between
        this caller's ``load`` and now (two chats with different models on one runtime). ``prefix``
        begins the assistant's turn (the model goes on from it; it is not yielded): the prompt is
        the chat template's, token for token, so the evaluated messages are reused and only the
        prefix and the reply cost time (``can_continue`` says whether the loaded model allows it).
        """
        with self._lock:
            if model is not None:
                self.load(model.path, model.name)
            llama = self._require()
            self._set_threads(llama, force=True)
            sampling = {
                "max_tokens": max_tokens,
                "temperature": temperature,
                "top_k": 1 if temperature == 0 else 40,
                "seed": seed,
                "repeat_penalty": 1.1,
            }
            if prefix:
                tokens, stop = self._continuation(llama, messages, prefix)
                stream = llama.create_completion(tokens, stream=True, stop=stop, **sampling)
            else:
                stream = llama.create_chat_completion(messages=list(messages), stream=True, **sampling)
            # On auto, jobs of this process see the answer and leave it a core (store.workload).
            with self.workload.answering() if self.requested_threads <= 0 else contextlib.nullcontext():
                for chunk in stream:
                    self._set_threads(llama)  # a job started or ended mid-answer: the next token follows
                    choice = chunk["choices"][0]
                    piece = choice["text"] if prefix else choice["delta"].get("content")
                    if piece:
                        yield piece

    def can_continue(self, model: LoadedModel | None = None) -> bool:
        """True when ``stream_chat(prefix=...)`` works for the loaded model (its GGUF has a chat template)."""
        with self._lock:
            if model is not None:
                self.load(model.path, model.name)
            llama = self._require()
            return getattr(llama, "chat_format", None) == GGUF_TEMPLATE and bool(
                (llama.metadata or {}).get("tokenizer.chat_template")
            )

    def _continuation(self, llama, messages: Sequence[dict], prefix: str) -> tuple[list[int], list[str]]:
        """The prompt's tokens with the assistant's turn begun by ``prefix``, and the stop strings.

        Formatted exactly as ``create_chat_completion`` formats a GGUF's own template (same
        formatter, same tokenisation), so the tokens before the prefix match the cached ones.
        """
        if not self.can_continue():
            raise ModelNotFound(f"{self._loaded.name if self._loaded else 'the model'} cannot continue a reply")
        from llama_cpp.llama_chat_format import Jinja2ChatFormatter

        eos = llama.token_eos()
        bos = llama.token_bos()
        formatter = Jinja2ChatFormatter(
            template=llama.metadata["tokenizer.chat_template"],
            eos_token=llama._model.token_get_text(eos) if eos != -1 else "",
            bos_token=llama._model.token_get_text(bos) if bos != -1 else "",
            stop_token_ids=[eos],
        )
        result = formatter(messages=list(messages))
        tokens = llama.tokenize(result.prompt.encode("utf-8"), add_bos=not result.added_special, special=True)
        tokens += llama.tokenize(prefix.encode("utf-8"), add_bos=False, special=False)
        stop = result.stop if isinstance(result.stop, list) else [result.stop] if result.stop else []
        return tokens, stop

    def _set_threads(self, llama, force: bool = False) -> None:
        """Give llama.cpp's generation the threads the free cores allow now; prompt eval keeps every core.

        Prompt eval does much more work between two barriers than a generated token: during an
        ingestion (torch embedding on both cores) a 400-token prompt was evaluated faster on 2 threads
        than on 1 (SmolLM2 3.7 s against 4.4 s, Qwen2.5 0.5B 3.8 against 4.7), while generation was
        as fast on 1 thread as on 2, and faster on 1 beside a single-threaded job (38 against 24
        tokens/s). Only on auto; ``force`` sets them even when unchanged (after a model switch).
        """
        if self.requested_threads > 0:
            self.last_threads = self.requested_threads  # fixed at load: n_threads as set, batch as loaded
            return
        busy = self.workload.active()
        threads = choose_threads(0, self.cpus, busy)
        if force or threads != self.last_threads:
            llama._ctx.set_n_threads(threads, self.cpus)
            llama.n_threads, llama.n_threads_batch = threads, self.cpus
            log.debug("chat generates on %d of %d threads (busy: %s)", threads, self.cpus, ", ".join(busy) or "nothing")
        self.last_threads = threads

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
