"""Chat on a remote OpenAI-compatible server (``assistant.remote_llm``), against real servers.

The comparison runs llama-cpp-python's own server (``llama_cpp.server``) on the bundled SmolLM2
GGUF: the same question answered greedily in-process and remotely gives the same text and
citations. Failures run against ``tests.remote_servers.FlakyServer`` (real sockets): each is a
``RemoteModelError`` naming the server, nothing is re-sent once tokens came, and nothing is saved.
"""

from __future__ import annotations

import time

import pytest

from assistant.assistant import AskOptions
from assistant.events import Done, Token
from assistant.remote_llm import RemoteModel, RemoteRuntime
from store.bundled import chat_model_path
from store.errors import ModelNotFound, RemoteModelError, RemoteTimeout
from tests import factories as f
from tests.remote_servers import REPLY, flaky_server, llama_server

MODEL = "SmolLM2-135M-Instruct"
REMOTE = "remote:" + MODEL
QUESTION = "What trips the journal bearing alarm?"  # turbine.pdf, page 2
MESSAGES = [{"role": "user", "content": "Hello"}]


@pytest.fixture(scope="session")
def llama_cpp_server(tmp_path_factory):
    """llama-cpp-python's server with the bundled SmolLM2 GGUF, named like the bundled model."""
    with llama_server(chat_model_path(), MODEL, tmp_path_factory.mktemp("llama-server") / "server.log") as url:
        yield url


@pytest.fixture(scope="module")
def flaky():
    with flaky_server(slow_seconds=2.0) as server:
        yield server


def make_services(settings, embedder, docs, **remote):
    from ui.services import Services

    # Two passages, short answers, one thread: prompt evaluation dominates on two busy cores, and two
    # llama.cpp threads beside other work wait for each other at every token (STACK-NOTES.md).
    services = Services(settings.replace(max_tokens=64, retrieval_k=2, chat_threads=1, **remote), _embedder=embedder)
    list(services.kb().add([docs]))
    return services


@pytest.fixture
def docs(tmp_path):
    folder = tmp_path / "docs"
    folder.mkdir()
    f.make_pdf(folder / "turbine.pdf", pages=4)
    return folder


def run(events) -> tuple[str, object]:
    events = list(events)
    assert isinstance(events[-1], Done)
    return "".join(e.text for e in events if isinstance(e, Token)), events[-1].answer


# -- the same answer in-process and remote -----------------------------------------------------


def test_the_same_answer_in_process_and_through_llama_cpp_server(settings, embedder, docs, llama_cpp_server):
    services = make_services(settings, embedder, docs, remote_url=llama_cpp_server, remote_model=MODEL)
    try:
        assert REMOTE in services.models(), "the remote model is a Chat / Compare choice and listed on /v1/models"
        local_stream, local = run(services.assistant.ask(QUESTION, (), AskOptions(model=MODEL)))
        started = time.monotonic()
        remote_stream, remote = run(services.assistant.ask(QUESTION, (), AskOptions(model=REMOTE)))
        remote_seconds = time.monotonic() - started
    finally:
        services.close()
    assert not local.abstained and local.citations, "the fixture question is answered with citations"
    assert remote.model == REMOTE and local.model == MODEL
    assert remote_stream == local_stream and remote.text == local.text
    assert [c.to_json() for c in remote.citations] == [c.to_json() for c in local.citations]
    assert remote.abstained == local.abstained and remote.first_token_seconds < remote_seconds


def test_remote_model_is_refused_without_a_server(settings, embedder):
    from ui.services import Services

    services = Services(settings, _embedder=embedder)
    assert not any(m.startswith("remote:") for m in services.models())
    with pytest.raises(ModelNotFound, match="remote_url"):
        services.assistant.use_model(REMOTE)
    configured = Services(settings.replace(remote_url="http://127.0.0.1:9/v1"), _embedder=embedder)
    assert not any(m.startswith("remote:") for m in configured.models()), "no remote_model: no picker entry"
    assert configured.assistant.use_model("remote:other-model") == RemoteModel(
        "remote:other-model", "other-model", 4096
    )
    services.close()
    configured.close()


def test_prompt_style_follows_the_remote_model_name():
    from assistant.assistant import prompt_style

    assert prompt_style(RemoteModel(REMOTE, MODEL, 4096)) == "compact"
    assert prompt_style(RemoteModel("remote:x", "SmolLM2-135M-Instruct.Q4_1.gguf", 4096)) == "compact"
    assert prompt_style(RemoteModel("remote:llama3", "llama3:8b", 4096)) == "grounded"


# -- failures: a clear error, nothing re-sent, nothing saved ---------------------------------


def runtime(url: str, **kwargs) -> RemoteRuntime:
    return RemoteRuntime(url, model="m", timeout=kwargs.pop("timeout", 0.5), retries=1, backoff=0.01, **kwargs)


@pytest.mark.parametrize(
    ("behaviour", "error", "says", "pieces"),
    [
        ("error", RemoteModelError, "HTTP 500: the model crashed", 0),
        ("html", RemoteModelError, "text/html, not a stream of JSON events", 0),
        ("garbage", RemoteModelError, "not JSON: '{not json'", 1),
        ("cut", RemoteModelError, "cut the reply off after 2 pieces", 2),
        ("cut-chunked", RemoteModelError, "cut the reply off after 2 pieces (peer closed", 2),
        ("slow", RemoteTimeout, "sent nothing for 0.5 s", 1),
        ("slow-start", RemoteTimeout, "did not answer within 0.5 s", 0),
        ("auth", RemoteModelError, "HTTP 401: invalid api key (check remote_api_key)", 0),
    ],
)
def test_a_failing_server_is_a_clear_error_and_is_asked_once(flaky, behaviour, error, says, pieces):
    got: list[str] = []
    with pytest.raises(error) as caught:
        for piece in runtime(flaky.url(behaviour)).stream_chat(MESSAGES, max_tokens=8):
            got.append(piece)
    assert says in str(caught.value) and flaky.url(behaviour) in str(caught.value)
    assert "attempts" not in str(caught.value)
    assert len(got) == pieces and flaky.requests[behaviour] == 1, "never sent again once the server answered"


def test_a_server_that_is_down_is_retried_then_reported():
    from tests.http_app import free_port

    url = f"http://127.0.0.1:{free_port()}/v1"  # nothing listens there
    with pytest.raises(RemoteModelError, match="cannot reach the remote model server .* after 2 attempts"):
        list(runtime(url).stream_chat(MESSAGES, max_tokens=8))


def test_busy_server_is_retried_before_the_first_token_and_the_key_is_sent(flaky):
    remote = runtime(flaky.url("busy-once"), api_key="sk-secret-key")
    assert "".join(remote.stream_chat(MESSAGES, max_tokens=8, temperature=0.0)) == "".join(REPLY)
    assert flaky.requests["busy-once"] == 2
    assert flaky.headers[-1]["Authorization"] == "Bearer sk-secret-key"
    body = flaky.bodies[-1]
    assert body["model"] == "m" and body["messages"] == MESSAGES and body["stream"] is True
    assert (body["max_tokens"], body["temperature"], body["seed"]) == (8, 0.0, 0)
    with pytest.raises(RemoteModelError) as caught:
        list(runtime(flaky.url("auth"), api_key="sk-secret-key").stream_chat(MESSAGES, max_tokens=8))
    assert "sk-secret-key" not in str(caught.value)


def test_the_api_key_is_not_in_the_settings_repr(settings):
    assert "sk-secret-key" not in repr(settings.replace(remote_api_key="sk-secret-key"))


def test_a_failed_remote_answer_saves_nothing_and_chat_keeps_serving(settings, embedder, docs, flaky):
    from ui import chat_tab

    services = make_services(settings, embedder, docs, remote_url=flaky.url("cut"), remote_model="m")
    try:
        kb_before = services.kb().stats()
        *_, (history, _notes, session_id) = chat_tab.respond(services, QUESTION, [], "default", "remote:m", True, None)
        reply = history[-1]["content"]  # the failure is the assistant's turn, in plain words
        assert reply.startswith("⚠️ **I could not answer.**") and "cut the reply off" in reply
        assert "Check that the remote server is running" in reply and session_id is None
        assert services.sessions.sessions() == [] and services.kb().stats() == kb_before
        # the same services answer the next question (another server, same app)
        services.assistant.remote = runtime(flaky.url("ok"))
        *_, (history, _notes, session_id) = chat_tab.respond(services, QUESTION, [], "default", "remote:m", True, None)
        assert session_id is not None and len(services.sessions.messages(session_id)) == 2
        assert services.kb().stats() == kb_before
    finally:
        services.close()


def test_api_turns_remote_failures_into_gateway_errors(settings, embedder, flaky):
    from fastapi import FastAPI
    from fastapi.testclient import TestClient

    from ui.api import routes
    from ui.services import Services

    services = Services(settings.replace(remote_url=flaky.url("error"), remote_model="m"), _embedder=embedder)
    client = TestClient(FastAPI(routes=routes(services)))
    assert "remote:m" in [m["id"] for m in client.get("/v1/models").json()["data"]]
    request = {"model": "remote:m", "messages": MESSAGES}
    reply = client.post("/v1/chat/completions", json=request)
    assert reply.status_code == 502 and reply.json()["error"]["code"] == "remote_model_error"
    assert "HTTP 500: the model crashed" in reply.json()["error"]["message"]
    services.assistant.remote = runtime(flaky.url("slow-start"), timeout=0.3)
    reply = client.post("/v1/chat/completions", json=request)
    assert reply.status_code == 504 and reply.json()["error"]["code"] == "remote_timeout"
    services.assistant.remote = runtime(flaky.url("cut"))
    with client.stream("POST", "/v1/chat/completions", json={**request, "stream": True}) as stream:
        text = "".join(stream.iter_text())
    assert REPLY[0].strip() in text and "cut the reply off" in text and text.rstrip().endswith("data: [DONE]")
    assert client.get("/v1/models").status_code == 200, "the app keeps serving"
