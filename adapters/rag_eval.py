"""Before/after with retrieval on: held-out questions asked the way Chat asks them, scored like ``eval rag``.

When a run involves a knowledge base (``train --from-kb NAME``, or ``--data FILE --grounded NAME``),
the parent renders each held-out question at prepare time through Chat's own retrieval
(``assistant.retrieval.retrieve``: hybrid search, the relevance gate) and prompt
(``assistant.prompting.build_messages``) and saves them in the run's ``rag_eval.jsonl``. After
training, the worker answers them greedily with the base and with the adapted model; each reply
goes through Chat's reply check (``assistant.reply_check.check_reply``: citations checked against
their passages, the quoted-passage fallback, the abstention) and the answers are tallied by
``eval rag``'s scoring (``assistant.evaluation.Tally``): keyword accuracy, citation support
(answers whose cited passages hold the expected keywords), abstention precision and recall.
Questions the gate turns away are abstentions for both models, as in Chat. ``quoted_passage`` is
the share of answers where the model's reply failed Chat's checks and a passage was quoted instead.

A question counts as unanswerable when no retrieved passage holds its reference answer (the rule
``adapters.grounded`` trains the abstention on). Its expected keywords are the content words of
the reference answer's first sentence that the question does not already contain (nor a word
grown from one of its words, "restarting" from "starting"): at most
``MAX_KEYWORDS``, preferring words the other retrieved passages lack (the ones that single out
the right passage). Questions that also appear in the training set are left out.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from adapters.datasets import normalized, question_of
from adapters.grounded import answer_source
from store.terms import keywords, words

MAX_KEYWORDS = 2  # as in the shipped eval rag questions (one or two per question)
_NAME = re.compile(r"(?<=[^.!?:\s]\s)[A-Z][\w-]*")  # a capitalised word inside a sentence
SAMPLES = 5
SETS = ("held_out", "eval_file")  # held-out generated questions; the expert's evaluation file


@dataclass(frozen=True)
class HeldOut:
    question: str
    answer: str | None  # None: the example was trained to abstain (no source holds the answer)
    set: str = "held_out"  # or "eval_file": the expert's evaluation file (``train --eval``)


def held_out(train: Sequence[dict[str, Any]], val: Sequence[dict[str, Any]]) -> list[HeldOut]:
    """The validation questions never trained on, one each (a cited answer preferred to an abstention)."""
    from assistant.citations import strip_markers
    from assistant.prompting import ABSTAIN_REPLY

    trained = {normalized(question_of(e)) for e in train if e["kind"] == "chat"}
    found: dict[str, HeldOut] = {}
    for example in val:
        if example["kind"] != "chat":
            continue
        question = question_of(example)
        key = normalized(question)
        if key in trained:
            continue
        target = example["messages"][-1]["content"].strip()
        answer = None if target == ABSTAIN_REPLY else strip_markers(target)
        if key not in found or (found[key].answer is None and answer):
            found[key] = HeldOut(question, answer or None, example.get("set", "held_out"))
    return list(found.values())


def expected_keywords(question: str, answer: str, others: Sequence[str] = (), limit: int = MAX_KEYWORDS) -> list[str]:
    """What a correct answer must say: see the module docstring."""
    from assistant.sentences import split_sentences

    asked = set(words(question))

    def new(word: str) -> bool:  # not a question word, nor one grown from it ("restarting" for "starting")
        return word not in asked and not any(len(a) >= 4 and a in word for a in asked)

    candidates: list[str] = []
    for text in [*split_sentences(answer), answer]:  # the first sentence that says something new
        candidates = [w for w in keywords(text) if new(w)]
        if candidates:
            break
    if not candidates:
        return []
    specific = {w for w in candidates if any(c.isdigit() for c in w)} | {
        w.lower() for w in _NAME.findall(text)
    }  # numbers and names are the facts
    other_words = [set(words(t)) for t in others]
    rank = {w: (sum(w in o for o in other_words), w not in specific, -len(w)) for w in candidates}
    chosen = set(sorted(candidates, key=rank.__getitem__)[:limit])
    return [w for w in candidates if w in chosen]  # in the answer's order


def prepare(
    kb: Any, train: Sequence[dict[str, Any]], val: Sequence[dict[str, Any]], *, k: int, threshold: float, limit: int
) -> list[dict[str, Any]]:
    """Held-out questions rendered through Chat's retrieval and prompt, ready for the worker."""
    from assistant.prompting import build_messages
    from assistant.retrieval import retrieve, sources_from

    rows = []
    items = held_out(train, val)
    chosen = [i for kind in SETS for i in [i for i in items if i.set == kind][:limit]]  # up to ``limit`` a set
    for item in chosen:
        retrieval = retrieve(kb, item.question, k=k, threshold=threshold)
        sources = sources_from(retrieval.hits)
        best = answer_source(item.answer, [s.text for s in sources]) if item.answer else None
        holder = sources[best] if best is not None else None
        others = [s.text for s in sources if s is not holder]
        rows.append(
            {
                "question": item.question,
                "set": item.set,
                "reference": item.answer,
                "unanswerable": holder is None,
                "keywords": expected_keywords(item.question, item.answer, others) if holder else [],
                "expected_source": holder.source if holder else None,
                "relevance": round(retrieval.relevance, 4),
                "relevant": retrieval.relevant,
                "unknown_names": list(retrieval.unknown_names),
                "sources": [asdict(s) for s in sources],
                # None: the relevance gate turns the question away and Chat abstains without asking the model
                "messages": build_messages(item.question, sources) if retrieval.relevant and sources else None,
            }
        )
    return rows


def save(path: Path, rows: Sequence[dict[str, Any]]) -> None:
    """Write the prepared rows to ``path`` (a run's ``RunFolder.rag_eval``)."""
    with path.open("w", encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")


def load(path: Path) -> list[dict[str, Any]]:
    """The rows saved at ``path``; [] when the run has no retrieval-on evaluation."""
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def plain_messages(row: dict[str, Any]) -> list[dict[str, str]]:
    """The question as Chat asks the model alone (no knowledge base): its system prompt and the bare question."""
    from assistant.prompting import build_messages

    return build_messages(row["question"], [])


def score(
    rows: Sequence[dict[str, Any]], replies: dict[str, Sequence[str | None]], embedder, support_threshold: float
) -> dict[str, Any]:
    """``{"rag_<model>": metrics}`` for each model's replies (one per row, None where not asked), and samples.

    ``plain`` replies are the model alone answering the bare question (``plain_messages``): scored on
    their text (keywords, and whether they say the answer is not known); they cite nothing, so their
    citation support is None. When the rows hold more than one set (``SETS``), ``rag_sets`` has each
    set's metrics too: ``{"held_out": {"base": ..., "adapted": ..., "plain": ...}, "eval_file": ...}``.
    """
    out: dict[str, Any] = {}
    answers = {
        model: _answers(rows, texts, embedder, support_threshold, plain=model == "plain")
        for model, texts in replies.items()
    }
    for model, given in answers.items():
        out[f"rag_{model}"] = _metrics(rows, given, plain=model == "plain")
    present = [kind for kind in SETS if any(row.get("set", "held_out") == kind for row in rows)]
    if len(present) > 1:
        out["rag_sets"] = {
            kind: {
                model: _metrics(*_subset(rows, given, kind), plain=model == "plain") for model, given in answers.items()
            }
            for kind in present
        }
    out["rag_samples"] = [
        {
            "question": row["question"],
            "set": row.get("set", "held_out"),
            "keywords": row["keywords"],
            "unanswerable": row["unanswerable"],
            **{model: answers[model][i].text for model in answers},
        }
        for i, row in enumerate(rows[:SAMPLES])
    ]
    return out


def _answers(rows, texts, embedder, support_threshold: float, plain: bool) -> list:
    """Each reply as Chat would give it: through the reply check, or, for the plain model, as said."""
    from assistant.events import Answer, Source
    from assistant.prompting import ABSTAIN_REPLY
    from assistant.reply_check import check_reply, is_abstention

    out = []
    for row, reply in zip(rows, texts, strict=True):
        sources = [Source(**s) for s in row["sources"]]
        if plain:
            out.append(Answer(reply or "", is_abstention(reply or ""), [], []))
        elif row["messages"] is None or reply is None:
            out.append(Answer(ABSTAIN_REPLY, True, [], sources, reason="no passage is relevant enough"))
        else:
            unknown = row.get("unknown_names", ())  # rows prepared before it was recorded: none
            out.append(check_reply(reply, row["question"], sources, embedder, support_threshold, unknown=unknown))
    return out


def _subset(rows, answers, kind: str) -> tuple[list, list]:
    pairs = [(r, a) for r, a in zip(rows, answers, strict=True) if r.get("set", "held_out") == kind]
    return [r for r, _ in pairs], [a for _, a in pairs]


def _metrics(rows, answers, plain: bool = False) -> dict[str, Any]:
    from assistant.evaluation import QAItem, Tally, answer_metrics

    tally = Tally()
    for row, answer in zip(rows, answers, strict=True):
        item = QAItem(
            row["question"], tuple(filter(None, [row["expected_source"]])), tuple(row["keywords"]), row["unanswerable"]
        )
        tally.add_answer(item, answer)
    metrics = answer_metrics(tally)
    if plain:
        metrics["citation_support"] = None  # nothing to cite without sources
    quoted = sum(a.extractive for a in answers) / len(rows) if rows else 0.0
    return {**metrics, "quoted_passage": round(quoted, 4), "count": len(rows)}
