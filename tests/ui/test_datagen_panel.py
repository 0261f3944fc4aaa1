"""Fine-tune tab, "Generate from documents" (ui.datagen_panel): the handlers over Services without a
browser, on a real knowledge base. Review round trip on a crafted generated file, the file names a
page may send, "Train on accepted rows" through the tab's own start (the run's data are only the
accepted rows), and a real generation with the bundled SmolLM2-135M from the panel."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from adapters import datagen_review as review
from store import workload
from store.errors import DomainsmithError
from tests.adapters.test_datagen_review import write_generated
from tests.adapters.test_rag_eval import write_manuals
from ui import datagen_panel as panel
from ui.datagen_jobs import Generations, checked_output, datasets_dir


@pytest.fixture
def services(settings, embedder):
    from ui.services import Services

    s = Services(settings.replace(max_tokens=64), _embedder=embedder)
    yield s
    s.close()


@pytest.fixture
def machines(services, tmp_path):
    kb = services.kb("machines")
    list(kb.add(write_manuals(tmp_path / "manuals")))
    return kb


@pytest.fixture
def generated(services, machines) -> tuple[str, list[dict]]:
    path = datasets_dir(services) / "generated-machines-20261201-120000.jsonl"
    rows = write_generated(machines, path)
    return str(path.resolve()), rows


def test_the_rows_are_listed_shown_with_their_passage_and_reviewed(services, generated):
    out, rows = generated
    assert panel.file_choices(services) == [(Path(out).name, out)]
    table, keys, counts = panel.rows_view(services, out)
    assert len(table) == len(keys) == 14 and counts.startswith("**14 rows:** 0 accepted")
    assert table[0] == [
        "pending",
        "answerable",
        rows[0]["question"],
        rows[0]["answer"],
        "manual0.md, Vantor K7 turbine > Performance",
    ]
    question, answer, passage = panel.show_row(services, out, keys[0])
    assert (question, answer) == (rows[0]["question"], rows[0]["answer"])
    assert "4,380 rpm" in passage and "manual0.md" in passage and "/passage/machines/" in passage

    assert panel.review_row(services, out, keys[0], "accept") == "Row accepted."
    assert panel.review_row(services, out, keys[1], "reject") == "Row rejected."
    assert panel.save_edit(services, out, keys[2], "Which oil, exactly?", "Orlisol 220.").startswith("Edit saved")
    assert panel.review_row(services, out, keys[3], "delete").startswith("Deleted: ")
    table, keys_after, counts = panel.rows_view(services, out)
    assert len(table) == 13 and keys[3] not in keys_after
    assert [row[0] for row in table[:3]] == ["accepted", "rejected", "pending (edited)"]
    assert table[2][2] == "Which oil, exactly?"
    assert "Edited; generated as:" in panel.show_row(services, out, keys[2])[2]
    assert panel.rows_view(services, out, "accepted")[1] == [keys[0]]
    assert panel.accept_all(services, out) == "Accepted 11 pending rows."
    assert panel.rows_view(services, out)[2].startswith("**13 rows:** 12 accepted (10 answerable, 2 unanswerable)")
    with pytest.raises(DomainsmithError, match="select a row"):
        panel.review_row(services, out, None, "accept")


def test_a_renamed_unanswerable_row_says_what_it_was_made_from(services, generated):
    out, rows = generated
    row = next(r for r in rows if r["kind"] == "unanswerable")
    row["renamed"] = {"from": "Which oil goes into the <Vantor> K7 gearbox?", "name": "Vantor", "invented": "Quillon"}
    review.write_rows(Path(out), rows)
    passage = panel.show_row(services, out, review.row_key(row))[2]
    assert "Unanswerable by design" in passage and "Vantor renamed to Quillon" in passage
    assert "&lt;Vantor&gt;" in passage, "the generated text is escaped"


def test_a_removed_document_shows_that_its_passage_is_gone(services, machines, generated):
    out, rows = generated
    manual1 = next(d for d in machines.documents() if d.name == "manual1.md")
    machines.remove(manual1.id)
    key = next(review.row_key(r) for r in rows if r["provenance"]["document_id"] == manual1.id)
    passage = panel.show_row(services, out, key)[2]
    assert "⚠️ the passage is gone from machines" in passage and "open in context" not in passage
    assert panel.file_choices(services)[0][0] == Path(out).name, "no accepted row: nothing would train on it"
    panel.accept_all(services, out)
    assert "(stale: manual1.md removed)" in panel.file_choices(services)[0][0]


def test_only_generated_files_in_the_datasets_folder_are_accepted(services, generated, tmp_path):
    out, _ = generated
    assert checked_output(services, out) == Path(out)
    assert checked_output(services, Path(out).name) == Path(out)
    outside = tmp_path / "elsewhere.jsonl"
    outside.write_text("{}\n")
    for value in (str(outside), "../domainsmith.db", "../../elsewhere.jsonl", "/etc/passwd", out + ".state.json"):
        with pytest.raises(DomainsmithError, match="pick a generated file"):
            checked_output(services, value)
    audit = Path(out).with_name(Path(out).stem + ".rejected.jsonl")
    audit.write_text("")
    with pytest.raises(DomainsmithError, match="pick a generated file"):
        checked_output(services, str(audit))
    with pytest.raises(DomainsmithError, match="generate rows first"):
        checked_output(services, "")


def test_train_on_accepted_rows_refuses_none_then_prepares_a_run_of_the_accepted_only(
    services, generated, tiny_llama, monkeypatch
):
    from adapters import rag_eval
    from adapters.run_folder import RunFolder
    from ui import finetune_tab

    out, rows = generated
    settings = [str(tiny_llama), "quick", "lora", *[s.blank for s in finetune_tab.ADVANCED_SETTINGS]]
    with pytest.raises(DomainsmithError) as refused:
        panel.train_accepted(services, out, *settings)
    assert str(refused.value) == (
        "no accepted rows in generated-machines-20261201-120000.jsonl (14 pending): accept the rows to train on first"
    )
    keys = [review.row_key(r) for r in rows]
    review.set_review(Path(out), keys[:11] + keys[12:13], "accepted")  # 11 answerable + 1 unanswerable
    review.set_review(Path(out), [keys[11], keys[13]], "rejected")
    started = []
    monkeypatch.setattr(type(services.finetuner), "_supervise", lambda self, job: started.append(job.run_id))
    run_id, text = panel.train_accepted(services, out, *settings)
    assert started == [run_id] and f"**Run {run_id}** started" in text and "grounded in machines" in text
    folder = RunFolder.in_home(services.settings.home, run_id)
    trained = [json.loads(line) for f in (folder.train, folder.val) for line in f.read_text().splitlines()]
    accepted = {rows[i]["question"] for i in range(11)}
    assert {e["question"] for e in trained} == accepted, "only the accepted answerable rows, every one of them"
    asked = {row["question"]: row for row in rag_eval.load(folder.rag_eval)}
    assert asked[rows[12]["question"]]["unanswerable"], "the accepted unanswerable row: asked before and after"
    assert "1 generated unanswerable row not trained" in text
    job = json.loads((folder.path / "job.json").read_text())
    assert job["source"]["grounded"] == "machines" and job["lineage"]["kb"] == "machines"


def test_generation_from_the_panel_with_smollm2_reports_progress_and_writes_rows(services, machines):
    generations = Generations()
    form = panel.GenerateForm("machines", None, per_chunk=1, unanswerable=0, limit=2)
    out, status = panel.start_generation(services, generations, form)
    assert status.startswith("Generating into **generated-machines-") and Path(out).parent == datasets_dir(services)
    assert review.is_generating(Path(out)), "the file is held from the start"
    with pytest.raises(DomainsmithError, match="already running"):
        panel.start_generation(services, generations, form)
    lines, busy = [], set()
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        busy.update(workload.active())
        line, finished = panel.progress_html(generations, out)
        lines.append(line)
        if finished:
            break
        time.sleep(0.2)
    assert finished, lines[-1]
    assert "generating training data from machines" in busy, "Chat's threads see the generation"
    assert any("data-status='generating'" in line and "/2 passages" in line for line in lines)
    assert "data-status='done'" in lines[-1] and "2/2 passages" in lines[-1], lines[-1]
    assert "with SmolLM2-135M-Instruct" in lines[-1] and not review.is_generating(Path(out))
    assert workload.active() == []
    assert Path(out).with_name(Path(out).stem + ".state.json").exists()
    rows = review.read_rows(Path(out))  # the 135M model's rows rarely pass the filters: kept or not, all counted
    audit = review.read_rows(Path(out).with_name(Path(out).stem + ".rejected.jsonl"))
    assert {r["provenance"]["chunk_id"] for r in rows + audit} and len(rows) + len(audit) >= 2
    table, keys, counts = panel.rows_view(services, out)
    assert len(table) == len(rows) and counts == panel.counts_markdown(rows)
    assert all(r["review"] == "pending" and r["provenance"]["kb"] == "machines" for r in rows)
    assert panel.stop_generation(generations, out) == "No generation is running."
    # A resume of the finished file goes through every passage as done and writes nothing new.
    again, status = panel.start_generation(services, generations, form, resume=out)
    assert again == out and status.startswith("Resuming")
    generations.wait(Path(out), 120)
    assert "2/2 passages" in panel.progress_html(generations, out)[0]
    assert review.read_rows(Path(out)) == rows


def test_the_panel_is_built_into_the_fine_tune_tab(services):
    from ui.web import build_ui

    demo = build_ui(services)
    handlers = {getattr(fn.fn, "__name__", ""): fn.fn for fn in demo.fns.values()}
    assert {"gen_start", "gen_stop", "gen_tick", "gen_accept", "gen_delete", "gen_edit", "gen_train"} <= set(handlers)
    # The page's wiring writes errors into the panel's status line.
    from ui import finetune_tab

    blanks = [s.blank for s in finetune_tab.ADVANCED_SETTINGS]
    assert handlers["gen_train"](None, None, "quick", "auto", *blanks)[1] == (
        "❌ Generate rows first, or pick a generated file."
    )
    assert handlers["gen_accept"]("x.jsonl", "all", None)[0] == "❌ Select a row in the table first."
    deleted = handlers["gen_delete"]("x.jsonl", "all", None)
    assert len(deleted) == 8 and deleted[0] == "❌ Select a row in the table first."
    picked = handlers["gen_pick"]("../../domainsmith.db", "all")
    assert len(picked) == 10 and picked[4] == "❌ Pick a generated file from the list."
    assert handlers["gen_start"]("machines", None, 2, 0.25, None)[1] == "❌ No knowledge base named 'machines'."
    services.kb("empty")
    assert handlers["gen_start"]("empty", None, 2, 0.25, None)[1].startswith(
        "❌ The knowledge base 'empty' has no documents yet"
    )
    assert handlers["gen_stop"](None) == "No generation is running."
