"""Grounded examples: the expert's Q&A joined with a knowledge base, in the exact prompt Chat uses.

For each question the knowledge base is searched the way Chat searches it
(``assistant.retrieval.retrieve``) and the messages are built by Chat's own
``assistant.prompting.build_messages``: system prompt, numbered sources (distractors included).
The passage that holds the answer is the source whose text covers most of the answer's keywords:

- found: the target is the expert's answer citing that source, ``"... [n]"``;
- not found, or for a seeded share of the questions with that passage taken out of the sources:
  the target is Chat's ``ABSTAIN_REPLY``, so the model learns to refuse when the sources are silent.
"""

from __future__ import annotations

import random
from typing import Any

from adapters.evaluation import keyword_recall

ANSWER_COVERAGE = 0.5  # share of the answer's keywords a passage must hold to count as the answer's source


def grounded_examples(kb: Any, qa: list[dict[str, Any]], *, k: int = 5, threshold: float = 0.45,
                      abstain_share: float = 0.25, seed: int = 0) -> tuple[list[dict[str, Any]], dict[str, int]]:
    """Chat-format examples for ``qa`` (chat examples: a user question and an assistant answer)."""
    from assistant.events import Source
    from assistant.prompting import ABSTAIN_REPLY, build_messages
    from assistant.retrieval import retrieve

    rng = random.Random(seed)
    out: list[dict[str, Any]] = []
    counts = {"cited": 0, "abstain_no_source": 0, "abstain_removed": 0}
    for example in qa:
        if example["kind"] != "chat":
            continue
        question = next(m["content"] for m in reversed(example["messages"]) if m["role"] == "user")
        answer = example["messages"][-1]["content"]
        hits = retrieve(kb, question, k=k, threshold=threshold).hits
        scores = [keyword_recall(h.text, answer) for h in hits]
        best = max(range(len(hits)), key=lambda i: scores[i]) if hits else None

        def render(chosen: list, target: str) -> dict[str, Any]:
            sources = [Source(n=i, chunk_id=h.chunk_id, document=h.document, source=h.source, page=h.page,
                              section=h.section, text=h.text, score=h.score) for i, h in enumerate(chosen, start=1)]
            messages = build_messages(question, sources) + [{"role": "assistant", "content": target}]
            return {"kind": "chat", "messages": messages, "origin": example.get("origin", "") + "+kb"}

        if best is None or scores[best] < ANSWER_COVERAGE:
            out.append(render(hits, ABSTAIN_REPLY))
            counts["abstain_no_source"] += 1
            continue
        out.append(render(hits, f"{answer.rstrip()} [{best + 1}]"))
        counts["cited"] += 1
        if rng.random() < abstain_share:
            others = [h for i, h in enumerate(hits) if scores[i] < ANSWER_COVERAGE]
            if others:
                out.append(render(others, ABSTAIN_REPLY))
                counts["abstain_removed"] += 1
    return out, counts
