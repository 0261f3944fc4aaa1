"""With a password set, refuse every HTTP request that is not logged in (Gradio leaves some open).

Gradio checks the login on its pages, API calls, uploads and file downloads, but not on every
route: ``/openapi.json``, ``/gradio_api/app_id``, ``/gradio_api/token``, ``/gradio_api/user``,
``/gradio_api/cancel``, ``/gradio_api/reset``, ``/gradio_api/stream/...``,
and ``/gradio_api/heartbeat/...`` answer anyone. This ASGI middleware answers 401 to any
request without Gradio's login cookie, except what the login page itself needs (the page, its
scripts, styles and icons, the login form's POST) and ``/gradio_api/startup-events``, which
``launch()`` calls on itself before serving (it answers only true or false).

The login page itself is Gradio's index page, which embeds the app's whole API description
(``window.gradio_api_info``: endpoint names, parameters, dropdown choices such as knowledge base
and model names) even for a visitor who is not logged in; that part of the page is blanked.

Wire it in with ``launch(..., app_kwargs={"middleware": [login_required()]})``: it reads the
login state from the Gradio app it wraps, so it does nothing when no password is set.

The OpenAI-compatible API (``/v1/...``, ``ui.api``) is for programs, not browsers: there a
request passes with ``Authorization: Bearer KEY`` for a key that ``api_key_valid`` accepts
(``store.api_keys``: created by ``python app.py keys create``, not revoked), or with the login
cookie; otherwise it gets 401 in OpenAI's error shape.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from http.cookies import CookieError, SimpleCookie
from typing import Any

Scope = dict[str, Any]
ASGIApp = Callable[[Scope, Callable, Callable], Awaitable[None]]

# What the browser needs to draw the login form and send it, and nothing that holds data.
PUBLIC_PATHS = frozenset(
    {
        "/",
        "/login",
        "/login/",
        "/logout",
        "/favicon.ico",
        "/theme.css",
        "/gradio_api/theme.css",
        "/robots.txt",
        "/manifest.json",
        "/pwa_icon",
        "/config",
        "/config/",
        "/gradio_api/login_check",
        "/gradio_api/login_check/",
        "/gradio_api/startup-events",  # launch() calls it itself and refuses to start on a 401
    }
)
PUBLIC_PREFIXES = ("/assets/", "/static/", "/svelte/", "/pwa_icon/")
LOGIN_PAGES = frozenset({"/"})
_API_INFO = re.compile(rb"window\.gradio_api_info = .*?;</script>", re.DOTALL)


def is_public(path: str) -> bool:
    """True for the login page and its assets. ``/config`` refuses by itself (401) until login."""
    return path in PUBLIC_PATHS or path.startswith(PUBLIC_PREFIXES)


class LoginRequired:
    """ASGI middleware: 401 for requests without a valid Gradio login when the app has a password."""

    def __init__(self, app: ASGIApp, api_key_valid: Callable[[str], bool] | None = None):
        self.app = app
        self.api_key_valid = api_key_valid

    async def __call__(self, scope: Scope, receive: Callable, send: Callable) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        gradio_app = scope.get("app")
        if not _guarded(gradio_app) or _logged_in(scope, gradio_app):
            await self.app(scope, receive, send)
            return
        path = _path(scope)
        if is_api(path) and scope["type"] == "http":
            if self._key_accepted(scope):
                await self.app(scope, receive, send)
            else:
                await _refuse(send, API_UNAUTHORIZED, [(b"www-authenticate", b"Bearer")])
            return
        if path in LOGIN_PAGES and scope["type"] == "http":
            await self.app(scope, receive, _without_api_info(send))
            return
        if is_public(path):
            await self.app(scope, receive, send)
            return
        if scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 1008})
            return
        await _refuse(send, b'{"detail":{"error":"Not authenticated"}}')

    def _key_accepted(self, scope: Scope) -> bool:
        key = _bearer(scope)
        return bool(key) and self.api_key_valid is not None and self.api_key_valid(key)


API_PREFIX = "/v1/"
API_UNAUTHORIZED = (
    b'{"error":{"message":"this server needs an API key: send Authorization: Bearer KEY '
    b'(python app.py keys create NAME)","type":"invalid_request_error","param":null,"code":"invalid_api_key"}}'
)


def is_api(path: str) -> bool:
    return path.startswith(API_PREFIX) or path == API_PREFIX.rstrip("/")


def _bearer(scope: Scope) -> str:
    for name, value in scope.get("headers", ()):
        if name == b"authorization":
            scheme, _, token = value.decode("latin-1").partition(" ")
            return token.strip() if scheme.lower() == "bearer" else ""
    return ""


async def _refuse(send: Callable, body: bytes, headers: list | None = None) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": 401,
            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
            + (headers or []),
        }
    )
    await send({"type": "http.response.body", "body": body})


def _guarded(gradio_app: Any) -> bool:
    """Whether the app has a login at all (no password set: nothing to guard)."""
    return getattr(gradio_app, "auth", None) is not None or getattr(gradio_app, "auth_dependency", None) is not None


def _path(scope: Scope) -> str:
    path, root = scope.get("path", ""), scope.get("root_path", "")
    if root and path.startswith(root):
        path = path[len(root) :] or "/"
    return path


def _without_api_info(send: Callable) -> Callable:
    """Wrap ``send``: buffer the page, replace the embedded API description by ``{}``."""
    start: dict = {}
    body = bytearray()

    async def wrapped(message: dict) -> None:
        if message["type"] == "http.response.start":
            start.update(message)
            return
        if message["type"] != "http.response.body":
            await send(message)
            return
        body.extend(message.get("body", b""))
        if message.get("more_body"):
            return
        page = _API_INFO.sub(b"window.gradio_api_info = {};</script>", bytes(body))
        headers = [(k, v) for k, v in start.get("headers", []) if k.lower() != b"content-length"]
        await send({**start, "headers": headers + [(b"content-length", str(len(page)).encode())]})
        await send({"type": "http.response.body", "body": page})

    return wrapped


def _logged_in(scope: Scope, gradio_app: Any) -> bool:
    cookies = SimpleCookie()
    for name, value in scope.get("headers", ()):
        if name == b"cookie":
            try:
                cookies.load(value.decode("latin-1"))
            except CookieError:
                return False
    cookie_id = getattr(gradio_app, "cookie_id", "")
    tokens = getattr(gradio_app, "tokens", {})
    for name in (f"access-token-{cookie_id}", f"access-token-unsecure-{cookie_id}"):
        morsel = cookies.get(name)
        if morsel is not None and morsel.value in tokens:
            return True
    return False


def login_required(api_key_valid: Callable[[str], bool] | None = None):
    """The middleware entry for ``FastAPI(middleware=[...])`` (Gradio's ``launch(app_kwargs=...)``);
    ``api_key_valid`` says whether a bearer key opens ``/v1``."""
    from starlette.middleware import Middleware

    return Middleware(LoginRequired, api_key_valid=api_key_valid)
