"""Held-out rewordings of the expert's questions: ``reword(...) -> Iterator[event]``.

Every row of the expert's Q&A file is trained on; generalisation is measured on questions the
adapter never saw: the same facts asked in other words. The generator of ``data generate``
(``adapters.datagen.model_complete``: any model Chat can use, local or remote) writes
``per_row`` rewordings of each question, without its answer (so that none gives the answer
away). Each candidate is checked against its source row, cheapest first, and counted under the
first check it fails (``adapters.rewording_checks.REASONS``: malformed, too close to its source,
as near to another question trained on, a duplicate of a rewording kept, meaning changed).

Kept rows are ``{"question", "answer" (the source's), "reworded_from", "provenance"}``: an ordinary
Q&A file for ``adapters.datasets.load_file``. Crash safety as ``data generate``: each source
row's lines are appended whole, flushed and fsynced (``adapters.datagen_output.append_rows``); a
rerun with the same ``out`` cuts a partial last line and skips the source rows that a kept or
rejected line names. Rejected candidates go to ``OUT.rejected.jsonl`` with their reason.
"""

from __future__ import annotations

import hashlib
import re
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from adapters.datagen import Complete, choose_chunks
from adapters.datagen_output import append_rows, read_repaired, rejected_path
from adapters.datagen_reply import finished, parse_pairs
from adapters.datasets import load_file, question_of
from adapters.rewording_checks import REASONS, Checks
from assistant.prompting import as_data
from store.clock import utc_timestamp
from store.errors import DomainsmithError

PROMPT = (
    "You reword questions. Write {n} different rewordings of the user's question. Each must ask exactly the "
    "same thing, so that the same answer answers it fully, in other words and another sentence structure (not "
    "just one word swapped). Keep every name, number, code and unit. Do not answer. Use exactly this format:\n"
    "Q: <question>"
)
USER_TASK = "Reword this question {n} times. Do not answer it."
EXAMPLE = (
    "How long is the warranty on the pump?",
    ("For how long is the pump covered by its warranty?", "What warranty period does the pump come with?"),
)
_LIST_MARK = re.compile(r"^\s*(?:[-*•]|\d+[.)])\s*")  # "1. " or "- " before a question not labelled Q:


@dataclass(frozen=True)
class RewordOptions:
    model: str | None = None
    per_row: int = 1
    limit: int | None = None
    seed: int = 0
    temperature: float = 0.0
    max_tokens: int = 0  # a reply's tokens; 0: 50 per rewording asked, plus 30

    @property
    def reply_tokens(self) -> int:
        return self.max_tokens or 50 * self.per_row + 30

    def __post_init__(self):
        if not 1 <= self.per_row <= 10:
            raise DomainsmithError(f"--per-row must be between 1 and 10 (got {self.per_row})")
        if self.limit is not None and self.limit < 1:
            raise DomainsmithError(f"--limit must be 1 or more rows (got {self.limit})")


@dataclass(frozen=True)
class SourceRow:
    """One row of the expert's file: its line (CSV: the line it starts on), question and answer."""

    line: int
    question: str
    answer: str


@dataclass
class RewordReport:
    """What a run did: source rows, candidates, rewordings kept and the rejections per check."""

    data: str
    out: str
    model: str
    rows_total: int = 0
    rows_done: int = 0
    rows_resumed: int = 0  # done by an earlier run into the same file
    candidates: int = 0  # always kept + the sum of rejected
    kept: int = 0
    rejected: dict[str, int] = field(default_factory=lambda: dict.fromkeys(REASONS, 0))
    seconds: float = 0.0
    cancelled: bool = False

    @property
    def seconds_per_row(self) -> float:
        ran = self.rows_done - self.rows_resumed
        return self.seconds / ran if ran else 0.0

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "seconds": round(self.seconds, 2), "seconds_per_row": round(self.seconds_per_row, 2)}


@dataclass(frozen=True)
class RewordProgress:
    """After each source row: the report so far."""

    report: RewordReport


@dataclass(frozen=True)
class RewordDone:
    """The last event: the final report (also when cancelled: the file is valid and resumable)."""

    report: RewordReport


# -- the source file and the output ----------------------------------------------------------------


def source_rows(path: Path) -> list[SourceRow]:
    """The rows ``load_file`` trains on (generated rows: the accepted ones), with their lines."""
    rows = []
    for example in load_file(path, minimum=1).examples:
        line = int(example["origin"].rsplit(":", 1)[1])
        rows.append(SourceRow(line, question_of(example), example["messages"][-1]["content"]))
    return rows


def check_paths(data: Path, out: Path) -> None:
    """Refuse an ``out`` that is not a .jsonl file or that would overwrite the data file."""
    if out.suffix.lower() != ".jsonl":
        raise DomainsmithError(f"--out must be a .jsonl file (got {out.name})")
    if out.resolve() in (data.resolve(), rejected_path(data).resolve()):
        raise DomainsmithError(f"--out {out} is the data file (or its rejected file): choose another file")


def file_hash(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()[:16]


class RewordOutput:
    """The rewordings file and its rejected file; ``open`` repairs and reads what a past run left."""

    def __init__(self, path: Path):
        self.path = path
        self.rejected_path = rejected_path(path)
        self.rows: list[dict] = []
        self.rejected: list[dict] = []
        self.done: set[int] = set()

    def open(self, source_hash: str) -> RewordOutput:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.rows = read_repaired(self.path, "rewordings")
        self.rejected = read_repaired(self.rejected_path, "rewordings")
        for row in self.rows + self.rejected:
            provenance = row.get("provenance") if isinstance(row, dict) else None
            if not isinstance(provenance, dict) or "source_line" not in provenance:
                raise DomainsmithError(f"{self.path} is not a rewordings file: choose another --out")
            if provenance.get("source_hash") != source_hash:
                raise DomainsmithError(
                    f"{self.path} holds rewordings of {provenance.get('source_file')} as it was before it changed: "
                    "choose another --out (or delete it to start again)"
                )
            self.done.add(provenance["source_line"])
        return self

    def write(self, rows: Sequence[dict], rejected: Sequence[dict]) -> None:
        """Append whole lines, flushed and fsynced."""
        append_rows(self.path, rows)
        append_rows(self.rejected_path, rejected)
        self.rows += rows
        self.rejected += rejected
        self.done |= {r["provenance"]["source_line"] for r in [*rows, *rejected]}


# -- rewording -------------------------------------------------------------------------------------


def parse_rewordings(reply: str) -> list[str]:
    """The questions of a reply: its ``Q:`` lines, else its lines that end with a question mark."""
    questions = [q for q, _ in parse_pairs(reply)[0] if q]
    asked = (_LIST_MARK.sub("", line) for line in reply.splitlines() if line.strip().endswith("?"))
    return questions or [" ".join(line.split()) for line in asked]


def reword(
    data: Path,
    out: Path,
    complete: Complete,
    model_name: str,
    embedder,
    options: RewordOptions = RewordOptions(),
    cancel: threading.Event | None = None,
) -> Iterator[RewordProgress | RewordDone]:
    """Reword ``data``'s questions into ``out`` (resuming what a past run left there); yields after each row."""
    cancel = cancel or threading.Event()
    started = time.monotonic()
    data, out = Path(data), Path(out)
    check_paths(data, out)
    rows = source_rows(data)
    source_hash = file_hash(data)
    index_of = {row.line: i for i, row in enumerate(rows)}
    chosen = choose_chunks(rows, options.limit, options.seed)
    output = RewordOutput(out).open(source_hash)
    report = RewordReport(str(data), str(out), model_name, rows_total=len(chosen))
    _recount(report, output, {row.line for row in chosen})
    checks = Checks([(r.line, r.question) for r in rows], embedder, [r["question"] for r in output.rows])
    generator = {
        "model": model_name,
        "per_row": options.per_row,
        "seed": options.seed,
        "temperature": options.temperature,
        "max_tokens": options.reply_tokens,
    }
    for source in chosen:
        if source.line in output.done:
            continue
        if cancel.is_set():
            break
        messages = _messages(source.question, options.per_row)
        seed = options.seed + index_of[source.line]
        reply = complete(messages, seed, options.reply_tokens, lambda text: finished(text, "q") >= options.per_row)
        if cancel.is_set():
            break  # the reply was cut short: nothing of it is written, a rerun does this row again
        kept, rejected = _one_row(source, reply, options.per_row, checks, data, source_hash, generator)
        output.write(kept, rejected)
        report.rows_done += 1
        report.candidates += len(kept) + len(rejected)
        report.kept += len(kept)
        for row in rejected:
            report.rejected[row["reason"]] += 1
        report.seconds = time.monotonic() - started
        yield RewordProgress(report)
    report.cancelled = cancel.is_set() and report.rows_done < report.rows_total
    report.seconds = time.monotonic() - started
    yield RewordDone(report)


def _messages(question: str, n: int) -> list[dict]:
    """The task, one worked example (small models answer the question instead without it), the question."""
    task = USER_TASK.format(n=n)
    example = "\n".join(f"Q: {q}" for q in (EXAMPLE[1] * n)[:n])
    return [
        {"role": "system", "content": PROMPT.format(n=n)},
        {"role": "user", "content": f"{task}\n\n{EXAMPLE[0]}"},
        {"role": "assistant", "content": example},
        {"role": "user", "content": f"{task}\n\n{as_data(question)}"},
    ]


def _one_row(
    source: SourceRow, reply: str, per_row: int, checks: Checks, data: Path, source_hash: str, generator: dict
) -> tuple[list[dict], list[dict]]:
    """One source row's kept rows and rejected rows (each with its reason)."""

    def row(question: str, similarity: float | None = None) -> dict[str, Any]:
        provenance = {
            "source_line": source.line,
            "source_file": str(data.resolve()),
            "source_hash": source_hash,
            "generator": generator,
            "generated_at": utc_timestamp(),
        }
        if similarity is not None:
            provenance["similarity"] = round(similarity, 3)  # the embedding cosine with the source question
        return {
            "question": question,
            "answer": source.answer,
            "reworded_from": source.question,
            "provenance": provenance,
        }

    candidates = parse_rewordings(reply)[:per_row]
    if not candidates:
        return [], [{**row(""), "reason": "malformed", "reply": reply[:500]}]
    kept, rejected = [], []
    for candidate in candidates:
        reason, similarity = checks.check(candidate, source.question, source.line)
        if reason:
            rejected.append({**row(candidate, similarity), "reason": reason})
        else:
            checks.keep(candidate)
            kept.append(row(candidate, similarity))
    return kept, rejected


def _recount(report: RewordReport, output: RewordOutput, chosen: set[int]) -> None:
    report.rows_done = report.rows_resumed = len(output.done & chosen)
    report.kept = len(output.rows)
    for r in output.rejected:
        reason = r.get("reason") if r.get("reason") in report.rejected else "malformed"
        report.rejected[reason] += 1
    report.candidates = report.kept + sum(report.rejected.values())
