"""Training data generated from a knowledge base's own passages: ``generate(...) -> Iterator[event]``.

A local model (any model Chat can use) reads each passage with its document, page and section,
and writes up to ``per_chunk`` questions an expert would ask that the passage answers, each with
a short answer. The candidates pass ``adapters.datagen_filters``; the kept ones are written as
JSONL rows with their provenance. A share of unanswerable questions (on the passage's subject,
about what it does not say) is kept when Chat's gate refuses them or their key words are not in
the knowledge base; when the model's fails, one of the passage's answerable questions asks about an
invented name instead (``adapters.unanswerable``). Their answer is Chat's abstention reply.

Crash safety: each chunk's rows are appended as whole lines, flushed and fsynced, then the chunk
is recorded in ``OUT.state.json`` (written to a temporary name and renamed). A rerun with the
same ``out`` cuts a partial last line, skips the chunks already done (recorded, or named by a
row's provenance) and goes on. Rejected candidates go to ``OUT.rejected.jsonl`` with the reason.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from adapters.datagen_filters import REASONS, Duplicates, Passage, answerable_checks, malformed, unanswerable_checks
from adapters.datagen_output import Output, make_row
from adapters.datagen_reply import clean, finished, parse_pairs
from adapters.unanswerable import first_renamable
from assistant.prompting import ABSTAIN_REPLY, as_data
from store.errors import DocumentNotFound, DomainsmithError, KnowledgeBaseError
from store.knowledge_base import KnowledgeBase
from store.settings import Settings

log = logging.getLogger(__name__)

MIN_CHUNKS = 3  # the round trip must pick a passage out of others
QA_PROMPT = (
    "You write training questions from one passage of a document. Write {n} different questions that an "
    "expert in the field would ask and that the passage answers, each followed by a short answer (one "
    "sentence, in your own words, using the passage's names and values). Use exactly this format:\n"
    "Q: <question>\nA: <answer>"
)
UNANSWERABLE_PROMPT = (
    "You write one question from a passage of a document. Write a question an expert would ask on the same "
    "subject about a detail that the passage does NOT mention, so that the passage cannot answer it. Use "
    "exactly this format:\nQ: <question>"
)
# (messages, seed, max_tokens, done) -> the model's reply, cut once ``done(text so far)`` is true
Complete = Callable[[list[dict], int, int, Callable[[str], bool]], str]


@dataclass(frozen=True)
class GenerateOptions:
    kb: str | None = None
    model: str | None = None
    per_chunk: int = 2
    unanswerable: float = 0.25
    limit: int | None = None
    seed: int = 0
    accept: bool = False
    temperature: float = 0.0
    max_tokens: int = 0  # a reply's tokens; 0: 60 per question asked, plus 40

    @property
    def reply_tokens(self) -> int:
        return self.max_tokens or 60 * self.per_chunk + 40

    def __post_init__(self):
        if not 1 <= self.per_chunk <= 10:
            raise DomainsmithError(f"--per-chunk must be between 1 and 10 (got {self.per_chunk})")
        if not 0.0 <= self.unanswerable <= 1.0:
            raise DomainsmithError(f"--unanswerable is a share between 0 and 1 (got {self.unanswerable})")
        if self.limit is not None and self.limit < 1:
            raise DomainsmithError(f"--limit must be 1 or more chunks (got {self.limit})")


@dataclass
class GenerationReport:
    """What a generation did: chunks, candidates, rows kept and the rejections per filter."""

    kb: str
    kb_version: int
    model: str
    out: str
    chunks_total: int = 0
    chunks_done: int = 0
    chunks_resumed: int = 0  # done by an earlier run into the same file
    candidates: int = 0
    kept: int = 0  # answerable rows in the file
    unanswerable: int = 0  # unanswerable rows in the file
    renamed: int = 0  # of which made by renaming an answerable question (adapters.unanswerable)
    rejected: dict[str, int] = field(default_factory=lambda: dict.fromkeys(REASONS, 0))
    seconds: float = 0.0
    cancelled: bool = False

    @property
    def seconds_per_chunk(self) -> float:
        ran = self.chunks_done - self.chunks_resumed
        return self.seconds / ran if ran else 0.0

    def to_json(self) -> dict[str, Any]:
        return {
            **asdict(self),
            "seconds": round(self.seconds, 2),
            "seconds_per_chunk": round(self.seconds_per_chunk, 2),
        }


@dataclass(frozen=True)
class Kept:
    """A row that passed its checks; ``extra`` holds fields only some rows have (``renamed``)."""

    question: str
    answer: str
    kind: str
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class GenerationProgress:
    """After each chunk: the report so far (chunks done of total, rows kept, rejections per filter)."""

    report: GenerationReport


@dataclass(frozen=True)
class GenerationDone:
    """The last event: the final report (also when cancelled: the file is valid and resumable)."""

    report: GenerationReport


def passage_message(passage: Passage, title: str, task: str) -> str:
    """The user turn: where the passage is from, then the passage as data."""
    where = [f"Document: {as_data(title or passage.document)}"]
    if passage.section:
        where.append(f"Section: {as_data(passage.section)}")
    if passage.page is not None:
        where.append(f"Page: {passage.page_label or passage.page}")
    return "\n".join(where) + f"\n\nPassage:\n<passage>\n{as_data(passage.text)}\n</passage>\n\n{task}"


# -- the chunks ------------------------------------------------------------------


def passages(kb: KnowledgeBase) -> list[tuple[Passage, str]]:
    """Every chunk as (passage, document title), in document order."""
    found = kb.db.execute(
        """SELECT c.chunk_id, c.doc_id, d.name, d.source, d.title, d.content_hash, c.page, c.page_label,
                  c.section, c.text FROM chunks c JOIN documents d ON d.id = c.doc_id
           WHERE c.kb_id = ? ORDER BY d.source, c.idx""",
        [kb.id],
    ).fetchall()
    return [
        (Passage(r[0], r[1], r[2], r[3], r[9], r[6], r[7], r[8] or "", r[5]), r[4] or "") for r in found if r[9].strip()
    ]


def choose_chunks(all_passages: list, limit: int | None, seed: int) -> list:
    """All passages, or a seeded sample of ``limit`` of them kept in document order."""
    if limit is None or limit >= len(all_passages):
        return list(all_passages)
    picked = set(random.Random(seed).sample(range(len(all_passages)), limit))
    return [p for i, p in enumerate(all_passages) if i in picked]


# -- generation ------------------------------------------------------------------------------------


def model_complete(
    assistant, spec: str | None, options: GenerateOptions, cancel: threading.Event
) -> tuple[Complete, str]:
    """``complete(messages, seed)`` with the model Chat would use for ``spec`` (local or ``remote:NAME``),
    and its name. The runtime chooses its threads per call as for a Chat answer (``assistant.llm``)."""
    loaded = assistant.use_model(spec)
    runtime = assistant.runtime_for(loaded)

    def complete(messages: list[dict], seed: int, max_tokens: int, done: Callable[[str], bool]) -> str:
        text = ""
        stream = runtime.stream_chat(
            messages, max_tokens=max_tokens, temperature=options.temperature, seed=seed, model=loaded
        )
        try:
            for piece in stream:
                text += piece
                if cancel.is_set() or ("\n" in piece and done(text)):
                    break
        finally:
            stream.close()  # releases the runtime's lock now, not when collected
        return text

    return complete, loaded.name


def generate(
    kb: KnowledgeBase,
    settings: Settings,
    complete: Complete,
    model_name: str,
    out: Path,
    options: GenerateOptions = GenerateOptions(),
    cancel: threading.Event | None = None,
) -> Iterator[GenerationProgress | GenerationDone]:
    """Generate into ``out`` (resuming what a past run left there); yields progress after each chunk."""
    cancel = cancel or threading.Event()
    started = time.monotonic()
    all_passages = passages(kb)
    if len(all_passages) < MIN_CHUNKS:
        raise KnowledgeBaseError(
            f"the knowledge base {kb.name!r} has {len(all_passages)} passages; generating needs at least "
            f"{MIN_CHUNKS}: add documents first (`python app.py kb add PATH --kb {kb.name}`)"
        )
    chosen = choose_chunks(all_passages, options.limit, options.seed)
    output = Output(Path(out)).open(kb.name)
    report = GenerationReport(kb.name, kb.content_version(), model_name, str(out), chunks_total=len(chosen))
    _recount(report, output, {p.chunk_id for p, _ in chosen})
    report.chunks_resumed = report.chunks_done
    duplicates = Duplicates(r["question"] for r in output.rows)
    generator = {
        "model": model_name,
        "per_chunk": options.per_chunk,
        "unanswerable": options.unanswerable,
        "seed": options.seed,
        "temperature": options.temperature,
        "max_tokens": options.reply_tokens,
    }
    for index, (passage, title) in enumerate(chosen):
        if passage.chunk_id in output.done or not _still_there(kb, passage, report.kb_version):
            continue
        if cancel.is_set():
            break
        rows, rejected, candidates = _one_chunk(
            kb, settings, complete, passage, title, options, index, duplicates, report.kept, report.unanswerable
        )
        if cancel.is_set():
            break  # the chunk's reply was cut short: nothing of it is written, a rerun does it again
        version = kb.content_version()
        review = "accepted" if options.accept else "pending"
        made = [
            {**make_row(k.question, k.answer, k.kind, review, passage, kb.name, version, generator), **k.extra}
            for k in rows
        ]
        audit = [
            {**make_row(q, a, kind, "rejected", passage, kb.name, version, generator), "reason": reason}
            for q, a, kind, reason in rejected
        ]
        output.write(made, audit, passage.chunk_id)
        report.chunks_done += 1
        report.candidates += candidates
        for *_, reason in rejected:
            report.rejected[reason] = report.rejected.get(reason, 0) + 1
        report.kept += sum(k.kind == "answerable" for k in rows)
        report.unanswerable += sum(k.kind == "unanswerable" for k in rows)
        report.renamed += sum("renamed" in k.extra for k in rows)
        report.seconds = time.monotonic() - started
        yield GenerationProgress(report)
    report.cancelled = cancel.is_set() and report.chunks_done < report.chunks_total
    report.kb_version = kb.content_version()
    report.seconds = time.monotonic() - started
    yield GenerationDone(report)


def _still_there(kb: KnowledgeBase, passage: Passage, version: int) -> bool:
    """False when the passage's document was removed or replaced since generation started."""
    if kb.content_version() == version:
        return True
    try:
        return kb.passage(passage.chunk_id)["text"] == passage.text
    except DocumentNotFound:
        log.info("passage %s is gone from %s: skipped", passage.chunk_id, kb.name)
        return False


def _recount(report: GenerationReport, output: Output, chosen: set[str]) -> None:
    report.chunks_done = len(output.done & chosen)
    report.kept = sum(r.get("kind") == "answerable" for r in output.rows)
    report.unanswerable = sum(r.get("kind") == "unanswerable" for r in output.rows)
    report.renamed = sum("renamed" in r for r in output.rows)
    for r in output.rejected:
        report.rejected[r.get("reason", "malformed")] = report.rejected.get(r.get("reason", "malformed"), 0) + 1
    report.candidates = len(output.rows) + len(output.rejected)


def _one_chunk(
    kb: KnowledgeBase,
    settings: Settings,
    complete: Complete,
    passage: Passage,
    title: str,
    options: GenerateOptions,
    index: int,
    duplicates: Duplicates,
    kept_before: int,
    unanswerable_before: int,
) -> tuple[list[Kept], list[tuple[str, str | None, str, str]], int]:
    """One chunk's kept rows, rejected (question, answer, kind, reason), candidates.

    An unanswerable question is asked for while the unanswerable rows are fewer than ``unanswerable``
    times the answerable ones (counting this chunk's); when the model's fails the checks, one of this
    chunk's answerable questions is renamed instead (``adapters.unanswerable``)."""
    kept: list[Kept] = []
    rejected: list[tuple[str, str | None, str, str]] = []

    def reject(question: str, answer: str | None, kind: str, reason: str) -> None:
        rejected.append((question, answer, kind, reason))

    seed = options.seed + index
    task = f"Write {options.per_chunk} questions with their answers."
    messages = _messages(QA_PROMPT.format(n=options.per_chunk), passage_message(passage, title, task))
    reply = complete(messages, seed, options.reply_tokens, lambda text: finished(text, "a") >= options.per_chunk)
    pairs, _garbage = parse_pairs(reply)
    candidates = len(pairs[: options.per_chunk]) + (0 if pairs else 1)
    if not pairs:
        reject("", reply[:500], "answerable", "malformed")
    for question, answer in pairs[: options.per_chunk]:
        reason = answerable_checks(question, answer or "", passage, kb, settings, duplicates) if answer else "malformed"
        if reason:
            reject(question, answer, "answerable", reason)
            continue
        duplicates.add(question)
        kept.append(Kept(question, answer or "", "answerable"))
    answerable = kept_before + len(kept)
    if options.unanswerable > 0 and answerable and unanswerable_before < options.unanswerable * answerable:
        task = "Write one question this passage does not answer."
        messages = _messages(UNANSWERABLE_PROMPT, passage_message(passage, title, task))
        reply = complete(messages, seed, 60, lambda text: finished(text, "q") >= 1)
        questions = [q for q, _ in parse_pairs(reply)[0]] or [
            clean(line) for line in reply.splitlines() if line.strip().endswith("?")
        ]
        candidates += 1
        question = questions[0] if questions else ""
        reason = unanswerable_checks(question, kb, settings, duplicates)
        if reason:
            reject(question, None if question else reply[:500], "unanswerable", reason)
            renamed = first_renamable([k.question for k in kept], kb, seed)
            if renamed is not None:
                candidates += 1
                reason = malformed(renamed.question, None) or duplicates.check(renamed.question, renamed.original)
                if reason:
                    reject(renamed.question, None, "unanswerable", reason)
                else:
                    duplicates.add(renamed.question)
                    kept.append(Kept(renamed.question, ABSTAIN_REPLY, "unanswerable", renamed.to_json()))
        else:
            duplicates.add(question)
            kept.append(Kept(question, ABSTAIN_REPLY, "unanswerable"))
    return kept, rejected, candidates


def _messages(system: str, user: str) -> list[dict]:
    return [{"role": "system", "content": system}, {"role": "user", "content": user}]
