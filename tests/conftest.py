"""Shared fixtures: every test gets its own DOMAINSMITH_HOME; the embedder loads once per session."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
# Chat's model and "Train adapter"'s base for every test (tests of the defaults clear these).
TINY_MODEL_PIN = {"DOMAINSMITH_CHAT_MODEL": "SmolLM2-135M-Instruct", "DOMAINSMITH_TRAIN_BASE": "smollm2-135m"}


@pytest.fixture(autouse=True)
def domainsmith_home(tmp_path, monkeypatch) -> Path:
    """Redirect all data to a fresh folder; no test ever touches the user's home."""
    home = tmp_path / "home"
    monkeypatch.setenv("DOMAINSMITH_HOME", str(home))
    for name in list(os.environ):
        if name.startswith("DOMAINSMITH_") and name != "DOMAINSMITH_HOME":
            monkeypatch.delenv(name)
    # The suite runs on the tiny SmolLM2-135M (never assembles a 1 GB Qwen GGUF); child processes inherit it.
    for name, value in TINY_MODEL_PIN.items():
        monkeypatch.setenv(name, value)
    return home


@pytest.fixture(autouse=True)
def no_large_model_assembly(monkeypatch):
    """A test that would assemble a real Qwen GGUF (1 GB) in this process fails instead: pin SmolLM2."""
    from store import model_assembly, model_catalogue

    real = model_assembly._assemble

    def guarded(model, folder, progress):
        if not model_catalogue.missing_distributions(model):
            assert model.size < 200 * 2**20, f"the test suite must not assemble {model.name}: pin SmolLM2 (conftest)"
        return real(model, folder, progress)

    monkeypatch.setattr(model_assembly, "_assemble", guarded)


@pytest.fixture(scope="session")
def embedder():
    from store.embedding import Embedder

    return Embedder()


@pytest.fixture(scope="session")
def tiny_llama(tmp_path_factory) -> Path:
    """A tiny random Llama with SmolLM2's tokenizer (``tests/tiny_models.py``), built once per session.

    Read-only: runs train adapters on it, merges write elsewhere.
    """
    from tests import tiny_models

    root = tmp_path_factory.mktemp("tiny-llama")
    return tiny_models.tiny_llama(root / "llama", tiny_models.smollm_tokenizer(root / "tokenizer"))


@pytest.fixture
def settings(domainsmith_home):
    from store.settings import Settings

    return Settings.load()


@pytest.fixture
def open_kb(settings, embedder):
    """Open knowledge bases by name, closed at the end of the test."""
    from store.knowledge_base import KnowledgeBase

    opened = []

    def _open(name: str = "test", **kwargs):
        kb = KnowledgeBase.open(kwargs.pop("settings", settings), name, kwargs.pop("embedder", embedder), **kwargs)
        opened.append(kb)
        return kb

    yield _open
    for kb in opened:
        kb.close()


def run_app(*args: str, env: dict | None = None, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """Run ``python app.py ARGS`` as a user would, in a child process."""
    full_env = {**os.environ, **(env or {})}
    return subprocess.run(
        [sys.executable, str(ROOT / "app.py"), *args],
        cwd=ROOT,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
