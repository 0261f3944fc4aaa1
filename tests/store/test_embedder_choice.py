"""The ``embedder`` setting: which bundled embedder it picks, what it says when one is missing, and
``kb reindex`` moving a knowledge base from MiniLM (384 dimensions) to another bundled embedder."""

from __future__ import annotations

import json
import shutil
import zipfile
from dataclasses import replace
from pathlib import Path

import pytest

from store import embedder_catalogue as ec
from store.embedding import from_settings
from store.errors import ConfigError, EmbedderMismatch, ModelNotFound
from store.model_catalogue import Part
from store.settings import Settings
from tests.app_cli import cli
from tests.split_archives import split_archive, unique_prefix

ROOT = Path(__file__).resolve().parents[2]
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "vocab.txt", "special_tokens_map.json")


def tiny_sentence_transformer(dest: Path, minilm: Path, hidden: int = 32) -> Path:
    """A random one-layer BERT with MiniLM's tokenizer, as a sentence-transformers folder (safetensors)."""
    from transformers import BertConfig, BertModel

    config = BertConfig(
        vocab_size=30522, hidden_size=hidden, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64
    )
    BertModel(config).save_pretrained(dest)  # model.safetensors + config.json
    for name in (*TOKENIZER_FILES, "modules.json", "sentence_bert_config.json"):
        shutil.copy(minilm / name, dest / name)
    (dest / "1_Pooling").mkdir()
    pooling = json.loads((minilm / "1_Pooling" / "config.json").read_text())
    (dest / "1_Pooling" / "config.json").write_text(json.dumps({**pooling, "word_embedding_dimension": hidden}))
    return dest


@pytest.fixture
def tiny_bundled(tmp_path, monkeypatch, embedder):
    """A bundled embedder "tiny-embedder" (32 dimensions) shipped as a split zip, like all-mpnet-base-v2."""
    folder = tiny_sentence_transformer(tmp_path / "build" / "tiny-embedder", embedder.path)
    archive = tmp_path / "tiny.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
        for path in sorted(folder.rglob("*")):
            zf.write(path, path.relative_to(folder.parent).as_posix())
    site = tmp_path / "site"
    monkeypatch.syspath_prepend(str(site))
    tiny = ec.BundledEmbedder(
        name="tiny-embedder",
        dim=32,
        max_tokens=256,
        cost="test only",
        licence="Apache-2.0",
        archive=split_archive(site, unique_prefix(tmp_path), archive.read_bytes()),
        archive_root="tiny-embedder",
    )
    monkeypatch.setattr(ec, "EMBEDDERS", (*ec.EMBEDDERS, tiny))
    return tiny


def test_catalogue_pins_mpnet_and_its_requirements_file():
    assert ec.DEFAULT == "all-MiniLM-L6-v2" == Settings().embedder
    archive = ec.MPNET.archive
    assert archive is not None and archive.size == 404_421_332 and archive.suffix == ".zip"
    assert archive.sha256 == "eb8d12eec2a0b6d694094f5085192a5eae2f244f90b90d8a11015498c8e9c0da"
    assert [p.file for p in archive.parts] == [f"input/all-mpnet-base-v2.zip.00{n}" for n in range(1, 6)]
    text = (ROOT / ec.REQUIREMENTS_FILE).read_text()
    for dist in archive.distributions:
        assert f"{dist}==0.0.1 --hash=sha256:" in text
    assert "embedder-mpnet:" in (ROOT / "Makefile").read_text()
    assert "all-mpnet-base-v2" not in (ROOT / "requirements-models.txt").read_text()  # `make run` stays lean


def test_the_setting_names_a_bundled_embedder(domainsmith_home, monkeypatch):
    assert Settings.load().embedder == "all-MiniLM-L6-v2"
    monkeypatch.setenv("DOMAINSMITH_EMBEDDER", "mpnet")
    assert ec.get(Settings.load().embedder) is ec.MPNET
    monkeypatch.setenv("DOMAINSMITH_EMBEDDER", "bert-large")
    with pytest.raises(ConfigError, match="all-MiniLM-L6-v2, all-mpnet-base-v2.*embedder_path"):
        Settings.load()
    monkeypatch.setenv("DOMAINSMITH_EMBEDDER_PATH", "/any/folder")  # a folder wins: the name is not checked
    assert Settings.load().embedder_path == "/any/folder"


def test_embedder_path_wins_over_the_bundled_choice(settings, embedder):
    chosen = from_settings(settings.replace(embedder="all-mpnet-base-v2", embedder_path=str(embedder.path)))
    assert chosen.path == embedder.path and chosen.name == "model"  # nothing extracted
    default = from_settings(settings)
    assert default.name == "all-MiniLM-L6-v2" and default.path == embedder.path and default.dim == 384


def test_an_embedder_not_installed_names_its_packages_and_the_make_target(settings, monkeypatch):
    archive = ec.MPNET.archive
    absent = replace(archive, parts=(Part("fake-mpnet-part-001", "fake_mpnet_part_001_nowhere", "input/x.zip.001"),))
    monkeypatch.setattr(ec, "MPNET", replace(ec.MPNET, archive=absent))
    monkeypatch.setattr(ec, "EMBEDDERS", (ec.MINILM, ec.MPNET))
    assert ec.state(ec.MPNET, settings.home) == "not installed"
    with pytest.raises(ModelNotFound, match="fake-mpnet-part-001.*make embedder-mpnet.*all-MiniLM-L6-v2"):
        from_settings(settings.replace(embedder="all-mpnet-base-v2"))


def test_kb_reindex_switches_to_the_configured_bundled_embedder(open_kb, settings, tmp_path, tiny_bundled, monkeypatch):
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "notes.txt").write_text("The flux capacitor of unit 7 needs 1.21 gigawatts.\n\nSpare fuses: cabinet B.\n")
    kb = open_kb()  # built with MiniLM
    list(kb.add([docs / "notes.txt"]))
    kb.close()
    assert ec.state(tiny_bundled, settings.home) == "not yet"

    monkeypatch.setenv("DOMAINSMITH_EMBEDDER", "tiny-embedder")
    searched = cli(settings.home, "kb", "search", "flux capacitor", "--kb", "test")
    assert searched.code != 0 and "all-MiniLM-L6-v2 (384 dimensions)" in searched.err
    assert "tiny-embedder (32)" in searched.err and "kb reindex --kb test" in searched.err
    assert ec.state(tiny_bundled, settings.home) == "extracted"  # extracted on first use

    reindexed = cli(settings.home, "kb", "reindex", "--kb", "test")
    assert reindexed.code == 0, reindexed.err
    assert "with tiny-embedder; vector index rebuilt" in reindexed.out
    switched = open_kb(settings=Settings.load(), embedder=from_settings(Settings.load()))
    assert switched.stats()["embedder"] == "tiny-embedder" and switched.dim == 32 and switched.index.dim == 32
    switched.check()
    assert switched.search("flux capacitor", k=1, mode="vector")[0].source == "notes.txt"

    monkeypatch.delenv("DOMAINSMITH_EMBEDDER")  # back to MiniLM: refused until re-indexed again
    with pytest.raises(EmbedderMismatch, match="built with the embedder tiny-embedder"):
        open_kb()


def test_models_list_shows_the_embedders_and_the_configured_one(domainsmith_home, monkeypatch):
    monkeypatch.setenv("DOMAINSMITH_EMBEDDER", "all-mpnet-base-v2")
    data = json.loads(cli(domainsmith_home, "models", "list", "--json").out)
    embedders = {e["name"]: e for e in data["embedders"]}
    assert embedders["all-MiniLM-L6-v2"]["state"] == "installed" and not embedders["all-MiniLM-L6-v2"]["configured"]
    assert embedders["all-mpnet-base-v2"]["configured"] and embedders["all-mpnet-base-v2"]["dim"] == 768
    assert embedders["all-mpnet-base-v2"]["state"] in ("not yet", "not installed", "extracted")
    assert "make embedder-mpnet" in embedders["all-mpnet-base-v2"]["install"]
    text = cli(domainsmith_home, "models", "list").out
    assert "all-mpnet-base-v2 (configured)" in text and "768" in text
