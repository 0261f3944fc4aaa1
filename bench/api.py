"""API benchmark (issue 14): ``/v1`` and the remote backend against in-process ``ask``, then 8 clients at once.

Prints, in one run on the same questions (the first ``--questions`` of
bench/data/python_docs_questions.jsonl, over a temporary knowledge base holding only the Python
manual pages they come from, bench/corpus.py):

1. time to first token (TTFT) and total time of each answer, three ways:
   - ``in-process``: ``services.assistant.ask``, Chat's own path;
   - ``/v1``: the app's routes (``ui.api.routes``, the same factory ``ui.web.launch`` mounts) served by
     uvicorn on a free loopback port with the same services behind them, asked by the real ``openai``
     client, streaming; the overhead goal is <= 50 ms, measured inside each request too: what the
     client saw minus that request's own ask, timed in the server on the same clock (``AskTimer``
     in bench/api_answers.py), free of the runtime's noise between two answers;
   - ``remote``: ``remote:SmolLM2-135M-Instruct``, generation on llama-cpp-python's server
     (``python -m llama_cpp.server``, a child process on loopback, the same GGUF), retrieval, prompt and
     citation check in this process; the overhead goal is <= 100 ms on loopback.
   Overhead: the median over questions of the paired difference (same question, path minus
   in-process), with the middle half of those differences (25th to 75th percentile) as the noise
   it sits in. It is only meaningful when the paths gave the same greedy answer (same tokens); the
   table says when they did not. ``--repeat N`` asks every question N times per path, in rounds
   (in-process, ``/v1``, remote, then again), and keeps each path's fastest time per question:
   noise from other processes only ever adds time, so the minimum is the cleanest estimate of
   what a path itself costs (``timeit``'s rule).
2. requests served concurrently: 8 ``openai`` clients at once on ``/v1`` (2 streaming, 6 not), each
   request's status and time, and the errors (goal 0).

Fairness: the bundled SmolLM2-135M, greedy, ``--max-tokens`` (64). llama.cpp generates on one thread
in both runtimes (``chat_threads = 1`` here, ``--n_threads 1`` for the server; prompt evaluation uses
every core in both), and the paths answer in turn, never at once, so they do not fight over the two
cores. Every in-process answer runs in a new thread of its own, as ``/v1``'s do (see
``in_thread``), and OpenMP workers wait passively in both processes, as in the app (app.py sets
``OMP_WAIT_POLICY=PASSIVE``; the server gets it through ``bench.api_servers.SERVER_ENV``: it
answers from reused threads, where spinning workers made its prompt evaluation 2.3 times as slow
on two busy cores). Before each timed answer the runtime that answers is left with another prompt
evaluated (only the system prompt reusable, as between two questions of a chat), so no path finds
the previous path's prompt in its cache. The ``/v1`` client runs in a process of its own
(``ClientProcess``), as the expert's other tools do, and times each answer there; ``--client
thread`` runs it in this process instead, where its work per streamed chunk takes the GIL from the
server's threads (an upper bound). The load average (``os.getloadavg``) is printed at the start
and the end: figures taken beside other jobs are not final.

Run: ``.venv/bin/python bench/api.py [--questions N] [--max-tokens N] [--repeat N]
[--client process|thread] [--json]`` (``--questions 3`` took about 7 minutes on two cores beside
other jobs, load average near 4; the manual is fetched once by bench/corpus.py).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
from dataclasses import asdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # as app.py sets it for the app

from bench.api_answers import KB, AskTimer, ClientProcess, Run, around_ask, ask_in_process, ask_v1, in_thread  # noqa: E402
from bench.api_servers import (  # noqa: E402
    MODEL,
    REMOTE,
    api_server,
    concurrent_requests,
    openai_client,
    primer,
    remote_server,
)
from bench.corpus import python_docs  # noqa: E402
from store.settings import Settings  # noqa: E402
from ui.services import Services  # noqa: E402

QUESTIONS = ROOT / "bench" / "data" / "python_docs_questions.jsonl"
PATHS = ("in-process", "/v1", "remote")
GOALS_MS = {"/v1": 50, "remote": 100}


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def measure(
    services: Services,
    ask_through_v1,
    prime_local,
    prime_remote,
    questions: list[str],
    repeat: int = 1,
    timer: AskTimer | None = None,
) -> tuple[list[dict[str, Run]], list[tuple[float, float]]]:
    """Each question answered by every path in turn, ``repeat`` rounds; per path its fastest run
    (``ask_through_v1(question) -> Run``: the ``openai`` client's streamed answer), and what each
    ``/v1`` request added around its own ask (``around_ask``; ``timer`` wraps the services' ask)."""
    results, around = [], []
    for i, question in enumerate(questions, start=1):
        rounds: dict[str, list[Run]] = {path: [] for path in PATHS}
        for _ in range(repeat):
            in_thread(prime_local)
            rounds["in-process"].append(in_thread(ask_in_process, services, question, MODEL))
            in_thread(prime_local)
            mark = len(timer.calls) if timer else 0
            rounds["/v1"].append(in_thread(ask_through_v1, question))
            if timer and len(timer.calls) == mark + 1:
                around.append(around_ask(rounds["/v1"][-1], timer.calls[mark]))
            in_thread(prime_remote)
            rounds["remote"].append(in_thread(ask_in_process, services, question, REMOTE))
        runs = {path: fastest(r) for path, r in rounds.items()}
        results.append(runs)
        log(
            f"  question {i}/{len(questions)}: "
            + ", ".join(f"{p} {'/'.join(f'{x.total:.2f}' for x in r)} s" for p, r in rounds.items())
        )
    return results, around


def fastest(runs: list[Run]) -> Run:
    """The first run's answer with the least time to first token and total time of all the runs (an
    answer that changed between rounds would show as a different text: greedy decoding should not)."""
    texts = {r.text for r in runs}
    return Run(
        min(r.ttft for r in runs),
        min(r.total for r in runs),
        runs[0].text if len(texts) == 1 else "\n---\n".join(sorted(texts)),
        runs[0].tokens,
        runs[0].abstained,
    )


def middle_half(values: list[float]) -> tuple[float, float]:
    """The 25th and 75th percentiles (the single value twice when there is one)."""
    if len(values) < 2:
        return (values[0], values[0]) if values else (0.0, 0.0)
    q = statistics.quantiles(values, n=4, method="inclusive")
    return q[0], q[2]


def summary(results: list[dict[str, Run]], around: list[tuple[float, float]] = ()) -> dict:
    med = statistics.median
    figures: dict = {"paths": {}, "overhead_ms": {}, "same_answer": {}}
    if around:
        ttft, total = [a[0] for a in around], [a[1] for a in around]
        figures["v1_around_ask_ms"] = {
            "requests": len(around),
            "ttft": round(med(ttft), 1),
            "total": round(med(total), 1),
            "ttft_middle_half": [round(x, 1) for x in middle_half(ttft)],
            "total_middle_half": [round(x, 1) for x in middle_half(total)],
            "goal": GOALS_MS["/v1"],
        }
    for path in PATHS:
        runs = [r[path] for r in results]
        figures["paths"][path] = {
            "ttft_ms": round(med(r.ttft for r in runs) * 1000, 1),
            "total_ms": round(med(r.total for r in runs) * 1000, 1),
            "tokens": med(r.tokens for r in runs),
        }
    base = [r["in-process"] for r in results]
    for path in PATHS[1:]:
        runs = [r[path] for r in results]
        ttft = [(p.ttft - b.ttft) * 1000 for p, b in zip(runs, base)]
        total = [(p.total - b.total) * 1000 for p, b in zip(runs, base)]
        figures["overhead_ms"][path] = {
            "ttft": round(med(ttft), 1),
            "total": round(med(total), 1),
            "ttft_middle_half": [round(x, 1) for x in middle_half(ttft)],
            "total_middle_half": [round(x, 1) for x in middle_half(total)],
            "goal": GOALS_MS[path],
        }
        figures["same_answer"][path] = [p.text == b.text for p, b in zip(runs, base)]
    figures["abstained"] = [r["in-process"].abstained for r in results]
    return figures


def render(
    figures: dict, questions: list[str], threads: int, load: tuple, calls: list[dict], repeat: int = 1, where="process"
) -> str:
    rounds = f", fastest of {repeat} rounds per path and question" if repeat > 1 else ""
    lines = [
        f"{len(questions)} questions{rounds}, {MODEL}, greedy, "
        f"llama.cpp on {threads} generation thread(s) in every path; the /v1 client in a {where} of its own",
        f"load average (1, 5, 15 min): start {load[0]}, end {load[1]}",
        "",
        f"{'path':<12}{'TTFT ms':>10}{'total ms':>10}{'tokens':>8}{'overhead TTFT':>15}{'overhead total':>16}  goal",
    ]
    for path in PATHS:
        p = figures["paths"][path]
        over = figures["overhead_ms"].get(path)
        extra = f"{over['ttft']:>15.1f}{over['total']:>16.1f}  <= {over['goal']} ms" if over else f"{'-':>15}{'-':>16}"
        lines.append(f"{path:<12}{p['ttft_ms']:>10.1f}{p['total_ms']:>10.1f}{p['tokens']:>8}{extra}")
    for path, over in figures["overhead_ms"].items():
        (t0, t1), (s0, s1) = over["ttft_middle_half"], over["total_middle_half"]
        lines.append(
            f"{path} minus in-process, middle half of the per-question differences: "
            f"TTFT {t0:+.0f} to {t1:+.0f} ms, total {s0:+.0f} to {s1:+.0f} ms"
        )
    if "v1_around_ask_ms" in figures:
        a = figures["v1_around_ask_ms"]
        (t0, t1), (s0, s1) = a["ttft_middle_half"], a["total_middle_half"]
        lines.append(
            f"/v1 around its own ask (the same requests, server-side timestamps on one clock, {a['requests']} "
            f"requests): TTFT {a['ttft']:+.1f} ms ({t0:+.0f} to {t1:+.0f}), total {a['total']:+.1f} ms "
            f"({s0:+.0f} to {s1:+.0f})  goal <= {a['goal']} ms"
        )
    for path, same in figures["same_answer"].items():
        differ = [i + 1 for i, ok in enumerate(same) if not ok]
        verdict = "same answer text on every question" if not differ else f"answers differ on question(s) {differ}"
        lines.append(f"{path} vs in-process: {verdict}")
    if any(figures["abstained"]):
        lines.append(f"abstained (in-process): questions {[i + 1 for i, a in enumerate(figures['abstained']) if a]}")
    errors = [c for c in calls if c["status"] != 200]
    lines += ["", f"{len(calls)} clients at once on /v1 ({sum(c['stream'] for c in calls)} streaming):"]
    for c in calls:
        kind = "stream" if c["stream"] else "whole"
        lines.append(f"  client {c['client']} {kind:<7} status {c['status']}  {c['seconds']:6.2f} s  {c['detail']}")
    lines.append(f"errors: {len(errors)} (goal 0)")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--questions", type=int, default=6, help="questions answered by each path (default 6)")
    parser.add_argument("--max-tokens", type=int, default=64, help="the longest answer, in tokens (default 64)")
    parser.add_argument("--repeat", type=int, default=1, help="rounds per question; the fastest counts (default 1)")
    parser.add_argument(
        "--client",
        choices=("process", "thread"),
        default="process",
        help="where the /v1 client runs: a child process (default), or a thread of this one",
    )
    parser.add_argument("--json", action="store_true", help="print the figures as one JSON object")
    args = parser.parse_args(argv)
    if args.repeat < 1 or args.questions < 1:
        parser.error("--questions and --repeat must be at least 1")

    load_start = tuple(round(x, 2) for x in os.getloadavg())
    items = [json.loads(line) for line in QUESTIONS.read_text(encoding="utf-8").splitlines() if line.strip()]
    items = items[: args.questions]
    questions = [item["question"] for item in items]
    html_root, _ = python_docs()
    pages = sorted({html_root / item["page"] for item in items})
    with tempfile.TemporaryDirectory(prefix="bench-api-") as tmp:
        home = Path(tmp) / "home"
        with remote_server(home / "llama-server.log") as remote_url:
            settings = Settings.load(home=home, env={}).replace(
                chat_model=MODEL, chat_threads=1, max_tokens=args.max_tokens, remote_url=remote_url, remote_model=MODEL
            )
            services = Services(settings)
            try:
                log(f"indexing {len(pages)} manual pages")
                list(services.kb(KB).add(pages))
                with api_server(services) as base_url:
                    if args.client == "process":
                        child = ClientProcess(base_url)
                        ask_through_v1 = child.ask
                    else:
                        child, thread_client = None, openai_client(base_url)
                        ask_through_v1 = lambda question: ask_v1(thread_client, question)
                    try:
                        log("warming up every path (model load, embedder, connections)")
                        in_thread(ask_in_process, services, questions[0], MODEL)
                        in_thread(ask_through_v1, questions[0])
                        in_thread(ask_in_process, services, questions[0], REMOTE)
                        prime_local, prime_remote = primer(services, remote_url)
                        log(f"timing {len(questions)} questions")
                        timer = AskTimer(services.assistant)
                        results, around = measure(
                            services, ask_through_v1, prime_local, prime_remote, questions, args.repeat, timer
                        )
                    finally:
                        if child:
                            child.close()
                    log("8 clients at once")
                    calls = concurrent_requests(base_url, KB, questions)
            finally:
                services.close()
    figures = summary(results, around)
    load = (load_start, tuple(round(x, 2) for x in os.getloadavg()))
    if args.json:
        runs = [{path: asdict(run) for path, run in r.items()} for r in results]
        extra = {"load": load, "questions": questions, "repeat": args.repeat, "client": args.client, "runs": runs}
        extra["concurrent"] = calls
        print(json.dumps({**figures, **extra}))
    else:
        print(render(figures, questions, settings.chat_threads, load, calls, args.repeat, args.client))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
