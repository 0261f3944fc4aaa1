"""The documents-only loop (issue 16): generate training data from a real manual, train, export, compare.

On a public corpus fetched by bench/corpus.py (default: the Debian Policy Manual), in a home of its
own under ``bench/out/loop/CORPUS/``:

1. the knowledge base: every page of the corpus (kept between runs);
2. generation: ``python app.py data generate --kb loop --limit N --accept`` in a child process,
   exactly what a user runs (Chat's default model; the filters' report is kept). The rows file
   survives an interrupted run and the next run resumes it;
3. training: the default training base with the default preset (or ``--preset`` / ``--set``) on the
   accepted rows, grounded in the knowledge base (``train --data ROWS --grounded loop``), then the
   default export (merge, GGUF, smoke test, registry);
4. evaluation with retrieval on, on the corpus's own question file (written by reading the pages:
   never generated, never trained on, so held out): the training base (as a chat model, the same
   GGUF the run was trained from) vs the exported model, each through
   Chat's steps and policy (bench/answer_runs.py: retrieval, the prompt, greedy reply, the relevance
   gate and the citation check): abstention precision, recall and F1, citation support, keyword
   accuracy; the model's own refusals (its reply is the abstention text) are counted apart.

Goals (issue 16): abstention F1 +15 points or more over the base, citation support +10 points or
more, keyword accuracy not lower. Generation and training times are printed with the load average.
This takes hours on two cores: run it in the background, e.g.

    nohup nice -n 5 .venv/bin/python bench/loop.py > bench/out/loop.log 2>&1 &
    .venv/bin/python bench/loop.py --chunks 8 --preset quick --questions 6   # a quick end-to-end check

Each finished stage is recorded in ``state.json`` beside the home and skipped by the next run
(``--fresh`` starts over; ``--redo STAGE`` runs a stage again, with the stages that use its
result, e.g. ``--redo training`` after a change to training, keeping the generated rows and the
base's evaluation); ``--json`` prints the summary as one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # as app.py sets it for the app
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

from bench.corpus import CORPORA, QUESTIONS, corpus  # noqa: E402

KB = "loop"
WORK = ROOT / "bench" / "out" / "loop"
STAGES = ("kb", "generation", "training", "base", "adapted")
# What a stage's result feeds: redoing a stage (``--redo``) redoes these too ("base" evaluates the
# training base, which no stage of this loop changes).
REDO = {
    "kb": STAGES,
    "generation": ("generation", "training", "adapted"),
    "training": ("training", "adapted"),
    "base": ("base",),
    "adapted": ("adapted",),
}
GOALS = {"abstention_f1": 0.15, "citation_support": 0.10, "keyword_accuracy": 0.0}


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def load() -> float:
    return round(os.getloadavg()[0], 2)


class State:
    """The finished stages of this corpus's loop, kept in ``state.json`` (resumable across runs)."""

    def __init__(self, path: Path, fresh: bool):
        self.path = path
        self.data = {} if fresh or not path.exists() else json.loads(path.read_text(encoding="utf-8"))

    def __getitem__(self, key: str):
        return self.data.get(key)

    def forget(self, stages: list[str]) -> None:
        """Forget ``stages`` and what depends on them (``REDO``); the state before is kept as
        ``state-UNIXTIME.json`` beside it."""
        keys = {k for stage in stages for k in REDO[stage]}
        if "training" in keys:
            keys.add("training_run")  # a new run, not a resumed one
        if not keys & set(self.data):
            return
        shutil.copy(self.path, self.path.with_name(f"state-{int(time.time())}.json"))
        self.data = {k: v for k, v in self.data.items() if k not in keys}
        self._save()
        log(f"redoing: {', '.join(s for s in STAGES if s in keys)}")

    def record(self, key: str, value) -> None:
        self.data[key] = value
        self._save()

    def _save(self) -> None:
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.data, indent=1), encoding="utf-8")
        os.replace(tmp, self.path)


def build_kb(services, root: Path) -> dict:
    started, before = time.monotonic(), load()
    for event in services.kb(KB).add([root]):
        if event.status == "done":
            s = event.summary
            log(f"knowledge base: {len(s.added)} added, {len(s.unchanged)} unchanged, {len(s.failed)} failed")
    return {"seconds": round(time.monotonic() - started, 1), "load": [before, load()], **services.kb(KB).stats()}


def generate(home: Path, rows: Path, args: argparse.Namespace) -> dict:
    """``data generate`` as a user runs it, in a child process; its JSON report (it resumes ``rows``)."""
    command = [sys.executable, str(ROOT / "app.py"), "--home", str(home), "data", "generate", "--kb", KB]
    command += ["--limit", str(args.chunks), "--per-chunk", str(args.per_chunk), "--accept", "--out", str(rows)]
    command += ["--json"] + (["--model", args.generator] if args.generator else [])
    before = load()
    log(f"generating from {args.chunks} passages: {' '.join(command[1:])}")
    done = subprocess.run(command, stdout=subprocess.PIPE, text=True, cwd=ROOT)
    if done.returncode != 0:
        raise SystemExit(f"data generate failed with exit code {done.returncode}")
    return {**json.loads(done.stdout), "load": [before, load()]}


def train_and_export(settings, rows: Path, args: argparse.Namespace, state: State) -> dict:
    """Train on the rows (an interrupted run of an earlier invocation resumes from its checkpoint), export."""
    from adapters import catalogue, process, service
    from adapters.export import export
    from adapters.job import TrainJob
    from bench.facts import overrides
    from store.knowledge_base import KnowledgeBase

    def open_kb(name: str):
        return KnowledgeBase.open(settings, name, create=False)

    request = service.TrainRequest(
        data=str(rows),
        grounded=KB,
        base=args.base,
        preset=args.preset,
        overrides=overrides(args.set),
        abstain_share=args.abstain_share,
        shuffle_sources=args.shuffle_sources,
        train_unanswerable=args.train_unanswerable,
    )
    job, data = service.prepare(settings, request, open_kb)
    finished = resumed = False
    if state["training_run"] and catalogue.run_dir(settings, state["training_run"]).path.is_dir():
        shutil.rmtree(catalogue.run_dir(settings, job.run_id).path)  # just prepared: take up the earlier run
        earlier, resumed = catalogue.run_dir(settings, state["training_run"]), True
        finished = catalogue.run_status(earlier)["status"] == "done"  # trained, not exported yet
        job = TrainJob.load(earlier) if finished else catalogue.resume(settings, state["training_run"])
        log(f"run {job.run_id}: {'trained, exporting it' if finished else 'resuming it from its last checkpoint'}")
    state.record("training_run", job.run_id)
    hp = job.hyperparameters
    log(
        f"run {job.run_id} on {Path(job.base).name}: {job.n_train} examples ({data.grounding}); preset "
        f"{job.preset}, {job.method}, lr {hp.learning_rate}, r {hp.lora_r}, {hp.epochs} epochs"
    )
    before, started = load(), time.monotonic()
    for event in [] if finished else process.train(settings, job):
        if event.kind == "step" and event.step % 10 == 0:
            log(f"  step {event.step}/{event.total_steps}: loss {event.loss:.3f}, {event.tokens_per_s:.0f} tok/s")
        elif event.kind == "failed":
            raise SystemExit(f"training failed: {event.message}\n{event.log_tail}")
    training_s = time.monotonic() - started
    after = load()
    metrics = json.loads(catalogue.run_dir(settings, job.run_id).metrics.read_text(encoding="utf-8"))
    started = time.monotonic()
    record = export(settings, job.run_id)
    return {
        "run_id": job.run_id,
        "model": record.name,
        "base": Path(job.base).name,
        "base_path": str(job.base),
        "examples": job.n_train,
        "grounding": data.grounding,
        "preset": job.preset,
        "epochs": hp.epochs,
        "patience": hp.patience,
        "kept_epoch": metrics.get("kept_epoch"),  # None: the last epoch (no patience)
        "val_loss": [metrics.get("val_loss_before"), metrics.get("val_loss_after")],
        "learning_rate": hp.learning_rate,
        "abstain_share": job.source.get("abstain_share"),
        "shuffle_sources": args.shuffle_sources,
        "train_unanswerable": args.train_unanswerable,
        "training_s": round(training_s, 1),
        "resumed": resumed,  # training_s then counts this invocation's part only
        "export_s": round(time.monotonic() - started, 1),
        "load": [before, after],
    }


def evaluate(services, model: str | None, items: list, label: str) -> dict:
    """Chat's answers and policy on ``items`` (bench/answer_runs.py), with the model's own refusals."""
    from assistant.prompting import ABSTAIN_REPLY
    from bench.answer_runs import collect, score_as_chat, timings

    before = load()
    records = collect(services, model, items, kb=KB, cache=services.settings.home.parent / "answers", log=log)
    metrics = score_as_chat(records, items, services)
    p, r = metrics["abstention_precision"], metrics["abstention_recall"]
    metrics["abstention_f1"] = round(2 * p * r / (p + r), 4) if p and r else 0.0
    refusals = [rec["id"] for rec in records if ABSTAIN_REPLY.lower()[:40] in rec["raw"].lower()]
    unanswerable = {i.id for i in items if i.unanswerable}
    metrics["own_refusals"] = {
        "on_unanswerable": sum(i in unanswerable for i in refusals),
        "on_answerable": sum(i not in unanswerable for i in refusals),
    }
    log(f"{label}: {json.dumps(metrics)}")
    return {**metrics, **timings(records), "load": [before, load()]}


def render(summary: dict) -> str:
    g, t = summary["generation"], summary["training"]
    rejected = ", ".join(f"{k} {v}" for k, v in g["rejected"].items() if v) or "none"
    kept = f", epoch {t['kept_epoch']} kept (patience {t['patience']})" if t.get("kept_epoch") else ""
    lines = [
        f"corpus {summary['corpus']}: {summary['kb']['documents']} documents, {summary['kb']['chunks']} passages",
        f"generation ({g['model']}): {g['chunks_done']}/{g['chunks_total']} passages, {g['kept']} answerable + "
        f"{g['unanswerable']} unanswerable rows ({g.get('renamed', 0)} by renaming) from {g['candidates']} "
        f"candidates, {g['seconds_per_chunk']} s "
        f"per passage ({g['seconds']} s, load {g['load'][0]} -> {g['load'][1]})",
        f"rejected: {rejected}",
        f"training: {t['examples']} examples ({t['grounding']}), {t['base']}, preset {t['preset']} "
        f"({t['epochs']} epochs{kept}, lr {t['learning_rate']}): {t['training_s']} s, export {t['export_s']} s "
        f"(load {t['load'][0]} -> {t['load'][1]})",
        "",
        f"{summary['questions']} held-out questions ({summary['unanswerable']} unanswerable), retrieval on, "
        "Chat's policy:",
        f"{'measure':<24}{'base':>10}{'adapted':>10}{'change':>10}  goal",
    ]
    base, tuned = summary["base"], summary["adapted"]
    for key in ("abstention_f1", "abstention_precision", "abstention_recall", "citation_support", "keyword_accuracy"):
        b, a = base.get(key) or 0.0, tuned.get(key) or 0.0
        goal = f"+{GOALS[key] * 100:.0f} points" if GOALS.get(key) else ("not lower" if key in GOALS else "")
        met = "" if key not in GOALS else (" (met)" if a - b >= GOALS[key] - 1e-9 else " (not met)")
        lines.append(f"{key:<24}{b:>10.3f}{a:>10.3f}{a - b:>+10.3f}  {goal}{met}")
    for label, m in (("base", base), ("adapted", tuned)):
        own = m["own_refusals"]
        lines.append(
            f"{label}: the model itself refused {own['on_unanswerable']} unanswerable and {own['on_answerable']} "
            f"answerable questions; time to first token {m['ttft_s']} s (load {m['load'][0]} -> {m['load'][1]})"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", choices=sorted(CORPORA), default="debian-policy")
    parser.add_argument("--chunks", type=int, default=300, help="passages to generate from (a seeded sample)")
    parser.add_argument("--per-chunk", type=int, default=2, help="questions asked per passage (default 2)")
    parser.add_argument("--generator", help="the model that writes the rows (default: Chat's default model)")
    parser.add_argument("--base", help="training base (default: the product's default)")
    parser.add_argument("--preset", default=None, help="training preset (default: the product's default)")
    parser.add_argument("--abstain-share", type=float, help="train --abstain-share (default: the product's)")
    parser.add_argument("--shuffle-sources", action="store_true", help="train --shuffle-sources")
    parser.add_argument("--train-unanswerable", action="store_true", help="train --train-unanswerable")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="hyperparameter override")
    parser.add_argument("--questions", type=int, default=0, help="evaluate on the first N questions (0: all)")
    parser.add_argument("--fresh", action="store_true", help="start over (the fetched corpus is kept)")
    parser.add_argument("--until", choices=STAGES, help="stop after this stage (the next run goes on from there)")
    parser.add_argument(
        "--redo",
        choices=STAGES,
        action="append",
        default=[],
        help="run this recorded stage again, and the stages that use its result (repeatable)",
    )
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)

    from adapters.hyperparameters import DEFAULT_PRESET
    from assistant.evaluation import load_qa
    from store.settings import Settings
    from ui.services import Services

    args.preset = args.preset or DEFAULT_PRESET
    work = WORK / args.corpus
    home = work / "home"
    if args.fresh:
        shutil.rmtree(work, ignore_errors=True)
    home.mkdir(parents=True, exist_ok=True)
    state = State(work / "state.json", args.fresh)
    state.forget(args.redo)
    rows = work / "generated.jsonl"
    items = load_qa(QUESTIONS[args.corpus])
    items = items[: args.questions] if args.questions else items

    settings = Settings.load(home=home, env={})
    services = Services(settings)
    try:
        root, _ = corpus(args.corpus)
        stages = {
            "kb": lambda: build_kb(services, root),
            "generation": lambda: generate(home, rows, args),
            "training": lambda: train_and_export(settings, rows, args, state),
            "base": lambda: evaluate(services, state["training"]["base_path"], items, "base"),
            "adapted": lambda: evaluate(services, state["training"]["model"], items, "adapted"),
        }
        for stage in STAGES:
            # more passages than the recorded generation: run it again, the rows file resumes
            more = stage == "generation" and (state[stage] or {}).get("chunks_total") != args.chunks
            if not state[stage] or more:
                state.record(stage, stages[stage]())
            if stage == args.until:
                log(f"stopped after {stage} (--until); run again without it to go on")
                return 0
    finally:
        services.close()
    summary = {
        "corpus": args.corpus,
        "questions": len(items),
        "unanswerable": sum(i.unanswerable for i in items),
        **{k: state[k] for k in STAGES},
    }
    print(json.dumps(summary, indent=1) if args.json else render(summary))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
