"""Base models: which files are accepted, what they are, and their full-precision safetensors copy.

A base is a bundled model (``store.model_catalogue``: Qwen2.5-Coder-0.5B-Instruct by default), a GGUF
file or a local Hugging Face folder with safetensors weights.
Pickle checkpoints (``.bin``, ``.pt``, ``.ckpt``) are refused:
loading one runs arbitrary code. ``describe`` reads only headers (no torch), so the parent can
validate a job and estimate its memory before a worker starts; ``materialize`` (in the worker)
turns a GGUF into a dequantized safetensors folder once and caches it, because transformers
refuses a GGUF together with a 4-bit quantization config (../shared/STACK-NOTES.md).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import struct
from dataclasses import dataclass
from pathlib import Path

from store import model_catalogue
from store.errors import ModelNotFound
from store.model_catalogue import BundledModel, Progress
from store.settings import Settings

log = logging.getLogger(__name__)

BUNDLED_NAME = model_catalogue.SMOLLM2.key  # the tiny base the test suite pins
# Architectures transformers can dequantize from GGUF and train as causal LMs.
GGUF_ARCHITECTURES = {
    "llama",
    "mistral",
    "qwen2",
    "qwen3",
    "phi3",
    "gemma2",
    "gemma3",
    "falcon",
    "stablelm",
    "starcoder2",
    "nemotron",
    "gpt2",
    "bloom",
    "lfm2",
}
PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt", ".pkl")


@dataclass(frozen=True)
class BaseModel:
    path: Path
    kind: str  # "gguf" or "hf"
    architecture: str
    n_params: int
    hidden_size: int
    n_layers: int
    vocab_size: int

    @property
    def label(self) -> str:
        return self.path.name


def bundled_base(spec: str | None, settings: Settings | None = None) -> tuple[BundledModel | None, str | None]:
    """(the bundled model, else the path) a base names: ``spec``, else ``settings.train_base``, else the default.

    ``settings`` None: ``Settings.load()``.
    """
    if not spec or spec == "default":
        settings = settings or Settings.load()
        spec = settings.train_base
        if not spec or spec == "default":
            return model_catalogue.resolve(None, model_catalogue.BASE, settings.home), None
    return model_catalogue.find(spec), spec


def needs_assembly(spec: str | None, settings: Settings) -> BundledModel | None:
    """The bundled model that must be assembled before this base can be used, if any."""
    bundled, _ = bundled_base(spec, settings)
    return bundled if bundled is not None and model_catalogue.needs_assembly(bundled, settings.home) else None


def resolve_base(spec: str | None, settings: Settings | None = None, progress: Progress | None = None) -> Path:
    """The path of a base: a path, a bundled model key or name (``smollm2-135m``, ``qwen2.5-coder-0.5b-instruct``),
    or None (``bundled_base``); a split bundled model is assembled on first use (``progress(done, total)``).
    """
    bundled, given = bundled_base(spec, settings)
    if bundled is not None:
        home = (settings or Settings.load()).home if bundled.split else Path()
        path = model_catalogue.model_path(bundled, home, progress)
    else:
        assert given
        path = Path(given).expanduser()
    if not path.exists():
        raise ModelNotFound("no base model at this path (give a .gguf file or a Hugging Face folder)", path=path)
    return path.resolve()


def describe(spec: str | None, settings: Settings | None = None, progress: Progress | None = None) -> BaseModel:
    """Check a base model and read its size from headers only; raises ``ModelNotFound``."""
    path = resolve_base(spec, settings, progress)
    if path.is_dir():
        return _describe_folder(path)
    if path.suffix.lower() in PICKLE_SUFFIXES:
        raise ModelNotFound(
            "pickle checkpoints are refused (they can run code when loaded): use safetensors or GGUF", path=path
        )
    with path.open("rb") as f:
        magic = f.read(4)
    if magic != b"GGUF":
        raise ModelNotFound("not a GGUF file or a Hugging Face model folder", path=path)
    return _describe_gguf(path)


def _describe_gguf(path: Path) -> BaseModel:
    from gguf import GGUFReader

    try:
        reader = GGUFReader(str(path))
    except Exception as exc:  # the reader raises plain ValueErrors/struct errors on damaged files
        raise ModelNotFound(f"cannot read this GGUF file ({exc})", path=path) from exc

    def field(name: str, default=None):
        f = reader.fields.get(name)
        return default if f is None else f.contents()

    arch = str(field("general.architecture", ""))
    if arch not in GGUF_ARCHITECTURES:
        raise ModelNotFound(
            f"unsupported architecture {arch!r} for training from GGUF "
            f"(supported: {', '.join(sorted(GGUF_ARCHITECTURES))})",
            path=path,
        )
    tokens = reader.fields.get("tokenizer.ggml.tokens")
    n_params = sum(int(t.n_elements) for t in reader.tensors)
    return BaseModel(
        path=path,
        kind="gguf",
        architecture=arch,
        n_params=n_params,
        hidden_size=int(field(f"{arch}.embedding_length", 0)),
        n_layers=int(field(f"{arch}.block_count", 0)),
        vocab_size=len(tokens.data) if tokens is not None else 0,
    )


def _describe_folder(path: Path) -> BaseModel:
    config_path = path / "config.json"
    if not config_path.is_file():
        raise ModelNotFound("this folder is not a Hugging Face model (no config.json)", path=path)
    weights = sorted(path.glob("*.safetensors"))
    if not weights:
        pickles = [p.name for p in path.iterdir() if p.suffix.lower() in PICKLE_SUFFIXES]
        if pickles:
            raise ModelNotFound(
                f"only pickle weights here ({', '.join(pickles)}): pickle checkpoints are refused "
                "because loading them can run code; convert the model to safetensors",
                path=path,
            )
        raise ModelNotFound("no .safetensors weights in this folder", path=path)
    try:
        config = json.loads(config_path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ModelNotFound(f"cannot read config.json ({exc})", path=path) from exc
    text_config = config.get("text_config", config)
    n_params = sum(_safetensors_elements(w) for w in weights)
    return BaseModel(
        path=path,
        kind="hf",
        architecture=str(config.get("model_type", "")),
        n_params=n_params,
        hidden_size=int(text_config.get("hidden_size", 0)),
        n_layers=int(text_config.get("num_hidden_layers", 0)),
        vocab_size=int(text_config.get("vocab_size", 0)),
    )


def _safetensors_elements(path: Path) -> int:
    with path.open("rb") as f:
        (size,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(size))
    total = 0
    for name, info in header.items():
        if name == "__metadata__":
            continue
        count = 1
        for dim in info["shape"]:
            count *= dim
        total += count
    return total


# -- in the worker (torch) ---------------------------------------------------------------------


def cache_key(path: Path) -> str:
    stat = path.stat()
    return hashlib.sha256(f"{path}|{stat.st_size}|{int(stat.st_mtime)}".encode()).hexdigest()[:16]


def materialize(path: Path, cache_root: Path) -> Path:
    """A safetensors folder (weights, config, tokenizer, chat template) for the base at ``path``.

    Folders are used as they are. A GGUF is dequantized by transformers (about 20 s for 135M) and
    saved under ``cache_root/KEY`` once; later runs and exports reuse it.
    """
    if path.is_dir():
        return path
    target = cache_root / cache_key(path)
    if (target / ".complete").exists():
        return target
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    log.info("dequantizing %s into %s", path, target)
    tmp = cache_root / (target.name + f".tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        tokenizer = AutoTokenizer.from_pretrained(str(path.parent), gguf_file=path.name)
        model = AutoModelForCausalLM.from_pretrained(str(path.parent), gguf_file=path.name, dtype=torch.float32)
    except (ValueError, KeyError, OSError) as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        raise ModelNotFound(f"transformers cannot load this GGUF ({exc})", path=path) from exc
    # A GGUF-loaded model refuses save_pretrained while it remembers its quantizer.
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    model.save_pretrained(str(tmp))
    tokenizer.save_pretrained(str(tmp))
    (tmp / ".complete").write_text(str(path))
    if target.exists():
        shutil.rmtree(target)
    os.replace(tmp, target)
    return target
