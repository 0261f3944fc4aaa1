"""A split bundled model used end to end: SmolLM2's GGUF cut into three fake part packages, assembled on first use.

The real Qwen models are assembled once outside the suite (1.6 GB); here the same path runs on 98 MB.
"""

from __future__ import annotations

import hashlib
from dataclasses import replace

import pytest

from store import model_catalogue as mc
from tests.app_cli import cli


@pytest.fixture(scope="module")
def split_site(tmp_path_factory):
    """Three part packages holding SmolLM2's GGUF as raw slices, and the whole file's size and sha256."""
    from store.bundled import chat_model_path

    data = chat_model_path().read_bytes()
    site = tmp_path_factory.mktemp("split-site")
    third = len(data) // 3 + 1
    for n in range(1, 4):
        folder = site / f"fake_split_smol_part{n}" / "data"
        folder.mkdir(parents=True)
        (folder.parent / "__init__.py").write_text("")
        (folder / f"part{n:02d}.bin").write_bytes(data[(n - 1) * third : n * third])
    return site, len(data), hashlib.sha256(data).hexdigest()


@pytest.fixture
def split_model(split_site, monkeypatch):
    site, size, sha256 = split_site
    monkeypatch.syspath_prepend(str(site))
    model = replace(
        mc.QWEN_05B,
        key="fake-split-smol",
        name="Fake-Split-Smol",
        parts=mc.split_parts("fake-split-smol-part", "fake_split_smol_part", 3),
        size=size,
        sha256=sha256,
    )
    monkeypatch.setattr(mc, "CATALOGUE", (*mc.CATALOGUE, model))
    return model


def test_ask_assembles_a_split_model_on_first_use_then_reuses_it(domainsmith_home, split_model, monkeypatch):
    monkeypatch.setenv("DOMAINSMITH_MAX_TOKENS", "8")  # loading and answering is what counts here, not length
    monkeypatch.setenv("DOMAINSMITH_CHAT_THREADS", "1")
    first = cli(domainsmith_home, "ask", "What is a pump?", "--no-kb", "--model", "fake-split-smol", "--json")
    assert first.code == 0, first.err
    assert "Fake-Split-Smol: first use, assembling and verifying" in first.err
    assembled = mc.bundled_dir(domainsmith_home) / "fake-split-smol.gguf"
    assert assembled.stat().st_size == split_model.size
    assert not mc.needs_assembly(mc.get("Fake-Split-Smol"), domainsmith_home)  # later uses trust the sidecar
    listed = cli(domainsmith_home, "models", "list")
    assert any(line.startswith("fake-split-smol") and "assembled" in line for line in listed.out.splitlines())


def test_train_base_accepts_a_bundled_key(settings, split_model):
    from adapters.base_model import describe, needs_assembly

    assert needs_assembly("fake-split-smol", settings) is split_model
    info = describe("fake-split-smol", settings)
    assert info.architecture == "llama" and info.path == mc.bundled_dir(settings.home) / "fake-split-smol.gguf"
    assert needs_assembly("fake-split-smol", settings) is None


def test_chat_tab_reports_assembly_before_the_first_answer(settings, embedder, split_model, monkeypatch):
    from assistant.events import Answer, Done
    from ui import chat_tab
    from ui.services import Services

    services = Services(settings, _embedder=embedder)
    seen = []

    def fake_ask(question, history, options):
        assert (mc.bundled_dir(settings.home) / "fake-split-smol.gguf").is_file()  # assembled before asking
        yield Done(Answer(text="ok", citations=[], abstained=False, model=options.model))

    try:
        monkeypatch.setattr(services.assistant, "ask", fake_ask)
        updates = list(
            chat_tab.respond(
                services, "Hi", [], "default", "Fake-Split-Smol", False, None, lambda d, t: seen.append((d, t))
            )
        )
    finally:
        services.close()
    assert "Preparing Fake-Split-Smol" in updates[0][1]
    assert seen[-1] == (split_model.size, split_model.size)
    assert updates[-1][0][-1]["content"] == "ok"
