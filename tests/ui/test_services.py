"""Services: the registry and chat sessions use the services' own database connection."""

from __future__ import annotations

from store import model_catalogue
from store.bundled import CHAT_MODEL_NAME
from store.registry import ModelRecord
from ui.services import Services


def bundled_choices(settings) -> list[str]:
    """The test pin (SmolLM2) first, then the other bundled chat models installed here."""
    others = [m.name for m in model_catalogue.choices(model_catalogue.CHAT, settings.home) if m.name != CHAT_MODEL_NAME]
    return [CHAT_MODEL_NAME] + others


def test_listing_models_on_a_fresh_home_creates_no_knowledge_base(settings):
    services = Services(settings)
    try:
        assert services.models() == bundled_choices(settings)
        assert services.sessions.sessions() == []
        assert services.knowledge_bases() == []
        assert not services._kbs and services._embedder is None  # no knowledge base, no embedder loaded
        assert not settings.index_dir.exists()
    finally:
        services.close()


def test_registry_and_sessions_share_one_connection_closed_with_the_services(settings, tmp_path):
    services = Services(settings)
    gguf = tmp_path / "expert.gguf"
    gguf.write_bytes(b"GGUF")
    services.registry.add(
        ModelRecord(name="expert", base="b", run_id="r", data_hash="h", file=str(gguf), size_bytes=4, quant="q4_k_m")
    )
    sid = services.sessions.create("Seals", model="expert")
    assert services.models() == bundled_choices(settings) + ["expert"]
    assert services.registry.db is services.sessions.db is services.db
    services.close()
    assert services._db is None
    reopened = Services(settings)
    try:
        assert [s.id for s in reopened.sessions.sessions()] == [sid]
        assert reopened.knowledge_bases() == []
    finally:
        reopened.close()
