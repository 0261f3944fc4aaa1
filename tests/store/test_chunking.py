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
