"""Step 5 of bench/chat.py: chat under load.

Two runtimes of the same model (threads fixed at one per core, and chosen per answer) answer the
same generated five-source prompts in turn, idle and while an ingestion runs in a thread of this
process; the ratio generation ingesting ÷ idle is the figure (goal >= 0.5). See bench/README.md.
"""

from __future__ import annotations

import os
import random
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

from assistant import prompting
from assistant.events import Source
from assistant.llm import LlamaRuntime
from store import model_catalogue, workload
from store.bundled import chat_model_path
from store.embedding import Embedder
from store.knowledge_base import KnowledgeBase
from store.settings import Settings

CACHE = Path(__file__).resolve().parent / ".cache"
MAX_TOKENS = 64


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# -- 5. chat under load ----------------------------------------------------------------------------

LOAD_WORDS = (
    "pump valve bearing turbine pressure seal flow motor shaft coupling gauge filter lubricant sensor alarm "
    "cabinet panel relay fuse voltage torque impeller casing inlet outlet maintenance inspection interval "
    "replace check tighten clean record operator manual weekly monthly limit reading temperature"
).split()


def generated_text(rng: random.Random, words: int) -> str:
    sentences, count = [], 0
    while count < words:
        n = rng.randint(8, 18)
        sentences.append(" ".join(rng.choice(LOAD_WORDS) for _ in range(n)).capitalize() + ".")
        count += n
    return " ".join(sentences)


def load_messages(rng: random.Random, count: int, words: int = 120) -> list[list[dict]]:
    """Chat's prompt with five generated sources of ``words`` words per question."""
    prompts = []
    for i in range(count):
        sources = [
            Source(
                n=j,
                chunk_id=f"m{i}:{j}",
                document=f"manual {i}",
                source=f"manual-{i}.md",
                page=None,
                section="",
                text=generated_text(rng, words),
            )
            for j in range(1, 6)
        ]
        prompts.append(prompting.build_messages(f"How often must the pump seal of unit {i} be inspected?", sources))
    return prompts


class Ingestion:
    """An ingestion kept running in a thread of this process: generated files, a folder per ``add``."""

    def __init__(self, kb: KnowledgeBase, folder: Path, seed: int = 1):
        self.kb, self.folder, self.seed = kb, folder, seed
        self.stop = threading.Event()
        self.chunks = 0
        self.thread = threading.Thread(target=self._run, name="bench-ingestion", daemon=True)

    def __enter__(self) -> Ingestion:
        self.thread.start()
        while not workload.active():  # measured answers start under load
            time.sleep(0.05)
        return self

    def __exit__(self, *exc) -> None:
        self.stop.set()
        self.thread.join()

    def _run(self) -> None:
        rng = random.Random(self.seed)  # a seed per model: the same text again would be "unchanged"
        batch = 0
        while not self.stop.is_set():
            folder = self.folder / f"batch-{batch}"
            folder.mkdir(parents=True)
            for k in range(4):
                (folder / f"doc-{k}.md").write_text(f"# Manual {batch}-{k}\n\n" + generated_text(rng, 1500))
            for event in self.kb.add([folder]):
                if event.status == "added":
                    self.chunks += event.chunks or 0
                if self.stop.is_set():
                    break
            batch += 1


def timed_answer(runtime: LlamaRuntime, messages: list[dict]) -> tuple[float, float]:
    """(TTFT s, generation tokens/s) of one greedy answer through the runtime (its thread choice included)."""
    started = time.perf_counter()
    first = last = None
    count = 0
    for _piece in runtime.stream_chat(messages, max_tokens=MAX_TOKENS, temperature=0.0):
        now = time.perf_counter()
        first = first or now
        last = now
        count += 1
    return (first - started), (count - 1) / (last - first) if count > 1 else 0.0


def load_phase(runtimes: dict[str, LlamaRuntime], prompts: list[list[dict]]) -> dict:
    """Each runtime answers every prompt, interleaved so both see the same load; medians."""
    times: dict[str, list[tuple[float, float]]] = {mode: [] for mode in runtimes}
    load_before = os.getloadavg()[0]
    for messages in prompts:
        for mode, runtime in runtimes.items():
            times[mode].append(timed_answer(runtime, messages))
    load_after = os.getloadavg()[0]
    out = {}
    for mode, pairs in times.items():
        out[mode] = {
            "ttft_ms": round(statistics.median(t for t, _ in pairs) * 1000, 1),
            "tokens_per_s": round(statistics.median(g for _, g in pairs), 1),
            "threads": runtimes[mode].last_threads,
        }
    out["load_average"] = [round(load_before, 2), round(load_after, 2)]
    return out


def resolve_load_model(name: str, home: Path) -> Path:
    """A GGUF path, or a bundled model's key (assembled into ``home`` on first use)."""
    if Path(name).is_file():
        return Path(name)
    model = model_catalogue.get(name)
    log(f"assembling {model.name} (first use only) ...")
    return model_catalogue.model_path(model, home)


def under_load(models: list[str], questions: int, embedder: Embedder | None = None, words: int = 120) -> list[dict]:
    """Step 5 for each model: fixed threads (one per core) against per-answer threads, idle and ingesting."""
    results = []
    rng = random.Random(0)
    prompts = load_messages(rng, questions + 1, words)
    warmup, prompts = prompts[0], prompts[1:]
    embedder = embedder or Embedder()
    with tempfile.TemporaryDirectory(prefix="chat-load-") as tmp:
        settings = Settings.load(home=Path(tmp) / "home", env={})
        kb = KnowledgeBase.open(settings, "load", embedder)
        try:
            embedder.encode(["warm up the embedder"] * 8)
            for index, name in enumerate(models):
                path = chat_model_path() if name == "bundled" else resolve_load_model(name, CACHE / "chat-home")
                cpus = LlamaRuntime().cpus
                runtimes = {"fixed": LlamaRuntime(threads=cpus), "auto": LlamaRuntime(threads=0)}
                try:
                    for runtime in runtimes.values():
                        runtime.load(path)
                        timed_answer(runtime, warmup)
                    log(f"chat under load: {path.name}, idle ...")
                    idle = load_phase(runtimes, prompts)
                    log(f"chat under load: {path.name}, while ingesting ...")
                    with Ingestion(kb, Path(tmp) / f"docs-{index}", seed=index + 1) as ingestion:
                        busy = load_phase(runtimes, prompts)
                    results.append(
                        {
                            "model": path.stem,
                            "cpus": cpus,
                            "questions": len(prompts),
                            "max_tokens": MAX_TOKENS,
                            "prompt_tokens": runtimes["auto"].count_tokens("".join(m["content"] for m in prompts[0])),
                            "idle": idle,
                            "ingesting": busy,
                            "ingested_chunks": ingestion.chunks,
                            "ratio_fixed": _ratio(busy["fixed"], idle["fixed"]),
                            "ratio_auto": _ratio(busy["auto"], idle["auto"]),
                        }
                    )
                finally:
                    for runtime in runtimes.values():
                        runtime.unload()
        finally:
            kb.close()
    return results


def _ratio(busy: dict, idle: dict) -> float | None:
    return round(busy["tokens_per_s"] / idle["tokens_per_s"], 3) if idle["tokens_per_s"] else None


def render_load(rows: list[dict]) -> str:
    lines = [f"chat under load ({MAX_TOKENS} tokens, five generated sources, medians; threads fixed = one per core)"]
    for r in rows:
        lines.append(
            f"  {r['model']}: {r['cpus']} cores, {r['questions']} questions of {r['prompt_tokens']} prompt tokens, "
            f"{r['ingested_chunks']} chunks ingested"
        )
        for phase in ("idle", "ingesting"):
            p = r[phase]
            load = p["load_average"]
            for mode in ("fixed", "auto"):
                m = p[mode]
                lines.append(
                    f"    {phase:9} {mode:5} {m['threads']} thread(s)  first token {m['ttft_ms']:8.0f} ms  "
                    f"generation {m['tokens_per_s']:6.1f} tokens/s   (load average {load[0]:.2f} -> {load[1]:.2f})"
                )
        lines.append(
            f"    generation ingesting / idle: fixed {r['ratio_fixed']}, per-answer {r['ratio_auto']}   (goal >= 0.5)"
        )
    return "\n".join(lines)
