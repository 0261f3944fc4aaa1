"""The translation between OpenAI's Chat Completions shapes and ``Assistant.ask`` (no server, no model)."""

from __future__ import annotations

import base64
import json

import numpy as np
import pytest

from assistant import openai_api as oa
from assistant.events import Answer, Citation, Source

QUESTION = {"role": "user", "content": "What trips the alarm?"}


def request(**fields) -> dict:
    return {"model": "SmolLM2-135M-Instruct", "messages": [QUESTION], **fields}


def test_a_request_becomes_the_question_the_history_and_the_options():
    req = oa.parse_chat_request(
        request(
            messages=[
                {"role": "system", "content": "You are terse."},
                {"role": "user", "content": "What is the pump?"},
                {"role": "assistant", "content": "A centrifugal pump [1]."},
                {
                    "role": "user",
                    "content": [{"type": "text", "text": "How often"}, {"type": "text", "text": "is it?"}],
                },
            ],
            kb="plant",
            k=3,
            mode="keyword",
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    assert req.question == "How often\nis it?"
    assert req.history == [
        {"role": "user", "content": "What is the pump?"},
        {"role": "assistant", "content": "A centrifugal pump [1]."},
    ]
    assert (req.stream, req.include_usage) == (True, True)
    options = req.options()
    assert (options.kb, options.model, options.use_kb, options.k, options.mode) == (
        "plant",
        "SmolLM2-135M-Instruct",
        True,
        3,
        "keyword",
    )


def test_without_kb_the_model_answers_alone_and_stream_defaults_to_false():
    req = oa.parse_chat_request(request())
    assert req.options().use_kb is False and req.kb is None
    assert req.stream is False and req.k is None and req.mode == "hybrid"


@pytest.mark.parametrize(
    "body, param",
    [
        ([], None),
        ({"messages": [QUESTION]}, "model"),
        (request(messages=None), "messages"),
        (request(messages=[]), "messages"),
        (request(messages=["hello"]), "messages[0]"),
        (request(messages=[{"role": "wizard", "content": "hi"}]), "messages[0].role"),
        (request(messages=[{"role": "tool", "content": "hi"}]), "messages[0].role"),
        (request(messages=[{"role": "user", "content": 42}]), "messages[0].content"),
        (request(messages=[{"role": "user", "content": {"text": "hi"}}]), "messages[0].content"),
        (request(messages=[{"role": "user", "content": [{"type": "image_url"}]}]), "messages[0].content"),
        (request(messages=[QUESTION, {"role": "assistant", "content": "ok"}]), "messages"),
        (request(messages=[{"role": "user", "content": "   "}]), "messages[0].content"),
        (request(stream="true"), "stream"),
        (request(stream_options={"include_usage": "yes"}), "stream_options.include_usage"),
        (request(k=0), "k"),
        (request(k=10_000), "k"),
        (request(k="5"), "k"),
        (request(k=True), "k"),
        (request(mode="semantic"), "mode"),
        (request(kb=7), "kb"),
        (request(n=2), "n"),
    ],
)
def test_a_bad_request_is_a_400_naming_the_field(body, param):
    with pytest.raises(oa.ApiError) as caught:
        oa.parse_chat_request(body)
    assert caught.value.status == 400 and caught.value.param == param
    error = caught.value.to_json()["error"]
    assert set(error) == {"message", "type", "param", "code"} and error["type"] == "invalid_request_error"


SOURCES = [
    Source(1, "doc1:0", "turbine.pdf", "manuals/turbine.pdf", 2, "", "Oil above 85 C trips the alarm.", 0.5),
    Source(2, "doc2:3", "pump.md", "pump.md", None, "Pump > Seals", "Seals are replaced yearly.", 0.25),
]


def citation(source: Source, supported: bool = True) -> Citation:
    return Citation(source.n, source.document, source.source, source.page, source.section, source.text, supported, 0.8)


ANSWER = Answer(
    "Oil above 85 C trips it [1]. Seals go yearly [1, 2].", False, [citation(SOURCES[0]), citation(SOURCES[1])], SOURCES
)


def url(chunk_id: str) -> str:
    return f"http://app/passage/plant/{chunk_id}"


def test_annotations_span_each_marker_once_per_number_it_cites():
    found = oa.annotations(ANSWER.text, ANSWER.citations, url, {1: "doc1:0", 2: "doc2:3"})
    spans = [(a["url_citation"]["start_index"], a["url_citation"]["end_index"]) for a in found]
    assert [ANSWER.text[s:e] for s, e in spans] == ["[1]", "[1, 2]", "[1, 2]"]
    assert [a["url_citation"]["url"] for a in found] == [url("doc1:0"), url("doc1:0"), url("doc2:3")]
    assert found[0]["type"] == "url_citation"
    assert found[0]["url_citation"]["title"] == "manuals/turbine.pdf (page 2)"
    assert found[2]["url_citation"]["title"] == "pump.md (Pump > Seals)"


def test_a_completion_carries_content_citations_annotations_and_abstained():
    body = oa.completion("chatcmpl-1", 7, "m", ANSWER, url, ["cut"], oa.usage(0, 12))
    json.dumps(body)
    assert body["object"] == "chat.completion" and body["usage"]["total_tokens"] == 12
    choice = body["choices"][0]
    assert choice["finish_reason"] == "stop" and choice["index"] == 0
    message = choice["message"]
    assert message["role"] == "assistant" and message["content"] == ANSWER.text
    assert message["abstained"] is False and message["notices"] == ["cut"]
    assert message["citations"][0] == {
        "n": 1,
        "chunk_id": "doc1:0",
        "document": "turbine.pdf",
        "source": "manuals/turbine.pdf",
        "page": 2,
        "page_label": None,
        "section": "",
        "text": "Oil above 85 C trips the alarm.",
        "score": 0.5,
        "supported": True,
        "ocr": False,
        "unsupported_claims": [],
    }
    assert len(message["annotations"]) == 3


def test_the_last_stream_chunk_carries_the_check_and_says_when_it_revised_the_text():
    same = oa.final_delta(ANSWER, "  " + ANSWER.text, url)
    assert same["revised"] is False and same["content_checked"] == ANSWER.text
    assert same["abstained"] is False and len(same["citations"]) == 2
    revised = oa.final_delta(ANSWER, "Oil trips it.", url)
    assert revised["revised"] is True
    chunk = oa.chunk("c", 1, "m", revised, finish_reason="stop")
    assert chunk["object"] == "chat.completion.chunk" and chunk["choices"][0]["finish_reason"] == "stop"
    assert oa.usage_chunk("c", 1, "m", oa.usage(0, 3))["choices"] == []


def test_an_abstention_has_no_citations():
    answer = Answer("The documents do not contain the answer to this question.", True, [], SOURCES)
    fields = oa.answer_fields(answer, url)
    assert fields == {"annotations": [], "citations": [], "abstained": True, "notices": []}


def test_embeddings_in_float_and_base64():
    vectors = np.array([[0.5, -0.25], [1.0, 0.0]], dtype=np.float32)
    plain = oa.embeddings("e", vectors, "float", 4)
    assert plain["data"][1] == {"object": "embedding", "index": 1, "embedding": [1.0, 0.0]}
    packed = oa.embeddings("e", vectors, "base64", 4)["data"][0]["embedding"]
    assert np.frombuffer(base64.b64decode(packed), dtype=np.float32).tolist() == [0.5, -0.25]
    assert plain["usage"] == {"prompt_tokens": 4, "total_tokens": 4}


@pytest.mark.parametrize(
    "body, param",
    [({"model": "e"}, "input"), ({"model": "e", "input": [1, 2]}, "input"), ({"model": "e", "input": ""}, "input")],
)
def test_a_bad_embedding_request_is_a_400(body, param):
    with pytest.raises(oa.ApiError) as caught:
        oa.parse_embedding_request(body)
    assert caught.value.param == param


def test_a_search_request_defaults_to_five_hybrid_results():
    assert oa.parse_search_request({"query": "alarm"}) == oa.SearchRequest("alarm", 5, "hybrid")
    with pytest.raises(oa.ApiError):
        oa.parse_search_request({"query": "alarm", "k": 0})
