"""bench/api.py's timed answers: one question through each path, and the timer inside ``/v1``.

``ask_in_process`` asks Chat's own ``Assistant.ask``; ``ask_v1`` asks ``/v1`` with the ``openai``
client, streaming, and ``ClientProcess`` runs that client in a child process (this module run as
``python -m bench.api_answers URL``), as the expert's tools are other processes. ``AskTimer`` wraps
the services' ``ask`` so that each ``/v1`` request's own ask is timed inside the server; every time
is read from ``now()`` (CLOCK_MONOTONIC, one clock for all processes of the machine), so what the
client saw minus its request's ask (``around_ask``) is what ``/v1`` added.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from assistant.assistant import AskOptions  # noqa: E402
from assistant.events import Done, Token  # noqa: E402
from bench.api_servers import MODEL, openai_client  # noqa: E402

KB = "python-manual"


@dataclass
class Run:
    """One timed answer: seconds to the first content and to the end, what was streamed."""

    ttft: float
    total: float
    text: str
    tokens: int
    abstained: bool
    started: float = 0.0  # ``now()`` when the question was sent


class AskTimer:
    """Records, for every ``services.assistant.ask`` (which it wraps), when it started, yielded its
    first token and ended (``now()``): inside a ``/v1`` request, the part that is Chat's own ask."""

    def __init__(self, assistant):
        self.calls: list[tuple[float, float | None, float]] = []
        self._ask = assistant.ask
        assistant.ask = self.ask  # the instance's attribute: what ui.api calls

    def ask(self, *args, **kwargs):
        started, first = now(), None
        for event in self._ask(*args, **kwargs):
            if first is None and isinstance(event, Token):
                first = now()
            yield event
        self.calls.append((started, first, now()))


def around_ask(run: Run, call: tuple[float, float | None, float]) -> tuple[float, float]:
    """What a ``/v1`` request added around its own ask, in ms: to the first token and to the end."""
    started, first, end = call
    inner_ttft = (first if first is not None else end) - started
    return (run.ttft - inner_ttft) * 1000, (run.total - (end - started)) * 1000


def now() -> float:
    """CLOCK_MONOTONIC: one clock for every process of the machine (the ``/v1`` client runs in another)."""
    return time.clock_gettime(time.CLOCK_MONOTONIC)


def ask_in_process(services, question: str, model: str) -> Run:
    started = now()
    first, pieces, abstained = None, [], False
    for event in services.assistant.ask(question, (), AskOptions(kb=KB, model=model)):
        if isinstance(event, Token):
            first = first or now()
            pieces.append(event.text)
        elif isinstance(event, Done):
            abstained = event.answer.abstained
    end = now()
    return Run(first - started, end - started, "".join(pieces), len(pieces), abstained, started)


def ask_v1(client, question: str) -> Run:
    started = now()
    first, pieces, abstained = None, [], False
    stream = client.chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": question}], stream=True, extra_body={"kb": KB}
    )
    for chunk in stream:
        choice = chunk.choices[0] if chunk.choices else None
        if choice is None:
            continue
        if choice.delta.content:
            first = first or now()
            pieces.append(choice.delta.content)
        if choice.finish_reason:
            abstained = bool((choice.delta.model_extra or {}).get("abstained"))
    end = now()
    return Run(first - started, end - started, "".join(pieces), len(pieces), abstained, started)


class ClientProcess:
    """The ``openai`` client in a child process (``python -m bench.api_answers URL``): each question
    goes in as a JSON line, each answer's ``Run``, timed in the child, comes back as one."""

    def __init__(self, base_url: str):
        command = [sys.executable, "-m", "bench.api_answers", base_url]
        self.process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=ROOT)

    def ask(self, question: str) -> Run:
        assert self.process.stdin and self.process.stdout
        self.process.stdin.write(json.dumps(question) + "\n")
        self.process.stdin.flush()
        line = self.process.stdout.readline()
        if not line:
            raise RuntimeError(f"the client process ended (exit code {self.process.wait()})")
        return Run(**json.loads(line))

    def close(self) -> None:
        if self.process.stdin:
            self.process.stdin.close()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()


def serve_client(base_url: str) -> int:
    """The child's side of ``ClientProcess``: a question per stdin line, a ``Run`` per stdout line."""
    client = openai_client(base_url)
    for line in sys.stdin:
        print(json.dumps(asdict(ask_v1(client, json.loads(line)))), flush=True)
    return 0


def in_thread(fn, *args):
    """``fn(*args)`` in a new thread, as ``/v1`` answers (``ui.api.in_thread``: one new thread per answer).

    Not in the main thread: there llama.cpp's prompt evaluation took 2.5 times as long on two busy
    cores (22-26 s against 9-10 s for the same prompt, both measured in one process; libgomp's idle
    workers of a long-lived thread spin), a handicap that ``/v1``'s answers do not have.
    """
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(fn, *args).result()


if __name__ == "__main__":
    raise SystemExit(serve_client(sys.argv[1]))
