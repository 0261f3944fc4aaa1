from __future__ import annotations

import pytest

from store.chunking import Chunker
from store.records import Block


def words(texts):
    """A simple, real token counter for unit tests: one token per whitespace-separated word."""
    return [len(t.split()) for t in texts]


def sentence(n: int, length: int = 12) -> str:
    return " ".join(f"w{n}x{i}" for i in range(length - 1)) + " end."


def test_chunk_text_is_an_exact_slice_of_the_document_text():
    blocks = [
        Block("Intro", section=("Intro",), kind="heading"),
        Block("Alpha beta gamma.", section=("Intro",)),
        Block("Second para here.", section=("Intro",)),
    ]
    text, chunks = Chunker(words, max_tokens=50, overlap=0).chunk(blocks)
    assert chunks
    for chunk in chunks:
        assert text[chunk.start : chunk.end] == chunk.text


def test_chunks_never_cross_sections_or_pages():
    blocks = [Block(sentence(i), page=1 + i // 3, section=(f"S{i // 2}",)) for i in range(12)]
    _, chunks = Chunker(words, max_tokens=1000, overlap=0).chunk(blocks)
    keys = [(c.page, c.section) for c in chunks]
    assert len(keys) == len(set(keys))  # one chunk per (page, section) run: nothing merged across
    for c in chunks:
        assert all(f"w{i}x" not in c.text for i in range(12) if (1 + i // 3, (f"S{i // 2}",)) != (c.page, c.section))


def test_long_sections_split_within_budget_with_overlap():
    blocks = [Block(" ".join(sentence(i) for i in range(40)), section=("Long",))]
    _, chunks = Chunker(words, max_tokens=60, overlap=12).chunk(blocks)
    assert len(chunks) > 5
    assert all(len(c.text.split()) <= 60 for c in chunks)
    for a, b in zip(chunks, chunks[1:], strict=False):
        assert b.start < a.end, "consecutive chunks overlap"
        assert b.start > a.start, "and always move forward"
    assert chunks[-1].end == len(blocks[0].text)


def test_overlong_words_are_cut_not_dropped():
    blob = "x" * 5000
    _, chunks = Chunker(lambda ts: [max(1, len(t) // 4) for t in ts], max_tokens=100, overlap=0).chunk([Block(blob)])
    assert "".join(c.text for c in chunks) == blob


def test_heading_only_section_folds_into_the_next():
    blocks = [
        Block("Install", section=("Install",), kind="heading"),
        Block("On Linux", section=("Install", "On Linux"), kind="heading"),
        Block("Run the installer.", section=("Install", "On Linux")),
    ]
    _, chunks = Chunker(words, max_tokens=50, overlap=0).chunk(blocks)
    assert len(chunks) == 1
    assert chunks[0].section == ("Install", "On Linux")
    assert chunks[0].text.startswith("Install")


def test_real_tokenizer_budget(embedder):
    text = " ".join(f"The pump model XR-{i} delivers {i * 3} litres per minute at rated speed." for i in range(200))
    _, chunks = Chunker(embedder.count_tokens, max_tokens=120, overlap=20).chunk([Block(text, section=("Specs",))])
    counts = embedder.count_tokens([c.text for c in chunks])
    assert max(counts) <= 120
    assert len(chunks) >= 20


@pytest.mark.parametrize("max_tokens, overlap", [(4, 0), (100, 50), (100, -1)])
def test_invalid_budgets_are_refused(max_tokens, overlap):
    with pytest.raises(ValueError):
        Chunker(words, max_tokens=max_tokens, overlap=overlap)


def test_packed_sections_join_short_neighbours_under_their_common_parent():
    blocks = [
        Block("Fields", section=("Fields",), kind="heading"),
        Block("Source", section=("Fields", "Source"), kind="heading"),
        Block(sentence(1), section=("Fields", "Source")),
        Block("Maintainer", section=("Fields", "Maintainer"), kind="heading"),
        Block(sentence(2), section=("Fields", "Maintainer")),
        Block("Section", section=("Fields", "Section"), kind="heading"),
        Block(sentence(3), section=("Fields", "Section")),
    ]
    text, separate = Chunker(words, max_tokens=40, overlap=0).chunk(blocks)
    _, packed = Chunker(words, max_tokens=40, overlap=0, pack_sections=True).chunk(blocks)
    assert [c.section for c in separate] == [("Fields", "Source"), ("Fields", "Maintainer"), ("Fields", "Section")]
    assert [c.section for c in packed] == [("Fields",)]  # 3 x 13 words fit 40 tokens: one chunk
    assert packed[0].text == text[packed[0].start : packed[0].end]
    assert all(heading in packed[0].text for heading in ("Source", "Maintainer", "Section"))


def test_packed_sections_respect_the_budget_pages_and_long_sections():
    long_text = " ".join(sentence(i) for i in range(10, 20))  # 120 words: split on its own
    blocks = [
        Block(sentence(1), page=1, section=("A",)),
        Block(sentence(2), page=1, section=("B",)),
        Block(sentence(3), page=1, section=("C",)),  # 3 x 12 words: only two fit 30 tokens
        Block(sentence(4), page=2, section=("D",)),  # another page: never joined to C
        Block(long_text, page=2, section=("E",)),
        Block(sentence(5), page=2, section=("F",)),
    ]
    _, chunks = Chunker(words, max_tokens=30, overlap=0, pack_sections=True).chunk(blocks)
    assert all(len(c.text.split()) <= 30 for c in chunks)
    assert [(c.page, c.section) for c in chunks[:3]] == [(1, ()), (1, ("C",)), (2, ("D",))]
    assert "w1x" in chunks[0].text and "w2x" in chunks[0].text
    long_chunks = [c for c in chunks if c.section == ("E",)]
    assert len(long_chunks) >= 4 and not any("w4x" in c.text or "w5x" in c.text for c in long_chunks)
    assert chunks[-1].section == ("F",)  # after a long section, packing starts afresh
