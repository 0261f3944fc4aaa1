"""Held-out rewordings of a Q&A file (adapters.rewording): each check on crafted rewordings with the real
MiniLM embedder, the loop with a scripted model (rows, provenance, rejected file, report, generated rows'
review rule, bad input), resume after a torn line, and ``data reword`` with the bundled SmolLM2-135M."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest

from adapters import rewording_checks as checks
from adapters.datasets import load_file
from adapters.rewording import RewordDone, RewordOptions, RewordProgress, parse_rewordings, reword
from store.errors import DomainsmithError, InvalidTrainingData
from tests.conftest import run_app

QA = [
    ("What is the capacity of the mixer drum?", "The drum holds 340 litres."),
    ("How often should the compressor oil be changed?", "Every 2,000 operating hours."),
    ("Why does the display show E04?", "E04 means the inlet filter is blocked."),
    ("What torque is specified for the wheel nuts?", "Tighten the wheel nuts to 120 Nm."),
    ("How do I reset the controller after a fault?", "Hold STOP for five seconds, then press START."),
]
GOOD = {  # a real rewording of each question (MiniLM cosine 0.78-0.96)
    QA[0][0]: "How much can the mixer's drum hold?",
    QA[1][0]: "At what interval does the compressor need fresh oil?",
    QA[2][0]: "What is the cause of error code E04 appearing on the display?",
    QA[3][0]: "To what torque should the wheel nuts be tightened?",
    QA[4][0]: "After a fault, what is the procedure for resetting the controller?",
}
PROVENANCE = {"source_line", "source_file", "source_hash", "generator", "generated_at", "similarity"}
GENERATOR = {"model", "per_row", "seed", "temperature", "max_tokens"}


def write_qa(path: Path, rows=QA) -> Path:
    path.write_text("".join(json.dumps({"question": q, "answer": a}) + "\n" for q, a in rows), encoding="utf-8")
    return path


def lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()] if path.exists() else []


class Scripted:
    """A model that rewords each question well, then badly (a near copy, another row's question, a changed
    meaning); a reply with no question at all for the reset question."""

    def __init__(self, stop_after: int | None = None, cancel: threading.Event | None = None):
        self.asked: list[str] = []
        self.stop_after, self.cancel = stop_after, cancel

    def __call__(self, messages, seed, max_tokens, done) -> str:
        question = messages[-1]["content"].split("\n\n", 1)[1]  # the task, then the question
        self.asked.append(question)
        if self.stop_after is not None and len(self.asked) >= self.stop_after:
            self.cancel.set()
        if question == QA[4][0]:
            return "Sure! Here are some rewordings for you."
        return f"Q: {GOOD[question]}\nQ: {question}\nQ: {QA[3][0] if question != QA[3][0] else QA[0][0]}\n"


def run(data: Path, out: Path, model, embedder, options=RewordOptions(per_row=3), cancel=None):
    events = list(reword(data, out, model, "scripted", embedder, options, cancel))
    assert isinstance(events[-1], RewordDone) and all(isinstance(e, RewordProgress) for e in events[:-1])
    return events[-1].report


# -- the checks, on crafted rewordings -----------------------------------------------------------------------


def test_a_good_rewording_passes_and_each_check_removes_what_it_should(embedder):
    source, line = QA[0][0], 1
    checker = checks.Checks([(i + 1, q) for i, (q, _) in enumerate(QA)], embedder)
    reason, similarity = checker.check(GOOD[source], source, line)
    assert reason is None and similarity >= checks.MIN_MEANING_COSINE
    checker.keep(GOOD[source])
    crafted = {
        "drum capacity": "malformed",  # not a question
        "Capacity?": "malformed",
        source: "too_close",  # the source itself
        "What is the capacity of the mixer's drum?": "too_close",  # one word added
        "What is the mixer drum capacity?": "too_close",  # the same words reordered, one dropped
        "how often should the compressor's oil be changed?": "in_training",  # another row's question
        "How much can the mixer drum hold?": "duplicate",  # the rewording kept, nearly
        "How fast does the mixer drum rotate?": "meaning_changed",  # another question on the subject (0.63)
        "What is the capital of France?": "meaning_changed",
    }
    for candidate, expected in crafted.items():
        assert checker.check(candidate, source, line)[0] == expected, candidate
    code = "What is the cause of error code E05 appearing on the display?"
    assert checker.check(code, QA[2][0], 3) == ("meaning_changed", None), "a changed code: the digit check"
    assert checker.check(GOOD[QA[2][0]], QA[2][0], 3)[0] is None


def test_the_word_measures():
    assert checks.word_edits("How do I reset the controller?", "How do I restart the controller?") == 1
    assert checks.word_edits("What fuse is it?", "Which fuse protects it?") == 2
    assert checks.near_copy("What is the drum's size?", "what is the drum s size")
    assert checks.same_digits("Is 110 V enough for it?", "Can it run on 110 volts?")
    assert not checks.same_digits("Why does it show E05?", "Why does it show E04?")


def test_the_parser_reads_labelled_questions_else_question_lines():
    assert parse_rewordings("Q1: How much does it hold?\nQ2: **What volume?**\n") == [
        "How much does it hold?",
        "What volume?",
    ]
    assert parse_rewordings("Here you go:\n1. How much does it hold?\n- What volume?\nThanks") == [
        "How much does it hold?",
        "What volume?",
    ]
    assert parse_rewordings("I cannot do that.") == []


# -- the loop with a scripted model ------------------------------------------------------------------------


def test_rewordings_are_written_with_provenance_and_every_rejection_counted(embedder, tmp_path):
    data, out = write_qa(tmp_path / "qa.jsonl"), tmp_path / "held_out.jsonl"
    model = Scripted()
    report = run(data, out, model, embedder)
    rows, rejected = lines(out), lines(tmp_path / "held_out.rejected.jsonl")
    assert model.asked == [q for q, _ in QA] and report.rows_done == report.rows_total == 5
    assert [(r["question"], r["answer"], r["reworded_from"]) for r in rows] == [(GOOD[q], a, q) for q, a in QA[:4]]
    assert report.kept == 4 and report.rejected == {
        "malformed": 1,
        "too_close": 4,
        "in_training": 4,
        "duplicate": 0,
        "meaning_changed": 0,
    }
    assert report.candidates == report.kept + sum(report.rejected.values()) == len(rows) + len(rejected) == 13
    for row in rows + rejected:
        p = row["provenance"]
        assert set(p) <= PROVENANCE and set(p["generator"]) == GENERATOR and p["generator"]["per_row"] == 3
        assert p["source_file"] == str(data.resolve()) and QA[p["source_line"] - 1][0] == row["reworded_from"]
    assert all(r["provenance"]["similarity"] >= checks.MIN_MEANING_COSINE for r in rows)
    malformed = next(r for r in rejected if r["reason"] == "malformed")
    assert malformed["question"] == "" and "Sure!" in malformed["reply"] and malformed["provenance"]["source_line"] == 5
    loaded = load_file(out, minimum=1)  # an ordinary Q&A file
    assert [e["messages"][0]["content"] for e in loaded.examples] == [GOOD[q] for q, _ in QA[:4]]
    assert data.read_text(encoding="utf-8") == "".join(json.dumps({"question": q, "answer": a}) + "\n" for q, a in QA)


def test_a_seeded_limit_and_the_review_rule_of_generated_rows(embedder, tmp_path):
    data = tmp_path / "gen.jsonl"
    generated = [{"question": q, "answer": a, "review": "accepted", "provenance": {}} for q, a in QA[:4]]
    generated[1]["review"] = "pending"
    generated[2]["review"] = "rejected"
    data.write_text("".join(json.dumps(r) + "\n" for r in generated), encoding="utf-8")
    model = Scripted()
    report = run(data, tmp_path / "out.jsonl", model, embedder)
    assert model.asked == [QA[0][0], QA[3][0]], "only the accepted rows count, as for training"
    assert report.rows_total == 2 and report.kept == 2
    model = Scripted()
    report = run(write_qa(tmp_path / "qa.jsonl"), tmp_path / "two.jsonl", model, embedder, RewordOptions(limit=2))
    again = Scripted()
    run(tmp_path / "qa.jsonl", tmp_path / "two_again.jsonl", again, embedder, RewordOptions(limit=2))
    assert len(model.asked) == report.rows_total == 2 and model.asked == again.asked, "a seeded sample"
    csv = tmp_path / "qa.csv"
    csv.write_text(f'question,answer\n"{QA[0][0]}","{QA[0][1]}"\n\n"{QA[3][0]}",{QA[3][1]}\n', encoding="utf-8")
    run(csv, tmp_path / "csv.jsonl", Scripted(), embedder)
    assert [(r["provenance"]["source_line"], r["question"]) for r in lines(tmp_path / "csv.jsonl")] == [
        (2, GOOD[QA[0][0]]),
        (4, GOOD[QA[3][0]]),
    ]


def test_bad_input_is_refused_with_clear_errors(embedder, tmp_path):
    model = Scripted()
    with pytest.raises(InvalidTrainingData, match="no such training file"):
        run(tmp_path / "missing.jsonl", tmp_path / "out.jsonl", model, embedder)
    broken = tmp_path / "broken.jsonl"
    broken.write_text('{"question": "What?", "answer": "That."}\n{"question": \n', encoding="utf-8")
    with pytest.raises(InvalidTrainingData, match=r"broken\.jsonl, line 2: not valid JSON"):
        run(broken, tmp_path / "out.jsonl", model, embedder)
    data = write_qa(tmp_path / "qa.jsonl")
    with pytest.raises(DomainsmithError, match="is the data file"):
        run(data, tmp_path / "qa.jsonl", model, embedder)
    with pytest.raises(DomainsmithError, match="must be a .jsonl file"):
        run(data, tmp_path / "out.csv", model, embedder)
    other = write_qa(tmp_path / "other.jsonl", QA[:2])
    with pytest.raises(DomainsmithError, match="not a rewordings file"):
        run(data, other, model, embedder)
    assert model.asked == [] and lines(other) == [{"question": q, "answer": a} for q, a in QA[:2]], "untouched"
    run(data, tmp_path / "out.jsonl", model, embedder)
    write_qa(data, QA[:4])
    with pytest.raises(DomainsmithError, match="before it changed"):
        run(data, tmp_path / "out.jsonl", model, embedder)
    with pytest.raises(DomainsmithError, match="--per-row"):
        RewordOptions(per_row=0)


def test_a_rerun_cuts_a_torn_line_and_asks_no_row_again(embedder, tmp_path):
    data, out = write_qa(tmp_path / "qa.jsonl"), tmp_path / "held_out.jsonl"
    cancel = threading.Event()
    first = run(data, out, Scripted(stop_after=3, cancel=cancel), embedder, cancel=cancel)
    assert first.cancelled and first.rows_done == 2, "the third reply came back after Ctrl-C: not written"
    before = out.read_text(encoding="utf-8")
    with open(out, "a", encoding="utf-8") as f:
        f.write('{"question": "How much can the mix')  # a writer killed mid-line
    model = Scripted()
    report = run(data, out, model, embedder)
    assert model.asked == [q for q, _ in QA[2:]], "the rows done before are not asked again"
    assert report.rows_resumed == 2 and report.rows_done == report.rows_total == 5 and not report.cancelled
    text = out.read_text(encoding="utf-8")
    assert text.startswith(before) and text.endswith("\n") and 'How much can the mix"' not in text
    assert [r["question"] for r in lines(out)] == [GOOD[q] for q, _ in QA[:4]]
    rejected = lines(tmp_path / "held_out.rejected.jsonl")
    assert report.candidates == report.kept + sum(report.rejected.values()) == len(lines(out)) + len(rejected)


# -- the CLI with the real model ---------------------------------------------------------------------------


def test_cli_rewords_with_the_bundled_model_into_a_loadable_file(tmp_path):
    data, out = write_qa(tmp_path / "qa.jsonl"), tmp_path / "held_out.jsonl"
    args = ["data", "reword", "--data", str(data), "--out", str(out), "--limit", "2", "--per-row", "2"]
    done = run_app(*args, "--json")
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout)
    assert report["model"] == "SmolLM2-135M-Instruct" and report["rows_done"] == report["rows_total"] == 2
    assert set(report["rejected"]) == set(checks.REASONS) and not report["cancelled"]
    rows, rejected = lines(out), lines(tmp_path / "held_out.rejected.jsonl")
    assert report["kept"] == len(rows) and sum(report["rejected"].values()) == len(rejected)
    assert report["candidates"] == len(rows) + len(rejected) and 2 <= report["candidates"] <= 4
    for row in rows + rejected:
        assert row["provenance"]["generator"]["model"] == "SmolLM2-135M-Instruct"
        assert (row["reworded_from"], row["answer"]) in QA
    assert all(r["reason"] in checks.REASONS for r in rejected)
    if rows:  # the 135M's rewordings may all be rejected: the structure is what is checked
        assert len(load_file(out, minimum=1).examples) == len(rows)
    with open(tmp_path / "held_out.rejected.jsonl", "a", encoding="utf-8") as f:
        f.write('{"question": "What is the')  # killed mid-line: the same command cuts it and resumes
    again = run_app(*args, "--json")
    assert again.returncode == 0, again.stderr[-3000:]
    resumed = json.loads(again.stdout)
    assert resumed["rows_resumed"] == resumed["rows_done"] == 2 and resumed["candidates"] == report["candidates"]
    assert (lines(out), lines(tmp_path / "held_out.rejected.jsonl")) == (rows, rejected), "nothing asked again"
    refused = run_app("data", "reword", "--data", str(data), "--out", str(data))
    assert refused.returncode != 0 and "is the data file" in refused.stderr
