"""What a new user meets first (issue 17): asking while documents index, errors inside the
conversation, and an empty state that says what to do. Handlers are called as the page calls them."""

from __future__ import annotations

import pytest

from tests import factories as f
from ui import chat_tab, knowledge_tab

SMOL = "SmolLM2-135M-Instruct"
QUESTION = "When should the impeller wear ring be replaced?"


@pytest.fixture
def services(settings, embedder):
    from ui.services import Services

    s = Services(settings.replace(max_tokens=64), _embedder=embedder)
    yield s
    s.close()


def test_a_question_asked_while_its_document_indexes_waits_then_cites_it(services, tmp_path):
    handbook = f.make_markdown(tmp_path / "pump-handbook.md")
    adding = knowledge_tab.upload(services, "default", [str(handbook)])
    next(adding)  # the handbook is being added: its batch stays open until the upload handler ends
    assert not chat_tab.needs_documents(services, "default")

    updates = chat_tab.respond(services, QUESTION, [], "default", SMOL, True, None)
    history, _, _ = next(updates)
    assert history[-1]["role"] == "assistant"
    assert "Waiting for pump-handbook.md to finish indexing (1 of 1)" in history[-1]["content"]
    status, table = list(adding)[-1]  # the upload finishes
    assert "1 added" in status and table[0][1] == "pump-handbook.md"

    *_, (history, sources, session_id) = updates
    assert "Waiting" not in history[-1]["content"] and "could not answer" not in history[-1]["content"]
    assert "pump-handbook.md" in sources and session_id is not None


def test_an_empty_knowledge_base_is_said_in_the_conversation_with_where_to_add_documents(services):
    assert chat_tab.needs_documents(services, "default")
    *_, (history, _, session_id) = chat_tab.respond(services, QUESTION, [], "default", SMOL, True, None)
    assert history[-2] == {"role": "user", "content": QUESTION}
    reply = history[-1]["content"]
    assert reply.startswith("⚠️ **I could not answer.** The knowledge base 'default' has no documents yet")
    assert "Knowledge Base tab" in reply and session_id is None  # a failed turn is not saved


def test_an_empty_question_is_answered_in_the_conversation(services):
    *_, (history, _, _) = chat_tab.respond(services, "   ", [], "default", SMOL, True, None)
    assert history == [
        {"role": "assistant", "content": "⚠️ **I could not answer.** The question is empty: type a question first."}
    ]


def test_a_missing_model_file_is_said_in_the_conversation_with_what_to_do(services, tmp_path):
    list(services.kb().add([f.make_markdown(tmp_path / "pump-handbook.md")]))
    missing = tmp_path / "gone.gguf"
    *_, (history, _, _) = chat_tab.respond(services, QUESTION, [], "default", str(missing), True, None)
    reply = history[-1]["content"]
    assert "gone.gguf" in reply and "Choose another model in the Model box" in reply


def test_compare_shows_a_failure_on_the_side_that_failed(services, tmp_path):
    list(services.kb().add([f.make_markdown(tmp_path / "pump-handbook.md")]))
    *_, (a, panel_a, b, _) = chat_tab.compare(
        services, QUESTION, [], [], "default", (SMOL, str(tmp_path / "gone.gguf")), True
    )
    assert "could not answer" not in a[-1]["content"] and SMOL in panel_a
    assert b[-1]["content"].startswith("⚠️ **I could not answer.**") and "gone.gguf" in b[-1]["content"]


def test_an_unexpected_failure_is_said_in_plain_words_not_as_a_traceback(services, monkeypatch, tmp_path):
    list(services.kb().add([f.make_markdown(tmp_path / "pump-handbook.md")]))

    def broken(*args, **kwargs):
        raise OSError("disk unplugged")

    monkeypatch.setattr(type(services.assistant), "ask", broken)
    *_, (history, _, _) = chat_tab.respond(services, QUESTION, [], "default", SMOL, True, None)
    reply = history[-1]["content"]
    assert "Something went wrong (OSError: disk unplugged)" in reply and "log" in reply


def test_the_knowledge_base_tab_says_what_it_takes_before_any_upload(services):
    note = knowledge_tab.formats_note(services)
    for fmt in (".pdf", ".docx", ".md", ".html", ".txt"):
        assert fmt in note
    assert f"{services.settings.max_file_mb:g} MB per file" in note


def test_the_start_here_panel_shows_until_the_knowledge_base_has_documents(services, tmp_path):
    assert chat_tab.needs_documents(services, "default")
    list(services.kb().add([f.make_markdown(tmp_path / "pump-handbook.md")]))
    assert not chat_tab.needs_documents(services, "default")
    assert chat_tab.needs_documents(services, "another")


def test_a_citation_with_an_invented_claim_is_flagged_with_what_the_passage_does_not_say():
    from assistant.events import Answer, Citation, Source

    passage = "Prime the pump with about 2 liters of water."
    source = Source(1, "abc123def456:0", "pump-handbook.md", "pump-handbook.md", None, "Priming", passage)
    cited = Citation(1, "pump-handbook.md", "pump-handbook.md", None, "Priming", passage, False, 0.8, ("10 liters",))
    shown = chat_tab.sources_markdown(Answer("Prime it with 10 liters [1].", False, [cited], [source]), "default")
    assert "❗ *not supported: this passage does not say “10 liters”*" in shown
    assert "/passage/default/abc123def456%3A0" in shown
