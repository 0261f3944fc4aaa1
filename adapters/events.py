"""What a training run reports: the worker's events, one JSON line each in ``events.jsonl``, and how
the parent reads them back.

The worker writes the dataclasses below through ``EventWriter``; everything that reads a run
(``adapters.catalogue``, ``adapters.process``, ``adapters.finetune``) parses the lines with
``Event.from_json``, so the protocol is spelled once. Each line is ``{"time", "type", "version",
...fields}``. ``version`` (``FORMAT_VERSION``) was added later: a line without it, from a run
written by an earlier version, reads as version 0 with the same fields. Unknown keys are ignored
and a line of an unknown type is skipped, so older code can read newer runs and the other way round.

``ProgressEvent`` is the parent's view of one event, as ``adapters.process.train`` yields it: its
``kind`` is the event's type ("failed" for an error), and the end of a run the worker could not
report itself (a kill, a crash) is a ``failed`` ``ProgressEvent`` with the log's tail.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any, ClassVar

FORMAT_VERSION = 1
TERMINAL = ("done", "cancelled", "failed")


@dataclass(frozen=True, kw_only=True)
class Event:
    """The fields every event has: when it was written (set by ``EventWriter``) and the format version."""

    type: ClassVar[str] = ""
    time: float | None = None
    version: int = FORMAT_VERSION

    def to_json(self) -> dict[str, Any]:
        head: dict[str, Any] = {} if self.time is None else {"time": self.time}
        body = {f.name: getattr(self, f.name) for f in fields(self) if f.name not in ("time", "version")}
        return {**head, "type": self.type, "version": self.version, **body}

    @staticmethod
    def from_json(data: dict[str, Any]) -> Event | None:
        """The event a JSON object describes; None for a type this version does not know."""
        cls = EVENT_TYPES.get(str(data.get("type", "")))
        if cls is None:
            return None
        names = {f.name for f in fields(cls)}
        values = {k: v for k, v in data.items() if k in names}
        values.setdefault("version", 0)  # written before events carried a version
        return cls(**values)


@dataclass(frozen=True, kw_only=True)
class Status(Event):
    """What the worker is doing now (loading the base, evaluating)."""

    type: ClassVar[str] = "status"
    message: str = ""


@dataclass(frozen=True, kw_only=True)
class AtStep(Event):
    """An event that happened at an optimizer step (the last one done)."""

    step: int = 0


@dataclass(frozen=True, kw_only=True)
class Resumed(AtStep):
    type: ClassVar[str] = "resumed"
    checkpoint: str = ""  # the checkpoint folder's name


@dataclass(frozen=True, kw_only=True)
class Start(Event):
    """Training (re)starts after ``start_step``; ``val_loss`` is the base model's validation loss."""

    type: ClassVar[str] = "start"
    total_steps: int = 0
    start_step: int = 0
    method: str = ""
    train_examples: int = 0
    val_examples: int = 0
    trainable_params: int = 0
    val_loss: float | None = None
    lora_targets: list[str] = field(default_factory=list)


@dataclass(frozen=True, kw_only=True)
class Step(AtStep):
    """One optimizer step; ``batch`` holds the example indices it trained on (same after a resume)."""

    type: ClassVar[str] = "step"
    total_steps: int = 0
    epoch: float = 0.0
    loss: float = 0.0
    lr: float = 0.0
    tokens: int = 0  # real (non-padding) tokens in this step
    tokens_per_s: float = 0.0
    eta_s: float | None = None
    batch: list[int] = field(default_factory=list)


@dataclass(frozen=True, kw_only=True)
class Eval(AtStep):
    """The validation loss at the end of an epoch."""

    type: ClassVar[str] = "eval"
    epoch: int = 0
    val_loss: float | None = None
    perplexity: float | None = None


@dataclass(frozen=True, kw_only=True)
class Checkpoint(AtStep):
    type: ClassVar[str] = "checkpoint"
    path: str = ""  # the checkpoint folder's name


@dataclass(frozen=True, kw_only=True)
class Cancelled(AtStep):
    type: ClassVar[str] = "cancelled"


@dataclass(frozen=True, kw_only=True)
class Done(AtStep):
    type: ClassVar[str] = "done"
    metrics: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, kw_only=True)
class Error(Event):
    """The run failed; ``user_error``: a problem the user can fix (bad data, unsupported model)."""

    type: ClassVar[str] = "error"
    message: str = ""
    user_error: bool = False


EVENT_TYPES: dict[str, type[Event]] = {
    cls.type: cls for cls in (Status, Resumed, Start, Step, Eval, Checkpoint, Cancelled, Done, Error)
}
Emit = Callable[[Event], None]


def parse_line(line: str | bytes) -> Event | None:
    """One line of ``events.jsonl``; None for a blank, cut (by a kill) or unknown line."""
    try:
        data = json.loads(line)
    except ValueError:
        return None
    return Event.from_json(data) if isinstance(data, dict) else None


def read_events(path: Path) -> list[Event]:
    """Every event in an events file, in order (an absent file has none)."""
    if not path.exists():
        return []
    parsed = (parse_line(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip())
    return [event for event in parsed if event is not None]


class EventWriter:
    """The worker's side: appends each event as one JSON line, flushed at once, stamped with the time."""

    def __init__(self, path: Path):
        self._file = path.open("a", encoding="utf-8")

    def __call__(self, event: Event) -> None:
        if event.time is None:
            event = replace(event, time=round(time.time(), 3))
        self._file.write(json.dumps(event.to_json(), ensure_ascii=False) + "\n")
        self._file.flush()

    def close(self) -> None:
        self._file.close()


class EventTail:
    """The parent's side while a worker runs: the events appended since the last read, complete lines only."""

    def __init__(self, path: Path):
        self.path = path
        self._offset = path.stat().st_size if path.exists() else 0  # earlier attempts' events are not new
        self._buffer = bytearray()

    def read_new(self) -> list[Event]:
        if not self.path.exists():
            return []
        with self.path.open("rb") as f:
            f.seek(self._offset)
            chunk = f.read()
        self._offset += len(chunk)
        self._buffer += chunk
        *lines, rest = bytes(self._buffer).split(b"\n")
        self._buffer[:] = rest
        parsed = (parse_line(line) for line in lines if line.strip())
        return [event for event in parsed if event is not None]


@dataclass(frozen=True)
class ProgressEvent:
    """One thing a run reported, as the parent yields it: ``kind`` is status, start, resumed, step,
    eval, checkpoint, done, cancelled or failed. ``event`` is the worker's event (None when the
    parent made this one up, e.g. for a killed worker) and ``data`` that event as written."""

    kind: str
    run_id: str
    step: int = 0
    total_steps: int = 0
    start_step: int = 0
    epoch: float = 0.0
    loss: float | None = None
    val_loss: float | None = None
    tokens_per_s: float | None = None
    eta_s: float | None = None
    message: str = ""
    metrics: dict[str, Any] | None = None
    log_tail: str = ""
    data: dict[str, Any] = field(default_factory=dict)
    event: Event | None = None

    @classmethod
    def from_event(cls, run_id: str, event: Event) -> ProgressEvent:
        shared = {name: getattr(event, name) for name in _SHARED if hasattr(event, name)}
        kind = "failed" if isinstance(event, Error) else event.type
        return cls(kind=kind, run_id=run_id, **shared, data=event.to_json(), event=event)


_SHARED = (
    "step",
    "total_steps",
    "start_step",
    "epoch",
    "loss",
    "val_loss",
    "tokens_per_s",
    "eta_s",
    "message",
    "metrics",
)
