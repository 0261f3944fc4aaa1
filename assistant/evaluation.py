"""``eval rag``: retrieval and answer quality on a question file, per retrieval mode.

QA_FILE is JSONL, one question per line::

    {"question": "...", "sources": ["manual/seals.html"], "keywords": ["4,000 hours"]}
    {"question": "...", "unanswerable": true}

(``page`` plus optional ``also`` are accepted in place of ``sources``.) A retrieved passage
matches when its ``source`` equals an expected one. Reported per mode: recall@k and MRR of the
expected source, answer keyword accuracy (all keywords in the answer), abstention precision and
recall, citation support (answers whose cited passages hold all the keywords), and the relevance
gate's scores with the threshold that separates answerable from unanswerable questions best.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from assistant.assistant import AskOptions, Assistant, ask_once
from assistant.events import Answer
from store.errors import InvalidTrainingData

MRR_DEPTH = 10


@dataclass(frozen=True)
class QAItem:
    question: str
    sources: tuple[str, ...] = ()
    keywords: tuple[str, ...] = ()
    unanswerable: bool = False
    id: str = ""


def load_qa(path: str | Path) -> list[QAItem]:
    path = Path(path)
    items = []
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidTrainingData(f"cannot read the question file: {exc}", path=path) from exc
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            question = str(row["question"]).strip()
        except (ValueError, KeyError, TypeError):
            raise InvalidTrainingData(
                'each line must be a JSON object with a "question"', path=path, line=number
            ) from None
        sources = row.get("sources") or ([row["page"]] if row.get("page") else []) + list(row.get("also") or [])
        if isinstance(sources, str):
            sources = [sources]
        unanswerable = bool(row.get("unanswerable"))
        if not question or (not unanswerable and not sources):
            raise InvalidTrainingData(
                'a question needs its expected sources, or "unanswerable": true', path=path, line=number
            )
        items.append(
            QAItem(question, tuple(sources), tuple(row.get("keywords") or ()), unanswerable, str(row.get("id", number)))
        )
    if not items:
        raise InvalidTrainingData("the question file is empty", path=path)
    return items


@dataclass
class Tally:
    """Per-question results of one retrieval mode (or one model), summarised by ``summarise``.

    Fine-tuning scores base and adapted answers with retrieval on through the same tally
    (``adapters.rag_eval``), so both reports mean the same thing.
    """

    recall: list[float] = field(default_factory=list)
    reciprocal_ranks: list[float] = field(default_factory=list)
    keyword_hits: list[float] = field(default_factory=list)
    support_hits: list[float] = field(default_factory=list)
    abstained_on: list[bool] = field(default_factory=list)  # per question: did it abstain
    unanswerable: list[bool] = field(default_factory=list)
    relevance: list[tuple[float, bool]] = field(default_factory=list)  # (gate score, answerable)

    def add_retrieval(self, item: QAItem, retrieval, k: int) -> None:
        """Score where the expected source ranks among ``retrieval.hits``, and the gate's score."""
        self.relevance.append((retrieval.relevance, not item.unanswerable))
        if not item.unanswerable:
            ranks = [i for i, h in enumerate(retrieval.hits, start=1) if h.source in item.sources]
            self.recall.append(1.0 if ranks and ranks[0] <= k else 0.0)
            self.reciprocal_ranks.append(1.0 / ranks[0] if ranks else 0.0)

    def add_answer(self, item: QAItem, answer: Answer) -> None:
        """Score one answer: keywords, abstention, and whether its cited passages hold the keywords."""
        self.abstained_on.append(answer.abstained)
        self.unanswerable.append(item.unanswerable)
        if not item.unanswerable and item.keywords:
            self.keyword_hits.append(float(_has_all(answer.text, item.keywords) and not answer.abstained))
            cited = " ".join(c.text for c in answer.citations)
            self.support_hits.append(float(bool(answer.citations) and _has_all(cited, item.keywords)))


def evaluate_rag(
    assistant: Assistant,
    items: Sequence[QAItem],
    *,
    kb: str | None = None,
    model: str | None = None,
    modes: Sequence[str] = ("hybrid", "vector", "keyword"),
    k: int = 5,
    answer: bool = True,
) -> dict:
    knowledge_base = assistant.open_kb(kb)
    report: dict = {"kb": knowledge_base.name, "questions": len(items), "k": k, "modes": {}}
    started = time.monotonic()
    for mode in modes:
        tally = Tally()
        options = AskOptions(kb=kb, model=model, mode=mode, k=k)
        for item in items:
            tally.add_retrieval(
                item, assistant.retrieve(knowledge_base, item.question, (), AskOptions(mode=mode, k=MRR_DEPTH)), k
            )
            if answer:
                tally.add_answer(item, ask_once(assistant, item.question, options))
        report["modes"][mode] = summarise(tally, answer)
    report["seconds"] = round(time.monotonic() - started, 1)
    return report


def _has_all(text: str, keywords: Sequence[str]) -> bool:
    lowered = text.lower()
    return all(keyword.lower() in lowered for keyword in keywords)


def _mean(values: Sequence[float]) -> float | None:
    return round(sum(values) / len(values), 4) if values else None


def summarise(t: Tally, answered: bool = True) -> dict:
    out = {"recall@k": _mean(t.recall), "mrr": _mean(t.reciprocal_ranks), "gate": calibrate_gate(t.relevance)}
    if answered:
        out.update(answer_metrics(t))
    return out


def answer_metrics(t: Tally) -> dict[str, float | None]:
    """Keyword accuracy, abstention precision and recall, citation support (None: nothing to measure)."""
    abstained = [u for a, u in zip(t.abstained_on, t.unanswerable) if a]
    return {
        "keyword_accuracy": _mean(t.keyword_hits),
        "abstention_precision": _mean([float(u) for u in abstained]),
        "abstention_recall": _mean([float(a) for a, u in zip(t.abstained_on, t.unanswerable) if u]),
        "citation_support": _mean(t.support_hits),
    }


def calibrate_gate(scores: Sequence[tuple[float, bool]]) -> dict:
    """The relevance threshold that best separates answerable from unanswerable (balanced accuracy)."""
    answerable = [s for s, a in scores if a]
    unanswerable = [s for s, a in scores if not a]
    if not answerable or not unanswerable:
        return {}
    best = (0.0, 0.0)
    for threshold in sorted({s for s, _ in scores}):  # unrounded: a rounded-up score would fall below itself
        kept = sum(s >= threshold for s in answerable) / len(answerable)
        refused = sum(s < threshold for s in unanswerable) / len(unanswerable)
        best = max(best, ((kept + refused) / 2, threshold))
    # Rounded down, so the threshold as shown still keeps the answerable question it was set at.
    return {
        "best_threshold": math.floor(best[1] * 1000) / 1000,
        "balanced_accuracy": round(best[0], 4),
        "answerable_mean": round(sum(answerable) / len(answerable), 4),
        "unanswerable_mean": round(sum(unanswerable) / len(unanswerable), 4),
    }


def format_report(report: dict) -> str:
    columns = ["recall@k", "mrr", "keyword_accuracy", "abstention_precision", "abstention_recall", "citation_support"]
    lines = [
        f"eval rag on {report['kb']}: {report['questions']} questions, k={report['k']} ({report['seconds']} s)",
        "mode     " + "  ".join(f"{c:>20}" for c in columns),
    ]
    for mode, metrics in report["modes"].items():
        values = ["-" if metrics.get(c) is None else f"{metrics[c]:.3f}" for c in columns]
        lines.append(f"{mode:<8} " + "  ".join(f"{v:>20}" for v in values))
    for mode, metrics in report["modes"].items():
        gate = metrics.get("gate") or {}
        if gate:
            lines.append(
                f"gate ({mode}): answerable mean {gate['answerable_mean']:.3f}, unanswerable mean "
                f"{gate['unanswerable_mean']:.3f}; best threshold {gate['best_threshold']:.3f} "
                f"(balanced accuracy {gate['balanced_accuracy']:.3f})"
            )
    return "\n".join(lines)
