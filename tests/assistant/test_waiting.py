"""A question to a knowledge base that documents are being added to waits for them (CLI, API, UI alike)."""

from __future__ import annotations

import pytest

from assistant.assistant import AskOptions
from assistant.events import Done, Waiting
from store.errors import KnowledgeBaseError
from store.indexing import INDEXING
from tests import factories as f

SMOL = AskOptions(model="SmolLM2-135M-Instruct")
QUESTION = "When should the impeller wear ring be replaced?"


@pytest.fixture
def services(settings, embedder):
    from ui.services import Services

    s = Services(settings.replace(max_tokens=48), _embedder=embedder)
    yield s
    s.close()


def test_the_answer_waits_for_the_batch_then_answers_from_it(services, tmp_path):
    adding = services.kb().add([f.make_markdown(tmp_path / "pump-handbook.md")])
    next(adding)  # committed, but the batch is open until the generator ends
    events = services.assistant.ask(QUESTION, options=SMOL)
    first = next(events)
    assert first == Waiting("Waiting for pump-handbook.md to finish indexing (1 of 1) …")
    list(adding)
    done = [e for e in events if isinstance(e, Done)]
    assert [s.document for s in done[0].answer.sources][0] == "pump-handbook.md"


def test_a_question_to_another_knowledge_base_does_not_wait(services, tmp_path):
    list(services.kb("manuals").add([f.make_markdown(tmp_path / "pump-handbook.md")]))
    with INDEXING.batch(services.kb().indexing_key, ["slow.pdf"]):
        events = list(services.assistant.ask(QUESTION, options=AskOptions(kb="manuals", model=SMOL.model)))
    assert not any(isinstance(e, Waiting) for e in events) and isinstance(events[-1], Done)


def test_a_batch_that_never_ends_is_given_up_with_a_clear_error(settings, embedder):
    from ui.services import Services

    services = Services(settings.replace(indexing_wait_seconds=0.2), _embedder=embedder)
    try:
        stuck = INDEXING.batch(services.kb().indexing_key, ["stuck.pdf"])
        with stuck, pytest.raises(KnowledgeBaseError, match=r"still indexing stuck.pdf \(1 of 1\) after 0.2 seconds"):
            list(services.assistant.ask(QUESTION, options=SMOL))
    finally:
        services.close()
