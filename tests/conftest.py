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


@pytest.fixture(autouse=True)
def domainsmith_home(tmp_path, monkeypatch) -> Path:
    """Redirect all data to a fresh folder; no test ever touches the user's home."""
    home = tmp_path / "home"
    monkeypatch.setenv("DOMAINSMITH_HOME", str(home))
    for name in list(os.environ):
        if name.startswith("DOMAINSMITH_") and name != "DOMAINSMITH_HOME":
            monkeypatch.delenv(name)
    return home


@pytest.fixture(scope="session")
def embedder():
    from store.embedding import Embedder

    return Embedder()


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
