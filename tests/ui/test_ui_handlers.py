"""The UI handlers are plain functions over Services: tested here without a browser."""

from __future__ import annotations

import json

import pytest

from tests import factories as f
from ui import chat_tab, knowledge_tab


@pytest.fixture
def services(settings, embedder):
    from ui.services import Services

    s = Services(settings.replace(max_tokens=64), _embedder=embedder)
    yield s
    s.close()


def test_upload_search_remove(services, tmp_path):
    pdf = f.make_pdf(tmp_path / "turbine.pdf", pages=3)
    bad = f.make_corrupt_pdf(tmp_path / "broken.pdf")
    updates = list(knowledge_tab.upload(services, "default", [str(pdf), str(bad)]))
    status, table = updates[-1]
    assert "1 added" in status and "broken.pdf" in status and "❌" in status
    assert [row[1] for row in table] == ["turbine.pdf"]
    hits = knowledge_tab.search(services, "default", f.page_sentence(2), "hybrid")
    assert hits[0][1] == "turbine.pdf" and hits[0][2] == "2"
    message, table = knowledge_tab.remove(services, "default", table[0][0])
    assert "Removed turbine.pdf" in message and table == []


def test_chat_streams_then_shows_sources_and_persists(services, tmp_path):
    list(services.kb().add([f.make_pdf(tmp_path / "turbine.pdf", pages=4)]))
    updates = list(
        chat_tab.respond(
            services, "What trips the journal bearing alarm?", [], "default", "SmolLM2-135M-Instruct", True, None
        )
    )
    assert len(updates) >= 3, "the answer is streamed"
    history, sources, session_id = updates[-1]
    assert history[-2] == {"role": "user", "content": "What trips the journal bearing alarm?"}
    assert "turbine.pdf" in sources and "p. 2" in sources and "<details>" in sources
    choices = chat_tab.session_choices(services)
    assert choices[0][1] == session_id
    reopened, _, sid = chat_tab.reopen(services, session_id)
    assert sid == session_id and [m["role"] for m in reopened] == ["user", "assistant"]


def test_not_in_the_documents_is_shown_distinctly(services, tmp_path):
    list(services.kb().add([f.make_pdf(tmp_path / "turbine.pdf", pages=2)]))
    *_, (history, sources, _) = chat_tab.respond(
        services, "Who won the 1998 football world cup?", [], "default", "SmolLM2-135M-Instruct", True, None
    )
    assert sources.startswith(chat_tab.NOT_IN_DOCUMENTS)


def test_compare_answers_with_two_models_over_the_same_sources(services, tmp_path):
    list(services.kb().add([f.make_pdf(tmp_path / "turbine.pdf", pages=3)]))
    seen = []  # (left reply, right reply) as each update arrives
    for left, left_panel, right, right_panel in chat_tab.compare(  # noqa: B007 (the panels are read after the loop)
        services,
        "What trips the journal bearing alarm?",
        [],
        [],
        "default",
        ("SmolLM2-135M-Instruct", "SmolLM2-135M-Instruct"),
        True,
    ):
        seen.append((left[-1]["content"], right[-1]["content"]))
    assert left[-1]["content"] and right[-1]["content"]
    assert left[-1]["content"] == right[-1]["content"], "same model, same sources, greedy: same answer"
    assert "turbine.pdf" in left_panel and "turbine.pdf" in right_panel
    assert any(a and not b for a, b in seen), "the first answer streams before the second starts"


def test_training_data_preview_reports_line_numbered_errors(services, tmp_path):
    from ui import finetune_tab

    good = tmp_path / "qa.jsonl"
    good.write_text(
        "".join(json.dumps({"question": f"Q{i}?", "answer": f"A{i}."}) + "\n" for i in range(12))
        + json.dumps({"question": "Q1?", "answer": "A1."})
        + "\n",
        encoding="utf-8",
    )
    rows, report = finetune_tab.preview(services, str(good))
    assert rows[0] == ["Q0?", "A0."] and "12 usable examples" in report and "line 13: duplicate of line 2" in report
    bad = tmp_path / "bad.jsonl"
    bad.write_text(good.read_text() + '{"question": "no answer"}\n', encoding="utf-8")
    rows, report = finetune_tab.preview(services, str(bad))
    assert rows == [] and "cannot be used" in report and "line 14" in report


def test_training_needs_a_file_and_blank_advanced_fields_keep_the_preset(services, tmp_path):
    from adapters.finetune import evaluation_rows
    from store.errors import DomainsmithError
    from ui import finetune_tab

    with pytest.raises(DomainsmithError, match="upload a Q&A file"):
        finetune_tab.start(
            services,
            finetune_tab.SOURCE_FILE,
            None,
            "default",
            False,
            None,
            "quick",
            "auto",
            None,
            0,
            None,
            0,
            None,
            None,
            0,
        )
    rows = evaluation_rows(
        {
            "val_loss_before": 2.0,
            "val_loss_after": 1.0,
            "perplexity_before": 7.4,
            "perplexity_after": 2.7,
            "answers_base": {"count": 3, "keyword_recall": 0.1},
            "answers_adapted": {"count": 3, "keyword_recall": 0.9},
        }
    )
    assert rows == [
        ("validation loss", 2.0, 1.0, None),
        ("perplexity", 7.4, 2.7, None),
        ("held-out answers: keyword recall", 0.1, 0.9, None),
    ]
    rag = {"count": 4, "keyword_accuracy": 0.5, "citation_support": 0.25}
    rows = evaluation_rows(
        {
            "rag_base": rag,
            "rag_adapted": {**rag, "citation_support": 0.75},
            "rag_plain": {**rag, "keyword_accuracy": 0.0, "citation_support": None},
            "rag_sets": {"eval_file": {"base": rag, "adapted": rag, "plain": {"keyword_accuracy": 0.25}}},
        }
    )
    assert rows == [
        ("with retrieval: keyword accuracy", 0.5, 0.5, 0.0),  # the base model alone knew none of it
        ("with retrieval: citation support", 0.25, 0.75, None),  # nothing to cite without sources
        ("with retrieval, your evaluation file: keyword accuracy", 0.5, 0.5, 0.25),
        ("with retrieval, your evaluation file: citation support", 0.25, 0.25, None),
    ]


def test_a_crashed_training_run_is_shown_and_resumed_while_the_app_goes_on(services, tmp_path, tiny_llama):
    import os
    import signal
    import time

    from adapters.run_folder import RunFolder
    from tests import tiny_models
    from ui import finetune_tab

    base = tiny_llama
    data = tmp_path / "qa.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in tiny_models.qa_rows(16)), encoding="utf-8")
    reworded = tmp_path / "eval.jsonl"  # the expert's rows all train; these questions never do
    reworded.write_text(
        "".join(
            json.dumps({**r, "question": f"Which colour has pump {i}?"}) + "\n"
            for i, r in enumerate(tiny_models.qa_rows(3), 1)
        ),
        encoding="utf-8",
    )
    run_id, _ = finetune_tab.start(
        services,
        finetune_tab.SOURCE_FILE,
        str(data),
        "default",
        False,
        str(base),
        "quick",
        "lora",
        str(reworded),
        12,
        None,
        None,
        2,
        None,
        0,
    )
    folder = RunFolder.in_home(services.settings.home, run_id)
    deadline = time.monotonic() + 120
    while not services.finetuner.progress(run_id).step and time.monotonic() < deadline:
        time.sleep(0.2)
    os.kill(int(folder.pid.read_text()), signal.SIGKILL)  # the worker crashes mid-run
    services.finetuner.wait(run_id, 30)
    progress = services.finetuner.progress(run_id)
    assert progress.status == "interrupted" and progress.step >= 1
    assert "step" in finetune_tab.refresh(services, run_id)[0], "the progress screen still renders"
    assert knowledge_tab.documents_table(services, "default") == [], "the rest of the app still answers"

    assert "Resuming" in finetune_tab.resume(services, run_id)
    services.finetuner.wait(run_id, 300)
    html, points, _log, rows, finished = finetune_tab.refresh(services, run_id)
    assert finished and "data-status='done'" in html
    assert sorted(points["step"][points["series"] == "training"]) == list(range(1, progress.total_steps + 1))
    assert rows[0][0] == "validation loss"
