"""Grounded examples: the expert's Q&A joined with a knowledge base, in the exact prompt Chat uses.

For each question the knowledge base is searched the way Chat searches it
(``assistant.retrieval.retrieve``) and the messages are built by Chat's own
``assistant.prompting.build_messages``: system prompt, numbered sources (distractors included).
The passage that holds the answer is, for a row generated from the documents, the passage it was
written from when retrieval offers it (``source_chunk``, from its provenance: a generated answer
may paraphrase its passage), otherwise the source whose text covers most of the answer's keywords:

- found: the target is the expert's answer citing that source, ``"... [n]"``;
- not found, or for a seeded share (``abstain_share``, exactly) of the found ones with that passage
  taken out of the sources: the target is Chat's ``ABSTAIN_REPLY``, so the model learns to refuse
  when the sources are silent.

Sources come in Chat's rank order, or, with ``shuffle_sources``, in a seeded random order per
example: questions written from a passage retrieve it first two times in three, and a model trained
on that order learns that the answer is in ``[1]``.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Any

from adapters.datasets import question_of
from adapters.evaluation import keyword_recall
from adapters.hyperparameters import ABSTAIN_SHARE
from store.errors import DomainsmithError

ANSWER_COVERAGE = 0.5  # share of the answer's keywords a passage must hold to count as the answer's source


def answer_source(
    answer: str, passages: Sequence[str], chunk_ids: Sequence[str] = (), own_chunk: str | None = None
) -> int | None:
    """The index of the passage that holds the answer, or None: the row's own passage (``own_chunk``,
    when it is among ``chunk_ids``), else the one that covers most of its keywords, enough of them."""
    if own_chunk is not None and own_chunk in chunk_ids:
        return list(chunk_ids).index(own_chunk)
    scores = [keyword_recall(p, answer) for p in passages]
    best = max(range(len(passages)), key=scores.__getitem__) if passages else None
    return best if best is not None and scores[best] >= ANSWER_COVERAGE else None


def default_abstain_share(qa: list[dict[str, Any]]) -> float:
    """``ABSTAIN_SHARE`` for an expert's own Q&A, or 0: for rows generated from the documents
    (``data generate``), and for rows that bring refusals of their own (an expert's "not in the
    documents" answers). Then no answerable question is also trained to refuse without its passage:
    on generated rows that made a 0.5B model refuse questions the documents answer (bench/README.md,
    "Documents-only loop")."""
    from assistant.reply_check import is_abstention

    own = any(e["kind"] == "chat" and is_abstention(e["messages"][-1]["content"]) for e in qa)
    generated = any(e["kind"] == "chat" and e.get("generated") for e in qa)
    return 0.0 if own or generated else ABSTAIN_SHARE


def grounded_examples(
    kb: Any,
    qa: list[dict[str, Any]],
    *,
    k: int = 5,
    threshold: float,
    abstain_share: float = ABSTAIN_SHARE,
    seed: int = 0,
    shuffle_sources: bool = False,
) -> tuple[list[dict[str, Any]], dict[str, int]]:
    """Chat-format examples for ``qa`` (chat examples: a user question and an assistant answer).

    ``threshold`` is Chat's relevance gate (``Settings.relevance_threshold``). Each example keeps
    its question in a ``question`` field, since its user turn is the whole prompt with sources.
    """
    from assistant.prompting import ABSTAIN_REPLY, build_messages
    from assistant.retrieval import retrieve, sources_from

    if not 0.0 <= abstain_share <= 1.0:
        raise DomainsmithError(f"the abstain share must be between 0 and 1, not {abstain_share:g}")
    planned = []  # (example, question, answer, hits, index of the answer's source or None)
    for example in qa:
        if example["kind"] != "chat":
            continue
        question = question_of(example)
        answer = example["messages"][-1]["content"]
        hits = retrieve(kb, question, k=k, threshold=threshold).hits
        best = answer_source(answer, [h.text for h in hits], [h.chunk_id for h in hits], example.get("source_chunk"))
        planned.append((example, question, answer, hits, best))
    # Exactly a share of the cited questions (seeded) also get the variant without their source; a coin
    # flip per question gave none at all for 24 questions with seed 0.
    cited = [i for i, plan in enumerate(planned) if plan[4] is not None]
    removed = set(random.Random(seed).sample(cited, round(abstain_share * len(cited))))
    out: list[dict[str, Any]] = []
    counts = {"cited": 0, "abstain_no_source": 0, "abstain_removed": 0}

    def render(example: dict[str, Any], question: str, chosen: list, target: str) -> dict[str, Any]:
        messages = build_messages(question, sources_from(chosen)) + [{"role": "assistant", "content": target}]
        out = {"kind": "chat", "messages": messages, "origin": example.get("origin", "") + "+kb", "question": question}
        return {**out, "generated": True} if example.get("generated") else out

    for i, (example, question, answer, hits, best) in enumerate(planned):
        shown = random.Random(f"{seed}:{i}").sample(hits, len(hits)) if shuffle_sources else list(hits)
        if best is None:
            out.append(render(example, question, shown, ABSTAIN_REPLY))
            counts["abstain_no_source"] += 1
            continue
        out.append(render(example, question, shown, f"{answer.rstrip()} [{shown.index(hits[best]) + 1}]"))
        counts["cited"] += 1
        others = [h for h in shown if h is not hits[best] and keyword_recall(h.text, answer) < ANSWER_COVERAGE]
        if i in removed and others:
            out.append(render(example, question, others, ABSTAIN_REPLY))
            counts["abstain_removed"] += 1
    return out, counts
