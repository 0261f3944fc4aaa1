"""What ``Assistant.ask`` yields: tokens as they are generated, then the sources, then the answer."""

from __future__ import annotations

from dataclasses import dataclass, field

from store.records import where


@dataclass(frozen=True)
class Source:
    """A retrieved passage offered to the model as ``[n]``."""

    n: int
    chunk_id: str
    document: str
    source: str
    page: int | None
    section: str
    text: str
    score: float = 0.0
    page_label: str | None = None  # the page number a reader's viewer shows (PDF page labels)
    ocr: bool = False  # the passage was read by OCR from a scanned page
    # What the prompt shows of ``text`` when it was cut to the question (assistant.focus); None: all of it.
    excerpt: str | None = None

    @property
    def where(self) -> str:
        return where(self.page, self.section, self.page_label)

    @property
    def prompt_text(self) -> str:
        return self.text if self.excerpt is None else self.excerpt


@dataclass(frozen=True)
class Citation:
    """A source the answer cites, with the check of the sentence that cites it."""

    n: int
    document: str
    source: str
    page: int | None
    section: str
    text: str
    supported: bool
    support: float = 0.0  # the check's score, 0..1
    # What the citing sentences state that the passage does not (numbers, units, names, negations):
    # any makes the citation unsupported whatever its support (assistant.claims).
    unsupported_claims: tuple[str, ...] = ()
    page_label: str | None = None
    ocr: bool = False

    @property
    def where(self) -> str:
        return where(self.page, self.section, self.page_label)

    def to_json(self) -> dict:
        return {
            "n": self.n,
            "document": self.document,
            "source": self.source,
            "page": self.page,
            "page_label": self.page_label,
            "section": self.section,
            "text": self.text,
            "supported": self.supported,
            "ocr": self.ocr,
            "unsupported_claims": list(self.unsupported_claims),
        }


@dataclass(frozen=True)
class Token:
    text: str


@dataclass(frozen=True)
class Notice:
    """Something the user should know about how the question was handled (truncated, budget shrunk)."""

    text: str


@dataclass(frozen=True)
class Waiting:
    """The question waits for documents still being indexed into its knowledge base (a passing status)."""

    text: str


@dataclass(frozen=True)
class Answer:
    text: str
    abstained: bool
    citations: list[Citation] = field(default_factory=list)
    sources: list[Source] = field(default_factory=list)
    reason: str = ""  # why it abstained, when it did
    model: str = ""
    seconds: float = 0.0
    first_token_seconds: float | None = None
    extractive: bool = False  # the model's reply failed its checks; the answer quotes the best passage

    def to_json(self) -> dict:
        """The ``ask --json`` object (a stable contract)."""
        return {"answer": self.text, "abstained": self.abstained, "citations": [c.to_json() for c in self.citations]}


@dataclass(frozen=True)
class Done:
    answer: Answer


AnswerEvent = Token | Notice | Waiting | Done
