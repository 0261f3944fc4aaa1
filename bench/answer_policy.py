"""Choose the answer policy's thresholds on the dev half: the relevance gate and the citation check.

Answers one half of the shipped eval set with one bundled model and one system prompt (cached by
``bench/answer_runs.py``, so a second run only re-scores), then prints the answer metrics of each
(gate threshold, support threshold) pair: keyword accuracy, citation support, abstention precision
and recall, and how often the model's own reply was kept rather than replaced by a quoted passage;
for each ``second_look_relevance`` too (``--second-looks``: asking once more after a refusal).

    .venv/bin/python bench/answer_policy.py --model qwen2.5-coder-1.5b-instruct --half dev
    .venv/bin/python bench/answer_policy.py --model qwen2.5-coder-1.5b-instruct --half dev --prompt my-prompt.txt
    .venv/bin/python bench/answer_policy.py --half dev --source-tokens 100 --gates 0.5 --supports 0.5

Needs the knowledge base bench/chat.py builds (bench/.cache/chat-home); ``--corpus postgres`` or
``--corpus debian-policy`` answers that corpus's questions over the knowledge base bench/retrieval.py
builds for today's chunking (run it first), with the model assembled under chat-home. Choose on
``dev``, report ``test`` (bench/questions.py holds the split).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from assistant.evaluation import load_qa  # noqa: E402
from bench.answer_runs import collect, score, timings  # noqa: E402
from bench.questions import HALVES, half  # noqa: E402
from store.settings import Settings  # noqa: E402
from ui.services import Services  # noqa: E402

QUESTIONS = ROOT / "bench" / "data" / "python_docs_questions.jsonl"
HOME = ROOT / "bench" / ".cache" / "chat-home"
KB = "python-docs"


def corpus_home(name: str) -> tuple[Path, str, Path]:
    """(home, knowledge base, question file) of a corpus: chat-home for python, else bench/retrieval.py's."""
    if name == "python":
        return HOME, KB, QUESTIONS
    from bench.corpus import DEFAULT_CACHE
    from bench.corpus import QUESTIONS as CORPUS_QUESTIONS
    from bench.retrieval import CONFIGS

    home = DEFAULT_CACHE / f"retrieval-{name}-{CONFIGS['current'].kb_key}"
    if not (home / ".complete").is_file():
        raise SystemExit(f"no knowledge base at {home}: run bench/retrieval.py --corpus {name} first")
    return home, "bench", CORPUS_QUESTIONS[name]


def floats(text: str) -> list[float]:
    return [float(x) for x in text.split(",") if x.strip()]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="default", help="a bundled model key (default: Chat's default)")
    parser.add_argument("--corpus", choices=("python", "postgres", "debian-policy"), default="python")
    parser.add_argument("--half", choices=HALVES, default="dev")
    parser.add_argument("--prompt", help="a file holding the system prompt to try (default: Chat's)")
    parser.add_argument("--style", choices=("grounded", "compact"), help="a prompt style (default: the model's)")
    parser.add_argument(
        "--source-tokens", type=int, help="cut each passage to this many tokens (Settings.source_tokens; 0: whole)"
    )
    parser.add_argument("--gates", default="0.40,0.45,0.50,0.55,0.60", help="relevance thresholds to score")
    parser.add_argument("--supports", default="0.35,0.40,0.45,0.50,0.55", help="support thresholds to score")
    parser.add_argument(
        "--second-looks", default="0,0.55", help="second_look_relevance values to score (0: no second look)"
    )
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)

    home, kb, questions = corpus_home(args.corpus)
    items = half(load_qa(questions), args.half)
    system_prompt = Path(args.prompt).read_text().strip() if args.prompt else None  # None: Chat's for the model
    settings = Settings.load(home=home, env={})
    model = args.model
    if args.corpus != "python":  # the model file chat-home assembled (one 1 GB copy is enough)
        from store import model_catalogue

        bundled = model_catalogue.resolve(None if model == "default" else model, model_catalogue.CHAT, HOME)
        if bundled is not None:
            model = str(model_catalogue.model_path(bundled, HOME))
    if args.source_tokens is not None:
        settings = settings.replace(source_tokens=args.source_tokens)
    services = Services(settings)
    try:
        records = collect(
            services,
            model,
            items,
            kb=kb,
            system_prompt=system_prompt,
            style=args.style,
            log=lambda m: print(m, file=sys.stderr, flush=True),
        )
        rows = [
            {"gate": g, "support": s, "second_look": look, **score(records, items, services.embedder, g, s, look)}
            for g in floats(args.gates)
            for s in floats(args.supports)
            for look in floats(args.second_looks)
        ]
        result = {
            "model": records[0]["model"],
            "corpus": args.corpus,
            "half": args.half,
            "questions": len(items),
            "timings": timings(records),
        }
        result["rows"] = rows
    finally:
        services.close()
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    t = result["timings"]
    print(
        f"{result['model']} on the {args.corpus} {args.half} half ({len(items)} questions): "
        f"first token {t['ttft_s']} s median "
        f"({t['prompt_tokens']} prompt tokens), {t['tokens_per_s']} tokens/s, {t['answer_tokens']} tokens an answer"
    )
    columns = ("keyword_accuracy", "citation_support", "abstention_precision", "abstention_recall", "own_answers")
    print(f"{'gate':>5} {'support':>7} {'second':>6}  " + "  ".join(f"{c:>20}" for c in columns))
    for row in rows:
        values = ["-" if row[c] is None else f"{row[c]:.3f}" for c in columns]
        look = f"{row['second_look']:>6.2f}"
        print(f"{row['gate']:>5.2f} {row['support']:>7.2f} {look}  " + "  ".join(f"{v:>20}" for v in values))
    return 0


if __name__ == "__main__":
    sys.exit(main())
