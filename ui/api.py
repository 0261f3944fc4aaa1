"""``/v1``: the OpenAI-compatible API, served by the web app's own process (``ui.web.launch``).

Routes (``routes(services)``, placed before Gradio's own by ``launch``):

- ``GET /v1/models``, ``GET /v1/models/{id}``: the Chat models (bundled, exported, registered, remote)
  and the embedder, in OpenAI's list shape.
- ``POST /v1/chat/completions``: ``Assistant.ask`` behind OpenAI's request and response shapes
  (``assistant.openai_api``), streamed as server-sent events or answered whole.
- ``POST /v1/embeddings``: the knowledge bases' embedder.
- ``POST /v1/kb/{name}/search``: what ``python app.py kb search --json`` prints.
- ``GET /passage/{kb}/{chunk_id}``: a page showing one passage, the url of each citation's
  annotation (a page of the web app: behind its login, not an API route).

Access is ``ui.access``'s: with a password set, ``/v1`` wants ``Authorization: Bearer KEY``
(``store.api_keys``). An answer runs in a thread of its own from start to end, like a Chat answer:
the runtime's lock (``assistant.llm``) is taken and released in that one thread, so concurrent
requests answer one after the other, and a client that goes away stops its answer at the next
token. Errors are OpenAI's ``{"error": {...}}`` with a status; nothing is written on any path.
"""

from __future__ import annotations

import asyncio
import html
import json
import logging
import threading
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, Response, StreamingResponse
from starlette.concurrency import run_in_threadpool

from assistant import openai_api as oa
from assistant.events import Answer, Done, Notice, Token
from store.errors import (
    DocumentNotFound,
    DomainsmithError,
    KnowledgeBaseError,
    ModelNotFound,
    RemoteModelError,
    RemoteTimeout,
)
from ui.passages import PASSAGE_PATH
from ui.services import Services

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 1 << 20  # a request body over 1 MiB is refused (413)


@dataclass(frozen=True)
class Finished:
    """The end of an answer in the worker thread: the checked answer and what was streamed."""

    answer: Answer
    streamed: str
    notices: list[str]
    pieces: int


def routes(services: Services) -> list:
    """The API's routes, for ``FastAPI(routes=...)`` (Gradio's ``launch(app_kwargs=...)``)."""
    router = APIRouter()

    def error(exc: BaseException) -> Response:
        api = as_api_error(exc)
        headers = {"WWW-Authenticate": "Bearer"} if api.status == 401 else None
        return JSONResponse(api.to_json(), status_code=api.status, headers=headers)

    @router.get("/v1/models")
    def list_models() -> Response:
        return JSONResponse(oa.model_list(model_ids(services)))

    @router.get("/v1/models/{model_id}")
    def get_model(model_id: str) -> Response:
        if model_id not in model_ids(services):
            return error(oa.not_found(f"no model {model_id!r}: GET /v1/models lists them", "model", "model_not_found"))
        return JSONResponse(oa.model_list([model_id])["data"][0])

    @router.post("/v1/chat/completions")
    async def chat_completions(request: Request) -> Response:
        try:
            req = oa.parse_chat_request(await read_json(request))
            await run_in_threadpool(check_chat, services, req)
        except Exception as exc:
            return error(exc)
        completion_id, created = f"chatcmpl-{uuid.uuid4().hex}", int(time.time())
        url = passage_url(str(request.base_url), req.kb)
        events = in_thread(lambda: answer_events(services, req))
        if not req.stream:
            try:
                done = await last(events)
            except Exception as exc:
                return error(exc)
            usage = oa.usage(0, done.pieces)
            return JSONResponse(oa.completion(completion_id, created, req.model, done.answer, url, done.notices, usage))
        try:
            first = await anext(events)  # errors before the first token still get their status
        except Exception as exc:
            await events.aclose()
            return error(exc)
        frames = sse(first, events, req, completion_id, created, url)
        return StreamingResponse(frames, media_type="text/event-stream", headers={"Cache-Control": "no-cache"})

    @router.post("/v1/embeddings")
    async def create_embeddings(request: Request) -> Response:
        try:
            req = oa.parse_embedding_request(await read_json(request))
            embedder = services.embedder
            if req.model != embedder.name:
                raise oa.not_found(
                    f"no embedding model {req.model!r}: the knowledge bases embed with {embedder.name!r}",
                    "model",
                    "model_not_found",
                )
            vectors = await run_in_threadpool(embedder.encode, req.inputs)
            tokens = sum(await run_in_threadpool(embedder.count_tokens, req.inputs))
        except Exception as exc:
            return error(exc)
        return JSONResponse(oa.embeddings(req.model, vectors, req.encoding_format, tokens))

    @router.post("/v1/kb/{name}/search")
    async def search(name: str, request: Request) -> Response:
        from ui.cli import search_results

        try:
            req = oa.parse_search_request(await read_json(request))
            check_kb(services, name, "name")
            kb = await run_in_threadpool(lambda: services.kb(name, create=False))
            found = await run_in_threadpool(search_results, kb, req.query, req.k, req.mode)
        except Exception as exc:
            return error(exc)
        return JSONResponse(found)

    @router.get(PASSAGE_PATH + "/{kb}/{chunk_id}")
    def passage(kb: str, chunk_id: str) -> Response:
        from ui.passages import passage_html

        try:
            check_kb(services, kb, "kb")
            page = passage_html(services.kb(kb, create=False), chunk_id)
        except Exception as exc:
            return error_page(exc)
        return HTMLResponse(page)

    @router.get(PASSAGE_PATH + "/{kb}/{chunk_id}/page.png")
    def passage_page(kb: str, chunk_id: str) -> Response:
        from store.passage_view import page_image

        try:
            check_kb(services, kb, "kb")
            image = page_image(services.kb(kb, create=False), chunk_id)
        except Exception as exc:
            return error_page(exc)
        return Response(image.png, media_type="image/png", headers={"Cache-Control": "private, max-age=300"})

    @router.get(PASSAGE_PATH + "/{kb}/{chunk_id}/file")
    def passage_file(kb: str, chunk_id: str) -> Response:
        from store.passage_view import passage_view
        from ui.passages import FILE_TYPES

        try:
            check_kb(services, kb, "kb")
            view = passage_view(services.kb(kb, create=False), chunk_id)
            if view.file is None:
                raise DocumentNotFound(view.file_problem or "the original file is not available")
        except Exception as exc:
            return error_page(exc)
        name = view.passage["document"]
        return FileResponse(
            view.file,
            media_type=FILE_TYPES.get(view.kind, "application/octet-stream"),
            headers={
                "Content-Disposition": f"inline; filename*=UTF-8''{quote(name, safe='')}",
                "X-Content-Type-Options": "nosniff",
            },
        )

    return list(router.routes)


# -- checks ------------------------------------------------------------------------------------


def error_page(exc: Exception) -> HTMLResponse:
    api = as_api_error(exc)
    return HTMLResponse(f"<p>{html.escape(api.message)}</p>", status_code=api.status)


def model_ids(services: Services) -> list[str]:
    """Chat models (bundled, exported, registered), then the embedder."""
    return list(dict.fromkeys(services.models() + [services.embedder.name]))


def check_kb(services: Services, name: str | None, param: str) -> None:
    """404 for a knowledge base that does not exist (the API never creates one)."""
    if name is None:
        return
    if name not in {b["name"] for b in services.knowledge_bases()}:
        raise oa.not_found(f"no knowledge base {name!r}", param, "kb_not_found")


def check_chat(services: Services, req: oa.ChatRequest) -> None:
    if req.model not in services.models():
        raise oa.not_found(f"no chat model {req.model!r}: GET /v1/models lists them", "model", "model_not_found")
    check_kb(services, req.kb, "kb")


def as_api_error(exc: BaseException) -> oa.ApiError:
    """What the caller sees of an exception: the library's message; a bug is logged, not shown."""
    if isinstance(exc, oa.ApiError):
        return exc
    if isinstance(exc, ModelNotFound):
        return oa.ApiError(404, str(exc), param="model", code="model_not_found")
    if isinstance(exc, DocumentNotFound):
        return oa.ApiError(404, str(exc), code="not_found")
    if isinstance(exc, KnowledgeBaseError):
        return oa.ApiError(400, str(exc), param="kb", code="knowledge_base_error")
    if isinstance(exc, RemoteTimeout):  # the remote model server (remote_url) failed: a gateway's statuses
        return oa.ApiError(504, str(exc), type="server_error", code="remote_timeout")
    if isinstance(exc, RemoteModelError):
        return oa.ApiError(502, str(exc), type="server_error", code="remote_model_error")
    if isinstance(exc, DomainsmithError):
        return oa.ApiError(400, str(exc))
    log.error("/v1 request failed", exc_info=exc)
    return oa.ApiError(500, "the server failed to answer; its log says why", type="server_error", code="server_error")


async def read_json(request) -> object:
    """The request's JSON body: 413 over ``MAX_BODY_BYTES``, 400 when it is not JSON."""
    too_long = oa.ApiError(413, f"the request body is over {MAX_BODY_BYTES:,} bytes", code="request_too_large")
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        raise too_long
    body = bytearray()
    async for piece in request.stream():
        body.extend(piece)
        if len(body) > MAX_BODY_BYTES:
            raise too_long
    try:
        return json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise oa.bad_request(f"the request body is not valid JSON: {exc}", code="invalid_json") from exc


def passage_url(base: str, kb: str | None) -> oa.PassageUrl:
    base = base.rstrip("/")
    return lambda chunk_id: f"{base}{PASSAGE_PATH}/{quote(kb or '', safe='')}/{quote(chunk_id, safe='')}"


# -- answering ---------------------------------------------------------------------------------


def answer_events(services: Services, req: oa.ChatRequest) -> Iterator[Token | Finished]:
    """``Assistant.ask`` for one request: the tokens, then ``Finished`` (runs in the worker thread)."""
    pieces: list[str] = []
    notices: list[str] = []
    for event in services.assistant.ask(req.question, req.history, req.options()):
        if isinstance(event, Token):
            pieces.append(event.text)
            yield event
        elif isinstance(event, Notice):
            notices.append(event.text)
        elif isinstance(event, Done):
            yield Finished(event.answer, "".join(pieces), notices, len(pieces))


async def in_thread(produce: Callable[[], Iterator]) -> AsyncIterator:
    """Iterate ``produce()`` in a thread of its own, from its first item to its end.

    A generator holding a lock (the runtime's) must be resumed and closed by the thread that took
    it; the thread closes it when the consumer stops early (a client gone), at the next item.
    """
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue = asyncio.Queue()
    stop = threading.Event()

    def put(kind: str, value: object = None) -> None:
        try:
            loop.call_soon_threadsafe(queue.put_nowait, (kind, value))
        except RuntimeError:  # the event loop is closed: the server is shutting down
            stop.set()

    def work() -> None:
        items = produce()
        try:
            for item in items:
                if stop.is_set():
                    break
                put("item", item)
            else:
                put("end")
        except BaseException as exc:  # handed to the consumer, which turns it into a response
            put("error", exc)
        finally:
            items.close()

    threading.Thread(target=work, name="v1-answer", daemon=True).start()
    try:
        while True:
            kind, value = await queue.get()
            if kind == "error":
                raise value
            if kind == "end":
                return
            yield value
    finally:
        stop.set()


async def last(events: AsyncIterator) -> Finished:
    done = None
    async for item in events:
        if isinstance(item, Finished):
            done = item
    if done is None:
        raise RuntimeError("the answer ended without its final event")
    return done


async def sse(
    first: Token | Finished,
    events: AsyncIterator,
    req: oa.ChatRequest,
    completion_id: str,
    created: int,
    url: oa.PassageUrl,
) -> AsyncIterator[str]:
    """The stream: role, content deltas, the final chunk (the check's verdict), usage, ``[DONE]``."""

    def frame(body: dict) -> str:
        return f"data: {json.dumps(body, ensure_ascii=False)}\n\n"

    yield frame(oa.chunk(completion_id, created, req.model, {"role": "assistant", "content": ""}))
    item = first
    try:
        while True:
            if isinstance(item, Token):
                yield frame(oa.chunk(completion_id, created, req.model, {"content": item.text}))
            elif isinstance(item, Finished):
                delta = oa.final_delta(item.answer, item.streamed, url, item.notices)
                yield frame(oa.chunk(completion_id, created, req.model, delta, finish_reason="stop"))
                if req.include_usage:
                    yield frame(oa.usage_chunk(completion_id, created, req.model, oa.usage(0, item.pieces)))
            item = await anext(events, None)
            if item is None:
                break
    except Exception as exc:  # after the status line: the error goes in the stream, as OpenAI sends it
        yield frame(as_api_error(exc).to_json())
    finally:
        await events.aclose()
    yield "data: [DONE]\n\n"
