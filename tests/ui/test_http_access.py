"""Access over plain HTTP: with a password set, no route serves anything to a stranger, and the
app listens on 127.0.0.1 only unless told otherwise.

The real app runs once for the module (``python app.py --port PORT`` with ``DOMAINSMITH_PASSWORD``).
Routes are enumerated from Gradio's own FastAPI app, so a route a Gradio upgrade adds is checked
too. Gradio leaves the routes without its ``login_check`` dependency open (``/openapi.json``,
``/gradio_api/cancel``, ``/gradio_api/heartbeat/...``...) and embeds its API description in the
login page; ``ui/access.py`` closes both (``ui/web.py`` installs it as middleware), and these
tests check that it does.
"""

from __future__ import annotations

import re
from pathlib import Path
from types import SimpleNamespace

import httpx
import pytest

from tests import reliability_log
from tests.http_app import listening_addresses, non_loopback_addresses, serve

PASSWORD = "correct horse battery staple"
SECRET_KB = "secret-merger-kb"


@pytest.fixture(scope="module")
def app(tmp_path_factory, embedder):
    from store.knowledge_base import KnowledgeBase
    from store.settings import Settings

    home = tmp_path_factory.mktemp("http-access") / "home"
    KnowledgeBase.open(Settings.load(home=home, env={}), SECRET_KB, embedder).close()
    env = {"DOMAINSMITH_PASSWORD": PASSWORD, "GRADIO_TEMP_DIR": str(home / "gradio-tmp")}
    with serve(home, env=env) as running:
        yield SimpleNamespace(url=running.url, port=running.port, home=home)


def gradio_routes() -> list[tuple[str, str, bool]]:
    """(method, path template, whether Gradio itself checks the login) of every route Gradio defines."""
    import gradio as gr
    from gradio.routes import App

    with gr.Blocks() as blocks:
        box = gr.Textbox()
        box.submit(lambda text: text, box, box, api_name="search")
    routes: list[tuple[str, str, bool]] = []

    def walk(items, prefix: str = "") -> None:
        for route in items:
            if hasattr(route, "original_router"):  # FastAPI's included router
                walk(route.original_router.routes, prefix + getattr(route.include_context, "prefix", ""))
            elif hasattr(route, "routes") and hasattr(route, "path"):  # a mount
                walk(route.routes, prefix + route.path)
            elif hasattr(route, "path"):
                methods = sorted(getattr(route, "methods", None) or {"GET"})
                method = next((m for m in methods if m != "HEAD"), methods[0])
                dependant = getattr(route, "dependant", None)
                checks = (
                    any(getattr(d.call, "__name__", "") == "login_check" for d in dependant.dependencies)
                    if dependant is not None
                    else False
                )
                routes.append((method, prefix + route.path, checks))

    walk(App.create_app(blocks).routes)
    return routes


def concrete(path: str, secret_file: Path) -> str:
    """A request path for a route template: file routes ask for the database itself."""
    path = path.replace("{path_or_url:path}", str(secret_file)).replace("{path:path}", str(secret_file).lstrip("/"))
    path = path.replace("{api_name}", "search").replace("{environment}", "client")
    return re.sub(r"\{[^}]+\}", "x", path)


def is_public(path: str) -> bool:
    from ui.access import is_public as public

    return public(path)


def status_of(client: httpx.Client, method: str, path: str) -> int:
    """The status only: streaming routes are closed without reading their body."""
    kwargs = {}
    if method == "POST":
        kwargs = {"json": {"data": ["x"], "fn_index": 0, "session_hash": "s", "event_id": "e", "prompt": "x"}}
    with client.stream(method, path, **kwargs) as response:
        return response.status_code


def test_every_route_refuses_a_stranger(app):
    secret = app.home / "domainsmith.db"
    routes = gradio_routes()
    assert len(routes) > 60 and ("POST", "/gradio_api/upload", True) in routes
    answered: dict[str, int] = {}
    unexpected: dict[str, int] = {}  # routes Gradio says it guards, answering anyway
    with httpx.Client(base_url=app.url, timeout=15, follow_redirects=False) as client:
        for method, template, gradio_checks in routes:
            if is_public(template) or template.startswith("/login"):
                continue
            status = status_of(client, method, concrete(template, secret))
            if status not in (401, 403):
                answered[f"{method} {template}"] = status
                if gradio_checks:
                    unexpected[f"{method} {template}"] = status
    reliability_log.record("access", routes=len(routes), open_without_login=sorted(answered))
    assert not unexpected, f"routes that Gradio guards, answering without a login: {unexpected}"
    assert not answered, f"routes that answer without a login: {answered}"


def test_file_download_and_upload_refused_without_login(app):
    secret = app.home / "domainsmith.db"
    with httpx.Client(base_url=app.url, timeout=15) as client:
        for path in (
            f"/gradio_api/file={secret}",
            f"/gradio_api/file={secret.parent / 'app.log'}",
            "/gradio_api/file=/etc/passwd",
        ):
            response = client.get(path)
            assert (
                response.status_code == 401 and b"SQLite" not in response.content and b"root:" not in response.content
            )
        response = client.post("/gradio_api/upload", files={"files": ("evil.txt", b"planted by a stranger")})
        assert response.status_code == 401
        response = client.post("/gradio_api/call/upload", json={"data": [SECRET_KB, None, None]})
        assert response.status_code == 401
    uploaded = (
        [p for p in (app.home / "gradio-tmp").rglob("*") if p.is_file()] if (app.home / "gradio-tmp").exists() else []
    )
    assert not [p for p in uploaded if p.read_bytes() == b"planted by a stranger"]
    assert not any((app.home / "uploads").rglob("evil*"))


def test_login_page_reveals_nothing(app):
    page = httpx.get(app.url + "/").text
    assert '"auth_required":true' in page and '"components":[]' in page
    # Gradio embeds the API description (endpoints, dropdown choices) in its index page.
    leaked = [word for word in (SECRET_KB, '"named_endpoints"', "Your documents, your model") if word in page]
    assert not leaked, leaked


def test_login_works_and_files_stay_private_after_it(app):
    with httpx.Client(base_url=app.url, timeout=15) as client:
        assert client.post("/login", data={"username": "admin", "password": "wrong"}).status_code == 400
        assert client.get("/config").status_code == 401
        assert client.post("/login", data={"username": "admin", "password": PASSWORD}).status_code == 200
        config = client.get("/config")
        assert config.status_code == 200 and config.json()["components"]
        assert client.get("/gradio_api/info").status_code == 200
        assert SECRET_KB in client.get("/").text  # the full app, once logged in
        for path in (f"/gradio_api/file={app.home / 'domainsmith.db'}", "/gradio_api/file=/etc/passwd"):
            response = client.get(path)
            assert response.status_code in (403, 404) and b"root:" not in response.content


def test_binds_to_loopback_only_by_default(app):
    assert listening_addresses(app.port) == {"127.0.0.1"}
    for address in non_loopback_addresses():
        with pytest.raises(httpx.ConnectError):
            httpx.get(f"http://{address}:{app.port}/", timeout=5)
    reliability_log.record("access", bind=sorted(listening_addresses(app.port)))
