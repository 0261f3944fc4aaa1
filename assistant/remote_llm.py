"""Generation on a remote OpenAI-compatible server: the model ``remote:NAME`` of Chat's pickers and ``/v1``.

Only the reply is generated remotely: retrieval, the prompt (``assistant.prompting``), the
citation check and abstention stay Domainsmith's, so an answer through ``RemoteRuntime`` is
comparable with one from the in-process ``LlamaRuntime`` (same messages, same sampling:
``temperature``, ``max_tokens``, ``seed``). Any server that speaks ``POST /chat/completions``
with ``stream: true`` works: vLLM, llama.cpp's ``llama-server``, llama-cpp-python's server,
Ollama (``http://host:11434/v1``).

Only the standard request fields are sent, so each server samples with its own defaults beyond
them (llama-cpp-python's server, like the in-process runtime, uses a repeat penalty of 1.1;
llama.cpp's ``llama-server`` uses none): greedy answers are identical only where those agree.

Failures are ``RemoteModelError`` (``RemoteTimeout`` for a time-out) with a message naming the
server (its address only: never the key): down, an HTTP error, a reply that is not JSON, a stream
cut before its end. Connecting is retried (``remote_retries``, with a short back-off) on
connection errors and 502/503/504 answers; once the server has answered, nothing is sent again,
so a reply is never generated twice. ``count_tokens`` estimates (three UTF-8 bytes per token,
rounded up: more than BPE tokenizers need for prose) so the prompt's token budget errs on the
safe side without asking the server.
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import httpx

from store.errors import ModelNotFound, RemoteModelError, RemoteTimeout
from store.settings import Settings

log = logging.getLogger(__name__)

PREFIX = "remote:"
CONNECT_TIMEOUT = 10.0  # seconds; at most remote_timeout
RETRY_STATUSES = (502, 503, 504)  # a proxy or a server still loading its model: worth another try
BYTES_PER_TOKEN = 3


def is_remote(spec: str | None) -> bool:
    """True for a model spec that names a remote model (``remote:NAME``)."""
    return bool(spec) and spec.startswith(PREFIX)


@dataclass(frozen=True)
class RemoteModel:
    """A model on the remote server: ``name`` as pickers show it, ``model`` as the server knows it."""

    name: str
    model: str
    context: int


class RemoteRuntime:
    """Streams chat replies from an OpenAI-compatible server; safe to use from several threads."""

    def __init__(
        self,
        base_url: str,
        *,
        model: str | None = None,
        api_key: str | None = None,
        timeout: float = 60.0,
        retries: int = 2,
        context: int = 4096,
        backoff: float = 0.5,
    ):
        url = httpx.URL(base_url.rstrip("/"))
        self.base_url = str(url)
        self.where = str(url.copy_with(username=None, password=None, query=None))  # for messages and logs
        self.default_model = model
        self.timeout = timeout
        self.retries = retries
        self.context = context
        self.backoff = backoff
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._client = httpx.Client(
            headers=headers,
            timeout=httpx.Timeout(timeout, connect=min(CONNECT_TIMEOUT, timeout)),
            follow_redirects=False,
        )

    @classmethod
    def from_settings(cls, settings: Settings) -> RemoteRuntime | None:
        """The runtime ``remote_url`` configures, or None when it is not set."""
        if not settings.remote_url:
            return None
        return cls(
            settings.remote_url,
            model=settings.remote_model,
            api_key=settings.remote_api_key,
            timeout=settings.remote_timeout,
            retries=settings.remote_retries,
            context=settings.chat_context,
        )

    def choices(self) -> list[str]:
        """The picker values of the configured remote model (none when ``remote_model`` is unset)."""
        return [PREFIX + self.default_model] if self.default_model else []

    def model(self, spec: str) -> RemoteModel:
        """The remote model ``remote:NAME`` names (``remote:`` alone: the configured ``remote_model``)."""
        name = spec[len(PREFIX) :].strip() if is_remote(spec) else spec.strip()
        name = name or self.default_model or ""
        if not name:
            raise ModelNotFound("name the remote model: remote:NAME (or set remote_model)")
        return RemoteModel(PREFIX + name, name, self.context)

    def count_tokens(self, text: str) -> int:
        """An over-estimate of ``text``'s tokens (see the module's docstring)."""
        return math.ceil(len(text.encode("utf-8")) / BYTES_PER_TOKEN)

    def stream_chat(
        self,
        messages: Sequence[dict],
        *,
        max_tokens: int,
        temperature: float = 0.0,
        seed: int = 0,
        model: RemoteModel | None = None,
    ) -> Iterator[str]:
        """Yield the reply piece by piece as the server streams it; ``RemoteModelError`` on any failure."""
        model = model or self.model(PREFIX)
        body = {
            "model": model.model,
            "messages": list(messages),
            "max_tokens": max_tokens,
            "temperature": temperature,
            "seed": seed,
            "stream": True,
        }
        response = self._send(body)
        try:
            yield from self._pieces(response)
        finally:
            response.close()  # a caller that stops early (a client gone) ends the generation there

    def close(self) -> None:
        self._client.close()

    # -- the request -----------------------------------------------------------------------

    def _send(self, body: dict) -> httpx.Response:
        """The streamed response once the server accepted the request; retried only until it answered."""
        url = f"{self.base_url}/chat/completions"
        problem = ""
        attempts = 0
        for attempt in range(self.retries + 1):
            attempts = attempt + 1
            if attempt:
                time.sleep(self.backoff * 2 ** (attempt - 1))
                log.info("remote model server %s: attempt %d of %d", self.where, attempt + 1, self.retries + 1)
            try:
                response = self._client.send(self._client.build_request("POST", url, json=body), stream=True)
            except (httpx.ConnectError, httpx.ConnectTimeout, httpx.RemoteProtocolError) as exc:
                problem = f"cannot reach the remote model server at {self.where} ({_reason(exc)})"
                continue
            except httpx.TimeoutException as exc:
                raise RemoteTimeout(
                    f"the remote model server at {self.where} did not answer within {self.timeout:g} s (remote_timeout)"
                ) from exc
            except httpx.HTTPError as exc:
                raise RemoteModelError(f"the remote model server at {self.where} failed: {_reason(exc)}") from exc
            if response.status_code == 200:
                return response
            problem = self._http_error(response)
            if response.status_code not in RETRY_STATUSES:
                break
        raise RemoteModelError(problem + (f", after {attempts} attempts" if attempts > 1 else ""))

    def _http_error(self, response: httpx.Response) -> str:
        """What a non-200 answer says: OpenAI's ``error.message`` when it is there, else its first words."""
        try:
            text = response.read().decode("utf-8", "replace")
        except httpx.HTTPError:
            text = ""
        finally:
            response.close()
        detail = _error_message(text) or " ".join(text.split())[:200] or response.reason_phrase
        hint = " (check remote_api_key)" if response.status_code in (401, 403) else ""
        return f"the remote model server at {self.where} answered HTTP {response.status_code}: {detail}{hint}"

    # -- the stream ------------------------------------------------------------------------

    def _pieces(self, response: httpx.Response) -> Iterator[str]:
        kind = response.headers.get("content-type", "").split(";")[0].strip().lower()
        if kind == "application/json":  # a server that ignores "stream": the whole reply at once
            yield self._whole(response)
            return
        if kind not in ("text/event-stream", ""):
            text = " ".join(response.read().decode("utf-8", "replace").split())[:120]
            raise RemoteModelError(
                f"the remote model server at {self.where} answered {kind}, not a stream of JSON events: {text!r}"
            )
        pieces = 0
        ended = False
        try:
            for line in response.iter_lines():
                if not line or line.startswith(":") or line.startswith(("event:", "id:", "retry:")):
                    continue  # blank lines, keep-alive comments, other SSE fields
                if not line.startswith("data:"):
                    raise self._not_json(line)
                data = line[5:].strip()
                if data == "[DONE]":
                    ended = True
                    break
                frame = self._frame(data)
                choices = frame.get("choices") or []  # a usage frame has none
                choice = choices[0] if choices and isinstance(choices[0], dict) else {}
                delta = choice.get("delta") or {}
                piece = delta.get("content") if isinstance(delta, dict) else None
                if isinstance(piece, str) and piece:
                    pieces += 1
                    yield piece
                if choice.get("finish_reason"):
                    ended = True
        except httpx.TimeoutException as exc:
            raise RemoteTimeout(
                f"the remote model server at {self.where} sent nothing for {self.timeout:g} s "
                f"(remote_timeout) after {pieces} pieces of the reply"
            ) from exc
        except httpx.HTTPError as exc:
            raise self._cut(pieces, _reason(exc)) from exc
        if not ended:
            raise self._cut(pieces, "the stream ended without its last event")

    def _whole(self, response: httpx.Response) -> str:
        try:
            frame = self._frame(response.read().decode("utf-8", "replace"))
        except httpx.TimeoutException as exc:
            raise RemoteTimeout(f"the remote model server at {self.where} timed out (remote_timeout)") from exc
        except httpx.HTTPError as exc:
            raise self._cut(0, _reason(exc)) from exc
        try:
            content = frame["choices"][0]["message"]["content"]
        except (KeyError, IndexError, TypeError):
            content = None
        if not isinstance(content, str):
            raise RemoteModelError(f"the remote model server at {self.where} sent a reply without a message")
        return content

    def _frame(self, data: str) -> dict:
        try:
            frame = json.loads(data)
        except ValueError:
            raise self._not_json(data) from None
        if not isinstance(frame, dict):
            raise self._not_json(data)
        if "error" in frame:
            message = _error_message(data) or str(frame["error"])[:200]
            raise RemoteModelError(f"the remote model server at {self.where} failed while answering: {message}")
        return frame

    def _not_json(self, text: str) -> RemoteModelError:
        return RemoteModelError(
            f"the remote model server at {self.where} sent something that is not JSON: {text[:80]!r}"
        )

    def _cut(self, pieces: int, reason: str) -> RemoteModelError:
        return RemoteModelError(
            f"the remote model server at {self.where} cut the reply off after {pieces} pieces ({reason}); "
            "nothing was saved, ask again"
        )


def _error_message(text: str) -> str | None:
    """``error.message`` (or a string ``error``, or ``detail``) of an error body in JSON, if it is one."""
    try:
        body = json.loads(text)
    except ValueError:
        return None
    if not isinstance(body, dict):
        return None
    error = body.get("error", body.get("detail"))
    if isinstance(error, dict):
        error = error.get("message")
    return str(error)[:300] if error else None


def _reason(exc: BaseException) -> str:
    return str(exc) or type(exc).__name__
