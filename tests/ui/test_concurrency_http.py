"""Concurrency through the real HTTP interface: two chats stream while an upload is ingested and
searches run, against ``python app.py`` on loopback, bounded in count and time.

Relies on the web app's named endpoints (``gradio_client`` on ``/gradio_api``):
``/ask`` (message, history, kb, model, use_kb, ...), ``/search`` (kb, query, mode) and ``/upload``
(kb, files, folder). Afterwards: no request failed, the answers cite the right document and page,
the upload is searchable, ``KnowledgeBase.check()`` is clean and the documents committed before
are intact.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor, wait
from pathlib import Path

import pytest

from tests import factories as f
from tests import reliability_log
from tests.fault_tools import lost, snapshot, write_procedures
from tests.http_app import serve

KB = "plant"
CHATS = [("What trips the journal bearing alarm?", 2), ("How often must the inlet guide vanes be inspected?", 1)]
SEARCHES = [
    "journal bearing alarm",
    "inlet guide vanes erosion",
    "impeller wear ring clearance",
    "exhaust diffuser Inconel",
    "blade tip clearance feeler gauge",
    "tighten fitting up-102",
]
DEADLINE_S = 300


@pytest.fixture(scope="module")
def served(tmp_path_factory, embedder):
    """The app over a knowledge base holding a turbine manual (PDF) and a pump handbook."""
    from store.knowledge_base import KnowledgeBase
    from store.settings import Settings

    root = tmp_path_factory.mktemp("concurrency")
    home, docs = root / "home", root / "docs"
    docs.mkdir()
    f.make_pdf(docs / "turbine.pdf", pages=4)
    f.make_markdown(docs / "pump.md")
    settings = Settings.load(home=home, env={})
    with KnowledgeBase.open(settings, KB, embedder) as kb:
        list(kb.add([docs]))
        before = snapshot(kb)
    uploads = write_procedures(root / "uploads", "up", files=3, paragraphs=6)
    with serve(home, env={"DOMAINSMITH_MAX_TOKENS": "96"}) as app:
        yield app, settings, before, sorted(uploads.iterdir())


def ask(url: str, question: str) -> tuple[list, int]:
    """The final (chat history, sources markdown) and how many streamed updates arrived."""
    from gradio_client import Client

    job = Client(url, verbose=False).submit(question, [], KB, "SmolLM2-135M-Instruct", True, api_name="/ask")
    result = job.result(timeout=DEADLINE_S)
    return result, len(job.outputs())


def upload(url: str, files: list[Path]) -> str:
    from gradio_client import Client, handle_file

    status, _table = Client(url, verbose=False).predict(
        KB, [handle_file(str(p)) for p in files], None, api_name="/upload"
    )
    return status


def search(url: str, queries: list[str]) -> list[list]:
    from gradio_client import Client

    client = Client(url, verbose=False)
    return [client.predict(KB, query, "hybrid", api_name="/search") for query in queries]


def rows(table) -> list[list]:
    """A Dataframe output as rows (gradio_client gives {"headers", "data"})."""
    return table["data"] if isinstance(table, dict) else table


def test_two_chats_stream_while_ingesting_and_searching(served, embedder):
    app, settings, before, files = served
    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=5) as pool:
        chats = [pool.submit(ask, app.url, question) for question, _ in CHATS]
        time.sleep(1.0)  # the chats are queued first, so the upload and searches overlap them
        uploading = pool.submit(upload, app.url, files)
        searching = [pool.submit(search, app.url, SEARCHES[:3]), pool.submit(search, app.url, SEARCHES[3:5])]
        done, pending = wait([*chats, uploading, *searching], timeout=DEADLINE_S)
    seconds = time.monotonic() - started
    assert not pending, f"requests still running after {DEADLINE_S} s"
    errors = [repr(future.exception()) for future in done if future.exception() is not None]
    served_count = len(CHATS) + 1 + sum(len(future.result()) for future in searching if future.exception() is None)
    reliability_log.record(
        "concurrency",
        requests=served_count,
        errors=len(errors),
        seconds=round(seconds, 1),
        chats=len(CHATS),
        uploads=1,
        searches=5,
    )
    assert not errors, errors

    for future, (question, page) in zip(chats, CHATS):
        (history, sources, *_), updates = future.result()
        assert updates > 2, "the answer streamed in several updates"
        assert history[-1]["role"] == "assistant" and history[-1]["content"], history
        assert f"turbine.pdf — <span>p. {page}</span>" in sources, (question, history[-1]["content"], sources)
    assert "3 added" in uploading.result(), uploading.result()
    for result, query in zip([r for future in searching for r in future.result()], SEARCHES):
        hits = rows(result)
        assert hits, query
    # After the upload, its text is found too.
    assert rows(search(app.url, [SEARCHES[5]])[0])[0][1] == "up001.txt"

    from store.knowledge_base import KnowledgeBase

    with KnowledgeBase.open(settings, KB, embedder) as kb:
        assert kb.check()["documents"] == 2 + len(files)
        missing = lost(before, kb)
    reliability_log.record(
        "fault", name="concurrent chats, ingestion and searches over HTTP", survived=missing == 0, lost=missing
    )
    assert missing == 0
