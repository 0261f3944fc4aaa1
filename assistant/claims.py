"""Claim-level check of a cited sentence: what it states that its passage does not.

The embedding and key-term score of ``assistant.citations`` says whether a sentence is about what
its passage says; it cannot see a sentence that restates the passage and then invents a quantity.
Four kinds of claim are compared, each conservatively (a faithful paraphrase must pass):

- numbers with their units: every number of the sentence must be in the passage ("4,380" and
  "4380", "2.0" and "2", "2 l" and "2 liters" meet); a number the passage gives with another unit
  only ("10 bar" against "10 psi") is unsupported, a number given without a unit is not judged on
  its unit. Numbers inside identifiers ("utf-8", "sha256") and list enumerators are not claims;
- named entities: product and code identifiers (``json.dumps``, ``--enable-optimizations``,
  ``XJ-200``, snake_case, CamelCase, ``open()``, backticked code, acronyms of three letters or
  more) and capitalised names of two words or more ("Acme Pump Works"), the sentence's first word
  left out. Found when every part of it occurs in the passage (case and separators ignored);
- negations: the sentence negates ("not", "never", "no", "cannot", "n't", "without", ...) what the
  passage's closest sentence affirms, or the other way round. Judged only when a passage sentence
  shares most of the sentence's key terms and every key term of the negated words, and no
  passage sentence that close has the sentence's polarity.

Numbers, entities and negations that the question already states are given, not claimed; fenced
code blocks are left out (``outside_code``), and inline code examples count only for the dotted
names and options they quote (``without_examples``). "Follows from" is
limited to these equalities: no arithmetic, no synonyms of names.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from assistant.sentences import MARKER, split_sentences
from store.terms import CONTENT_STOPWORDS, key_terms

# Canonical unit -> the ways it is written (lower case; "°c" keeps its degree sign).
_UNIT_NAMES = {
    "l": "l ltr liter liters litre litres",
    "ml": "ml milliliter milliliters millilitre millilitres",
    "mm": "mm millimeter millimeters millimetre millimetres",
    "cm": "cm centimeter centimeters centimetre centimetres",
    "m": "m meter meters metre metres",
    "km": "km kilometer kilometers kilometre kilometres",
    "inch": "inch inches",
    "ft": "ft foot feet",
    "bar": "bar bars",
    "psi": "psi",
    "pa": "pa pascal pascals",
    "kpa": "kpa",
    "mpa": "mpa",
    "rpm": "rpm",
    "degc": "°c ℃ celsius degc",
    "degf": "°f ℉ fahrenheit degf",
    "kelvin": "kelvin",
    "kg": "kg kgs kilogram kilograms kilo kilos",
    "g": "g gram grams",
    "mg": "mg milligram milligrams",
    "lb": "lb lbs pound pounds",
    "nm": "nm newton-meter newton-meters newton-metre newton-metres",
    "n": "newton newtons",
    "h": "h hr hrs hour hours",
    "min": "min mins minute minutes",
    "s": "s sec secs second seconds",
    "ms": "ms millisecond milliseconds",
    "us": "µs microsecond microseconds",
    "ns": "ns nanosecond nanoseconds",
    "day": "day days",
    "week": "week weeks",
    "month": "month months",
    "year": "year years",
    "v": "v volt volts",
    "amp": "amp amps ampere amperes",
    "w": "w watt watts",
    "kw": "kw kilowatt kilowatts",
    "gw": "gw gigawatt gigawatts",
    "hz": "hz hertz",
    "khz": "khz kilohertz",
    "mhz": "mhz megahertz",
    "ghz": "ghz gigahertz",
    "byte": "byte bytes",
    "kb": "kb kib kilobyte kilobytes",
    "mb": "mb mib megabyte megabytes",
    "gb": "gb gib gigabyte gigabytes",
    "tb": "tb tib terabyte terabytes",
    "bit": "bit bits",
    "%": "% percent",
}
UNITS = {alias: unit for unit, aliases in _UNIT_NAMES.items() for alias in aliases.split()}
_NUMBER_WORDS = dict(
    zip("zero one two three four five six seven eight nine ten eleven twelve".split(), range(13), strict=True)
)

# A number: thousands groups or plain digits, decimals or a version ("3.11.2"), then maybe a unit.
_NUMBER = re.compile(
    r"(?<![\w.])(?P<num>\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)*)"
    r"(?P<unit>\s?(?:°\s?[cfCF]|[℃℉%])|\s?[A-Za-zµ]+(?:-[A-Za-z]+)?)?"
)
_ENUMERATOR = re.compile(r"^\s*\d{1,2}[.)]\s")
_NEGATION = re.compile(r"\bnot only\b|\bno matter\b|\b(?:not|never|no|none|nor|neither|cannot|without)\b|n't\b", re.I)
_NOT_A_NEGATION = ("not only", "no matter")  # matched first so that they are skipped whole
_CODE_SPAN = re.compile(r"`([^`]+)`")
_TOKEN = re.compile(r"[-]{0,2}[A-Za-z0-9_]+(?:[.\-:/][A-Za-z0-9_]+)*(?:\(\))?")
_CAPITALISED = re.compile(r"\b[A-Z][a-z]+(?:\s+[A-Z][a-z]+)+\b")
_PYTHON_WORDS = frozenset({"true", "false", "none", "self", "cls", "args", "kwargs"})


@dataclass(frozen=True)
class Quantity:
    """A number as stated: its canonical value, its canonical unit (None when it has none), its text."""

    value: str
    unit: str | None
    text: str


def number_value(text: str) -> str | None:
    """The canonical form of a written number ("4,380" -> "4380", "2.50" -> "2.5"); versions as written."""
    plain = text.replace(",", "")
    if plain.count(".") > 1:
        return plain
    try:
        value = Decimal(plain).normalize()
    except InvalidOperation:
        return None
    return format(value, "f")


def unit_of(text: str) -> str | None:
    """The canonical unit a written unit names ("litres" -> "l", "°C" -> "degc"), or None."""
    word = re.sub(r"\s+", "", text.strip().lower())
    return UNITS.get(word)


def quantities(text: str) -> list[Quantity]:
    """The numbers of a text with their units; a range ("2-3 l", "2 to 3 l") gives its unit to both ends."""
    text = MARKER.sub("", text)
    found: list[Quantity] = []
    for match in _NUMBER.finditer(text):
        start = match.start()
        if start and text[start - 1] == "-" and re.search(r"[A-Za-z][\w.-]*-$", text[:start]):
            continue  # part of an identifier: utf-8, api-ms-win-crt-runtime-l1-1-0
        if start == 0 and _ENUMERATOR.match(text):
            continue
        value = number_value(match.group("num"))
        if value is None:
            continue
        written = match.group("unit") or ""
        unit = unit_of(written) if written else None
        if written and unit is None and not written[0].isspace():
            continue  # digits glued to letters that are no unit: "3rd", "64bit", "2x"
        found.append(Quantity(value, unit, match.group(0) if unit else match.group("num")))
    # Ranges: "2-3 liters", "2 to 3 liters", "between 2 and 3 liters".
    for i in range(len(found) - 1):
        first, second = found[i], found[i + 1]
        if first.unit is None and second.unit is not None:
            between = re.search(
                re.escape(first.text) + r"\s*(?:-|–|to|and)\s*" + re.escape(second.text.split()[0]), text
            )
            if between:
                found[i] = Quantity(first.value, second.unit, first.text)
    return found


def _values(text: str) -> tuple[set[str], set[tuple[str, str | None]]]:
    """The numbers of a text, written as digits or as words up to twelve, and their (value, unit) pairs."""
    pairs = {(q.value, q.unit) for q in quantities(text)}
    for word, value in _NUMBER_WORDS.items():
        for match in re.finditer(rf"\b{word}\b(?:\s+(\S+))?", text, re.I):
            unit = unit_of(match.group(1).strip(".,;:)")) if match.group(1) else None
            pairs.add((str(value), unit))
    return {v for v, _ in pairs}, pairs


def unsupported_quantities(sentence: str, reference: str, question: str = "") -> list[str]:
    """The sentence's numbers (with units) that the reference does not state and the question does not give."""
    values, pairs = _values(reference)
    given, _ = _values(question)
    out = []
    for q in quantities(sentence):
        if q.value in given:
            continue
        if q.value not in values:
            out.append(q.text)
        elif q.unit is not None and (q.value, q.unit) not in pairs and (q.value, None) not in pairs:
            out.append(q.text)  # the number is there, with another unit: "10 bar" against "10 psi"
    return list(dict.fromkeys(out))


def _squash(token: str) -> str:
    return re.sub(r"[^a-z0-9]", "", token.lower())


def _parts(token: str) -> list[str]:
    return [p for p in re.split(r"[.\-:/_()]+", token.lower()) if len(p) >= 2]


def vocabulary(text: str) -> set[str]:
    """What a text mentions, for entity look-ups: its tokens, their parts and their squashed forms."""
    found: set[str] = set()
    for token in _TOKEN.findall(text):
        lowered = token.lower().strip("-")
        found.update({lowered, lowered.removesuffix("()"), _squash(token)})
        found.update(_parts(token))
    return found


def _is_code(token: str) -> bool:
    bare = token.removesuffix("()")
    return (
        token.endswith("()")
        or token.startswith("-")
        or "_" in bare
        or bool(re.search(r"[A-Za-z]\.[A-Za-z]", bare))
        or bool(re.search(r"[a-z][A-Z]", bare))  # CamelCase, camelCase
        or (bool(re.search(r"[A-Za-z]", bare)) and bool(re.search(r"\d", bare)) and not bare.isdigit())
        or (len(bare) >= 3 and bare.isupper() and bare.isalpha())
    )


def entities(sentence: str) -> list[str]:
    """Names and identifiers the sentence states: code spans and code-like tokens, capitalised names
    of two words or more (not counting the sentence's first word)."""
    text = MARKER.sub("", sentence).strip()
    found: list[str] = []
    for span in _CODE_SPAN.findall(text):
        tokens = _TOKEN.findall(span)
        found += tokens if len(tokens) == 1 else [t for t in tokens if _is_code(t)]  # a name, or code's names
    plain = _CODE_SPAN.sub(" ", text)
    found += [t for t in _TOKEN.findall(plain) if _is_code(t)]
    first = re.search(r"[A-Za-z]", plain)
    for match in _CAPITALISED.finditer(plain):
        name = match.group(0)
        if first and match.start() == first.start():
            name = name.split(None, 1)[1]
            if " " not in name:
                continue
        found.append(name)
    # Numbers are judged as quantities ("10mm", "3rd", "1.5B" are not names).
    return list(dict.fromkeys(e for e in found if e and not e[0].isdigit()))


def unsupported_entities(sentence: str, reference: str, question: str = "") -> list[str]:
    """The sentence's names and identifiers that neither the reference nor the question mentions."""
    known = vocabulary(reference) | vocabulary(question)
    out = []
    for entity in entities(sentence):
        if " " in entity and not _is_code(entity):  # a capitalised name: each of its words
            words = [w.lower() for w in entity.split() if w.lower() not in CONTENT_STOPWORDS]
            missing = [w for w in words if w not in known]
        else:
            bare = entity.lower().strip("-").removesuffix("()")
            if bare in known or _squash(entity) in known or bare in _PYTHON_WORDS:
                continue
            missing = [p for p in _parts(entity) if p not in known and p not in CONTENT_STOPWORDS]
        if missing:
            out.append(entity)
    return out


def _negations(text: str) -> list[re.Match]:
    return [m for m in _NEGATION.finditer(text) if m.group(0).lower() not in _NOT_A_NEGATION]


def _scope(text: str, cue: re.Match) -> set[str]:
    """The key terms a negation covers: the words after it up to the end of its clause (at most 6)."""
    after = re.split(r"[,;:.!?()]|\b(?:but|and|or|which|while|whereas|unless)\b", text[cue.end() :], maxsplit=1)[0]
    return set(key_terms(" ".join(after.split()[:6])))


def negated(text: str) -> bool:
    """True when the text says "not", "never", "no", "n't", "without" ... ("not only" is no negation)."""
    return bool(_negations(text))


def negation_conflict(sentence: str, reference: str, question: str = "", *, min_shared: float = 0.6) -> str | None:
    """The sentence's clause whose polarity the reference contradicts, or None.

    A passage sentence is close when it holds ``min_shared`` of the sentence's key terms (three at
    least). Conflict: some close sentence has the other polarity, every key term of the negated
    words occurs in the other side, and no close sentence shares the sentence's polarity. A
    negation the question already makes ("... when the application hasn't configured logging")
    is restated, not claimed.
    """
    terms = set(key_terms(sentence))
    if len(terms) < 3:
        return None
    close = []
    for passage_sentence in split_sentences(MARKER.sub("", reference)):
        shared = terms & set(key_terms(passage_sentence))
        if len(shared) >= 3 and len(shared) >= min_shared * len(terms):
            close.append(passage_sentence)
    mine = negated(sentence)
    if not close or any(negated(p) == mine for p in close):
        return None
    for other in close:
        negative, positive = (sentence, other) if mine else (other, sentence)
        for cue in _negations(negative):
            scope = _scope(negative, cue)
            if mine and negated(question) and scope <= set(key_terms(question)):
                continue
            if scope and scope <= set(key_terms(positive)):
                said = f"{cue.group(0)} {' '.join(sorted(scope))}"
                return said if mine else f"the passage says {said}"
    return None


def outside_code(sentences: Sequence[str]) -> list[str]:
    """Each sentence without what lies inside fenced code blocks (fences tracked across sentences):
    a code example's values and names illustrate, they are not claims about the passage."""
    out, inside = [], False
    for sentence in sentences:
        pieces = sentence.split("```")
        out.append(" ".join(p for i, p in enumerate(pieces) if inside == (i % 2 == 1)).strip())
        inside ^= len(pieces) % 2 == 0
    return out


def without_examples(sentence: str) -> str:
    """The sentence with its inline code examples reduced to the names they quote.

    A code span of one token names something (`sort_keys`, `--user`) and is kept; a longer one is
    an example (`x = 42`, `f'{var_name=}'`): only its dotted names, options and keyword arguments
    (`sort_keys=True` -> `sort_keys`) stay claims.
    """

    def reduce(match: re.Match) -> str:
        code = match.group(1)
        tokens = _TOKEN.findall(code)
        if len(tokens) <= 1:
            return match.group(0)
        named = [t for t in tokens if t.startswith("-") or re.search(r"[A-Za-z_]\.[A-Za-z_]", t)]
        named += re.findall(r"(?<![\w{])([A-Za-z_]\w*)=(?![=}'\"])", code)
        return " ".join(f"`{t}`" for t in dict.fromkeys(named))

    return _CODE_SPAN.sub(reduce, sentence)


def unsupported_claims(
    sentence: str, references: Iterable[str], question: str = "", unknown: Sequence[str] = ()
) -> list[str]:
    """What the sentence claims that the references (the cited passages, taken together) do not.

    Numbers with units, names and identifiers, and negations; an empty list when all are found.
    Inline code examples count only for the names they quote (``without_examples``). ``unknown``: the
    question's words that no passage of the knowledge base contains (``Retrieval.unknown_names``);
    a sentence naming one states what no source can (the question's words are otherwise known).
    """
    sentence = without_examples(sentence)
    reference = "\n".join(references)
    claims = unsupported_quantities(sentence, reference, question) + unsupported_entities(sentence, reference, question)
    lowered = sentence.lower()
    claims += [f"not in the documents: {w}" for w in unknown if re.search(rf"(?<![a-z0-9]){re.escape(w)}", lowered)]
    conflict = negation_conflict(sentence, reference, question)
    if conflict:
        claims.append(f"negation: {conflict}")
    return claims
