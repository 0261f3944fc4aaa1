"""bench/api.py's servers and clients: ``/v1`` under uvicorn, llama-cpp-python's server, 8 clients at once.

``api_server`` serves ``ui.api.routes(services)`` (what ``ui.web.launch`` places before Gradio's
routes) with uvicorn in a thread of this process, on a free loopback port, no password set (the
app's default; its login guard then lets every request through). ``remote_server`` is the test
suite's ``llama_server`` (tests/remote_servers.py: subprocess and httpx only, no pytest).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import httpx

from assistant import prompting
from assistant.assistant import prompt_style
from store.bundled import CHAT_MODEL_NAME, chat_model_path
from tests.http_app import free_port
from tests.remote_servers import llama_server
from ui.services import Services

MODEL = CHAT_MODEL_NAME
REMOTE = "remote:" + MODEL
CLIENTS, STREAMING = 8, 2
FILLER = "Which chapter of the manual describes the standard library?"


@contextmanager
def api_server(services: Services, timeout: float = 60) -> Iterator[str]:
    """The app's ``/v1`` routes under uvicorn on a free loopback port; yields the base URL (``.../v1``)."""
    import uvicorn
    from fastapi import FastAPI

    from ui import api

    port = free_port()
    config = uvicorn.Config(FastAPI(routes=api.routes(services)), host="127.0.0.1", port=port, log_level="warning")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="bench-uvicorn", daemon=True)
    thread.start()
    deadline = time.monotonic() + timeout
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError(f"uvicorn did not start on port {port}")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        server.should_exit = True
        thread.join(30)


# llama_cpp.server calls llama.cpp from reused worker threads (anyio's pool), where libgomp's idle
# workers spin: on two busy cores its prompt evaluation took 2.3 times as long as the app's (23 s against
# 10 s to the first token, the same prompt). Passive waiting gives it the app's speed (a fresh thread per
# answer, ui.api.in_thread), so the figure is the remote path's overhead, not that stand-in's threading.
SERVER_ENV = {"OMP_WAIT_POLICY": "PASSIVE"}


@contextmanager
def remote_server(log: Path) -> Iterator[str]:
    """llama-cpp-python's server on the bundled GGUF, one generation thread; yields its base URL."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with llama_server(chat_model_path(), MODEL, log, env=SERVER_ENV) as url:
        yield url


def openai_client(base_url: str):
    import openai

    return openai.OpenAI(base_url=base_url, api_key="bench", max_retries=0, timeout=600)


def primer(services: Services, remote_url: str) -> tuple[Callable[[], None], Callable[[], None]]:
    """Two calls that leave the in-process runtime / the remote server with another prompt evaluated.

    The filler shares only the system prompt with a real question's prompt (Chat's prompt style for
    this model), so the next answer evaluates its own sources and question in full, on every path.
    """
    runtime = services.assistant.runtime
    messages = prompting.build_messages(FILLER, [], **prompting.style(prompt_style(runtime.loaded)))

    def local() -> None:
        list(runtime.stream_chat(messages, max_tokens=1))

    def remote() -> None:
        body = {"model": MODEL, "messages": messages, "max_tokens": 1, "temperature": 0.0}
        httpx.post(remote_url + "/chat/completions", json=body, timeout=120).raise_for_status()

    return local, remote


def concurrent_requests(base_url: str, kb: str, questions: list[str]) -> list[dict]:
    """``CLIENTS`` clients at once on ``/v1`` (the first ``STREAMING`` streaming): status and time of each."""
    import openai

    start = threading.Barrier(CLIENTS)

    def one(i: int) -> dict:
        stream = i < STREAMING
        request = {
            "model": MODEL,
            "messages": [{"role": "user", "content": questions[i % len(questions)]}],
            "extra_body": {"kb": kb},
        }
        client = openai_client(base_url)
        start.wait()
        began = time.perf_counter()
        try:
            if stream:
                chunks = list(client.chat.completions.create(**request, stream=True))
                finish = next(
                    (c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason), None
                )
                if finish != "stop":
                    raise RuntimeError(f"the stream ended without its final chunk ({len(chunks)} chunks)")
                detail = f"{len(chunks)} chunks, finish_reason {finish}"
            else:
                completion = client.chat.completions.create(**request)
                detail = f"{len(completion.choices[0].message.content or '')} characters"
            status = 200
        except openai.APIStatusError as exc:
            status, detail = exc.status_code, str(exc)[:120]
        except Exception as exc:  # a bench counts every failure as an error
            status, detail = "error", f"{type(exc).__name__}: {exc}"[:120]
        return {
            "client": i + 1,
            "stream": stream,
            "status": status,
            "seconds": time.perf_counter() - began,
            "detail": detail,
        }

    with ThreadPoolExecutor(CLIENTS) as pool:
        return list(pool.map(one, range(CLIENTS)))
