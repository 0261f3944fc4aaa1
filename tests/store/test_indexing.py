"""The record of documents on their way into a knowledge base (store/indexing.py)."""

from __future__ import annotations

import threading

import pytest

from store import indexing
from store.indexing import Indexing, listing
from tests import factories as f


def test_a_batch_is_pending_until_its_block_ends_however_it_ends():
    record = Indexing()
    with record.batch("kb", ["/tmp/a/pump-handbook.md"]) as batch:
        assert record.pending("kb") == [batch] and record.pending("other") == []
        assert batch.names == ["pump-handbook.md"] and batch.describe() == "pump-handbook.md (1 of 1)"
    assert record.pending("kb") == [] and batch.finished.is_set()
    with pytest.raises(RuntimeError), record.batch("kb", ["x.md"]) as failed:
        raise RuntimeError("the ingestion crashed")
    assert record.pending("kb") == [] and failed.finished.is_set()


def test_listing_names_a_few_documents_and_counts_the_rest():
    assert listing([]) == "documents"
    assert listing(["a.md"]) == "a.md"
    assert listing(["a.md", "b.pdf"]) == "a.md and b.pdf"
    assert listing(["a.md", "b.pdf", "c.txt"]) == "a.md, b.pdf and c.txt"
    assert listing(["a.md", "b.pdf", "c.txt", "d.txt", "e.txt"]) == "a.md, b.pdf and 3 more"


def test_wait_yields_while_the_batch_runs_and_stops_when_it_ends():
    record = Indexing()
    with record.batch("kb", ["a.md", "b.md"]) as batch:
        waits = indexing.wait(record.pending("kb"), timeout=30, poll=0.01)
        assert next(waits) is batch  # at once, before any time passes
        batch.advance(1)
        assert next(waits).progress == "2 of 2"
    assert list(waits) == []


def test_wait_gives_up_after_its_timeout():
    record = Indexing()
    with record.batch("kb", ["slow.pdf"]), pytest.raises(TimeoutError, match=r"slow.pdf \(1 of 1\)"):
        list(indexing.wait(record.pending("kb"), timeout=0.05, poll=0.01))


def test_adding_documents_records_the_batch_with_what_was_found(settings, embedder, tmp_path):
    from store.knowledge_base import KnowledgeBase

    folder = tmp_path / "docs"
    folder.mkdir()
    f.make_markdown(folder / "notes.md")
    f.make_text(folder / "log.txt", "The relief valve was replaced on 3 May after the pressure test.\n")
    seen: list[tuple[list[str], int]] = []
    with KnowledgeBase.open(settings, "default", embedder) as kb:
        key = kb.indexing_key
        for _event in kb.add([folder]):
            (batch,) = indexing.INDEXING.pending(key)
            seen.append((sorted(batch.names), batch.done))
        assert indexing.INDEXING.pending(key) == []
    assert seen[0][0] == ["log.txt", "notes.md"]
    assert [done for _, done in seen] == [1, 2, 2]  # each file, then the summary


def test_a_batch_opened_elsewhere_is_used_not_doubled(settings, embedder, tmp_path):
    from store.knowledge_base import KnowledgeBase

    doc = f.make_markdown(tmp_path / "notes.md")
    with KnowledgeBase.open(settings, "default", embedder) as kb:
        with indexing.INDEXING.batch(kb.indexing_key, [doc]) as batch:
            for _event in kb.add([doc], batch=batch):
                assert indexing.INDEXING.pending(kb.indexing_key) == [batch]
        assert batch.done == 1


def test_the_record_is_thread_safe():
    record = Indexing()
    errors: list[BaseException] = []

    def churn(n: int) -> None:
        try:
            for i in range(200):
                with record.batch(f"kb{n % 2}", [f"{n}-{i}.md"]):
                    record.pending("kb0")
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=churn, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == [] and record.pending("kb0") == [] and record.pending("kb1") == []
