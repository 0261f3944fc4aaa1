"""Real OpenAI-compatible servers on loopback ports, for the remote backend's tests (and benches).

- ``llama_server``: llama-cpp-python's own server (``python -m llama_cpp.server``, the ``server``
  extra) serving a GGUF in a child process, started and stopped around a block.
- ``FlakyServer``: a small stdlib HTTP server in a thread whose first path segment chooses how it
  misbehaves (``/error/v1``: HTTP 500, ``/cut/v1``: a stream cut half-way, ...), counting requests.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx

from tests.http_app import free_port


@contextmanager
def llama_server(
    model: Path, alias: str, log: Path, context: int = 4096, timeout: float = 90, env: dict[str, str] | None = None
) -> Iterator[str]:
    """llama-cpp-python's server on a free loopback port; yields its base URL (``http://127.0.0.1:PORT/v1``).

    ``env``: variables set for the server beside this process's own (bench/api.py sets one).
    """
    port = free_port()
    command = [sys.executable, "-m", "llama_cpp.server", "--model", str(model), "--model_alias", alias]
    command += ["--host", "127.0.0.1", "--port", str(port), "--n_ctx", str(context), "--n_threads", "1"]
    # llama_cpp.server keeps every prompt token's logits by default (for logprobs): about a second more
    # to the first token of a 1,000-token prompt here, and a copy of the vocabulary's logits per token.
    # Servers in use (llama.cpp's llama-server, vLLM, Ollama) compute the last token's only.
    command += ["--logits_all", "False", "--verbose", "False"]
    with log.open("wb") as out:
        full_env = {**os.environ, **env} if env else None
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=full_env)
    base = f"http://127.0.0.1:{port}/v1"
    try:
        deadline = time.monotonic() + timeout
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"llama_cpp.server exited with {process.returncode}:\n{log.read_text()[-2000:]}")
            try:
                if httpx.get(base + "/models", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"llama_cpp.server not ready after {timeout} s:\n{log.read_text()[-2000:]}")
            time.sleep(0.2)
        yield base
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


REPLY = ["The seal ", "is replaced ", "every 4,000 hours ", "[1]."]


def frame(content: str | None = None, finish: str | None = None) -> bytes:
    delta = {"content": content} if content is not None else {}
    body = {"object": "chat.completion.chunk", "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}
    return f"data: {json.dumps(body)}\n\n".encode()


class _Handler(BaseHTTPRequestHandler):
    server: FlakyServer

    def log_message(self, *args) -> None:  # quiet
        pass

    def do_GET(self) -> None:
        self._send(200, "application/json", json.dumps({"object": "list", "data": []}).encode())

    def do_POST(self) -> None:
        behaviour = self.path.strip("/").split("/")[0]
        length = int(self.headers.get("content-length") or 0)
        self.server.requests[behaviour] += 1
        self.server.bodies.append(json.loads(self.rfile.read(length) or b"{}"))
        self.server.headers.append(dict(self.headers))
        getattr(self, "_" + behaviour.replace("-", "_"))()

    def _send(self, status: int, kind: str, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _start_stream(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.end_headers()

    # behaviours -------------------------------------------------------------------------

    def _ok(self) -> None:
        self._start_stream()
        self.wfile.write(b": ping\n\n" + b"".join(frame(p) for p in REPLY) + frame(finish="stop") + b"data: [DONE]\n\n")

    def _error(self) -> None:
        body = {"error": {"message": "the model crashed", "type": "server_error"}}
        self._send(500, "application/json", json.dumps(body).encode())

    def _html(self) -> None:
        self._send(200, "text/html", b"<html><body>502 Bad Gateway</body></html>")

    def _garbage(self) -> None:
        self._start_stream()
        self.wfile.write(frame("The seal ") + b"data: {not json\n\n")

    def _cut(self) -> None:  # HTTP/1.0: the connection closes where the stream stops
        self._start_stream()
        self.wfile.write(b"".join(frame(p) for p in REPLY[:2]))

    def _cut_chunked(self) -> None:  # HTTP/1.1 chunked, closed inside a chunk
        self.protocol_version = "HTTP/1.1"
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        first = frame(REPLY[0])
        self.wfile.write(b"%x\r\n%s\r\n" % (len(first), first))
        self.wfile.write(b"400\r\n" + frame(REPLY[1]))
        self.wfile.flush()
        self.close_connection = True

    def _slow(self) -> None:
        self._start_stream()
        self.wfile.write(frame(REPLY[0]))
        self.wfile.flush()
        time.sleep(self.server.slow_seconds)

    def _slow_start(self) -> None:
        time.sleep(self.server.slow_seconds)
        self._ok()

    def _busy_once(self) -> None:  # 503 the first time, then a good answer
        if self.server.requests["busy-once"] == 1:
            self._send(503, "application/json", b'{"error": {"message": "loading the model"}}')
        else:
            self._ok()

    def _auth(self) -> None:
        self._send(401, "application/json", b'{"error": {"message": "invalid api key"}}')


class FlakyServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, slow_seconds: float = 2.0):
        super().__init__(("127.0.0.1", 0), _Handler)
        self.slow_seconds = slow_seconds
        self.requests: Counter[str] = Counter()
        self.bodies: list[dict] = []
        self.headers: list[dict] = []

    def handle_error(self, request, client_address) -> None:
        """Quiet: a client that times out and goes away (the slow behaviours) breaks the pipe on purpose."""

    def url(self, behaviour: str) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/{behaviour}/v1"


@contextmanager
def flaky_server(slow_seconds: float = 2.0) -> Iterator[FlakyServer]:
    server = FlakyServer(slow_seconds)
    thread = threading.Thread(target=server.serve_forever, name="flaky-server", daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
