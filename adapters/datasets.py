"""Training data: load and validate the expert's Q&A, derive examples from a knowledge base, split.

An example is a plain dict that travels as one JSON line into the run folder:

- ``{"kind": "chat", "messages": [...], "origin": "qa.jsonl:3"}``: the last message is the
  assistant's answer, the only part the loss is computed on; grounded examples
  (``adapters.grounded``) also carry their ``"question"``, because their user turn is Chat's
  whole prompt with the sources;
- ``{"kind": "text", "text": "...", "origin": "kb:manual.pdf#4"}``: domain text, loss on all of it.

Accepted files: JSONL with ``{"question", "answer"}`` or ``{"messages": [{"role", "content"}, ...]}``
per line, and CSV with ``question`` and ``answer`` columns. Every problem names the file and the
line (CSV: the physical line the row starts on); exact duplicates are dropped and reported.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import random
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from store.errors import InvalidTrainingData

MIN_EXAMPLES = 10
ROLES = ("system", "user", "assistant")
SUFFIXES = (".jsonl", ".csv")


@dataclass
class DatasetReport:
    """What loading found: the usable examples and what was dropped or looks suspicious."""

    path: str
    examples: list[dict[str, Any]]
    duplicates: list[tuple[int, int]] = field(default_factory=list)  # (line, line of the first copy)
    conflicts: list[tuple[int, int]] = field(default_factory=list)  # same question, another answer

    def notes(self) -> list[str]:
        out = [f"line {line}: duplicate of line {first}, dropped" for line, first in self.duplicates]
        out += [f"line {line}: same question as line {first} with another answer" for line, first in self.conflicts]
        return out


def load_file(path: str | Path, minimum: int = MIN_EXAMPLES) -> DatasetReport:
    """Load and validate a Q&A file; raises ``InvalidTrainingData`` naming the file and line."""
    path = Path(path)
    if not path.is_file():
        raise InvalidTrainingData("no such training file", path=path)
    suffix = path.suffix.lower()
    if suffix not in SUFFIXES:
        raise InvalidTrainingData(
            f"unsupported training file type {suffix or '(none)'}: use .jsonl (question/answer or messages) or .csv"
        )
    raw = path.read_bytes()
    text = _decode(raw, path)
    rows = _jsonl_rows(text, path) if suffix == ".jsonl" else _csv_rows(text, path)
    report = _deduplicate(rows, path)
    check_minimum(len(report.examples), minimum, path)
    return report


def check_minimum(count: int, minimum: int = MIN_EXAMPLES, path: str | Path | None = None) -> None:
    if count < minimum:
        raise InvalidTrainingData(
            f"too few examples: {count} usable, at least {minimum} are needed to train an adapter", path=path
        )


def _decode(raw: bytes, path: Path) -> str:
    if raw.startswith(b"\xef\xbb\xbf"):
        raw = raw[3:]
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise InvalidTrainingData(
            f"not UTF-8 text (byte 0x{raw[exc.start]:02x}): save the file as UTF-8", path=path, line=line
        ) from None


def _jsonl_rows(text: str, path: Path) -> list[tuple[int, dict[str, Any]]]:
    """The examples of a JSONL file. Generated rows (``adapters.datagen``) carry a ``review`` field:
    only the ``accepted`` ones train, and a file with none accepted is refused."""
    rows = []
    reviewed = accepted = 0
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            raise InvalidTrainingData(
                f"not valid JSON ({exc.msg}, column {exc.colno})", path=path, line=number
            ) from None
        if not isinstance(obj, dict):
            raise InvalidTrainingData(
                'each line must be a JSON object with "question" and "answer" (or "messages")', path=path, line=number
            )
        example = _example(obj, path, number)
        if "review" in obj:
            reviewed += 1
            if obj["review"] != "accepted":
                continue
            accepted += 1
            example["generated"] = True  # not the expert's own row: may be held out (``split``)
            chunk = _source_chunk(obj)
            if chunk:
                example["source_chunk"] = chunk  # the passage it was written from (``adapters.grounded``)
            if obj.get("kind") == "unanswerable":
                example["unanswerable"] = True  # answered with the abstention reply (``adapters.service``)
        rows.append((number, example))
    if reviewed and not accepted:
        raise InvalidTrainingData(
            f"{path.name} has {reviewed} generated rows and none accepted: accept them in the Fine-tune tab "
            "(Generate from documents) or generate with --accept"
        )
    return rows


def _source_chunk(obj: dict[str, Any]) -> str | None:
    """The chunk an answerable generated row was written from (its ``provenance``), or None."""
    provenance = obj.get("provenance")
    if obj.get("kind") != "answerable" or not isinstance(provenance, dict):
        return None
    chunk = provenance.get("chunk_id")
    return chunk if isinstance(chunk, str) and chunk else None


def _csv_rows(text: str, path: Path) -> list[tuple[int, dict[str, Any]]]:
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(reader)
    except StopIteration:
        raise InvalidTrainingData("the CSV file is empty", path=path) from None
    except csv.Error as exc:
        raise InvalidTrainingData(f"not a valid CSV file ({exc})", path=path, line=1) from None
    columns = {name.strip().lower(): i for i, name in enumerate(header)}
    missing = [c for c in ("question", "answer") if c not in columns]
    if missing:
        raise InvalidTrainingData(
            f"the CSV header has no {' and no '.join(repr(m) for m in missing)} column "
            f"(found: {', '.join(repr(h) for h in header)})",
            path=path,
            line=1,
        )
    rows = []
    start = reader.line_num + 1
    while True:
        try:
            values = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            raise InvalidTrainingData(f"not a valid CSV row ({exc})", path=path, line=start) from None
        if any(v.strip() for v in values):
            cells = {
                name: values[i] if i < len(values) else None
                for name, i in columns.items()
                if name in ("question", "answer")
            }
            rows.append((start, _example(cells, path, start)))
        start = reader.line_num + 1
    return rows


def _example(obj: dict[str, Any], path: Path, line: int) -> dict[str, Any]:
    origin = f"{path.name}:{line}"
    if "messages" in obj:
        return {"kind": "chat", "messages": _messages(obj["messages"], path, line), "origin": origin}
    for key in ("question", "answer"):
        if key not in obj or obj[key] is None:
            raise InvalidTrainingData(f'missing "{key}"', path=path, line=line)
        if not isinstance(obj[key], str):
            raise InvalidTrainingData(f'"{key}" must be text', path=path, line=line)
        if not obj[key].strip():
            raise InvalidTrainingData(f"empty {key}", path=path, line=line)
    messages = [
        {"role": "user", "content": obj["question"].strip()},
        {"role": "assistant", "content": obj["answer"].strip()},
    ]
    return {"kind": "chat", "messages": messages, "origin": origin}


def _messages(value: Any, path: Path, line: int) -> list[dict[str, str]]:
    if not isinstance(value, list) or not value:
        raise InvalidTrainingData(
            '"messages" must be a non-empty list of {"role", "content"} objects', path=path, line=line
        )
    out = []
    for i, message in enumerate(value, start=1):
        if not isinstance(message, dict) or not isinstance(message.get("content"), str):
            raise InvalidTrainingData(f'message {i} needs a "role" and a text "content"', path=path, line=line)
        if message.get("role") not in ROLES:
            raise InvalidTrainingData(
                f"message {i} has role {message.get('role')!r}: use one of {', '.join(ROLES)}", path=path, line=line
            )
        out.append({"role": message["role"], "content": message["content"].strip()})
    if out[-1]["role"] != "assistant":
        raise InvalidTrainingData("the last message must be the assistant's answer", path=path, line=line)
    if not out[-1]["content"]:
        raise InvalidTrainingData("empty answer (the last message has no content)", path=path, line=line)
    if not any(m["role"] == "user" for m in out):
        raise InvalidTrainingData("no user message before the answer", path=path, line=line)
    return out


def normalized(text: str) -> str:
    """Text as compared for duplicates and for "already trained": case and spacing ignored."""
    return re.sub(r"\s+", " ", text).strip().lower()


def _deduplicate(rows: list[tuple[int, dict[str, Any]]], path: Path) -> DatasetReport:
    report = DatasetReport(path=str(path), examples=[])
    seen: dict[str, int] = {}
    questions: dict[str, tuple[int, str]] = {}
    for line, example in rows:
        prompt = normalized(json.dumps(example["messages"][:-1]))
        answer = normalized(example["messages"][-1]["content"])
        key = prompt + "\x00" + answer
        if key in seen:
            report.duplicates.append((line, seen[key]))
            continue
        seen[key] = line
        if prompt in questions and questions[prompt][1] != answer:
            report.conflicts.append((line, questions[prompt][0]))
        questions.setdefault(prompt, (line, answer))
        report.examples.append(example)
    return report


# -- from a knowledge base -------------------------------------------------------------------


def examples_from_kb(kb: Any, *, text: bool = True, structure: bool = True) -> list[dict[str, Any]]:
    """Examples from a ``store.knowledge_base.KnowledgeBase``.

    ``text``: every chunk's text as domain-adaptation data (loss on all of it). ``structure``:
    one Q&A pair per section (a heading path with its first passage), asking what the document
    says about that section, answered with the passage. Chunks are read in document order.
    """
    rows = kb.db.execute(
        """SELECT d.title, d.name, c.section, c.text, c.page, c.idx FROM chunks c JOIN documents d ON d.id = c.doc_id
           WHERE c.kb_id = ? ORDER BY d.source, c.idx""",
        [kb.id],
    ).fetchall()
    out: list[dict[str, Any]] = []
    seen_sections: set[tuple[str, str]] = set()
    for title, name, section, chunk_text, _page, idx in rows:
        origin = f"kb:{name}#{idx}"
        if text and chunk_text.strip():
            out.append({"kind": "text", "text": chunk_text.strip(), "origin": origin})
        doc = (title or name).strip()
        if structure and section and (name, section) not in seen_sections and chunk_text.strip():
            seen_sections.add((name, section))
            parts = section.split(" > ")
            if len(parts) > 1 and parts[0].strip().lower() == doc.lower():
                parts = parts[1:]  # the document's own title heading: "What does X say about X, Y?" reads badly
            topic = ", ".join(parts)
            question = f"What does {doc} say about {topic}?"
            out.append(
                {
                    "kind": "chat",
                    "origin": origin,
                    "generated": True,
                    "messages": [
                        {"role": "user", "content": question},
                        {"role": "assistant", "content": chunk_text.strip()},
                    ],
                }
            )
    return out


# -- splitting, hashing, saving ----------------------------------------------------------------


def split(examples: list[dict[str, Any]], val_fraction: float, seed: int) -> tuple[list[dict], list[dict]]:
    """A seeded train/validation split: ``val_fraction`` of the generated questions, at least one when
    there are any and ``val_fraction > 0``.

    The expert's own rows always train (every fact given is learned); only generated chat examples
    (``"generated"``: rows from ``data generate``, a knowledge base's section questions) can be held
    out. Chat examples with the same ``origin`` (a grounded question and its variant with the
    source taken out) stay on the same side, so no held-out question was trained on in another form.
    To measure the expert's own facts on questions never trained, an evaluation file
    (``train --eval``) is asked instead.
    """
    if not 0.0 <= val_fraction < 0.5:
        raise InvalidTrainingData(f"the validation fraction must be in [0, 0.5) (got {val_fraction})")
    groups: dict[str, list[int]] = {}
    for i, e in enumerate(examples):
        if e["kind"] == "chat" and e.get("generated"):
            groups.setdefault(e.get("origin") or f"#{i}", []).append(i)
    units = list(groups.values())
    n_val = 0 if val_fraction == 0 or len(units) < 2 else max(1, round(len(units) * val_fraction))
    rng = random.Random(seed)
    val_ids = {i for unit in rng.sample(units, n_val) for i in unit} if n_val else set()
    train = [e for i, e in enumerate(examples) if i not in val_ids]
    val = [e for i, e in enumerate(examples) if i in val_ids]
    return train, val


def question_of(example: dict[str, Any]) -> str:
    """The question a chat example asks: its ``question`` field, else its last user message."""
    return example.get("question") or next(m["content"] for m in reversed(example["messages"]) if m["role"] == "user")


def data_hash(examples: Iterable[dict[str, Any]]) -> str:
    """A short hash of what is trained on (not where it came from, nor the question already in the messages)."""
    digest = hashlib.sha256()
    for example in examples:
        body = {k: v for k, v in example.items() if k not in ("origin", "question", "generated")}
        digest.update(json.dumps(body, sort_keys=True, ensure_ascii=False).encode("utf-8") + b"\n")
    return digest.hexdigest()[:16]


def save_examples(path: Path, examples: Iterable[dict[str, Any]]) -> int:
    count = 0
    with path.open("w", encoding="utf-8") as f:
        for example in examples:
            f.write(json.dumps(example, ensure_ascii=False) + "\n")
            count += 1
    return count


def read_examples(path: Path) -> list[dict[str, Any]]:
    with path.open(encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]
