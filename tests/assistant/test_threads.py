"""Chat threads chosen per answer from the cores the app's own jobs leave free (bundled SmolLM2 GGUF)."""

from __future__ import annotations

import llama_cpp
import pytest

from assistant.llm import LlamaRuntime, choose_threads
from store.bundled import chat_model_path
from store.workload import Workload

QUESTION = [{"role": "user", "content": "Say hello."}]


def context_threads(runtime: LlamaRuntime) -> tuple[int, int]:
    """(generation, prompt-eval) threads as the llama.cpp context itself reports them."""
    ctx = runtime._llama._ctx.ctx
    return llama_cpp.llama_n_threads(ctx), llama_cpp.llama_n_threads_batch(ctx)


def answer(runtime: LlamaRuntime, during=None) -> list[tuple[int, int]]:
    """Threads seen by llama.cpp at each token of a short answer (``during`` runs after the first)."""
    seen = []
    for i, _piece in enumerate(runtime.stream_chat(QUESTION, max_tokens=6)):
        seen.append(context_threads(runtime))
        if i == 0 and during is not None:
            during()
    return seen


@pytest.fixture(scope="module")
def model_path():
    return chat_model_path()


def test_rule_one_core_per_running_job_never_below_one_setting_wins():
    assert choose_threads(0, 2, []) == 2
    assert choose_threads(0, 2, ["ingesting into docs"]) == 1
    assert choose_threads(0, 8, ["ingesting into docs", "training r1"]) == 6
    assert choose_threads(0, 2, ["ingesting into docs", "training r1", "exporting m"]) == 1
    assert choose_threads(0, 1, []) == 1
    assert choose_threads(3, 2, ["ingesting into docs"]) == 3


def test_auto_threads_follow_a_running_job_and_come_back(model_path):
    record = Workload()
    runtime = LlamaRuntime(context=512, workload=record)
    runtime.cpus = 2  # the machine kind this was measured on, whatever runs the tests
    runtime.load(model_path)
    try:
        assert set(answer(runtime)) == {(2, 2)}  # idle: every core, as before
        with record.busy("ingesting into docs"):
            assert set(answer(runtime)) == {(1, 2)}  # prompt eval keeps both
            assert runtime.last_threads == 1
        assert set(answer(runtime)) == {(2, 2)}  # the job ended: all cores again
    finally:
        runtime.unload()


def test_a_job_starting_mid_answer_takes_effect_at_the_next_token(model_path):
    record = Workload()
    runtime = LlamaRuntime(context=512, workload=record)
    runtime.cpus = 2
    runtime.load(model_path)
    job = record.busy("training r1")
    try:
        seen = answer(runtime, during=job.__enter__)
        assert seen[0] == (2, 2) and seen[-1] == (1, 2), seen
    finally:
        job.__exit__(None, None, None)
        runtime.unload()


def test_explicit_setting_wins_over_running_jobs(model_path):
    record = Workload()
    runtime = LlamaRuntime(context=512, threads=2, workload=record)
    runtime.load(model_path)
    try:
        with record.busy("ingesting into docs"):
            seen = answer(runtime)
        assert {generation for generation, _batch in seen} == {2}
        assert runtime.last_threads == 2
    finally:
        runtime.unload()


def test_the_process_record_is_the_default(model_path):
    from store import workload

    runtime = LlamaRuntime(context=512)
    runtime.cpus = 2
    runtime.load(model_path)
    try:
        with workload.busy("exporting m"):
            assert set(answer(runtime)) == {(1, 2)}  # prompt eval keeps both
    finally:
        runtime.unload()


def test_an_answer_on_auto_is_marked_while_it_streams_and_a_fixed_one_is_not(model_path):
    """Jobs read the mark to leave the answer a core (``store.embedding.batch_threads``)."""
    record = Workload()
    auto = LlamaRuntime(context=512, workload=record)
    auto.load(model_path)
    try:
        seen = []
        for _piece in auto.stream_chat(QUESTION, max_tokens=4):
            seen.append(record.answers())
        assert seen and set(seen) == {1}
        assert record.answers() == 0  # ended
        stream = auto.stream_chat(QUESTION, max_tokens=16)
        next(stream)
        assert record.answers() == 1
        stream.close()  # abandoned mid-answer (the user pressed Stop): the mark goes too
        assert record.answers() == 0
    finally:
        auto.unload()
    fixed = LlamaRuntime(context=512, threads=2, workload=record)
    fixed.load(model_path)
    try:
        assert {record.answers() for _piece in fixed.stream_chat(QUESTION, max_tokens=4)} == {0}
    finally:
        fixed.unload()
