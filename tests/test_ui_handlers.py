"""The UI handlers are plain functions over Services: tested here without a browser."""

from __future__ import annotations

import pytest

from tests import factories as f
from ui import chat_tab, knowledge_tab


@pytest.fixture
def services(settings, embedder):
    from ui.services import Services

    s = Services(settings.replace(max_tokens=64), _embedder=embedder)
    yield s
    s.close()


def test_upload_search_remove(services, tmp_path):
    pdf = f.make_pdf(tmp_path / "turbine.pdf", pages=3)
    bad = f.make_corrupt_pdf(tmp_path / "broken.pdf")
    updates = list(knowledge_tab.upload(services, "default", [str(pdf), str(bad)]))
    status, table = updates[-1]
    assert "1 added" in status and "broken.pdf" in status and "❌" in status
    assert [row[1] for row in table] == ["turbine.pdf"]
    hits = knowledge_tab.search(services, "default", f.page_sentence(2), "hybrid")
    assert hits[0][1] == "turbine.pdf" and hits[0][2] == 2
    message, table = knowledge_tab.remove(services, "default", table[0][0])
    assert "Removed turbine.pdf" in message and table == []


def test_chat_streams_then_shows_sources_and_persists(services, tmp_path):
    list(services.kb().add([f.make_pdf(tmp_path / "turbine.pdf", pages=4)]))
    updates = list(chat_tab.respond(services, "What trips the journal bearing alarm?", [], "default",
                                    "SmolLM2-135M-Instruct", True, None))
    assert len(updates) >= 3, "the answer is streamed"
    history, sources, session_id = updates[-1]
    assert history[-2] == {"role": "user", "content": "What trips the journal bearing alarm?"}
    assert "turbine.pdf" in sources and "page 2" in sources and "<details>" in sources
    choices = chat_tab.session_choices(services)
    assert choices[0][1] == session_id
    reopened, _, sid = chat_tab.reopen(services, session_id)
    assert sid == session_id and [m["role"] for m in reopened] == ["user", "assistant"]


def test_not_in_the_documents_is_shown_distinctly(services, tmp_path):
    list(services.kb().add([f.make_pdf(tmp_path / "turbine.pdf", pages=2)]))
    *_, (history, sources, _) = chat_tab.respond(services, "Who won the 1998 football world cup?", [], "default",
                                                 "SmolLM2-135M-Instruct", True, None)
    assert sources.startswith(chat_tab.NOT_IN_DOCUMENTS)
