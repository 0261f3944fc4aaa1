"""Training data generated from a knowledge base (adapters.datagen): the filters on crafted rows against
a real knowledge base, the generation loop with a scripted model (rows, provenance, unanswerable rows,
resume, cancel), the train loader's review rule, and the CLI with the bundled SmolLM2-135M killed with
SIGKILL half-way and resumed."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from adapters import datagen_filters as filters
from adapters.datagen import GenerateOptions, GenerationDone, GenerationProgress, generate, passages
from adapters.datagen_reply import parse_pairs
from adapters.datasets import load_file
from assistant.prompting import ABSTAIN_REPLY
from store.errors import InvalidTrainingData, KnowledgeBaseError
from tests.adapters.test_rag_eval import ANSWERABLE, MACHINES, write_manuals
from tests.conftest import ROOT

FACTS = [fact for facts in MACHINES.values() for fact in facts]  # in the order of ANSWERABLE
LONG = (
    "The Orvane R3 compressor starts in three stages: the inlet valve opens to one quarter, the motor "
    "spins up to idle speed over twenty seconds, then the control unit loads the first cylinder bank while "
    "the oil pressure stays above two bar and the discharge temperature stays below ninety degrees."
)
PROVENANCE = {
    "kb",
    "kb_version",
    "document_id",
    "document",
    "document_hash",
    "chunk_id",
    "page",
    "page_label",
    "section",
    "generator",
    "generated_at",
}
GENERATOR = {"model", "per_chunk", "unanswerable", "seed", "temperature", "max_tokens"}


@pytest.fixture
def machines(open_kb, tmp_path):
    kb = open_kb("machines")
    paths = write_manuals(tmp_path / "manuals")
    (tmp_path / "manuals" / "orvane.md").write_text(f"# Orvane R3 compressor\n\n## Start-up\n\n{LONG}\n")
    list(kb.add([*paths, tmp_path / "manuals" / "orvane.md"]))
    return kb


def passage_of(kb, text: str) -> filters.Passage:
    return next(p for p, _ in passages(kb) if text in p.text)


# -- the filters, on crafted rows --------------------------------------------------------------------


def test_a_good_row_passes_every_filter_and_each_bad_row_is_named(machines, settings):
    rotor = passage_of(machines, "4,380 rpm")
    question, answer = ANSWERABLE[0]
    seen = filters.Duplicates()
    assert filters.answerable_checks(question, answer, rotor, machines, settings, seen) is None
    seen.add(question)

    def reason(q: str, a: str, p: filters.Passage = rotor) -> str | None:
        return filters.answerable_checks(q, a, p, machines, settings, seen)

    assert reason("Rotor speed", answer) == "malformed", "not a question"
    assert reason("How fast can the Vantor K7 rotor spin?", "Q: 4,380 rpm") == "malformed"
    assert reason("how fast can the VANTOR K7 rotor spin ?", answer) == "duplicate"
    assert reason("How fast can the Vantor K7 rotor spin at most?", answer) == "duplicate", "near-duplicate"
    assert reason("What is the top speed of the Vantor K7 rotor?", "The Vantor K7 rotor top speed.") == "restated"
    assert reason("What is the top speed of the Vantor K7 rotor?", "The rotor spins at most 5,900 rpm.") == (
        "unsupported"
    ), "a number the passage does not state"
    assert reason("What is the top speed of the Vantor K7 rotor?", ABSTAIN_REPLY) == "unsupported"
    orvane = passage_of(machines, "Orvane")
    copy = " ".join(LONG.split()[:30])
    assert reason("How does the Orvane R3 compressor start?", copy, orvane) == "copied"
    short = "The Orvane R3 compressor starts in three stages, the last one loading the first cylinder bank."
    assert reason("How does the Orvane R3 compressor start?", short, orvane) is None
    # Round trip: retrieval (Chat's k; 1 here, the 13 passages are few) ranks another passage first,
    # or the gate finds nothing relevant.
    top1 = settings.replace(retrieval_k=1)
    assert filters.round_trip(machines, question, rotor, top1) is None
    oil = passage_of(machines, "Orlisol 220")
    assert filters.round_trip(machines, question, oil, top1) == "round_trip"
    assert filters.round_trip(machines, question, rotor, settings) is None
    assert filters.round_trip(machines, "Who painted the Mona Lisa?", rotor, settings) == "round_trip"


def test_unanswerable_questions_pass_only_when_the_gate_refuses_or_their_words_are_absent(machines, settings):
    seen = filters.Duplicates()
    check = filters.unanswerable_checks
    assert check("Which warranty does the Zentrox Q9 harvester carry?", machines, settings, seen) is None
    assert set(filters.absent_terms(machines, "Which warranty does the Zentrox Q9 harvester carry?")) >= {
        "zentrox",
        "harvester",
    }
    assert not filters.chat_retrieval(machines, "Who painted the Mona Lisa?", settings).relevant
    assert check("Who painted the Mona Lisa?", machines, settings, seen) is None
    assert check("Which oil goes into the Vantor K7 gearbox?", machines, settings, seen) == "answerable_in_kb"
    # Half the words absent, but the drum's sentence answers it: not trained as a refusal.
    capacity = "What is the actual capacity of the Brisco M2 mixer?"
    assert (
        len(filters.absent_terms(machines, capacity)) == 2
        and filters.chat_retrieval(machines, capacity, settings).relevant
    )
    assert check(capacity, machines, settings, seen) == "answerable_in_kb"
    assert check("How loud is the Brisco M2 mixer when running?", machines, settings, seen) is None
    # One absent word of five ("goes") is a rewording, not a question the documents cannot answer.
    assert filters.absent_terms(machines, "Which oil goes into the Vantor K7 gearbox?") == ["goes"]


def test_the_parser_reads_labelled_pairs_and_drops_the_rest():
    reply = (
        "Sure! Here are questions.\n**Q1:** What oil does the gearbox use?\n**A1:** Orlisol 220 [1].\n"
        "B: something else\nQuestion 2: How long does the seal last?\nAnswer: 7,200\nhours.\nQ: dangling?"
    )
    pairs, garbage = parse_pairs(reply)
    assert pairs == [
        ("What oil does the gearbox use?", "Orlisol 220."),
        ("How long does the seal last?", "7,200 hours."),
        ("dangling?", None),
    ]
    assert garbage == 2


# -- the loop, with a scripted model -----------------------------------------------------------------


class Scripted:
    """A model that answers each passage with its fact's Q&A, a duplicate and a malformed pair, and
    writes unanswerable questions about a machine that is not in the documents."""

    def __init__(self, stop_after: int | None = None, cancel: threading.Event | None = None):
        self.calls = 0
        self.stop_after, self.cancel = stop_after, cancel

    def __call__(self, messages, seed, max_tokens, done) -> str:
        self.calls += 1
        if self.stop_after is not None and self.calls >= self.stop_after:
            self.cancel.set()
        user = messages[-1]["content"]
        if "does NOT mention" in messages[0]["content"]:
            return f"Q: Which warranty does the Zentrox Q{seed} harvester carry?\n"
        for fact, (question, answer) in zip(FACTS, ANSWERABLE, strict=True):
            if fact in user:
                return f"Q: {question}\nA: {answer}\nQ: {question}\nA: {answer}\nQ: Why\nA: yes\n"
        return "I cannot write questions about this."


def run(kb, settings, out: Path, model, options=GenerateOptions(per_chunk=3, unanswerable=0.5), cancel=None):
    events = list(generate(kb, settings, model, "scripted", out, options, cancel))
    assert isinstance(events[-1], GenerationDone) and all(isinstance(e, GenerationProgress) for e in events[:-1])
    return events[-1].report


def lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_generation_writes_rows_with_provenance_unanswerable_rows_and_a_report(machines, settings, tmp_path):
    out = tmp_path / "gen.jsonl"
    report = run(machines, settings, out, Scripted())
    rows, rejected = lines(out), lines(tmp_path / "gen.rejected.jsonl")
    answerable = [r for r in rows if r["kind"] == "answerable"]
    unanswerable = [r for r in rows if r["kind"] == "unanswerable"]
    assert len(answerable) == report.kept == 12, "one per machine fact; the duplicate and the malformed dropped"
    assert {(r["question"], r["answer"]) for r in answerable} == set(ANSWERABLE)
    assert unanswerable and len(unanswerable) == report.unanswerable <= 0.5 * 12 + 1
    assert all(r["answer"] == ABSTAIN_REPLY and "Zentrox" in r["question"] for r in unanswerable)
    versions = machines.document_versions()
    for row in rows + rejected:
        assert set(row["provenance"]) == PROVENANCE and set(row["provenance"]["generator"]) == GENERATOR
        p = row["provenance"]
        assert p["kb"] == "machines" and p["kb_version"] == machines.content_version()
        assert versions[p["document_id"]] == p["document_hash"] and p["chunk_id"].startswith(p["document_id"])
        assert machines.passage(p["chunk_id"])["section"] == p["section"]
    assert {r["review"] for r in rows} == {"pending"} and {r["review"] for r in rejected} == {"rejected"}
    first = next(r for r in answerable if "4,380" in r["answer"])
    assert first["provenance"]["section"] == "Vantor K7 turbine > Performance"
    assert first["provenance"]["generator"]["model"] == "scripted"
    # Every rejection is counted under its filter; the Orvane passage's reply had no pair at all.
    assert report.rejected["duplicate"] == 12 and report.rejected["malformed"] == 12 + 1
    assert sum(report.rejected.values()) == len(rejected)
    assert report.candidates == len(rows) + len(rejected) and report.chunks_done == report.chunks_total == 13
    assert set(report.to_json()) >= {"kept", "unanswerable", "rejected", "seconds_per_chunk", "kb_version"}


def test_a_rerun_resumes_cutting_a_partial_line_and_repeats_no_chunk(machines, settings, tmp_path):
    out = tmp_path / "gen.jsonl"
    cancel = threading.Event()
    first = run(machines, settings, out, Scripted(stop_after=3, cancel=cancel), cancel=cancel)
    assert first.cancelled and 0 < first.chunks_done < first.chunks_total
    with open(out, "a", encoding="utf-8") as f:
        f.write('{"question": "half a li')  # what a kill in mid-write leaves
    model = Scripted()
    second = run(machines, settings, out, model)
    assert not second.cancelled and second.chunks_resumed == first.chunks_done
    assert second.chunks_done == second.chunks_total == 13 and model.calls < 13 + 13
    rows = lines(out)  # every line parses: the partial one was cut
    chunks = [r["provenance"]["chunk_id"] for r in rows if r["kind"] == "answerable"]
    assert len(chunks) == len(set(chunks)) == 12, "no chunk generated twice"
    again = Scripted()
    third = run(machines, settings, out, again)
    assert again.calls == 0 and third.kept == second.kept and third.chunks_resumed == 13
    with pytest.raises(Exception, match="knowledge base 'machines'"):
        Path(tmp_path / "other.jsonl").write_text(out.read_text())
        from adapters.datagen_output import Output

        Output(tmp_path / "other.jsonl").open("another")


def test_accepted_rows_render_as_grounded_examples_in_chats_prompt(machines, settings, tmp_path):
    """What ``train --data FILE --grounded KB`` does with a generated file accepted as a whole."""
    from adapters.grounded import grounded_examples

    out = tmp_path / "gen.jsonl"
    report = run(machines, settings, out, Scripted(), GenerateOptions(per_chunk=1, unanswerable=0.25, accept=True))
    loaded = load_file(out)
    assert len(loaded.examples) == report.kept + report.unanswerable
    examples, counts = grounded_examples(
        machines, loaded.examples, threshold=settings.relevance_threshold, abstain_share=0.0
    )
    assert counts["cited"] == report.kept == 12 and counts["abstain_no_source"] == report.unanswerable
    refusals = [e for e in examples if e["messages"][-1]["content"] == ABSTAIN_REPLY]
    assert {e["question"] for e in refusals} == {r["question"] for r in lines(out) if r["kind"] == "unanswerable"}


def test_a_knowledge_base_too_small_is_refused_with_the_minimum(open_kb, settings, tmp_path):
    kb = open_kb("tiny")
    (tmp_path / "one.md").write_text("# One\n\nThe only passage says the pump runs at 3 bar.\n")
    list(kb.add([tmp_path / "one.md"]))
    with pytest.raises(KnowledgeBaseError, match="at least 3"):
        run(kb, settings, tmp_path / "gen.jsonl", Scripted())


# -- the train loader: only accepted rows train ------------------------------------------------------


def test_generated_rows_train_only_when_accepted(tmp_path):
    def write(name: str, reviews: list[str | None]) -> Path:
        path = tmp_path / name
        rows = [
            {"question": f"What is fact {i}?", "answer": f"Fact {i} is {i * 7}.", "kind": "answerable"}
            | ({"review": review, "provenance": {"kb": "machines"}} if review else {})
            for i, review in enumerate(reviews)
        ]
        path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
        return path

    pending = write("pending.jsonl", ["pending"] * 12)
    with pytest.raises(InvalidTrainingData) as caught:
        load_file(pending)
    assert str(caught.value) == (
        "pending.jsonl has 12 generated rows and none accepted: accept them in the Fine-tune tab "
        "(Generate from documents) or generate with --accept"
    )
    mixed = load_file(write("mixed.jsonl", ["accepted"] * 11 + ["pending", "rejected"]))
    assert len(mixed.examples) == 11
    assert len(load_file(write("plain.jsonl", [None] * 12)).examples) == 12, "rows without review as before"


# -- the CLI with the real model: SIGKILL half-way, then resume ----------------------------------------


def test_cli_killed_mid_generation_leaves_valid_resumable_output(machines, settings, embedder, tmp_path, capsys):
    from ui.cli import build_parser, run
    from ui.services import Services

    home, out = settings.home, tmp_path / "gen.jsonl"
    state = tmp_path / "gen.state.json"
    args = ["data", "generate", "--kb", "machines", "--limit", "2", "--per-chunk", "1", "--unanswerable", "0"]
    args += ["--out", str(out)]
    log = tmp_path / "child.log"
    with open(log, "wb") as sink:
        child = subprocess.Popen(
            [sys.executable, str(ROOT / "app.py"), "--home", str(home), *args],
            cwd=ROOT,
            stdout=sink,
            stderr=subprocess.STDOUT,
            env=os.environ,
        )
    deadline = time.monotonic() + 240
    while not state.exists() and child.poll() is None and time.monotonic() < deadline:
        time.sleep(0.2)
    os.kill(child.pid, signal.SIGKILL)
    child.wait()
    assert state.exists(), log.read_text(errors="replace")[-3000:]
    written = {}
    for path in (out, tmp_path / "gen.rejected.jsonl"):
        text = path.read_text(encoding="utf-8") if path.exists() else ""
        complete = text[: text.rfind("\n") + 1]
        written[path] = [json.loads(line) for line in complete.splitlines()]  # every whole line parses
    before = {r["provenance"]["chunk_id"] for rows in written.values() for r in rows}
    assert before, "the first chunk's rows (kept or rejected) were on disk when the state said done"

    services = Services(settings, _embedder=embedder)  # the rerun, in this process (no second torch start)
    try:
        code = run(services, build_parser().parse_args([*args, "--json"]))
    finally:
        services.close()
    printed = capsys.readouterr()
    assert code == 0, printed.err
    report = json.loads(printed.out)
    assert set(report) == {
        "kb",
        "kb_version",
        "model",
        "out",
        "chunks_total",
        "chunks_done",
        "chunks_resumed",
        "candidates",
        "kept",
        "unanswerable",
        "renamed",
        "rejected",
        "seconds",
        "seconds_per_chunk",
        "cancelled",
    }
    assert set(report["rejected"]) == set(filters.REASONS)
    assert report["model"] == "SmolLM2-135M-Instruct" and report["kb"] == "machines"
    assert report["chunks_done"] == report["chunks_total"] == 2 and report["chunks_resumed"] == 1, "killed half-way"
    rows, rejected = lines(out), lines(tmp_path / "gen.rejected.jsonl")
    assert report["kept"] + report["unanswerable"] == len(rows)
    for chunk in before:  # the chunks done before the kill were not generated again
        old = [r for rs in written.values() for r in rs if r["provenance"]["chunk_id"] == chunk]
        assert [r for r in rows + rejected if r["provenance"]["chunk_id"] == chunk] == old
    for row in rows + rejected:
        p = row["provenance"]
        assert set(p) == PROVENANCE and p["generator"]["model"] == "SmolLM2-135M-Instruct"
        assert p["generator"]["per_chunk"] == 1 and p["kb"] == "machines" and p["document_hash"]
    assert {r["review"] for r in rows} <= {"pending"}
