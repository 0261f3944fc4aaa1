"""Measuring the model in the worker: validation loss during training, and after it the before/after
evaluation (base vs adapted) written to ``metrics.json``. Imports torch.

After training: validation loss and perplexity before and after, base and adapted answers to the
held-out questions (``adapters.evaluation``'s scores), and, when the run involves a knowledge
base, the same questions asked with retrieval on in Chat's prompt (``adapters.rag_eval``).
"""

from __future__ import annotations

from typing import Any

import torch

from adapters import batching, evaluation, rag_eval
from adapters.events import Emit, Status
from adapters.job import TrainJob
from adapters.lora_model import generate
from adapters.run_folder import RunFolder


@torch.no_grad()
def mean_loss(model, encoded: list[batching.Encoded], pad_id: int, batch_size: int) -> float | None:
    """The loss over answer tokens of ``encoded`` (None for none), as the training loss averages it."""
    if not encoded:
        return None
    model.eval()
    total, count = 0.0, 0
    for start in range(0, len(encoded), batch_size):
        items = encoded[start : start + batch_size]
        n = sum(1 for e in items for t in e.labels[1:] if t != batching.IGNORE)  # what the shifted loss averages
        total += float(model(**batching.collate(items, pad_id)).loss) * max(n, 1)
        count += max(n, 1)
    model.train()
    return total / count


def evaluate(
    model,
    fmt: batching.ChatFormat,
    job: TrainJob,
    val_examples: list[dict],
    val_set: list,
    pad_id: int,
    state: dict[str, Any],
    emit: Emit,
) -> dict[str, Any]:
    """Validation loss/perplexity before and after, and base vs adapted answers on held-out Q&A."""
    metrics: dict[str, Any] = {}
    before, after = state.get("val_loss_before"), mean_loss(model, val_set, pad_id, job.hyperparameters.batch_size)
    if before is not None and after is not None:
        metrics.update(
            {
                "val_loss_before": round(before, 5),
                "val_loss_after": round(after, 5),
                "perplexity_before": round(evaluation.perplexity(before), 3),
                "perplexity_after": round(evaluation.perplexity(after), 3),
            }
        )
    questions = [e for e in val_examples if e["kind"] == "chat"][: job.eval_examples]
    if questions:
        emit(Status(message=f"answering {len(questions)} held-out questions with and without the adapter"))
        model.eval()
        references = [e["messages"][-1]["content"] for e in questions]
        adapted = [generate(model, fmt, e["messages"], job.max_new_tokens)[0] for e in questions]
        with model.disable_adapter():
            base = [generate(model, fmt, e["messages"], job.max_new_tokens)[0] for e in questions]
        metrics["answers_base"] = evaluation.answer_scores(base, references)
        metrics["answers_adapted"] = evaluation.answer_scores(adapted, references)
        metrics["samples"] = [
            {"question": e["messages"][-2]["content"], "reference": ref, "base": b, "adapted": a}
            for e, ref, b, a in list(zip(questions, references, base, adapted, strict=False))[:5]
        ]
    return metrics


def evaluate_with_retrieval(
    model, fmt: batching.ChatFormat, job: TrainJob, folder: RunFolder, emit: Emit
) -> dict[str, Any]:
    """Base vs adapted on the held-out questions in Chat's prompt, scored as ``eval rag`` scores them
    (``adapters.rag_eval``), and the base model alone on the bare questions (``plain``)."""
    rows = rag_eval.load(folder.rag_eval)
    if not rows:
        return {}
    asked = sum(1 for r in rows if r["messages"])
    emit(
        Status(
            message=f"answering {asked} held-out questions with retrieval on "
            f"({job.rag.get('kb', '')}), with and without the adapter"
        )
    )
    model.eval()

    def reply(messages: list[dict]) -> str:
        # The prompt is everything before the last message: an empty assistant turn stands for the reply.
        return generate(model, fmt, messages + [{"role": "assistant", "content": ""}], job.rag_max_new_tokens)[0]

    def replies() -> list[str | None]:
        return [reply(r["messages"]) if r["messages"] else None for r in rows]

    adapted = replies()
    with model.disable_adapter():
        base = replies()
        # The base model alone, without retrieval: what retrieval gives, beside what the adapter adds.
        plain = [reply(rag_eval.plain_messages(r)) for r in rows]
    from store.embedding import Embedder

    embedder = Embedder(job.rag.get("embedder") or None)
    metrics = rag_eval.score(
        rows, {"base": base, "adapted": adapted, "plain": plain}, embedder, job.rag.get("support_threshold", 0.5)
    )
    metrics["rag"] = {k: job.rag[k] for k in ("kb", "questions", "k") if k in job.rag}
    return metrics
