"""The review of generated rows (adapters.datagen_review) on a crafted generated file against a real
knowledge base: accept, reject, edit and delete round trips, atomic rewrites, a torn last line, the
source passage (and when it is gone), and the lock a generation holds."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from adapters import datagen_review as review
from adapters.datagen import passages
from adapters.datagen_output import Output, make_row
from assistant.prompting import ABSTAIN_REPLY
from store.errors import DomainsmithError, KnowledgeBaseError
from tests.adapters.test_rag_eval import ANSWERABLE, MACHINES, write_manuals

FACTS = [fact for facts in MACHINES.values() for fact in facts]
GENERATOR = {"model": "crafted", "per_chunk": 1, "unanswerable": 0.25, "seed": 0, "temperature": 0.0}


@pytest.fixture
def machines(open_kb, tmp_path):
    kb = open_kb("machines")
    list(kb.add(write_manuals(tmp_path / "manuals")))
    return kb


def write_generated(kb, path: Path, answerable: int = 12, unanswerable: int = 2) -> list[dict]:
    """A generated file as ``adapters.datagen`` writes it: one row per fact, with real provenance."""
    found = passages(kb)
    version = kb.content_version()
    rows = []
    for (question, answer), fact in list(zip(ANSWERABLE, FACTS, strict=True))[:answerable]:
        passage = next(p for p, _ in found if fact in p.text)
        rows.append(make_row(question, answer, "answerable", "pending", passage, kb.name, version, GENERATOR))
    for i in range(unanswerable):
        passage = found[i][0]
        question = f"Which warranty does the Zentrox Q{i} harvester carry?"
        rows.append(make_row(question, ABSTAIN_REPLY, "unanswerable", "pending", passage, kb.name, version, GENERATOR))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return rows


def lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_accept_reject_edit_and_delete_round_trip(machines, tmp_path):
    out = tmp_path / "gen.jsonl"
    rows = write_generated(machines, out)
    keys = [review.row_key(r) for r in rows]
    assert len(set(keys)) == len(rows) and review.counts(review.read_rows(out)) == {
        "pending": 14,
        "accepted": 0,
        "rejected": 0,
    }

    assert review.set_review(out, keys[:3], "accepted") == 3
    assert review.set_review(out, [keys[3]], "rejected") == 1
    assert review.set_review(out, keys[:2], "accepted") == 0, "already accepted: nothing changes"
    edited = review.edit(out, keys[4], "  How much can the Brisco M2 drum take?  ", "It holds 340 litres.")
    assert edited["question"] == "How much can the Brisco M2 drum take?" and edited["edited"] is True
    assert edited["original"] == {"question": rows[4]["question"], "answer": rows[4]["answer"]}
    review.edit(out, keys[4], "How much does the Brisco M2 drum take?", "It holds 340 litres.")
    deleted = review.delete(out, keys[5])
    assert deleted["question"] == rows[5]["question"]

    after = lines(out)
    by_key = {review.row_key(r): r for r in after}
    assert keys[5] not in by_key and len(after) == 13
    assert [by_key[k]["review"] for k in keys[:5]] == ["accepted"] * 3 + ["rejected", "pending"]
    again = by_key[keys[4]]
    assert again["question"] == "How much does the Brisco M2 drum take?", "the key survives edits"
    assert again["original"]["question"] == rows[4]["question"], "the generated text is kept from the first edit"
    assert again["provenance"] == rows[4]["provenance"], "an edit never touches the provenance"
    assert [r["question"] for r in after] == [r["question"] for r in rows if r is not rows[5]][:4] + [
        again["question"]
    ] + [r["question"] for r in rows[6:]], "the order is kept"

    assert review.accept_pending(out) == 13 - 4
    assert review.counts(lines(out)) == {"pending": 0, "accepted": 12, "rejected": 1}
    with pytest.raises(DomainsmithError, match="no longer in the file"):
        review.set_review(out, [keys[5]], "accepted")
    with pytest.raises(DomainsmithError, match="unknown review state"):
        review.set_review(out, [keys[0]], "maybe")
    with pytest.raises(DomainsmithError, match="both a question and an answer"):
        review.edit(out, keys[0], "What?", "  ")


def test_a_deleted_row_is_audited_and_its_chunk_is_not_generated_again(machines, tmp_path):
    out = tmp_path / "gen.jsonl"
    rows = write_generated(machines, out)
    (tmp_path / "gen.rejected.jsonl").write_text('{"question": "torn', encoding="utf-8")  # a killed writer's line
    review.delete(out, review.row_key(rows[5]))  # the only row of its chunk
    audit = lines(tmp_path / "gen.rejected.jsonl")
    assert len(audit) == 1 and audit[0]["reason"] == review.DELETED and audit[0]["review"] == "rejected"
    chunk = rows[5]["provenance"]["chunk_id"]
    assert chunk not in {r["provenance"]["chunk_id"] for r in lines(out)}
    # Without OUT.state.json (the generation's record) a resume still counts the chunk as done.
    assert chunk in Output(out).open("machines").done


def test_a_failed_rewrite_leaves_the_old_file_and_no_temporary(machines, tmp_path, monkeypatch):
    out = tmp_path / "gen.jsonl"
    rows = write_generated(machines, out)
    before = out.read_bytes()

    def no_rename(*args):
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(review.os, "replace", no_rename)
    with pytest.raises(OSError):
        review.set_review(out, [review.row_key(rows[0])], "accepted")
    assert out.read_bytes() == before
    monkeypatch.undo()

    real_dumps = json.dumps
    written = []

    def fails_on_the_third_row(obj, **kwargs):
        written.append(obj)
        if len(written) == 3:
            raise RuntimeError("killed mid-write")
        return real_dumps(obj, **kwargs)

    monkeypatch.setattr(review.json, "dumps", fails_on_the_third_row)
    with pytest.raises(RuntimeError):
        review.accept_pending(out)
    monkeypatch.undo()
    assert out.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == [], "no temporary file left"


def test_a_torn_last_line_is_skipped_and_dropped_by_the_next_write(machines, tmp_path):
    out = tmp_path / "gen.jsonl"
    rows = write_generated(machines, out)
    with open(out, "a", encoding="utf-8") as f:
        f.write('{"question": "half a li')
    assert [r["question"] for r in review.read_rows(out)] == [r["question"] for r in rows]
    review.set_review(out, [review.row_key(rows[0])], "accepted")
    assert len(lines(out)) == len(rows), "every line parses after a write"
    (tmp_path / "bad.jsonl").write_text('{"question": "a"}\nnot json\n{"question": "b"}\n', encoding="utf-8")
    with pytest.raises(DomainsmithError) as caught:
        review.read_rows(tmp_path / "bad.jsonl")
    assert caught.value.line == 2


def test_the_source_passage_is_shown_or_said_gone(machines, tmp_path):
    out = tmp_path / "gen.jsonl"
    rows = write_generated(machines, out)
    source = review.source_of(rows[0], lambda name: machines)
    assert FACTS[0] in source.text and source.note == "" and source.document == "manual0.md"
    assert "Vantor K7 turbine" in source.place

    manual1 = next(d for d in machines.documents() if d.name == "manual1.md")
    brisco = next(r for r in rows if r["provenance"]["document_id"] == manual1.id)
    machines.remove(manual1.id)
    gone = review.source_of(brisco, lambda name: machines)
    assert gone.text is None and "gone from machines" in gone.note and gone.document == "manual1.md"

    manual0 = tmp_path / "manuals" / "manual0.md"
    manual0.write_text(manual0.read_text(encoding="utf-8") + "\n## Noise\n\nThe casing is painted blue.\n")
    list(machines.add([manual0]))  # replaced: same document, new content
    changed = review.source_of(rows[0], lambda name: machines)  # same document id, new content
    assert FACTS[0] in changed.text and changed.note.startswith("the document changed since this row was made")
    missing = review.source_of(rows[0], lambda name: (_ for _ in ()).throw(KnowledgeBaseError(f"no {name!r}")))
    assert missing.text is None and missing.note == "no 'machines'"


def test_a_running_generation_holds_the_file(machines, tmp_path):
    out = tmp_path / "gen.jsonl"
    rows = write_generated(machines, out)
    key = review.row_key(rows[0])
    assert not review.is_generating(out)
    with review.generating(out):
        assert review.is_generating(out)
        with pytest.raises(review.GenerationRunning, match="a generation is writing gen.jsonl"):
            review.set_review(out, [key], "accepted")
        with pytest.raises(review.GenerationRunning), review.generating(out):
            pass
    assert not review.is_generating(out)
    assert review.set_review(out, [key], "accepted") == 1
    assert [p.name for p in review.generated_files(tmp_path)] == ["gen.jsonl"]
