"""Rank fusion and page evidence (store.ranking)."""

from __future__ import annotations

from store.ranking import page_evidence, reciprocal_rank_fusion


def test_rank_fusion_rewards_agreement_and_weights_the_lists():
    fused = reciprocal_rank_fusion([[1, 2, 3], [3, 1]], k=10, weights=(1.0, 0.5))
    assert [i for i, _ in fused] == [1, 3, 2]
    assert dict(fused)[1] == 1 / 11 + 0.5 / 12


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
