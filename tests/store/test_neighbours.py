"""Neighbouring passages (store.neighbours): a hit grows with its section's chunks, in order, no text twice."""

from __future__ import annotations

from pathlib import Path

import pytest

from assistant.retrieval import retrieve
from store.settings import Settings

SEALS = [
    f"Seal step {n}: {text} Done."
    for n, text in enumerate(
        [
            "drain the pump casing completely and let the housing cool down below forty degrees.",
            "remove the six cover screws in a crosswise order and lift the cover off its dowels.",
            "pull the old lip seal with the extractor hook, never with a screwdriver or a chisel.",
            "clean the seal seat with lint free cloth and inspect the shaft sleeve for grooves.",
            "press the new lip seal in with the mandrel until it sits flush with the housing face.",
            "refit the cover, torque the screws to twelve newton metres and refill the casing.",
        ],
        start=1,
    )
]
BEARINGS = "The bearings are greased every two thousand hours with lithium complex grease of grade two."


@pytest.fixture
def kb(open_kb, settings, tmp_path: Path):
    doc = tmp_path / "docs" / "pump.md"
    doc.parent.mkdir()
    doc.write_text(
        "# Pump manual\n\n## Seals\n\n" + "\n\n".join(SEALS) + "\n\n## Bearings\n\n" + BEARINGS + "\n",
        encoding="utf-8",
    )
    kb = open_kb("pump", settings=settings.replace(chunk_tokens=32, chunk_overlap=4))
    list(kb.add([doc.parent]))
    return kb


def _tokens(kb, text: str) -> int:
    return kb.embedder.count_tokens([text])[0]


def _document_text(kb, doc_id: str) -> str:
    return kb.db.execute("SELECT text FROM documents WHERE id = ?", [doc_id]).fetchone()[0]


def _hit(kb, words: str):
    hit = kb.search(words, k=1, mode="keyword")[0]
    assert words.split()[-1] in hit.text
    return hit


def test_each_chunk_is_one_step(kb):
    # The fixture's premise: one seal step per chunk, so the tests below can name the neighbours.
    texts = [r[0] for r in kb.db.execute("SELECT text FROM chunks WHERE section LIKE '%Seals' ORDER BY idx")]
    assert [[step in text for step in SEALS].count(True) for text in texts] == [1] * len(SEALS)


def test_a_hit_grows_with_its_neighbours_in_document_order_within_the_budget(kb):
    hit = _hit(kb, "extractor hook")  # step 3
    budget = 3 * _tokens(kb, hit.text) + 8
    [grown] = kb.with_neighbours([hit], budget)
    text = _document_text(kb, hit.doc_id)
    assert grown.text == text[grown.start : grown.end]
    assert grown.start <= hit.start and grown.end >= hit.end and hit.text in grown.text
    assert SEALS[1] in grown.text and SEALS[3] in grown.text  # the previous and the next step
    assert grown.text.index(SEALS[1]) < grown.text.index(SEALS[2]) < grown.text.index(SEALS[3])
    assert _tokens(kb, grown.text) <= budget
    kept = ("chunk_id", "rank", "source", "section")
    assert [getattr(grown, a) for a in kept] == [getattr(hit, a) for a in kept]


def test_growth_stays_in_the_section(kb):
    hit = _hit(kb, "refill the casing")  # step 6, the last of "Seals"
    [grown] = kb.with_neighbours([hit], 10_000)
    assert BEARINGS not in grown.text
    assert all(step in grown.text for step in SEALS)  # the whole section fits: every step, once each
    assert all(grown.text.count(step) == 1 for step in SEALS)


def test_no_text_is_offered_twice(kb):
    first, second = _hit(kb, "extractor hook"), _hit(kb, "lint free cloth")  # steps 3 and 4: neighbours
    grown = kb.with_neighbours([first, second], 10_000)
    assert [g.chunk_id for g in grown] == [first.chunk_id, second.chunk_id]
    (a_start, a_end), (b_start, b_end) = ((g.start, g.end) for g in grown)
    # The first cannot take the second's chunk, nor the second the first's; what they add never overlaps.
    assert SEALS[3] not in grown[0].text and SEALS[2] not in grown[1].text
    assert a_start < first.start and b_end > second.end
    added_first = (a_start, first.start)
    added_second = (second.end, b_end)
    assert added_first[1] <= b_start or added_first[0] >= b_end
    assert added_second[0] >= a_end or added_second[1] <= a_start


def test_off_or_too_small_a_budget_changes_nothing(kb):
    hit = _hit(kb, "extractor hook")
    assert kb.with_neighbours([hit], 0) == [hit]
    assert kb.with_neighbours([hit], _tokens(kb, hit.text)) == [hit]


def test_chat_retrieval_grows_passages_only_when_chosen(kb):
    assert Settings().neighbour_tokens == 0
    plain = retrieve(kb, "How is the old lip seal pulled out?", k=2)
    grown = retrieve(kb, "How is the old lip seal pulled out?", k=2, neighbour_tokens=200)
    assert [h.chunk_id for h in grown.hits] == [h.chunk_id for h in plain.hits]
    assert (grown.relevance, grown.relevant) == (plain.relevance, plain.relevant)  # the gate judged what was found
    assert all(g.text.find(p.text) >= 0 for g, p in zip(grown.hits, plain.hits, strict=True))
    assert sum(len(h.text) for h in grown.hits) > sum(len(h.text) for h in plain.hits)
    assert all(_tokens(kb, h.text) <= 200 for h in grown.hits if h.text not in {p.text for p in plain.hits})


def test_overlapping_chunks_are_joined_without_repeating_their_overlap(open_kb, settings, tmp_path: Path):
    # One long paragraph: chunks split at sentences and overlap by whole sentences.
    doc = tmp_path / "one" / "seals.md"
    doc.parent.mkdir()
    doc.write_text("# Seals\n\n" + " ".join(SEALS) + "\n", encoding="utf-8")
    kb = open_kb("one", settings=settings.replace(chunk_tokens=40, chunk_overlap=12))
    list(kb.add([doc.parent]))
    spans = kb.db.execute('SELECT start, "end" FROM chunks ORDER BY idx').fetchall()
    assert any(later[0] < earlier[1] for earlier, later in zip(spans, spans[1:], strict=False))  # they overlap
    hit = _hit(kb, "lint free cloth")
    [grown] = kb.with_neighbours([hit], 10_000)
    assert grown.text == _document_text(kb, hit.doc_id)[grown.start : grown.end]
    assert all(grown.text.count(step) == 1 for step in SEALS)
    first, second = _hit(kb, "extractor hook"), _hit(kb, "refill the casing")
    a, b = kb.with_neighbours([first, second], 10_000)
    assert a.end <= second.start or a.end == first.end  # the first stops where the second starts
    assert b.start >= a.end or b.start == second.start
