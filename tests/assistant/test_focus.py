"""Passages cut to the sentences that answer the question before the model reads them (assistant.focus)."""

from __future__ import annotations

import pytest

from assistant import prompting
from assistant.events import Source
from assistant.focus import ELLIPSIS, best_window, focus
from store.errors import ConfigError
from store.settings import Settings


def words(text: str) -> int:
    return len(text.split())


MANUAL = (
    "The pump housing is cast iron and painted blue.\n"
    "Its nameplate sits on the left side of the frame.\n"
    "Replace the mechanical seal every 4,000 operating hours.\n"
    "A worn seal leaks at the shaft and drips onto the base plate.\n"
    "The motor is rated at 7.5 kW and runs at 1,450 rpm.\n"
    "Bearings are greased with lithium grease every three months."
)


def source(n: int, text: str) -> Source:
    return Source(n, f"c{n}", f"doc{n}.md", f"doc{n}.md", None, "Maintenance", text)


def test_best_window_takes_the_highest_scoring_run_that_fits():
    assert best_window([0.1, 0.9, 0.8, 0.1], [5, 5, 5, 5], 10) == (1, 2)
    assert best_window([0.1, 0.9, 0.1, 0.8], [5, 5, 5, 5], 10) == (0, 1)  # ties: the earliest
    assert best_window([0.2, 0.9, 0.1], [5, 50, 5], 10) == (1, 1)  # a sentence over the budget stays whole
    assert best_window([0.5], [3], 10) == (0, 0)


def test_a_long_passage_is_cut_to_the_answering_sentences_and_the_citation_keeps_it_whole(embedder):
    long, short = source(1, MANUAL), source(2, "The seal kit part number is SK-220.")
    question = "How often should the mechanical seal be replaced?"
    focused = focus(question, [long, short], embedder, 22, words, keep_whole=0)
    excerpt = focused[0].excerpt
    assert "Replace the mechanical seal every 4,000 operating hours." in excerpt
    assert words(excerpt.replace(ELLIPSIS, "")) <= 22
    assert excerpt.startswith(ELLIPSIS) and excerpt.endswith(ELLIPSIS), "cut text is marked on both sides"
    assert "\n" in excerpt, "the passage's own line breaks are kept"
    assert "lithium" not in excerpt
    assert focused[0].text == MANUAL, "citations and the support check read the whole passage"
    assert focused[1] == short and focused[1].excerpt is None, "a passage within the budget is left as it is"
    prompt = prompting.format_source(focused[0])
    assert "4,000" in prompt and "lithium" not in prompt


def test_no_budget_or_a_single_sentence_leaves_passages_whole(embedder):
    sources = [source(1, MANUAL)]
    assert focus("seal?", sources, embedder, 0, words) == sources
    one = [source(1, "A single long sentence " + "about the seal " * 20 + "ends here.")]
    assert focus("seal?", one, embedder, 10, words, keep_whole=0) == one


def test_an_excerpt_keeps_the_passage_order_and_fits_the_prompt_budget(embedder):
    sources = [source(n, MANUAL) for n in (1, 2, 3)]
    focused = focus("What is the motor rated at?", sources, embedder, 12, words)
    assert [s.n for s in focused] == [1, 2, 3]
    assert focused[0] == sources[0], "the best-ranked passage stays whole"
    for s in focused[1:]:
        assert "7.5 kW" in s.excerpt
    whole = prompting.user_message("q", sources)
    cut = prompting.user_message("q", focused)
    assert words(cut) < words(whole) * 0.75


def test_source_tokens_must_not_be_negative():
    with pytest.raises(ConfigError, match="source_tokens"):
        Settings(source_tokens=-1).validate()
