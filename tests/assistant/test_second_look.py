"""A second look: the model refused though retrieval scored a passage high, so its reply is begun for it.

Real llama.cpp with the bundled SmolLM2-135M GGUF: the begun reply reuses the evaluated messages
token for token, the assistant asks again only above its threshold and only once, and what the
second reply may replace is a refusal, with the model's own supported answer, never with a quote.
"""

from __future__ import annotations

import pytest

from assistant import prompting
from assistant.assistant import ABSTAIN_REPLY
from assistant.events import Answer, Done, Notice, Source, Token
from assistant.llm import LlamaRuntime
from assistant.reply_check import after_second_look, check_reply, refuses, second_look_due
from store.bundled import chat_model_path
from tests import factories as f

QUESTION = "How often is the mechanical seal replaced?"


def _sources():
    return [
        Source(1, "a:0", "a.md", "a.md", None, "Seals", "Replace the mechanical seal every 4,000 hours."),
        Source(2, "b:0", "b.pdf", "b.pdf", 3, "", "The flux capacitor needs 1.21 gigawatts of power."),
    ]


@pytest.fixture(scope="module")
def runtime():
    runtime = LlamaRuntime(context=1024, threads=1)
    runtime.load(chat_model_path())
    yield runtime
    runtime.unload()


def test_a_begun_reply_reuses_the_evaluated_messages_token_for_token(runtime):
    messages = prompting.build_messages(QUESTION, _sources(), [], **prompting.style("compact"))
    assert runtime.can_continue()
    "".join(runtime.stream_chat(messages, max_tokens=4))
    llama = runtime._require()
    evaluated = list(llama._input_ids)  # the prompt, then the 4 generated tokens
    tokens, stop = runtime._continuation(llama, messages, prompting.SECOND_LOOK_PREFIX)
    prefix = llama.tokenize(prompting.SECOND_LOOK_PREFIX.encode(), add_bos=False, special=False)
    prompt = tokens[: len(tokens) - len(prefix)]
    assert evaluated[: len(prompt)] == prompt, "the chat completion's own prompt tokens: its state is reused"
    assert tokens[len(prompt) :] == prefix and stop == ["<|im_end|>"]
    reply = "".join(runtime.stream_chat(messages, max_tokens=24, prefix=prompting.SECOND_LOOK_PREFIX))
    assert reply.strip() and not reply.startswith(prompting.SECOND_LOOK_PREFIX), "the prefix is not repeated"


def test_second_look_is_due_only_for_a_bare_refusal_above_the_threshold():
    assert refuses(ABSTAIN_REPLY) and second_look_due(ABSTAIN_REPLY, 0.7, 0.6)
    assert not second_look_due(ABSTAIN_REPLY, 0.55, 0.6), "below the threshold the refusal stands"
    assert not second_look_due(ABSTAIN_REPLY, 0.9, 0.0), "0 turns it off"
    answered = f"Replace the mechanical seal every 4,000 hours [1]. {ABSTAIN_REPLY}"
    assert not refuses(answered) and not second_look_due(answered, 0.9, 0.6), "an answer with a refusal tacked on"


def test_the_second_reply_replaces_a_refusal_only_with_the_models_own_supported_answer(embedder):
    refusal = check_reply(ABSTAIN_REPLY, QUESTION, _sources(), embedder, 0.5)
    assert refusal.abstained

    def second(reply: str) -> Answer:
        return after_second_look(refusal, check_reply(reply, QUESTION, _sources(), embedder, 0.5))

    kept = second(f"{prompting.SECOND_LOOK_PREFIX} the mechanical seal is replaced every 4,000 hours [1].")
    assert not kept.abstained and [(c.n, c.supported) for c in kept.citations] == [(1, True)]
    assert second(f"{prompting.SECOND_LOOK_PREFIX} {ABSTAIN_REPLY}") is refusal
    invented = check_reply("The seal is made of titanium by NASA [2].", QUESTION, _sources(), embedder, 0.5)
    assert invented.extractive, "on a first reply, an unsupported answer gives way to a quote"
    assert second("The seal is made of titanium by NASA [2].") is refusal, "after a second look it does not"


@pytest.fixture
def ask(settings, embedder, tmp_path):
    """Ask SmolLM2 over a pump manual with the gate open, so the model itself must refuse off-topic questions."""
    from ui.services import Services

    docs = tmp_path / "docs"
    docs.mkdir()
    f.make_markdown(docs / "pump.md")
    opened = []

    # SmolLM2 seldom refuses by itself; after a refusal in the conversation it refuses the next question too.
    history = [
        {"role": "user", "content": "Who won the 1994 football world cup?"},
        {"role": "assistant", "content": ABSTAIN_REPLY},
    ]

    def _ask(question: str, second_look_relevance: float) -> list:
        s = Services(
            settings.replace(max_tokens=64, relevance_threshold=0.0, second_look_relevance=second_look_relevance),
            _embedder=embedder,
        )
        opened.append(s)
        list(s.kb().add([docs]))
        return list(s.assistant.ask(question, history))

    yield _ask
    for s in opened:
        s.close()


def test_chat_asks_once_more_after_a_refusal_and_keeps_it_when_nothing_supports_an_answer(ask):
    events = ask("Who won the 1998 football world cup?", second_look_relevance=0.01)
    assert isinstance(events[-1], Done)
    answer = events[-1].answer
    notices = [e.text for e in events if isinstance(e, Notice)]
    streamed = "".join(e.text for e in events if isinstance(e, Token))
    assert any("asking it once more" in n for n in notices), (notices, streamed)
    assert streamed.count(prompting.SECOND_LOOK_PREFIX) == 1, "asked once more, not in a loop"
    assert answer.abstained and answer.text == ABSTAIN_REPLY and not answer.extractive


def test_no_second_look_when_turned_off(ask):
    events = ask("Who won the 1998 football world cup?", second_look_relevance=0.0)
    assert events[-1].answer.abstained
    assert not any(isinstance(e, Notice) and "once more" in e.text for e in events)
    assert prompting.SECOND_LOOK_PREFIX not in "".join(e.text for e in events if isinstance(e, Token))
