"""Fact learning: does "Train adapter" with the default preset teach the bundled model new facts?

``bench/data/facts.jsonl`` holds 30 made-up facts about a fictional turbine (no base model can
know them), each with a reworded question that is never trained on and the keywords a correct
reply must contain. The bench trains with the defaults (preset ``standard``, method ``auto``,
seed 0), exports the default GGUF (q8_0), and asks base and tuned model every question through
llama.cpp's chat completion (greedy). A reply counts when it contains all expected keywords.
Every fact trains, as every row of an expert's file does (issue 16; runs before it held 3 of the
30 out, reported as ``held-out``, now empty); the reworded questions are also the run's evaluation
file (``train --eval``), so its own before/after and validation loss measure them.

    .venv/bin/python bench/facts.py                          # the default base (Qwen2.5-Coder-0.5B)
    .venv/bin/python bench/facts.py --base smollm2-135m      # any base "Train adapter" takes
    .venv/bin/python bench/facts.py --json                   # the summary as JSON too
    .venv/bin/python bench/facts.py --threads 1              # scoring on a busy machine (2 threads crawl)

The base scored is the one the run trained from (the same GGUF, dequantized for training).

Goal (issue 5): ≥ 95 % of trained questions and ≥ 80 % of reworded ones.

The facts are also split in two fixed halves, ``dev`` and ``test`` (sorted by the sha256 of the
question; the first 15 are dev), so that a setting chosen on the dev half's figures is checked on
facts it was not chosen on; both halves are printed and are in the JSON as ``halves``. Every
reply is kept in ``bench/out/facts/results-RUN_ID.json``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

FACTS = ROOT / "bench" / "data" / "facts.jsonl"
WORK = ROOT / "bench" / "out" / "facts"


def overrides(pairs: list[str]) -> dict:
    """``--set KEY=VALUE`` pairs as hyperparameter overrides (numbers parsed, text kept)."""
    out: dict = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep:
            raise SystemExit(f"--set wants KEY=VALUE, got {pair!r}")
        try:
            out[key.strip()] = int(value) if value.strip().lstrip("-").isdigit() else float(value)
        except ValueError:
            out[key.strip()] = value
    return out


def half_of(question: str) -> str:
    """``dev`` or ``test``: a fixed split of the facts, chosen before any result was seen."""
    ranked = sorted(hashlib.sha256(f["question"].encode()).hexdigest() for f in load_facts())
    return "dev" if hashlib.sha256(question.encode()).hexdigest() in ranked[: len(ranked) // 2] else "test"


def load_facts() -> list[dict]:
    return [json.loads(line) for line in FACTS.read_text(encoding="utf-8").splitlines() if line.strip()]


def score(gguf: str, items: list[dict], threads: int) -> list[dict]:
    """Ask each question (greedy, chat template from the GGUF); runs in its own process (see main)."""
    from llama_cpp import Llama

    from adapters.evaluation import all_keywords

    llm = Llama(model_path=gguf, n_ctx=1024, n_threads=threads, verbose=False)
    out = []
    for item in items:
        reply = llm.create_chat_completion(
            [{"role": "user", "content": item["question"]}], max_tokens=64, temperature=0.0
        )["choices"][0]["message"]["content"]
        out.append({**item, "reply": reply, "ok": all_keywords(reply, item["keywords"])})
    return out


def score_in_child(gguf: Path, items: list[dict], threads: int) -> list[dict]:
    """A fresh process: llama.cpp's threads crawl beside torch's in a process that trained or merged."""
    spec = WORK / "score-input.json"
    spec.write_text(json.dumps({"gguf": str(gguf), "items": items, "threads": threads}))
    result = subprocess.run(
        [sys.executable, __file__, "--score", str(spec)], capture_output=True, text=True, check=True
    )
    return json.loads(result.stdout.strip().splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1, help="llama.cpp threads for scoring")
    parser.add_argument("--base", help="a bundled model key or a GGUF (default: the training default)")
    parser.add_argument("--score", help=argparse.SUPPRESS)
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a hyperparameter of the preset (repeatable), e.g. --set learning_rate=2e-4",
    )
    args = parser.parse_args()
    if args.score:
        spec = json.loads(Path(args.score).read_text())
        print(json.dumps(score(spec["gguf"], spec["items"], spec["threads"])))
        return 0

    from adapters import catalogue, datasets, process, service
    from adapters.export import export
    from adapters.run_folder import runs_root
    from store.knowledge_base import KnowledgeBase
    from store.settings import Settings

    facts = load_facts()
    home = WORK / "home"
    shutil.rmtree(runs_root(home), ignore_errors=True)  # keep the dequantized base cache between runs
    shutil.rmtree(home / "models" / "exports", ignore_errors=True)
    if (home / "domainsmith.db").exists():
        (home / "domainsmith.db").unlink()
    home.mkdir(parents=True, exist_ok=True)
    settings = Settings.load(home=home)
    data = WORK / "facts-train.jsonl"
    data.write_text("".join(json.dumps({"question": f["question"], "answer": f["answer"]}) + "\n" for f in facts))

    reworded = WORK / "facts-reworded.jsonl"
    reworded.write_text("".join(json.dumps({"question": f["reworded"], "answer": f["answer"]}) + "\n" for f in facts))

    open_kb = lambda name: KnowledgeBase.open(settings, name, create=False)  # a Q&A file alone opens none
    request = service.TrainRequest(
        data=str(data), base=args.base, overrides=overrides(args.set), eval_data=str(reworded)
    )
    job, _data = service.prepare(settings, request, open_kb)
    load_before = os.getloadavg()[0]
    print(
        f"run {job.run_id} on {Path(job.base).name}: {job.n_train} trained facts, {job.n_val} reworded to evaluate; "
        f"preset {job.preset}, "
        f"{job.method} (lr {job.hyperparameters.learning_rate}, r {job.hyperparameters.lora_r}, "
        f"{job.hyperparameters.epochs} epochs); {job.method_reason}",
        flush=True,
    )
    started = time.perf_counter()
    train_start = train_end = None
    for event in process.train(settings, job):
        if event.kind == "start":
            train_start = time.perf_counter()
        elif event.kind == "eval" or (event.kind == "step" and event.step == event.total_steps):
            train_end = time.perf_counter()
            if event.kind == "eval":
                print(f"  epoch {int(event.epoch):>2}: val loss {event.val_loss:.3f}", flush=True)
        elif event.kind == "step" and event.step % 20 == 0:
            print(
                f"  step {event.step}/{event.total_steps}: loss {event.loss:.3f}, {event.tokens_per_s:.0f} tok/s",
                flush=True,
            )
        elif event.kind == "failed":
            print(f"training failed: {event.message}\n{event.log_tail}")
            return 1
    total_train = time.perf_counter() - started
    load_after = os.getloadavg()[0]
    training_s = (train_end or time.perf_counter()) - (train_start or started)

    t = time.perf_counter()
    record = export(settings, job.run_id)
    export_s = time.perf_counter() - t
    print(
        f"exported {record.name} ({record.quant}, {record.size_bytes / 2**20:.0f} MB) in {export_s:.0f} s; "
        f"greedy agreement with the merged model {record.metrics['smoke_test']['greedy_agreement']:.0%}"
    )

    run = catalogue.run_dir(settings, job.run_id)
    trained_q = {datasets.question_of(e) for e in datasets.read_examples(run.train)}
    trained = [f for f in facts if f["question"] in trained_q]
    held_out = [f for f in facts if f["question"] not in trained_q]
    halves = {f["question"]: half_of(f["question"]) for f in facts}

    def item(which: str, f: dict, key: str) -> dict:
        return {"set": which, "half": halves[f["question"]], "question": f[key], "keywords": f["keywords"]}

    items = (
        [item("trained", f, "question") for f in trained]
        + [item("reworded", f, "reworded") for f in trained]
        + [item("held-out", f, "question") for f in held_out]
    )
    results = {
        "base": score_in_child(Path(job.base), items, args.threads),
        "tuned": score_in_child(Path(record.file), items, args.threads),
    }

    (WORK / f"results-{job.run_id}.json").write_text(json.dumps(results, indent=1), encoding="utf-8")

    def count(model: str, which: str, half: str | None = None) -> tuple[int, int]:
        rows = [r for r in results[model] if r["set"] == which and half in (None, r["half"])]
        return sum(r["ok"] for r in rows), len(rows)

    print()
    print(f"{'questions':<22}{'base (as shipped)':>22}{'tuned (' + record.quant + ')':>18}")
    summary: dict = {
        "run_id": job.run_id,
        "model": record.name,
        "base": Path(job.base).name,
        "load_average": [round(load_before, 2), round(load_after, 2)],
        "training_s": round(training_s, 1),
        "train_command_s": round(total_train, 1),
        "export_s": round(export_s, 1),
    }
    for which in ("trained", "reworded", "held-out"):
        (bo, bn), (to, tn) = count("base", which), count("tuned", which)
        print(f"{which:<22}{f'{bo}/{bn}':>22}{f'{to}/{tn} ({to / max(tn, 1):.0%})':>18}")
        summary[which] = {"base": bo, "tuned": to, "total": tn}
    summary["halves"] = {}
    for half in ("dev", "test"):
        summary["halves"][half] = {}
        for which in ("trained", "reworded"):
            (bo, bn), (to, tn) = count("base", which, half), count("tuned", which, half)
            print(f"{which + ' (' + half + ')':<22}{f'{bo}/{bn}':>22}{f'{to}/{tn} ({to / max(tn, 1):.0%})':>18}")
            summary["halves"][half][which] = {"base": bo, "tuned": to, "total": tn}
    print(
        f"\ntraining time {training_s:.0f} s (train command, with model loading and evaluation, "
        f"{total_train:.0f} s); export {export_s:.0f} s; load average {load_before:.2f} -> {load_after:.2f} "
        "(1 min, before and after training)"
    )
    misses = [r for r in results["tuned"] if not r["ok"] and r["set"] != "held-out"]
    for r in misses:
        print(f"  miss [{r['set']}] {r['question']} -> {r['reply'][:100]!r} (wanted {r['keywords']})")
    ok = (
        summary["trained"]["tuned"] >= 0.95 * summary["trained"]["total"]
        and summary["reworded"]["tuned"] >= 0.80 * summary["reworded"]["total"]
    )
    print(f"goal (>= 95 % trained, >= 80 % reworded): {'met' if ok else 'NOT met'}")
    summary["goal_met"] = ok
    if args.json:
        print(json.dumps(summary))
    return 0 if ok else 2


if __name__ == "__main__":
    sys.exit(main())
