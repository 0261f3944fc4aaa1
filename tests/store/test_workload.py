"""The process's record of heavy work: jobs counted while they run, ingestion marking itself."""

from __future__ import annotations

import threading

import pytest

from store import workload
from store.workload import Workload
from tests import factories as f


def test_busy_counts_a_job_until_its_block_ends_even_on_error():
    record = Workload()
    with record.busy("ingesting pumps.md"):
        with record.busy("training run-1"):
            assert record.active() == ["ingesting pumps.md", "training run-1"]
        assert record.active() == ["ingesting pumps.md"]
    with pytest.raises(RuntimeError), record.busy("exporting m"):
        raise RuntimeError("boom")
    assert record.active() == []


def test_busy_from_many_threads_leaves_nothing_behind():
    record = Workload()
    start = threading.Barrier(8)

    def job(n: int) -> None:
        start.wait()
        for _ in range(200):
            with record.busy(f"job {n}"):
                assert f"job {n}" in record.active()

    threads = [threading.Thread(target=job, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert record.active() == []


def test_knowledge_base_add_is_busy_while_it_ingests_and_not_after(open_kb, tmp_path):
    docs = tmp_path / "docs"
    docs.mkdir()
    f.make_markdown(docs / "pump.md")
    f.make_text(docs / "notes.txt", "Spare fuses are kept in cabinet B.\n")
    kb = open_kb()
    assert workload.active() == []
    seen = []  # observed from another thread while the ingestion is between two files
    for event in kb.add([docs]):
        observer = threading.Thread(target=lambda: seen.append(workload.active()))
        observer.start()
        observer.join()
        if event.status == "done":
            break
    assert seen and all(s == [f"ingesting into {kb.name}"] for s in seen), seen
    assert workload.active() == []


def test_reindex_is_busy_while_it_embeds(open_kb, tmp_path, monkeypatch):
    docs = tmp_path / "docs"
    docs.mkdir()
    f.make_markdown(docs / "pump.md")
    kb = open_kb()
    list(kb.add([docs]))
    seen = []
    real_encode = kb.embedder.encode

    def encode(texts, *args, **kwargs):
        seen.append(workload.active())
        return real_encode(texts, *args, **kwargs)

    monkeypatch.setattr(kb.embedder, "encode", encode)
    assert kb.reindex() > 0
    assert seen and all(s == [f"re-indexing {kb.name}"] for s in seen)
    assert workload.active() == []


def test_query_embedding_on_one_thread_leaves_other_threads_their_torch_threads(embedder):
    """A query embeds on 1 thread; an ingestion thread, and threads started later, keep the default."""
    import torch

    from store.embedding import _torch_threads

    embedder.encode(["warm up"])
    default = torch.get_num_threads()
    if default < 2:
        pytest.skip("one core: nothing to leave")
    a_in, b_in, a_out = threading.Event(), threading.Event(), threading.Event()
    seen: dict[str, int] = {}

    ready = threading.Event()

    def ingestion() -> None:  # already embedding batches: keeps its threads while queries run
        embedder.encode([f"chunk {n}" for n in range(8)])
        ready.set()
        a_in.wait()
        seen["ingestion"] = torch.get_num_threads()

    def ingestion_born_during_a_query() -> None:
        a_in.wait()
        embedder.encode([f"chunk {n}" for n in range(8)], batch_size=8)
        seen["late ingestion"] = torch.get_num_threads()

    def query_a() -> None:
        with _torch_threads(1):
            seen["query"] = torch.get_num_threads()
            a_in.set()
            b_in.wait()
        a_out.set()

    def query_b() -> None:  # starts while query A holds 1 thread and ends after it
        with _torch_threads(1):
            b_in.set()
            a_out.wait()

    busy_thread = threading.Thread(target=ingestion)
    busy_thread.start()
    ready.wait()
    first = threading.Thread(target=query_a)
    first.start()
    a_in.wait()
    second = threading.Thread(target=query_b)
    second.start()
    late = threading.Thread(target=ingestion_born_during_a_query)
    late.start()
    for t in (busy_thread, first, second, late):
        t.join()
    later = []
    t = threading.Thread(target=lambda: later.append(torch.get_num_threads()))
    t.start()
    t.join()
    try:
        assert seen == {"query": 1, "ingestion": default, "late ingestion": default}
        assert later == [default], "a query must not leave 1 thread behind for threads started later"
    finally:
        torch.set_num_threads(default)


def test_answering_is_counted_apart_from_jobs():
    record = Workload()
    with record.answering():
        with record.answering():
            assert record.answers() == 2
        assert record.active() == []  # an answer is not a job: chat does not yield to itself
    with pytest.raises(RuntimeError), record.answering():
        raise RuntimeError("stopped")
    assert record.answers() == 0


def test_ingestion_batches_leave_a_core_to_an_answer_and_keep_their_order(embedder, monkeypatch):
    """Batch by batch, one torch thread fewer while an answer streams; vectors stay in input order."""
    import torch

    from store import embedding

    default = embedding._default_threads()
    assert embedding.batch_threads(0) == default
    assert embedding.batch_threads(1) == max(1, default - 1)
    texts = [f"pump {n} " + "seal inspection " * (n % 7) for n in range(40)]
    alone = embedder.encode(texts)
    threads_seen = []
    real = embedding.Embedder._encode

    def spy(model, batch, size):
        threads_seen.append(torch.get_num_threads())
        return real(model, batch, size)

    monkeypatch.setattr(embedding.Embedder, "_encode", staticmethod(spy))
    with workload.PROCESS.answering():
        during = embedder.encode(texts, batch_size=16)
    assert threads_seen == [max(1, default - 1)] * 3  # 40 texts in batches of 16
    assert torch.get_num_threads() == default  # given back after the batches
    threads_seen.clear()
    embedder.encode(texts, batch_size=16)
    assert threads_seen == [default] * 3
    for i, text in enumerate(texts[:5]):  # each row is its own text's vector, whatever the batching
        assert float(during[i] @ embedder.encode([text])[0]) > 0.999
    assert float((alone * during).sum(axis=1).min()) > 0.999
