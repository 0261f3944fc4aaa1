"""Fuzz every parser: only the project's typed errors may come out, never a crash or a hang.

Each format's parser (through the suffix registry, ``store.parsing.parse``) gets inputs from
``tests/fuzz_inputs.py``: random bytes, damaged copies of valid files and format-aware
generated ones. A parse must return a ``ParsedDocument`` with text or raise a
``DomainsmithError`` naming the file; anything else fails the test with the input that caused
it (shrunk by hypothesis). Each input gets ``FUZZ_TIME_LIMIT`` seconds (a SIGALRM interrupts
Python code; a watchdog ends the process if native code never returns).

The default run tries ``DEFAULT_EXAMPLES`` inputs per format with a fixed seed (the same inputs
in every CI run); ``DOMAINSMITH_FUZZ_EXAMPLES=10000`` runs the long, randomised one
(``bench/reliability_report.py --long``). Counts go to the reliability log.
"""

from __future__ import annotations

import faulthandler
import logging
import os
import signal
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings

from store.errors import DomainsmithError
from store.parsing import SUPPORTED_SUFFIXES, kind_of, parse
from store.records import ParsedDocument
from tests import fuzz_inputs, reliability_log

DEFAULT_EXAMPLES = 300
# Read at import: the autouse home fixture clears DOMAINSMITH_* variables inside each test.
EXAMPLES = int(os.environ.get("DOMAINSMITH_FUZZ_EXAMPLES", DEFAULT_EXAMPLES))
LONG = EXAMPLES > DEFAULT_EXAMPLES
FUZZ_TIME_LIMIT = float(os.environ.get("DOMAINSMITH_FUZZ_TIME_LIMIT", 10.0))
KINDS = sorted({kind_of(Path("x" + suffix)) for suffix in SUPPORTED_SUFFIXES})


class ParserHang(BaseException):
    """Raised by the alarm; a BaseException so no parser's ``except Exception`` can swallow it."""


@contextmanager
def time_limit(seconds: float) -> Iterator[None]:
    """Interrupt the block after ``seconds``; end the process if it is stuck in native code."""

    def alarm(signum: int, frame: object) -> None:
        raise ParserHang(f"no answer after {seconds:.0f} s")

    previous = signal.signal(signal.SIGALRM, alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    faulthandler.dump_traceback_later(seconds * 3, exit=True)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        faulthandler.cancel_dump_traceback_later()
        signal.signal(signal.SIGALRM, previous)


@dataclass
class Tally:
    inputs: int = 0
    parsed: int = 0
    errors: Counter = field(default_factory=Counter)
    max_seconds: float = 0.0


def check_one(path: Path, data: bytes, kind: str, tally: Tally) -> None:
    """Parse ``data`` saved as ``path``: a document with text, or a typed error naming the file."""
    path.write_bytes(data)
    tally.inputs += 1
    started = time.monotonic()
    try:
        with time_limit(FUZZ_TIME_LIMIT):
            document = parse(path)
    except ParserHang as hang:
        raise AssertionError(f"{kind} parser hung on a {len(data)}-byte input: {hang}") from None
    except DomainsmithError as error:
        tally.errors[type(error).__name__] += 1
        assert error.message and error.path == path.name, repr(error)
        return
    finally:
        tally.max_seconds = max(tally.max_seconds, time.monotonic() - started)
    tally.parsed += 1
    assert isinstance(document, ParsedDocument) and document.kind == kind
    assert any(block.text.strip() for block in document.blocks)


@pytest.fixture(scope="module")
def fuzz_formats(tmp_path_factory) -> dict[str, fuzz_inputs.Format]:
    return fuzz_inputs.formats(tmp_path_factory.mktemp("fuzz-seeds"))


@pytest.fixture(autouse=True, scope="module")
def quiet_pdf_warnings() -> Iterator[None]:
    """pypdf logs a warning per damaged object: thousands of lines that cost time and say nothing here."""
    logger = logging.getLogger("pypdf")
    level = logger.level
    logger.setLevel(logging.ERROR)
    yield
    logger.setLevel(level)


def test_every_registered_format_is_fuzzed(fuzz_formats) -> None:
    assert set(KINDS) == set(fuzz_formats) == {"pdf", "docx", "markdown", "html", "text"}


@pytest.mark.parametrize("kind", KINDS)
def test_parser_raises_only_typed_errors(kind: str, fuzz_formats, tmp_path: Path) -> None:
    fmt = fuzz_formats[kind]
    target = tmp_path / f"fuzzed{fmt.suffix}"
    tally = Tally()

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        derandomize=not LONG,
        print_blob=True,
        suppress_health_check=list(HealthCheck),
    )
    @given(fuzz_inputs.inputs(fmt))
    def run(data: bytes) -> None:
        check_one(target, data, kind, tally)

    try:
        run()
    finally:
        reliability_log.record(
            "fuzz",
            parser=kind,
            inputs=tally.inputs,
            parsed=tally.parsed,
            typed_errors=dict(tally.errors),
            max_seconds=round(tally.max_seconds, 3),
            long=LONG,
        )
    assert tally.inputs >= EXAMPLES
    # The generators must reach both outcomes, or they are not exercising the parser.
    assert tally.parsed and sum(tally.errors.values()), (tally.parsed, tally.errors)
