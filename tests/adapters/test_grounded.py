"""Grounded training data (``adapters.grounded``, ``train --grounded``): questions rendered in Chat's
own prompt, answers citing their passage, refusals, and how many refusals a run trains."""

from __future__ import annotations

import json

import pytest


def test_grounded_examples_use_chats_prompt_cite_and_abstain(open_kb, tmp_path):
    from adapters.grounded import grounded_examples
    from assistant.prompting import ABSTAIN_REPLY, SYSTEM_PROMPT
    from tests import factories

    kb = open_kb("grounded")
    list(kb.add([factories.make_markdown(tmp_path / "guide.md")]))
    qa = [
        {
            "kind": "chat",
            "origin": "qa.jsonl:1",
            "messages": [
                {"role": "user", "content": "How is the base frame anchored during installation?"},
                {"role": "assistant", "content": "With four chemical bolts, before grouting."},
            ],
        },
        {
            "kind": "chat",
            "origin": "qa.jsonl:2",
            "messages": [
                {"role": "user", "content": "What is the boiling point of mercury?"},
                {"role": "assistant", "content": "Mercury boils at 356.7 degrees Celsius."},
            ],
        },
    ]
    examples, counts = grounded_examples(kb, qa, k=3, threshold=0.0, abstain_share=1.0)
    assert counts == {"cited": 1, "abstain_no_source": 1, "abstain_removed": 1}
    cited = examples[0]["messages"]
    assert cited[0] == {"role": "system", "content": SYSTEM_PROMPT}
    assert cited[1]["content"].startswith('Sources:\n<source n="1">')
    assert "Question: How is the base" in cited[1]["content"]
    n = int(cited[-1]["content"].rsplit("[", 1)[1].rstrip("]"))
    block = cited[1]["content"].split(f'<source n="{n}">', 1)[1].split("</source>", 1)[0]
    assert "chemical bolts" in block and cited[-1]["content"].startswith("With four chemical bolts")
    assert examples[1]["messages"][-1]["content"] == ABSTAIN_REPLY  # the same question without its source
    assert "chemical bolts" not in examples[1]["messages"][1]["content"]
    assert examples[2]["messages"][-1]["content"] == ABSTAIN_REPLY  # nothing in the documents about mercury


def test_a_generated_row_cites_the_passage_it_was_written_from_even_in_other_words(open_kb, tmp_path):
    """A generated answer may paraphrase its passage: found by keywords alone, it would be trained to
    refuse with its own passage in the sources (16 of 109 rows in bench/loop.py's Debian Policy run)."""
    from adapters.datasets import load_file
    from adapters.grounded import grounded_examples
    from assistant.prompting import ABSTAIN_REPLY
    from assistant.retrieval import retrieve
    from tests import factories

    kb = open_kb("paraphrase")
    list(kb.add([factories.make_markdown(tmp_path / "guide.md")]))
    question = "How is the base frame anchored during installation?"
    hits = retrieve(kb, question, k=3, threshold=0.0).hits
    own = next(h for h in hits if "chemical bolts" in h.text)
    answer = "Resin anchors, four in all, hold it down; the grout is poured afterwards."
    rows = [  # the same question twice (reworded: the loader drops repeats), with and without its passage
        {"question": q, "answer": answer, "kind": "answerable", "review": "accepted", "provenance": prov}
        for q, prov in (
            (question, {"kb": "paraphrase", "chunk_id": own.chunk_id}),
            ("How is the base frame anchored when installing?", {"kb": "paraphrase"}),
        )
    ]
    rows += [  # the loader wants ten rows to train; a refusal row's passage is not its answer's source
        {"question": f"Who painted mural {i}?", "answer": ABSTAIN_REPLY, "kind": "unanswerable", "review": "accepted"}
        | {"provenance": {"kb": "paraphrase", "chunk_id": own.chunk_id}}
        for i in range(9)
    ]
    data = tmp_path / "generated.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    loaded = load_file(data).examples
    assert [e.get("source_chunk") for e in loaded] == [own.chunk_id] + [None] * 10

    examples, counts = grounded_examples(kb, loaded[:2], k=3, threshold=0.0, abstain_share=0.0)
    assert counts == {"cited": 1, "abstain_no_source": 1, "abstain_removed": 0}
    cited, without_provenance = examples
    n = hits.index(own) + 1
    assert cited["messages"][-1]["content"] == f"{answer} [{n}]"
    assert f'<source n="{n}">' in cited["messages"][1]["content"]
    assert without_provenance["messages"][-1]["content"] == ABSTAIN_REPLY  # keywords alone do not find it

    examples, counts = grounded_examples(kb, loaded[:1], k=3, threshold=0.0, abstain_share=1.0)
    assert counts == {"cited": 1, "abstain_no_source": 0, "abstain_removed": 1}
    assert "chemical bolts" not in examples[1]["messages"][1]["content"]  # its own passage is what is taken out
    assert examples[1]["messages"][-1]["content"] == ABSTAIN_REPLY


def _guide_and_rows(kb, folder, n: int, refusals: int = 0):
    """Add the guide fixture to ``kb``; a file of ``n`` Q&A rows its bolts passage answers, then
    ``refusals`` rows answered with Chat's abstention reply (as generated unanswerable rows are)."""
    import json

    from assistant.prompting import ABSTAIN_REPLY
    from tests import factories

    list(kb.add([factories.make_markdown(folder / "guide.md")]))
    rows = folder / "qa.jsonl"
    answered = [{"question": f"How is frame {i} anchored?", "answer": "With four chemical bolts."} for i in range(n)]
    refused = [
        {"question": f"What colour is the Quillon K{i} gearbox?", "answer": ABSTAIN_REPLY} for i in range(refusals)
    ]
    rows.write_text("".join(json.dumps(row) + "\n" for row in answered + refused))
    return rows


def test_grounded_training_is_sized_by_its_examples_and_an_explicit_epoch_count_wins(open_kb, settings, tmp_path):
    from adapters.hyperparameters import GROUNDED_PASSES, GROUNDED_PATIENCE, grounded_epochs
    from adapters.service import TrainRequest, prepare_data

    assert grounded_epochs("standard", 24) == 20  # a few dozen facts keep the measured recipe
    assert grounded_epochs("standard", 100) == GROUNDED_PASSES // 100
    assert grounded_epochs("standard", 400) == 2  # never under two passes
    assert grounded_epochs("quick", 10) == 5 and grounded_epochs("quick", 1000) == 2

    kb = open_kb("sized")
    rows = _guide_and_rows(kb, tmp_path, 60)

    def prepared(**overrides):
        request = TrainRequest(data=str(rows), grounded="sized", overrides=overrides)
        return prepare_data(request, lambda name: kb, settings)

    data = prepared()
    n = len(data.examples)
    assert n > 60  # the cited rows and a share of them without their source
    assert data.overrides["epochs"] == grounded_epochs("standard", n) < 20
    assert f"{data.overrides['epochs']} epochs for {n} grounded examples" in data.grounding
    assert prepared(epochs=7).overrides["epochs"] == 7
    assert data.overrides["patience"] == GROUNDED_PATIENCE > 0  # keeps its best epoch (tests/adapters/test_training.py)
    assert prepared(patience=0).overrides["patience"] == 0


def test_the_share_of_questions_trained_to_refuse_without_their_passage_can_be_chosen(open_kb, settings, tmp_path):
    """``train --abstain-share``: 0 renders each cited row once; the share is recorded; out of range refused."""
    from adapters.hyperparameters import ABSTAIN_SHARE
    from adapters.service import TrainRequest, prepare_data
    from store.errors import DomainsmithError

    kb = open_kb("shares")
    rows = _guide_and_rows(kb, tmp_path, 40)

    def prepared(share):
        request = TrainRequest(data=str(rows), grounded="shares", abstain_share=share)
        return prepare_data(request, lambda n: kb, settings)

    default, none, every = prepared(None), prepared(0.0), prepared(1.0)
    assert default.source["abstain_share"] == ABSTAIN_SHARE and none.source["abstain_share"] == 0.0
    assert len(none.examples) == 40 and "40 answers cite their source, 0 abstain" in none.grounding
    assert len(none.examples) < len(default.examples) < len(every.examples) == 80
    for share in (-0.1, 1.5):
        with pytest.raises(DomainsmithError, match="between 0 and 1"):
            prepared(share)


def test_rows_with_refusals_of_their_own_are_not_also_trained_to_refuse_without_their_passage(
    open_kb, settings, tmp_path
):
    """The default share is 0 when the rows bring refusals (generated unanswerable rows); an explicit one wins."""
    from adapters.service import TrainRequest, prepare_data

    kb = open_kb("own")
    rows = _guide_and_rows(kb, tmp_path, 20, refusals=3)

    def prepared(share):
        return prepare_data(TrainRequest(data=str(rows), grounded="own", abstain_share=share), lambda n: kb, settings)

    default = prepared(None)
    assert default.source["abstain_share"] == 0.0
    assert len(default.examples) == 23 and "20 answers cite their source, 3 abstain" in default.grounding
    chosen = prepared(0.5)
    assert chosen.source["abstain_share"] == 0.5 and len(chosen.examples) == 33


def test_shuffled_sources_move_the_cited_passage_and_the_citation_follows_it(open_kb, settings, tmp_path):
    """``train --shuffle-sources``: the same five sources per example, in a seeded order; each answer
    cites the number its passage has there, so the answer is not always learned to sit in [1]."""
    import re

    from adapters.service import TrainRequest, prepare_data

    kb = open_kb("shuffled")
    rows = _guide_and_rows(kb, tmp_path, 30)

    def prepared(shuffle: bool, seed: int = 0):
        request = TrainRequest(
            data=str(rows), grounded="shuffled", abstain_share=0.0, shuffle_sources=shuffle, seed=seed
        )
        return prepare_data(request, lambda n: kb, settings)

    def cited(example) -> tuple[int, str, list[str]]:
        user, answer = example["messages"][1]["content"], example["messages"][-1]["content"]
        n = int(re.search(r"\[(\d+)\]$", answer).group(1))
        blocks = [re.sub(r"^\[\d+\] ", "", b) for b in re.findall(r'<source n="\d+">\n(.*?)</source>', user, re.S)]
        return n, blocks[n - 1], sorted(blocks)

    ranked, shuffled = prepared(False), prepared(True)
    assert shuffled.source["shuffle_sources"] is True and ranked.source["shuffle_sources"] is False
    ranked_cites = [cited(e) for e in ranked.examples]
    shuffled_cites = [cited(e) for e in shuffled.examples]
    assert {n for n, _, _ in ranked_cites} == {1}  # every row retrieves its passage first
    assert len({n for n, _, _ in shuffled_cites}) >= 3  # spread over the positions
    for (_, passage, blocks), (_, moved, same_blocks) in zip(ranked_cites, shuffled_cites, strict=True):
        assert moved == passage and same_blocks == blocks  # the cited passage is the same, among the same sources
        assert "chemical bolts" in moved
    assert [cited(e) for e in prepared(True).examples] == shuffled_cites  # seeded


def test_generated_unanswerable_rows_are_asked_before_and_after_and_trained_only_on_request(
    open_kb, settings, tmp_path, monkeypatch
):
    """Trained, the generated unanswerable rows made the 0.5B refuse answerable questions (bench/loop.py):
    by default they stay out of the training and validation sets and are asked before and after
    training with retrieval on, as unanswerable questions; ``train_unanswerable`` trains them to
    Chat's abstention reply."""
    from dataclasses import replace

    from adapters import catalogue, datasets, rag_eval, service
    from adapters.datagen_review import row_key, set_review
    from assistant.prompting import ABSTAIN_REPLY
    from tests.adapters.test_datagen_review import write_generated
    from tests.adapters.test_lineage import TINY_BASE
    from tests.adapters.test_rag_eval import write_manuals

    kb = open_kb("machines")
    list(kb.add(write_manuals(tmp_path / "manuals")))
    out = tmp_path / "generated.jsonl"
    rows = write_generated(kb, out, answerable=12, unanswerable=3)
    set_review(out, [row_key(r) for r in rows], "accepted")
    unanswerable = {r["question"] for r in rows if r["kind"] == "unanswerable"}
    monkeypatch.setattr(service, "describe", lambda base, s: replace(TINY_BASE, path=tmp_path / "base.gguf"))

    def prepared(**options):
        request = service.TrainRequest(data=str(out), grounded="machines", base=str(tmp_path / "base.gguf"), **options)
        job, data = service.prepare(settings, request, lambda name: kb)
        folder = catalogue.run_dir(settings, job.run_id)
        examples = datasets.read_examples(folder.train) + datasets.read_examples(folder.val)
        return data, examples, {row["question"]: row for row in rag_eval.load(folder.rag_eval)}

    data, examples, asked = prepared()
    assert len(examples) == 12 and not {datasets.question_of(e) for e in examples} & unanswerable
    assert all(e["messages"][-1]["content"] != ABSTAIN_REPLY for e in examples)  # no refusal of any kind
    assert data.source["unanswerable_held_back"] == 3 and data.source["abstain_share"] == 0.0
    assert any("3 generated unanswerable rows not trained: asked before and after" in n for n in data.data_notes)
    assert unanswerable <= set(asked) and all(asked[q]["unanswerable"] for q in unanswerable)

    data, examples, asked = prepared(train_unanswerable=True)
    refusals = {datasets.question_of(e) for e in examples if e["messages"][-1]["content"] == ABSTAIN_REPLY}
    assert len(examples) == 15 and refusals == unanswerable
    assert "unanswerable_held_back" not in data.source
