"""The OpenAI-compatible API (``/v1``), driven by the real ``openai`` client against the real app.

One app for the module (``python app.py --port PORT``, ``tests.http_app.serve``) with a password
set, so every request carries an API key made by ``python app.py keys create``; the bundled
SmolLM2-135M answers over a turbine manual (PDF) and a pump handbook. The two answers that need
the model are asked once, at the same time (one streamed, one not: the runtime serialises them),
and the tests look at them.
"""

from __future__ import annotations

import contextlib
import io
import json
import re
from concurrent.futures import ThreadPoolExecutor
from types import SimpleNamespace
from urllib.parse import quote

import httpx
import pytest

from tests import factories as f
from tests.conftest import TINY_MODEL_PIN
from tests.http_app import serve

openai = pytest.importorskip("openai")

KB = "plant"
MODEL = "SmolLM2-135M-Instruct"
QUESTION = "What trips the journal bearing alarm?"  # turbine.pdf, page 2
PASSWORD = "api test password"
MARKER = re.compile(r"^\[\d+(?:, \d+)*\]$")


def app_main(home, *args: str) -> str:
    """``python app.py --home HOME ARGS`` in this process; its stdout."""
    from app import main

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(["--home", str(home), *args]) == 0
    return out.getvalue()


@pytest.fixture(scope="module")
def app(tmp_path_factory, embedder):
    from store.knowledge_base import KnowledgeBase
    from store.settings import Settings

    root = tmp_path_factory.mktemp("api")
    home, docs = root / "home", root / "docs"
    docs.mkdir()
    f.make_pdf(docs / "turbine.pdf", pages=4)
    f.make_markdown(docs / "pump.md")
    with KnowledgeBase.open(Settings.load(home=home, env={}), KB, embedder) as kb:
        list(kb.add([docs]))
        documents = len(kb.documents())
    key = json.loads(app_main(home, "keys", "create", "tests", "--json"))["key"]
    env = {
        **TINY_MODEL_PIN,
        "DOMAINSMITH_PASSWORD": PASSWORD,
        "DOMAINSMITH_MAX_TOKENS": "64",
        "GRADIO_TEMP_DIR": str(home / "gradio-tmp"),
    }
    with serve(home, env=env) as running:
        yield SimpleNamespace(url=running.url, home=home, key=key, documents=documents)


def client(app, key: str | None = None):
    return openai.OpenAI(base_url=app.url + "/v1", api_key=key or app.key, max_retries=0, timeout=300)


@pytest.fixture(scope="module")
def answers(app):
    """The fixture question answered whole and streamed, by two clients at the same time."""

    def whole():
        return client(app).chat.completions.create(
            model=MODEL, messages=[{"role": "user", "content": QUESTION}], extra_body={"kb": KB}
        )

    def streamed():
        stream = client(app).chat.completions.create(
            model=MODEL,
            messages=[{"role": "user", "content": QUESTION}],
            stream=True,
            stream_options={"include_usage": True},
            extra_body={"kb": KB},
        )
        return list(stream)

    with ThreadPoolExecutor(2) as pool:
        a, b = pool.submit(whole), pool.submit(streamed)
        return a.result(timeout=600), b.result(timeout=600)


def check_citations(content: str, citations: list[dict], annotations: list[dict]) -> None:
    assert any(c["source"] == "turbine.pdf" and c["page"] == 2 and c["supported"] for c in citations), citations
    assert set(citations[0]) == {
        "n",
        "chunk_id",
        "document",
        "source",
        "page",
        "page_label",
        "section",
        "text",
        "score",
        "supported",
        "ocr",
        "unsupported_claims",
    }
    assert annotations, content
    chunk_ids = {c["chunk_id"] for c in citations}
    for annotation in annotations:
        assert annotation["type"] == "url_citation"
        span = annotation["url_citation"]
        marker = content[span["start_index"] : span["end_index"]]
        assert MARKER.match(marker), (marker, content)
        assert any(span["url"].endswith("/passage/plant/" + quote(c, safe="")) for c in chunk_ids), span["url"]


def test_models_lists_the_bundled_chat_model_and_the_embedder(app):
    ids = [m.id for m in client(app).models.list()]
    assert MODEL in ids and "all-MiniLM-L6-v2" in ids


def test_an_answer_cites_the_right_document_and_page(answers):
    completion, _ = answers
    assert completion.object == "chat.completion"
    message = completion.choices[0].message
    assert completion.choices[0].finish_reason == "stop" and message.content
    extra = message.model_extra
    assert extra["abstained"] is False
    annotations = [a.model_dump() for a in message.annotations]
    check_citations(message.content, extra["citations"], annotations)


def test_a_streamed_answer_ends_with_its_citations_usage_and_done(answers):
    _, chunks = answers
    assert all(c.object == "chat.completion.chunk" and c.choices is not None for c in chunks)
    *answer, usage = chunks
    assert usage.choices == [] and usage.usage.completion_tokens > 0
    *deltas, final = answer
    content = "".join(c.choices[0].delta.content or "" for c in deltas)
    assert len([c for c in deltas if c.choices[0].delta.content]) >= 1 and content.strip()
    assert all(c.choices[0].finish_reason is None for c in deltas)
    assert final.choices[0].finish_reason == "stop"
    verdict = final.choices[0].delta.model_extra
    assert verdict["abstained"] is False
    checked = verdict["content_checked"]
    assert verdict["revised"] == (checked != content.strip())
    check_citations(checked, verdict["citations"], verdict["annotations"])


def test_an_unanswerable_question_abstains(app):
    completion = client(app).chat.completions.create(
        model=MODEL,
        messages=[{"role": "user", "content": "Who won the 1998 football world cup?"}],
        extra_body={"kb": KB},
    )
    message = completion.choices[0].message
    assert message.model_extra["abstained"] is True and message.model_extra["citations"] == []
    assert not message.annotations


@pytest.mark.parametrize(
    "kwargs, status, param",
    [
        ({"model": "no-such-model"}, 404, "model"),
        ({"extra_body": {"kb": "no-such-kb"}}, 404, "kb"),
        ({"messages": [{"role": "wizard", "content": "hi"}]}, 400, "messages[0].role"),
        ({"messages": [{"role": "user", "content": 42}]}, 400, "messages[0].content"),
        ({"messages": []}, 400, "messages"),
        ({"extra_body": {"kb": KB, "stream": "yes"}}, 400, "stream"),
        ({"extra_body": {"kb": KB, "k": 0}}, 400, "k"),
        ({"extra_body": {"kb": KB, "k": 10_000}}, 400, "k"),
        ({"messages": [{"role": "user", "content": "a" * 10_000_000}]}, 413, None),
    ],
)
def test_a_bad_request_is_an_openai_error_with_its_status(app, kwargs, status, param):
    request = {"model": MODEL, "messages": [{"role": "user", "content": QUESTION}], **kwargs}
    with pytest.raises(openai.APIStatusError) as caught:
        client(app).chat.completions.create(**request)
    assert caught.value.status_code == status, caught.value
    assert caught.value.param == param and caught.value.type == "invalid_request_error"


def test_malformed_json_is_a_400_and_nothing_changed(app):
    response = httpx.post(
        app.url + "/v1/chat/completions",
        content=b'{"model": "x", "messages": [',
        headers={"Authorization": f"Bearer {app.key}", "Content-Type": "application/json"},
    )
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_json"
    from store.database import open_db
    from store.sessions import SessionStore
    from store.settings import Settings

    settings = Settings.load(home=app.home, env={})
    db = open_db(settings.db_path)
    try:
        assert SessionStore(db).sessions() == []  # the API keeps no chat history, on error or not
    finally:
        db.close()
    out = json.loads(app_main(app.home, "kb", "list", "--kb", KB, "--json"))
    assert len(out["documents"]) == app.documents
    assert [m.id for m in client(app).models.list()]  # still serving


def test_embeddings_come_from_the_knowledge_base_embedder(app, embedder):
    import numpy as np

    result = client(app).embeddings.create(model="all-MiniLM-L6-v2", input=["journal bearing", "pump seal"])
    assert [d.index for d in result.data] == [0, 1] and result.usage.prompt_tokens > 0
    expected = embedder.encode(["journal bearing", "pump seal"])
    assert np.allclose(np.array([d.embedding for d in result.data]), expected, atol=1e-4)
    with pytest.raises(openai.NotFoundError):
        client(app).embeddings.create(model="text-embedding-3-small", input="x")


def test_kb_search_returns_what_kb_search_json_prints(app):
    query = "journal bearing alarm"
    response = httpx.post(
        f"{app.url}/v1/kb/{KB}/search",
        json={"query": query, "k": 3, "mode": "hybrid"},
        headers={"Authorization": f"Bearer {app.key}"},
    )
    assert response.status_code == 200, response.text
    printed = json.loads(app_main(app.home, "kb", "search", query, "--kb", KB, "-k", "3", "--json"))
    assert response.json() == printed
    missing = httpx.post(
        f"{app.url}/v1/kb/nope/search", json={"query": query}, headers={"Authorization": f"Bearer {app.key}"}
    )
    assert missing.status_code == 404 and missing.json()["error"]["param"] == "name"


def test_with_a_password_no_key_or_a_revoked_key_is_a_401(app):
    with pytest.raises(openai.AuthenticationError):
        client(app, key="not-a-key").models.list()
    bare = httpx.get(app.url + "/v1/models")
    assert bare.status_code == 401 and bare.json()["error"]["code"] == "invalid_api_key"
    assert httpx.get(app.url + "/passage/plant/x:0").status_code == 401  # a web app page: behind the login
    made = json.loads(app_main(app.home, "keys", "create", "revoke-me", "--json"))
    assert [m.id for m in client(app, made["key"]).models.list()]
    app_main(app.home, "keys", "revoke", made["id"])
    with pytest.raises(openai.AuthenticationError):
        client(app, made["key"]).models.list()
    listed = json.loads(app_main(app.home, "keys", "list", "--json"))["keys"]
    assert {k["name"]: bool(k["revoked_at"]) for k in listed} == {"tests": False, "revoke-me": True}
    assert made["key"] not in json.dumps(listed)  # only the hash is kept
