"""Answers of one model on a question set, kept raw so the answer policy can be re-scored offline.

Generation is what costs time (a 1.5B model answers one five-source question in 15-30 s on two
cores); the policy that judges a reply (relevance gate, citation check, extractive fallback) takes
milliseconds. So ``collect`` runs Chat's own steps for each question (retrieval, the source budget,
the prompt, greedy generation through ``LlamaRuntime``) with the gate open, and records the raw
reply, the sources offered, the gate's score and the timings; ``score`` then applies the policy with
any thresholds, exactly as ``Assistant.ask`` would (``check_reply`` on the same reply and sources).
Where the reply is a refusal, the second look Chat may take is recorded too (the same messages,
the reply begun with ``prompting.SECOND_LOOK_PREFIX``), so ``second_look_relevance`` can be
re-scored offline as well. Records are cached per (model, prompt, question) under
``bench/.cache/answers/``.
"""

from __future__ import annotations

import hashlib
import json
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict
from pathlib import Path

from assistant import prompting
from assistant.assistant import prompt_style
from assistant.evaluation import QAItem, Tally, answer_metrics
from assistant.events import Answer, Source
from assistant.reply_check import after_second_look, check_reply, refuses, second_look_due

CACHE = Path(__file__).resolve().parent / ".cache" / "answers"


def prompt_key(system_prompt: str, max_tokens: int, answer_rule: bool = True, source_tokens: int = 0) -> str:
    """Names the cache of one prompt: the system prompt, the user message's frame, the answer length and
    the passages' excerpt budget (``Settings.source_tokens``; 0, whole passages, leaves the key as it was)."""
    frame = prompting.user_message("{question}", [], answer_rule)
    excerpts = f"\nsource_tokens={source_tokens}" if source_tokens else ""
    return hashlib.sha256(f"{max_tokens}\n{system_prompt}\n{frame}{excerpts}".encode()).hexdigest()[:12]


def collect(
    services,
    model: str,
    items: Sequence[QAItem],
    *,
    kb: str,
    system_prompt: str | None = None,
    style: str | None = None,
    max_tokens: int | None = None,
    cache: Path | None = CACHE,
    log: Callable[[str], None] = print,
) -> list[dict]:
    """One record per question (cached): Chat's retrieval and prompt, the raw greedy reply, timings."""
    assistant = services.assistant
    loaded = assistant.use_model(model)
    max_tokens = max_tokens or services.settings.max_tokens
    # What Chat sends this model, unless a style or a system prompt is given.
    styled = prompting.style(style or prompt_style(loaded))
    system_prompt = system_prompt or styled["system_prompt"]
    answer_rule = styled["answer_rule"]
    key = prompt_key(system_prompt, max_tokens, answer_rule, services.settings.source_tokens)
    folder = cache / f"{loaded.path.stem}-{key}" if cache else None
    if folder:
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "prompt.txt").write_text(system_prompt)
    knowledge_base = assistant.open_kb(kb)
    budget = prompting.Budget(loaded.context, min(max_tokens, loaded.context // 4))
    records = []
    for number, item in enumerate(items, start=1):
        path = folder / f"{item.id}.json" if folder else None
        if path and path.exists():
            record = json.loads(path.read_text())
            if _second_look_missing(record):
                sources = [Source(**s) for s in record["sources"]]
                messages = prompting.build_messages(item.question, sources, [], system_prompt, answer_rule)
                record["second_look"] = _second_look(assistant.runtime, messages, loaded, max_tokens)
                path.write_text(json.dumps(record, indent=1))
                log(f"  [{number}/{len(items)}] {item.id}: asked once more after its refusal")
            records.append(record)
            continue
        started = time.perf_counter()
        retrieval = assistant.retrieve(knowledge_base, item.question)
        offered = assistant.offered_sources(item.question, retrieval, assistant.runtime.count_tokens)
        sources, _, _ = prompting.fit(item.question, offered, [], budget, assistant.runtime.count_tokens)
        messages = prompting.build_messages(item.question, sources, [], system_prompt, answer_rule)
        pieces, first, last = [], None, None
        for piece in assistant.runtime.stream_chat(messages, max_tokens=max_tokens, temperature=0.0, model=loaded):
            last = time.perf_counter()
            first = first or last
            pieces.append(piece)
        record = {
            "id": item.id,
            "model": loaded.name,
            "relevance": retrieval.relevance,
            "unknown_names": list(retrieval.unknown_names),
            "hit_sources": [h.source for h in retrieval.hits],
            "sources": [asdict(s) for s in sources],
            "prompt_tokens": sum(assistant.runtime.count_tokens(m["content"]) for m in messages),
            "raw": "".join(pieces).strip(),
            "ttft_s": round((first or time.perf_counter()) - started, 3),
            "tokens": len(pieces),
            "tokens_per_s": round((len(pieces) - 1) / (last - first), 2) if len(pieces) > 1 else None,
            "threads": assistant.runtime.last_threads,
        }
        if _second_look_missing(record):
            record["second_look"] = _second_look(assistant.runtime, messages, loaded, max_tokens)
        if path:
            path.write_text(json.dumps(record, indent=1))
        records.append(record)
        log(f"  [{number}/{len(items)}] {item.id}: {record['ttft_s']:.1f} s to first token, {len(pieces)} tokens")
    return records


def _second_look_missing(record: dict) -> bool:
    look = record.get("second_look")
    return refuses(record["raw"]) and (look is None or look["prefix"] != prompting.SECOND_LOOK_PREFIX)


def _second_look(runtime, messages: list[dict], loaded, max_tokens: int) -> dict:
    """The reply Chat's second look gets: the same messages, the assistant's turn begun with the prefix."""
    prefix = prompting.SECOND_LOOK_PREFIX
    started = time.perf_counter()
    pieces = list(runtime.stream_chat(messages, max_tokens=max_tokens, temperature=0.0, model=loaded, prefix=prefix))
    return {
        "prefix": prefix,
        "reply": (prefix + "".join(pieces)).strip(),
        "seconds": round(time.perf_counter() - started, 2),
    }


def answer_of(record: dict, item: QAItem, embedder, gate: float, support: float, second_look: float = 0.0) -> Answer:
    """What Chat shows for this record under the given thresholds (``second_look``: its relevance; 0: off)."""
    sources = [Source(**s) for s in record["sources"]]
    if record["relevance"] < gate or not sources:
        return Answer(prompting.ABSTAIN_REPLY, True, [], sources, reason="gate")
    unknown = record.get("unknown_names", ())  # replies cached before it was recorded: none
    answer = check_reply(record["raw"], item.question, sources, embedder, support, unknown=unknown)
    look = record.get("second_look")
    if look and second_look_due(record["raw"], record["relevance"], second_look):
        second = check_reply(look["reply"], item.question, sources, embedder, support, unknown=unknown)
        answer = after_second_look(answer, second)
    return answer


def score(
    records: Sequence[dict],
    items: Sequence[QAItem],
    embedder,
    gate: float,
    support: float,
    second_look: float = 0.0,
) -> dict:
    """Answer metrics of ``eval rag`` plus how often the model's own reply was kept."""
    by_id = {r["id"]: r for r in records}
    tally = Tally()
    own = extractive = 0
    answerable = 0
    for item in items:
        answer = answer_of(by_id[item.id], item, embedder, gate, support, second_look)
        tally.add_answer(item, answer)
        if not item.unanswerable:
            answerable += 1
            extractive += answer.extractive
            own += not answer.extractive and not answer.abstained
    out = answer_metrics(tally)
    out["own_answers"] = round(own / answerable, 4) if answerable else None
    out["extractive"] = round(extractive / answerable, 4) if answerable else None
    return out


def score_as_chat(records: Sequence[dict], items: Sequence[QAItem], services) -> dict:
    """``score`` with Chat's own thresholds: the gate, the citation check and the second look."""
    settings = services.settings
    return score(
        records,
        items,
        services.embedder,
        settings.relevance_threshold,
        settings.support_threshold,
        settings.second_look_relevance,
    )


def timings(records: Sequence[dict]) -> dict:
    """Medians of time to first token (five sources unless the budget cut them) and generation speed."""
    speeds = [r["tokens_per_s"] for r in records if r["tokens_per_s"]]
    return {
        "ttft_s": round(statistics.median(r["ttft_s"] for r in records), 2),
        "ttft_max_s": round(max(r["ttft_s"] for r in records), 2),
        "tokens_per_s": round(statistics.median(speeds), 1) if speeds else None,
        "prompt_tokens": int(statistics.median(r["prompt_tokens"] for r in records)),
        "sources": statistics.median(len(r["sources"]) for r in records),
        "answer_tokens": int(statistics.median(r["tokens"] for r in records)),
    }
