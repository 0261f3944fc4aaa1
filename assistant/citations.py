"""From ``[n]`` markers in an answer to checked citations.

Each marker maps to its source; numbers that point nowhere are dropped from the text, and
sources the answer never cites are not listed. Every citation is checked against the claims it
covers: the sentence that carries the marker and the unmarked sentences just before it (models
often cite once at the end of a paragraph, or in a sentence of its own: "This is stated in
[1]."). A claim's support is the mean of the share of its key terms found in the passage and the
embedding similarity of the two; a citation's ``support`` is its best claim's, and ``supported``
is ``support >= threshold``.
Then the claims (``assistant.claims``): each claim of a marker's span is compared with the union of
the passages the marker cites ("[1, 2]" says the two together state it), and a number, unit,
name or negation that they do not state makes every citation of that marker unsupported, however
high its ``support``; ``unsupported_claims`` says which.
A small model often forgets the markers: then each sentence is attributed to the source that
supports it best, when one does and its claims hold there.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from assistant.claims import outside_code, unsupported_claims
from assistant.events import Citation, Source
from assistant.sentences import MARKER, split_sentences
from store.terms import coverage, key_terms


@dataclass(frozen=True)
class CitedAnswer:
    text: str
    citations: list[Citation]
    attributed: bool  # True when the markers were added by attribution, not written by the model


def markers(sentence: str) -> list[int]:
    return [int(n) for group in MARKER.findall(sentence) for n in group.split(",")]


def strip_markers(text: str) -> str:
    return MARKER.sub("", text).strip()


def renumber(sentence: str, n: int) -> str:
    """The sentence with its first marker pointing at ``n`` and its other markers removed."""
    first = MARKER.search(sentence)
    if first is None:
        return sentence
    return f"{sentence[: first.start()]} [{n}]{MARKER.sub('', sentence[first.end() :])}"


def drop_dangling(text: str, valid: set[int]) -> str:
    """Remove numbers that point to no source from the answer's markers."""

    def keep(match: re.Match) -> str:
        numbers = [n.strip() for n in match.group(1).split(",") if int(n) in valid]
        return f" [{', '.join(numbers)}]" if numbers else ""

    return MARKER.sub(keep, text)


def support_scores(embedder, claims: Sequence[str], passages: Sequence[str]) -> np.ndarray:
    """(claims × passages) support in 0..1: mean of key-term overlap and embedding cosine."""
    if not claims or not passages:
        return np.zeros((len(claims), len(passages)))
    vectors = embedder.encode(list(claims) + list(passages))
    cosine = np.clip(vectors[: len(claims)] @ vectors[len(claims) :].T, 0.0, 1.0)
    overlap = np.array([[coverage(c, [p]) if key_terms(c) else 0.0 for p in passages] for c in claims])
    return 0.5 * cosine + 0.5 * overlap


def cite(
    answer: str,
    sources: Sequence[Source],
    embedder,
    threshold: float = 0.5,
    *,
    question: str = "",
    check_claims: bool = True,
    unknown: Sequence[str] = (),
) -> CitedAnswer:
    """The answer with its markers mapped and checked. ``question``: names and numbers it gives are
    not claims, except its ``unknown`` words, which no passage of the knowledge base contains
    (``Retrieval.unknown_names``); ``check_claims=False`` judges by ``support`` alone (the check
    before claims)."""
    by_n = {s.n: s for s in sources}
    text = drop_dangling(answer, set(by_n))
    parts = split_sentences(text)
    cited = claim_spans([(strip_markers(s), [n for n in markers(s) if n in by_n]) for s in parts])
    if not sources or not parts:
        return CitedAnswer(text.strip(), [], False)
    # Every sentence against every offered passage, embedded once: the attribution, the check and
    # the repair below all read this one matrix.
    claims = list(dict.fromkeys(strip_markers(p) for p in parts))
    scores = support_scores(embedder, claims, [s.text for s in sources])
    gaps = _claim_gaps(by_n, question, parts, unknown) if check_claims else _no_gaps
    attributed = False
    if not any(numbers for _, numbers in cited):
        text, cited = _attribute(parts, claims, scores, sources, threshold, gaps)
        attributed = bool(cited)
    if not cited:
        return CitedAnswer(text.strip(), [], attributed)
    column = {s.n: j for j, s in enumerate(sources)}
    if not attributed:
        text, cited = _repair(text, parts, cited, scores, claims, sources, threshold, gaps)
    best: dict[int, float] = {}
    missing: dict[int, list[str]] = {}
    for span, numbers in cited:
        found = gaps(span, numbers)
        for n in dict.fromkeys(numbers):
            score = max(float(scores[claims.index(claim), column[n]]) for claim in span)
            best[n] = max(best.get(n, 0.0), score)
            missing[n] = list(dict.fromkeys(missing.get(n, []) + found))
    citations = [
        Citation(
            n=n,
            document=by_n[n].document,
            source=by_n[n].source,
            page=by_n[n].page,
            page_label=by_n[n].page_label,
            ocr=by_n[n].ocr,
            section=by_n[n].section,
            text=by_n[n].text,
            supported=best[n] >= threshold and not missing[n],
            support=round(best[n], 4),
            unsupported_claims=tuple(missing[n]),
        )
        for n in sorted(best)
    ]
    return CitedAnswer(text.strip(), citations, attributed)


Gaps = Callable[[Sequence[str], Sequence[int]], list[str]]


def _no_gaps(span: Sequence[str], numbers: Sequence[int]) -> list[str]:
    return []


def _claim_gaps(by_n: dict[int, Source], question: str, parts: Sequence[str], unknown: Sequence[str] = ()) -> Gaps:
    """``gaps(span, numbers)``: the claims of the span that the union of the cited passages does not
    state (a passage with its document and section: "json.dumps" may name the page it is on).
    Fenced code in the answer (``parts``, its sentences in order) is not checked."""
    plain = [strip_markers(p) for p in parts]
    prose: dict[str, str] = {}
    for claim, text in zip(plain, outside_code(plain), strict=True):
        prose.setdefault(claim, text)
    memo: dict[tuple[str, tuple[int, ...]], list[str]] = {}

    def gaps(span: Sequence[str], numbers: Sequence[int]) -> list[str]:
        cited = tuple(sorted(set(numbers)))
        found: list[str] = []
        for claim in span:
            if (claim, cited) not in memo:
                references = [f"{by_n[n].document}\n{by_n[n].section}\n{by_n[n].text}" for n in cited]
                memo[claim, cited] = unsupported_claims(prose.get(claim, claim), references, question, unknown)
            found += memo[claim, cited]
        return list(dict.fromkeys(found))

    return gaps


def _repair(text, parts, cited, scores, claims, sources, threshold, gaps: Gaps = _no_gaps):
    """Renumber a marker whose passages fail its claims when another offered passage passes them.

    Small models often cite the passage next to the right one; the reader then follows the number
    to a passage that does not say it. A marker fails when its passages' best support is under the
    threshold or its claims are not all stated there; the new passage must pass both. The sentence
    keeps its words; only its marker changes.
    """
    marked = [p for p in parts if markers(p)]
    out = []
    for (span, numbers), sentence in zip(cited, marked, strict=True):
        rows = [claims.index(c) for c in span]
        support = scores[rows].max(axis=0)  # best claim of the span, per offered source
        cited_best = max(support[j] for j, s in enumerate(sources) if s.n in numbers)
        if cited_best < threshold or gaps(span, numbers):
            for j in sorted(range(len(sources)), key=lambda j: -support[j]):  # stable: argmax first
                if support[j] < threshold:
                    break
                if not gaps(span, [sources[j].n]):
                    n = sources[j].n
                    text = text.replace(sentence, renumber(sentence, n), 1)
                    numbers = [n]
                    break
        out.append((span, numbers))
    return text, out


def claim_spans(sentences: Sequence[tuple[str, list[int]]]) -> list[tuple[list[str], list[int]]]:
    """Group ``(sentence, markers)`` into ``(claims, markers)``: a marker covers its own sentence and
    the unmarked sentences since the previous marker. Claims are the sentences with at least two key
    terms ("This is stated in [1]." claims nothing itself); a span with none keeps its last sentence.
    Unmarked sentences after the last marker are not cited and not returned.
    """
    spans: list[tuple[list[str], list[int]]] = []
    pending: list[str] = []
    for sentence, numbers in sentences:
        pending.append(sentence)
        if numbers:
            claims = [c for c in pending if len(key_terms(c)) >= 2] or [sentence]
            spans.append((claims, numbers))
            pending = []
    return spans


def _attribute(
    parts: list[str],
    claims: list[str],
    scores: np.ndarray,
    sources: Sequence[Source],
    threshold: float,
    gaps: Gaps = _no_gaps,
):
    """Add a marker to each sentence that one source supports well enough (``scores``: claims × sources)
    and whose claims that source states: the best such source, never one that contradicts its numbers."""
    cited: list[tuple[list[str], list[int]]] = []
    out = [strip_markers(p) for p in parts]
    for i, claim in enumerate(out):
        if len(key_terms(claim)) < 2:
            continue
        row = scores[claims.index(claim)]
        for j in sorted(range(len(sources)), key=lambda j: -row[j]):  # stable: argmax first
            if row[j] < threshold:
                break
            n = sources[j].n
            if not gaps([claim], [n]):
                cited.append(([claim], [n]))
                out[i] = f"{claim} [{n}]"
                break
    return " ".join(out), cited
