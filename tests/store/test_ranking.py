"""Rank fusion, page fusion and page evidence (store.ranking)."""

from __future__ import annotations

import pytest

from store.ranking import page_evidence, page_fusion, reciprocal_rank_fusion


def test_rank_fusion_rewards_agreement_and_weights_the_lists():
    fused = reciprocal_rank_fusion([[1, 2, 3], [3, 1]], k=10, weights=(1.0, 0.5))
    assert [i for i, _ in fused] == [1, 3, 2]
    assert dict(fused)[1] == 1 / 11 + 0.5 / 12


def test_page_fusion_lifts_the_page_both_rankers_put_first():
    # Page A: vector search's first passage (1) and keyword search's first passage (3) are different
    # passages of it; passage 2 (page B) is second and third, so plain fusion puts it first.
    vector, keyword = [1, 2, 4], [3, 5, 2]
    pages = {1: ("A", None), 3: ("A", None), 2: ("B", None), 4: ("C", None), 5: ("D", None)}
    plain = reciprocal_rank_fusion([vector, keyword], k=10, weights=(1.0, 0.5))
    assert [i for i, _ in plain][:2] == [2, 1]
    lifted = page_fusion([vector, keyword], pages, 3.0, k=10, weights=(1.0, 0.5))
    assert [i for i, _ in lifted][:2] == [1, 2]
    page_a, page_b = 1 / 11 + 0.5 / 11, 1 / 12 + 0.5 / 13
    assert dict(lifted)[1] == pytest.approx(dict(plain)[1] + 3.0 * page_a)  # A's best passage gains A's score
    assert dict(lifted)[2] == pytest.approx(dict(plain)[2] + 3.0 * page_b)
    assert dict(lifted)[3] == dict(plain)[3]  # A's other passage keeps its own score
    # A small weight only breaks near-ties: here plain fusion's order stands.
    assert [i for i, _ in page_fusion([vector, keyword], pages, 0.25, k=10, weights=(1.0, 0.5))][:2] == [2, 1]


def test_page_fusion_gives_a_long_page_nothing_for_its_length():
    # Page "long" holds vector search's passages 2-6; "short" one passage first in both rankings.
    vector, keyword = [1, 2, 3, 4, 5, 6], [1, 2]
    pages = {1: ("short", None), **dict.fromkeys(range(2, 7), ("long", None))}
    lifted = page_fusion([vector, keyword], pages, 2.0, k=10, weights=(1.0, 0.5))
    assert [i for i, _ in lifted][:2] == [1, 2]
    assert all(
        dict(lifted)[i] == dict(reciprocal_rank_fusion([vector, keyword], k=10, weights=(1.0, 0.5)))[i]
        for i in range(3, 7)
    )


def test_page_fusion_off_or_unknown_pages():
    vector, keyword = [1, 2], [2, 3]
    plain = reciprocal_rank_fusion([vector, keyword], k=10, weights=(1.0, 0.5))
    assert page_fusion([vector, keyword], {1: ("a", 1)}, 0.0, k=10, weights=(1.0, 0.5)) == plain
    # No page known: each passage is its own page, so every one gains its own fused score again.
    alone = page_fusion([vector, keyword], {}, 1.0, k=10, weights=(1.0, 0.5))
    assert [i for i, _ in alone] == [i for i, _ in plain]
    # Pages numbered in one document and None in another never need comparing.
    mixed = {1: ("pdf", 3), 2: ("pdf", None), 3: ("html", None)}
    assert {i for i, _ in page_fusion([vector, keyword], mixed, 1.0)} == {1, 2, 3}


def test_page_evidence_lifts_a_page_that_answers_in_several_places():
    scored = [(1, 0.10), (2, 0.09), (3, 0.08), (4, 0.07)]
    pages = {1: ("short", None), 2: ("long", 4), 3: ("long", 4), 4: ("long", 4)}
    lifted = page_evidence(scored, pages, weight=0.5)
    assert [i for i, _ in lifted][:1] == [2]  # 0.09 + 0.5 * (0.08 + 0.07) beats 0.10 alone
    assert dict(lifted)[1] == 0.10  # a page with one passage gains nothing
    assert dict(lifted)[4] == 0.07 + 0.5 * (0.09 + 0.08)  # at most the two best others count


def test_page_evidence_off_or_unknown_pages_keeps_the_ranking():
    scored = [(1, 0.2), (2, 0.1)]
    assert page_evidence(scored, {1: ("a", 1), 2: ("a", 1)}, weight=0.0) == scored
    assert page_evidence(scored, {}, weight=1.0) == scored  # no page known: each passage alone


def test_evidence_weight_reorders_hybrid_search(tmp_path):
    from store.knowledge_base import KnowledgeBase
    from store.settings import Settings

    root = tmp_path / "docs"
    root.mkdir()
    (root / "glossary.md").write_text("# Glossary\n\nImpeller clearance: the impeller clearance.\n")
    long_page = "# Impeller\n\n" + "\n\n".join(
        f"## Step {n}\n\nMeasure the impeller clearance with feeler gauge {n}; {'filler words ' * 40}"
        for n in range(1, 5)
    )
    (root / "service.md").write_text(long_page)
    plain = Settings.load(home=tmp_path / "home", env={}).replace(chunk_tokens=64, chunk_overlap=0)
    with KnowledgeBase.open(plain, "kb") as kb:
        list(kb.add([root]))
        before = kb.search("impeller clearance", k=3)
    with KnowledgeBase.open(plain.replace(evidence_weight=1.0), "kb") as kb:
        after = kb.search("impeller clearance", k=3)
    assert before[0].document == "glossary.md"
    assert after[0].document == "service.md"


def test_page_weight_is_what_hybrid_search_applies(tmp_path):
    """Wiring: a knowledge base's hybrid search with ``page_weight`` orders passages as page fusion
    of its own vector and keyword rankings does."""
    from store import fts
    from store.knowledge_base import KnowledgeBase
    from store.search import _pages
    from store.settings import Settings

    root = tmp_path / "docs"
    root.mkdir()
    for name, topic in (("pump.md", "impeller"), ("valve.md", "seat"), ("seal.md", "gasket")):
        sections = "\n\n".join(
            f"## {topic.title()} step {n}\n\nInspect the {topic} and the impeller clearance, step {n}. "
            + "Record the reading in the log. " * 8
            for n in range(1, 4)
        )
        (root / name).write_text(f"# {topic.title()} service\n\n{sections}\n")
    settings = Settings.load(home=tmp_path / "home", env={}).replace(
        chunk_tokens=48, chunk_overlap=0, page_weight=1.0, diversity="none"
    )
    query = "impeller clearance inspection"
    with KnowledgeBase.open(settings, "kb") as kb:
        list(kb.add([root]))
        hits = kb.search(query, k=6)
        vector = [i for i, _ in kb._vector_ranking(query, 50)]
        keyword = [i for i, _ in fts.keyword_search(kb.db, kb.id, query, 50)]
        expected = page_fusion(
            [vector, keyword],
            _pages(kb.db, vector + keyword),
            1.0,
            k=settings.rrf_k,
            weights=(1.0, settings.keyword_weight),
        )
        ids = dict(kb.db.execute("SELECT chunk_id, id FROM chunks").fetchall())
    plain = reciprocal_rank_fusion([vector, keyword], k=settings.rrf_k, weights=(1.0, settings.keyword_weight))
    assert [i for i, _ in plain][: len(hits)] != [i for i, _ in expected][: len(hits)]  # the weight matters here
    assert [ids[h.chunk_id] for h in hits] == [i for i, _ in expected][: len(hits)]
