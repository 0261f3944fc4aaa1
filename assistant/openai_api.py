"""OpenAI's Chat Completions and Embeddings shapes, translated to and from ``Assistant`` calls.

Pure functions over dicts and the assistant's events: no HTTP, no threads (``ui.api`` serves
them on ``/v1``). A request body becomes a ``ChatRequest`` (the question, the history in the
form Chat passes it, ``AskOptions``) or an ``ApiError`` naming the field at fault; an ``Answer``
becomes OpenAI's ``chat.completion`` object or the last ``chat.completion.chunk`` of a stream.

Domainsmith's additions ride on the message: ``citations`` (the checked record of each cited
passage), ``annotations`` (OpenAI's ``url_citation``, one per number in each ``[n]`` marker,
``start_index``/``end_index`` spanning the marker in ``content``) and ``abstained``.
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from assistant.assistant import AskOptions
from assistant.events import Answer, Citation
from assistant.sentences import MARKER
from store.knowledge_base import SEARCH_MODES

K_MAX = 100  # passages per request (`k`), for answers and searches alike
ROLES = ("system", "developer", "user", "assistant")
EMBEDDING_INPUTS_MAX = 256

PassageUrl = Callable[[str], str]  # chunk id -> the url that opens the passage


class ApiError(Exception):
    """A request the API refuses: HTTP ``status`` and OpenAI's ``{"error": {...}}`` body."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        param: str | None = None,
        code: str | None = None,
        type: str = "invalid_request_error",
    ):
        super().__init__(message)
        self.status, self.message, self.param, self.code, self.type = status, message, param, code, type

    def to_json(self) -> dict:
        return {"error": {"message": self.message, "type": self.type, "param": self.param, "code": self.code}}


def bad_request(message: str, param: str | None = None, code: str = "invalid_value") -> ApiError:
    return ApiError(400, message, param=param, code=code)


def not_found(message: str, param: str, code: str) -> ApiError:
    return ApiError(404, message, param=param, code=code)


# -- requests ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class ChatRequest:
    model: str
    question: str
    history: list[dict] = field(default_factory=list)  # [{"role": "user"|"assistant", "content": str}]
    kb: str | None = None  # None: the model alone, no retrieval
    k: int | None = None
    mode: str = "hybrid"
    stream: bool = False
    include_usage: bool = False

    def options(self) -> AskOptions:
        return AskOptions(kb=self.kb, model=self.model, use_kb=self.kb is not None, mode=self.mode, k=self.k)


def parse_chat_request(body: Any) -> ChatRequest:
    """The request ``POST /v1/chat/completions`` carries, checked; ``ApiError`` (400) names the field."""
    body = _object(body)
    model = _string(body, "model")
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise bad_request("'messages' must be a non-empty list of messages", "messages", "missing_required_parameter")
    turns: list[dict] = []
    for i, message in enumerate(messages):
        if not isinstance(message, dict):
            raise bad_request(f"messages[{i}] must be an object with 'role' and 'content'", f"messages[{i}]")
        role = message.get("role")
        if role not in ROLES:
            raise bad_request(
                f"messages[{i}].role {role!r} is not supported: use one of {', '.join(ROLES)}", f"messages[{i}].role"
            )
        content = _content(message.get("content"), f"messages[{i}].content", allow_none=role == "assistant")
        if role in ("user", "assistant"):  # system and developer messages: Domainsmith's own prompt rules
            turns.append({"role": role, "content": content})
    if not turns or turns[-1]["role"] != "user":
        raise bad_request("the last message must be the user's question", "messages")
    question = turns[-1]["content"]
    if not question.strip():
        raise bad_request("the question (the last user message) is empty", f"messages[{len(messages) - 1}].content")
    history = [t for t in turns[:-1] if t["content"]]
    stream = _optional(body, "stream", bool, "a boolean") or False
    options = _optional(body, "stream_options", dict, "an object") or {}
    include_usage = _optional(options, "include_usage", bool, "a boolean", "stream_options.include_usage") or False
    n = _optional(body, "n", int, "an integer")
    if n not in (None, 1):
        raise bad_request("only n = 1 is supported", "n")
    kb = _optional(body, "kb", str, "a knowledge base name")
    return ChatRequest(
        model=model,
        question=question,
        history=history,
        kb=kb or None,
        k=_k(body),
        mode=_mode(body),
        stream=stream,
        include_usage=include_usage,
    )


@dataclass(frozen=True)
class EmbeddingRequest:
    model: str
    inputs: list[str]
    encoding_format: str = "float"


def parse_embedding_request(body: Any) -> EmbeddingRequest:
    body = _object(body)
    model = _string(body, "model")
    raw = body.get("input")
    inputs = [raw] if isinstance(raw, str) else raw
    if not isinstance(inputs, list) or not inputs or not all(isinstance(t, str) for t in inputs):
        raise bad_request("'input' must be a string or a non-empty list of strings", "input")
    if len(inputs) > EMBEDDING_INPUTS_MAX:
        raise bad_request(f"at most {EMBEDDING_INPUTS_MAX} inputs per request", "input")
    if any(not t.strip() for t in inputs):
        raise bad_request("an input is empty", "input")
    encoding = _optional(body, "encoding_format", str, "'float' or 'base64'") or "float"
    if encoding not in ("float", "base64"):
        raise bad_request("'encoding_format' must be 'float' or 'base64'", "encoding_format")
    return EmbeddingRequest(model, inputs, encoding)


@dataclass(frozen=True)
class SearchRequest:
    query: str
    k: int = 5
    mode: str = "hybrid"


def parse_search_request(body: Any) -> SearchRequest:
    body = _object(body)
    query = _string(body, "query")
    return SearchRequest(query, _k(body) or 5, _mode(body))


def _object(body: Any) -> dict:
    if not isinstance(body, dict):
        raise bad_request("the request body must be a JSON object")
    return body


def _string(body: dict, key: str) -> str:
    value = body.get(key)
    if value is None:
        raise bad_request(f"'{key}' is required", key, "missing_required_parameter")
    if not isinstance(value, str) or not value.strip():
        raise bad_request(f"'{key}' must be a non-empty string", key)
    return value


def _optional(body: dict, key: str, kind: type, what: str, param: str | None = None) -> Any:
    value = body.get(key)
    wrong = not isinstance(value, kind) or (kind is int and isinstance(value, bool))
    if value is not None and wrong:
        raise bad_request(f"'{param or key}' must be {what}, not {type(value).__name__}", param or key)
    return value


def _k(body: dict) -> int | None:
    k = _optional(body, "k", int, "an integer")
    if k is not None and not 1 <= k <= K_MAX:
        raise bad_request(f"'k' must be between 1 and {K_MAX}, not {k}", "k")
    return k


def _mode(body: dict) -> str:
    mode = _optional(body, "mode", str, "a search mode") or "hybrid"
    if mode not in SEARCH_MODES:
        raise bad_request(f"'mode' must be one of {', '.join(SEARCH_MODES)}, not {mode!r}", "mode")
    return mode


def _content(content: Any, param: str, allow_none: bool) -> str:
    """A message's text: a string, or a list of text parts (``[{"type": "text", "text": ...}]``)."""
    if content is None and allow_none:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list) and content:
        parts = [p.get("text") for p in content if isinstance(p, dict) and p.get("type") == "text"]
        if len(parts) == len(content) and all(isinstance(p, str) for p in parts):
            return "\n".join(parts)
    raise bad_request(f"'{param}' must be a string (or a list of text parts)", param)


# -- answers -----------------------------------------------------------------------------------


def annotations(text: str, citations: Sequence[Citation], passage_url: PassageUrl, chunk_ids: dict[int, str]) -> list:
    """One ``url_citation`` per cited number of each ``[n]`` marker, spanning the marker in ``text``."""
    by_n = {c.n: c for c in citations}
    found = []
    for match in MARKER.finditer(text):
        start = text.index("[", match.start())
        for number in match.group(1).split(","):
            citation = by_n.get(int(number))
            if citation is None:
                continue
            found.append(
                {
                    "type": "url_citation",
                    "url_citation": {
                        "url": passage_url(chunk_ids.get(citation.n, "")),
                        "title": _title(citation),
                        "start_index": start,
                        "end_index": match.end(),
                    },
                }
            )
    return found


def citations_json(answer: Answer) -> list[dict]:
    """The full record of each citation: the passage, where it is, its retrieval score, its check."""
    by_n = {s.n: s for s in answer.sources}
    records = []
    for c in answer.citations:
        source = by_n.get(c.n)
        records.append(
            {
                "n": c.n,
                "chunk_id": source.chunk_id if source else None,
                "document": c.document,
                "source": c.source,
                "page": c.page,
                "page_label": c.page_label,
                "section": c.section,
                "text": c.text,
                "score": round(float(source.score), 6) if source else None,
                "supported": c.supported,
                "ocr": c.ocr,
                "unsupported_claims": list(c.unsupported_claims),
            }
        )
    return records


def answer_fields(answer: Answer, passage_url: PassageUrl, notices: Sequence[str] = ()) -> dict:
    """What Domainsmith adds to the assistant message: annotations, citations, abstained, notices."""
    chunk_ids = {s.n: s.chunk_id for s in answer.sources}
    return {
        "annotations": annotations(answer.text, answer.citations, passage_url, chunk_ids),
        "citations": citations_json(answer),
        "abstained": answer.abstained,
        "notices": list(notices),
    }


def usage(prompt_tokens: int, completion_tokens: int) -> dict:
    return {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
    }


def completion(
    completion_id: str,
    created: int,
    model: str,
    answer: Answer,
    passage_url: PassageUrl,
    notices: Sequence[str] = (),
    token_usage: dict | None = None,
) -> dict:
    """The ``chat.completion`` object of a non-streamed answer."""
    message = {"role": "assistant", "content": answer.text, "refusal": None}
    message.update(answer_fields(answer, passage_url, notices))
    body = {
        "id": completion_id,
        "object": "chat.completion",
        "created": created,
        "model": model,
        "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": "stop"}],
    }
    if token_usage is not None:
        body["usage"] = token_usage
    return body


def chunk(completion_id: str, created: int, model: str, delta: dict, finish_reason: str | None = None) -> dict:
    """One ``chat.completion.chunk`` with a single choice."""
    return {
        "id": completion_id,
        "object": "chat.completion.chunk",
        "created": created,
        "model": model,
        "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}],
    }


def final_delta(answer: Answer, streamed: str, passage_url: PassageUrl, notices: Sequence[str] = ()) -> dict:
    """The last chunk's delta: the check's verdict on what was streamed.

    ``annotations`` index into ``content_checked``, the answer after the citation check (a
    non-streamed response's ``content``); ``revised`` says whether it differs from the
    streamed text (markers dropped or added, a passage quoted, or the abstention reply).
    """
    delta = answer_fields(answer, passage_url, notices)
    delta["content_checked"] = answer.text
    delta["revised"] = answer.text != streamed.strip()
    return delta


def usage_chunk(completion_id: str, created: int, model: str, token_usage: dict) -> dict:
    """The optional last chunk (``stream_options.include_usage``): empty ``choices``, the usage."""
    return {
        "id": completion_id,
        "object": "chat.completion.chunk",
        "created": created,
        "model": model,
        "choices": [],
        "usage": token_usage,
    }


def embeddings(model: str, vectors: np.ndarray, encoding_format: str, prompt_tokens: int) -> dict:
    """OpenAI's embeddings list; ``base64`` is the float32 bytes, as OpenAI encodes them."""
    data = []
    for i, vector in enumerate(np.asarray(vectors, dtype=np.float32)):
        value: Any = base64.b64encode(vector.tobytes()).decode() if encoding_format == "base64" else vector.tolist()
        data.append({"object": "embedding", "index": i, "embedding": value})
    return {
        "object": "list",
        "data": data,
        "model": model,
        "usage": {"prompt_tokens": prompt_tokens, "total_tokens": prompt_tokens},
    }


def model_list(ids: Sequence[str], created: int = 0, owned_by: str = "domainsmith") -> dict:
    return {
        "object": "list",
        "data": [{"id": i, "object": "model", "created": created, "owned_by": owned_by} for i in ids],
    }


def _title(citation: Citation) -> str:
    where = citation.where
    return f"{citation.source} ({where})" if where else citation.source


__all__ = [
    "ApiError",
    "ChatRequest",
    "EmbeddingRequest",
    "SearchRequest",
    "K_MAX",
    "annotations",
    "chunk",
    "completion",
    "embeddings",
    "final_delta",
    "model_list",
    "parse_chat_request",
    "parse_embedding_request",
    "parse_search_request",
    "usage",
    "usage_chunk",
]
