"""Chat benchmark: the assistant against llama-cpp-python called directly, plus ``eval rag``.

Prints, on the Python 3.11 manual (fetched by bench/corpus.py) and the shipped eval set
(bench/data/python_docs_questions.jsonl):

1. time-to-first-token overhead of retrieval + prompting: the assistant's TTFT minus llama.cpp's
   TTFT on the very same messages, both starting from the same model state (the system prompt
   already evaluated, the previous question's prompt not reusable) — goal ≤ 150 ms;
2. generation tokens/s through the assistant ÷ llama.cpp directly, same prompt, greedy — goal ≥ 0.95;
3. the absolute TTFT of a typical five-source answer, cold (nothing cached) and warm (the fixed
   system prompt's state reused, as between questions in a chat);
4. the ``eval rag`` table per retrieval mode (recall@5 of the expected page: hybrid should beat
   keyword-only and vector-only);
5. chat under load: time to first token and generation tokens/s idle and while an ingestion runs in
   this process (generated text, the real pipeline in a thread), with llama.cpp's threads fixed at
   one per core (the old behaviour, the baseline) and chosen per answer (``chat_threads = 0``): the
   ratio ingesting ÷ idle, goal >= 0.5. ``--load-only`` runs this step alone (no corpus needed);
6. the bundled models side by side (``--models``, ``--models-only``): each answers the test half of the
   eval set (bench/questions.py) over the same retrieval, scored with Chat's own policy and settings
   (bench/answer_runs.py): keyword accuracy, citation support, abstention precision and recall, how
   often the model's own reply was kept, time to first token of a five-source answer and generation
   tokens/s idle, then step 5 for each model (generation while an ingestion runs ÷ idle).

The knowledge base is built once under bench/.cache/chat-home and reused by later runs.
Run: ``.venv/bin/python bench/chat.py [--questions N] [--eval-limit N] [--retrieval-only] [--json]``
``[--skip-load] [--load-only] [--load-questions N] [--load-model NAME_OR_GGUF ...]``
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # as app.py sets it for the app

from assistant import prompting  # noqa: E402
from assistant.assistant import AskOptions  # noqa: E402
from assistant.evaluation import evaluate_rag, format_report, load_qa  # noqa: E402
from assistant.events import Done, Token  # noqa: E402
from bench.answer_runs import collect, score_as_chat, timings  # noqa: E402
from bench.chat_load import render_load, under_load  # noqa: E402
from bench.corpus import python_docs  # noqa: E402
from bench.questions import HALVES, half  # noqa: E402
from store import model_catalogue  # noqa: E402
from store.settings import Settings  # noqa: E402
from ui.services import Services  # noqa: E402

QUESTIONS = ROOT / "bench" / "data" / "python_docs_questions.jsonl"
CACHE = ROOT / "bench" / ".cache"
KB = "python-docs"
MAX_TOKENS = 64
BUNDLED_MODELS = tuple(m.key for m in model_catalogue.CATALOGUE)  # the default chat model first


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def build_kb(services: Services, root: Path) -> None:
    kb = services.kb(KB)
    started = time.monotonic()
    for event in kb.add([root]):
        if event.status == "done":
            s = event.summary
            log(
                f"knowledge base: {len(s.added)} added, {len(s.unchanged)} unchanged, {len(s.failed)} failed "
                f"({time.monotonic() - started:.0f} s)"
            )


def messages_for(services: Services, question: str) -> list[dict]:
    """Exactly the messages the assistant sends for ``question``."""
    assistant = services.assistant
    loaded = assistant.runtime.loaded
    retrieval = assistant.retrieve(services.kb(KB), question)
    budget = prompting.Budget(loaded.context, min(services.settings.max_tokens, loaded.context // 4))
    offered = assistant.offered_sources(question, retrieval, assistant.runtime.count_tokens)
    sources, history, _ = prompting.fit(question, offered, [], budget, assistant.runtime.count_tokens)
    return prompting.build_messages(question, sources, history)


def direct_stream(llama, messages: list[dict]) -> tuple[float, float, int]:
    """(TTFT s, generation tokens/s, tokens) calling llama-cpp-python itself."""
    started = time.perf_counter()
    first = last = None
    count = 0
    for chunk in llama.create_chat_completion(
        messages=messages, stream=True, max_tokens=MAX_TOKENS, temperature=0.0, top_k=1, seed=0, repeat_penalty=1.1
    ):
        if chunk["choices"][0]["delta"].get("content"):
            now = time.perf_counter()
            first = first or now
            last = now
            count += 1
    return (first - started), (count - 1) / (last - first) if count > 1 else 0.0, count


def assistant_stream(services: Services, question: str) -> tuple[float, float, int]:
    started = time.perf_counter()
    first = last = None
    count = 0
    for event in services.assistant.ask(question, (), AskOptions(kb=KB)):
        if isinstance(event, Token):
            now = time.perf_counter()
            first = first or now
            last = now
            count += 1
        elif isinstance(event, Done):
            break
    return (first - started), (count - 1) / (last - first) if count > 1 else 0.0, count


def prime(llama, messages: list[dict]) -> None:
    """Leave the model with another question's prompt evaluated: only the system prompt is reusable."""
    llama.create_chat_completion(messages=messages, max_tokens=1, temperature=0.0)


def overhead(services: Services, questions: list[str]) -> dict:
    assistant = services.assistant
    llama = assistant.runtime._llama
    prepared = [messages_for(services, q) for q in questions]
    direct_ttft, direct_tps, via_ttft, via_tps = [], [], [], []
    filler = prepared[-1]
    for question, messages in zip(questions[:-1], prepared[:-1]):
        prime(llama, filler)
        t, tps, _ = direct_stream(llama, messages)
        direct_ttft.append(t)
        direct_tps.append(tps)
        prime(llama, filler)
        t, tps, _ = assistant_stream(services, question)
        via_ttft.append(t)
        via_tps.append(tps)
    med = statistics.median
    return {
        "questions": len(direct_ttft),
        "ttft_direct_ms": round(med(direct_ttft) * 1000, 1),
        "ttft_assistant_ms": round(med(via_ttft) * 1000, 1),
        "ttft_overhead_ms": round((med(via_ttft) - med(direct_ttft)) * 1000, 1),
        "tokens_per_s_direct": round(med(direct_tps), 1),
        "tokens_per_s_assistant": round(med(via_tps), 1),
        "tokens_per_s_ratio": round(med(via_tps) / med(direct_tps), 3) if med(direct_tps) else None,
    }


def cold_and_warm(services: Services, questions: list[str]) -> dict:
    llama = services.assistant.runtime._llama
    messages = [messages_for(services, q) for q in questions]
    cold, warm, prompt_tokens = [], [], []
    for i, m in enumerate(messages):
        llama.reset()  # nothing cached
        started = time.perf_counter()
        next(iter(llama.create_chat_completion(messages=m, stream=True, max_tokens=2, temperature=0.0)))
        cold.append(time.perf_counter() - started)
        prime(llama, messages[i - 1])  # the system prompt cached, as between two questions of a chat
        started = time.perf_counter()
        next(iter(llama.create_chat_completion(messages=m, stream=True, max_tokens=2, temperature=0.0)))
        warm.append(time.perf_counter() - started)
        prompt_tokens.append(sum(services.assistant.runtime.count_tokens(x["content"]) for x in m))
    sources = [m[-1]["content"].count('<source n="') for m in messages]
    return {
        "prompt_tokens_median": int(statistics.median(prompt_tokens)),
        "sources_median": statistics.median(sources),
        "system_prompt_tokens": services.assistant.runtime.count_tokens(prompting.SYSTEM_PROMPT),
        "ttft_cold_ms": round(statistics.median(cold) * 1000, 1),
        "ttft_warm_ms": round(statistics.median(warm) * 1000, 1),
    }


# -- 6. the bundled models side by side ------------------------------------------------------------

GOALS = {
    "keyword_accuracy": 0.60,
    "citation_support": 0.85,
    "abstention_precision": 0.90,
    "abstention_recall": 0.85,
}
TTFT_GOAL_S = 10.0


def compare_models(services: Services, models: list[str], which: str, load_questions: int, words: int) -> dict:
    """Each model on one half of the eval set (same retrieval, Chat's policy), then under load."""
    items = half(load_qa(QUESTIONS), which)
    settings = services.settings
    rows = []
    for key in models:
        log(f"models: {key} on the {which} half ({len(items)} questions) ...")
        load_before = os.getloadavg()[0]
        records = collect(services, key, items, kb=KB, log=log)
        load_after = os.getloadavg()[0]
        metrics = score_as_chat(records, items, services)
        rows.append(
            {
                "key": key,
                "model": records[0]["model"],
                **metrics,
                **timings(records),
                "load_average": [round(load_before, 2), round(load_after, 2)],
            }
        )
    services.assistant.runtime.unload()
    loads = under_load(models, load_questions, services.embedder, words)
    for row, load in zip(rows, loads):
        row["under_load"] = {"ratio_fixed": load["ratio_fixed"], "ratio_auto": load["ratio_auto"]}
        row["under_load_detail"] = load
    return {
        "half": which,
        "questions": len(items),
        "gate": settings.relevance_threshold,
        "support": settings.support_threshold,
        "rows": rows,
    }


def render_models(result: dict) -> str:
    lines = [
        f"bundled models on the {result['half']} half of the eval set ({result['questions']} questions, "
        f"hybrid k=5, gate {result['gate']:.2f}, support {result['support']:.2f})",
    ]
    columns = [
        ("keyword accuracy", "keyword_accuracy", ">= 0.60"),
        ("citation support", "citation_support", ">= 0.85"),
        ("abstention precision", "abstention_precision", ">= 0.90"),
        ("abstention recall", "abstention_recall", ">= 0.85"),
        ("own replies kept", "own_answers", ""),
        ("quoted instead", "extractive", ""),
        ("first token, 5 sources (s)", "ttft_s", "<= 10"),
        ("prompt tokens", "prompt_tokens", ""),
        ("generation tokens/s idle", "tokens_per_s", ""),
        ("ingesting / idle, per-answer threads", None, ">= 0.5"),
        ("ingesting / idle, threads fixed", None, ""),
        ("load average during answers", None, ""),
    ]
    rows = result["rows"]
    lines.append(f"{'':38}" + "".join(f"{r['model'][:28]:>30}" for r in rows) + "   goal (default)")
    for label, key, goal in columns:
        cells = []
        for r in rows:
            if label.startswith("ingesting / idle, per"):
                value = r["under_load"]["ratio_auto"]
            elif label.startswith("ingesting / idle, threads"):
                value = r["under_load"]["ratio_fixed"]
            elif label.startswith("load average"):
                value = "{} -> {}".format(*r["load_average"])
            else:
                value = r.get(key)
            cells.append(f"{'-' if value is None else (f'{value:.3f}' if isinstance(value, float) else value):>30}")
        lines.append(f"{label:38}" + "".join(cells) + f"   {goal}")
    lines += ["", render_load([r["under_load_detail"] for r in rows])]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--questions", type=int, default=12, help="questions for the timing steps")
    parser.add_argument("--eval-limit", type=int, default=None, help="first N eval questions only")
    parser.add_argument("--retrieval-only", action="store_true", help="eval rag without answering")
    parser.add_argument("--skip-eval", action="store_true")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--skip-load", action="store_true", help="skip chat under load")
    parser.add_argument("--load-only", action="store_true", help="only chat under load (no corpus needed)")
    parser.add_argument("--load-questions", type=int, default=3, help="answers per phase under load")
    parser.add_argument("--load-words", type=int, default=120, help="words per source under load (5 sources)")
    parser.add_argument(
        "--load-model",
        action="append",
        help="a GGUF path or a bundled model's key, repeatable (default: the bundled SmolLM2)",
    )
    parser.add_argument(
        "--models",
        default=",".join(BUNDLED_MODELS),
        help="bundled model keys for step 6, comma-separated (default: all three)",
    )
    parser.add_argument("--models-only", action="store_true", help="only step 6 (the knowledge base is built)")
    parser.add_argument("--skip-models", action="store_true", help="skip step 6")
    parser.add_argument("--half", choices=HALVES, default="test", help="eval questions for step 6")
    args = parser.parse_args(argv)
    load_models = args.load_model or ["bundled"]
    models = [m.strip() for m in args.models.split(",") if m.strip()]
    if args.load_only:
        rows = under_load(load_models, args.load_questions, words=args.load_words)
        print(json.dumps({"under_load": rows}, indent=2) if args.json else render_load(rows))
        return 0

    root, files = python_docs(CACHE)
    log(f"corpus: {len(files)} pages under {root}")
    services = Services(Settings.load(home=CACHE / "chat-home", env={}))
    build_kb(services, root)
    if args.models_only:
        result = compare_models(services, models, args.half, args.load_questions, args.load_words)
        services.close()
        print(json.dumps(result, indent=2) if args.json else render_models(result))
        return 0
    items = load_qa(QUESTIONS)
    answerable = [i.question for i in items if not i.unanswerable][: args.questions]
    services.assistant.use_model(None)
    result = {"model": services.assistant.runtime.loaded.name, "threads": services.assistant.runtime.threads}
    log("timing: assistant vs llama-cpp-python directly ...")
    result["overhead"] = overhead(services, answerable)
    result["first_token"] = cold_and_warm(services, answerable[:6])
    if not args.skip_eval:
        log("eval rag ...")
        subset = items[: args.eval_limit] if args.eval_limit else items
        result["eval_rag"] = evaluate_rag(services.assistant, subset, kb=KB, k=5, answer=not args.retrieval_only)
    if not args.skip_load:
        services.assistant.runtime.unload()
        result["under_load"] = under_load(load_models, args.load_questions, services.embedder, args.load_words)
    if not args.skip_models:
        result["models"] = compare_models(services, models, args.half, args.load_questions, args.load_words)
    services.close()
    print(json.dumps(result, indent=2) if args.json else render(result))
    return 0


def render(r: dict) -> str:
    o, f = r["overhead"], r["first_token"]
    lines = [
        f"chat bench: {r['model']}, {r['threads']} threads, {o['questions']} questions, {MAX_TOKENS} tokens each",
        f"  time to first token, llama.cpp direct      {o['ttft_direct_ms']:8.1f} ms",
        f"  time to first token, assistant             {o['ttft_assistant_ms']:8.1f} ms",
        f"  overhead of retrieval + prompting          {o['ttft_overhead_ms']:8.1f} ms   (goal <= 150 ms)",
        f"  generation tokens/s direct / assistant     {o['tokens_per_s_direct']:.1f} / "
        f"{o['tokens_per_s_assistant']:.1f}"
        f"   ratio {o['tokens_per_s_ratio']:.3f}   (goal >= 0.95)",
        f"  five-source answer: {f['prompt_tokens_median']} prompt tokens ({f['sources_median']} sources), "
        f"system prompt {f['system_prompt_tokens']} tokens",
        f"  time to first token cold / system prompt reused: {f['ttft_cold_ms']:.0f} ms / {f['ttft_warm_ms']:.0f} ms",
    ]
    if "eval_rag" in r:
        lines += ["", format_report(r["eval_rag"])]
        modes = r["eval_rag"]["modes"]
        if {"hybrid", "vector", "keyword"} <= set(modes):
            h, v, k = (modes[m]["recall@k"] for m in ("hybrid", "vector", "keyword"))
            lines.append(
                f"hybrid recall@5 {h:.3f} vs vector {v:.3f} and keyword {k:.3f}: "
                f"{'hybrid best' if h > max(v, k) else 'hybrid NOT best'}"
            )
    if "under_load" in r:
        lines += ["", render_load(r["under_load"])]
    if "models" in r:
        lines += ["", render_models(r["models"])]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
