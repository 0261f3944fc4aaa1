"""Ingestion benchmark on a real corpus: the Python 3.11 manual (Debian's python3.11-doc).

Every figure is measured in the same run, against a baseline taken in that run:

1. ingestion of the whole corpus into a fresh temporary DOMAINSMITH_HOME: documents, chunks,
   seconds, documents/s, chunks/s, peak RSS;
2. the embedder alone on exactly the texts the pipeline embedded; the ratio of the pipeline's
   chunks/s to the embedder's (goal >= 0.8: the rest of the pipeline costs little);
3. hnswlib recall@10 against exact search over the same vectors (goal >= 0.98);
4. search latency p50/p95 (query embedding included) per mode at the corpus size, and at 100k
   vectors made from the corpus's real embeddings (goal p50 <= 30 ms), with recall@10 there too;
5. retrieval quality on bench/data/python_docs_questions.jsonl: recall@5, recall@10 and MRR of
   the expected page, per search mode.

Run from the repository root: ``.venv/bin/python bench/ingest.py`` (``--help`` for options).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import argparse  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import resource  # noqa: E402
import shutil  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402

from bench.corpus import CorpusError, python_docs  # noqa: E402

QUESTIONS = REPO / "bench" / "data" / "python_docs_questions.jsonl"
MODES = ("vector", "keyword", "hybrid")
K = 10
BIG = 100_000
PERTURBED_QUERIES = 200
# Queries for the recall checks: the questions' embeddings plus real chunk vectors moved by a
# random direction of this relative length and re-normalised (cosine ~0.89 to the original).
QUERY_NOISE = 0.5
# The 100k index is made from the corpus's real embeddings, two ways (see bench/README.md):
# - "neighbour mixtures" (the headline, latency is measured on it): each synthetic vector is a
#   random convex mix of a real chunk vector and two of its 10 nearest real neighbours, plus
#   noise of relative length MIX_NOISE. It stays on the real embeddings' manifold, but is denser
#   than a real 100k corpus would be, so its recall is on the optimistic side.
# - "isotropic copies" (a stress figure): real vectors plus noise of relative length ISO_NOISE in
#   a random direction. With ~10 copies of every chunk at almost equal distance from a query,
#   the exact top 10 is nearly a tie, so this recall is on the pessimistic side.
# Purely random vectors would make hnswlib look broken: they have no cluster structure at all.
MIX_NOISE = 0.25
ISO_NOISE = 0.5
GOALS = {"embed_ratio": 0.8, "recall": 0.98, "p50_100k_ms": 30.0}
SEED = 1234


class BenchError(RuntimeError):
    """The benchmark cannot go on (for example: nothing was ingested)."""


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def peak_rss_mb() -> float:
    """Peak resident set size of this process so far (ru_maxrss is KiB on Linux, bytes on macOS)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024) if platform.system() == "Darwin" else peak / 1024


def load_questions(path: Path) -> list[dict]:
    rows = []
    with open(path, encoding="utf-8") as f:
        for number, line in enumerate(f, start=1):
            if line.strip():
                row = json.loads(line)
                if not row.get("question"):
                    raise ValueError(f"{path}:{number}: no question")
                rows.append(row)
    return rows


def accepted_pages(question: dict) -> set[str]:
    return {question["page"], *question.get("also", [])} if question.get("page") else set()


def corpus_subset(root: Path, files: list[Path], limit: int | None, questions: list[dict], dest: Path) -> Path:
    """The folder to ingest: ``root`` itself, or with ``limit`` a folder of hard links to
    ``limit`` pages (those the questions expect first, then the rest in path order)."""
    if not limit or limit >= len(files):
        return root
    relative = [f.relative_to(root).as_posix() for f in files]
    wanted = list(dict.fromkeys(q["page"] for q in questions if q.get("page") in set(relative)))
    chosen = (wanted + [r for r in relative if r not in set(wanted)])[:limit]
    for r in chosen:
        target = dest / r
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.link(root / r, target)
        except OSError:
            shutil.copy2(root / r, target)
    return dest


def percentiles_ms(seconds: list[float]) -> dict:
    values = np.asarray(seconds) * 1000.0
    return {
        "p50_ms": round(float(np.percentile(values, 50)), 2),
        "p95_ms": round(float(np.percentile(values, 95)), 2),
        "n": len(values),
    }


def perturb(vectors: np.ndarray, rng: np.random.Generator, noise: float = QUERY_NOISE) -> np.ndarray:
    """Unit vectors near ``vectors``: each plus a random direction of length ``noise``."""
    direction = rng.standard_normal(vectors.shape).astype(np.float32)
    direction /= np.linalg.norm(direction, axis=1, keepdims=True)
    out = vectors + noise * direction
    return (out / np.linalg.norm(out, axis=1, keepdims=True)).astype(np.float32)


def neighbour_mixtures(
    base: np.ndarray,
    neighbours: np.ndarray,
    n: int,
    rng: np.random.Generator,
    noise: float = MIX_NOISE,
    block: int = 10_000,
) -> np.ndarray:
    """``n`` unit vectors, each a random convex mix of a real vector and two of its neighbours
    (``neighbours[i]`` holds row numbers of vector i's nearest real vectors), plus noise."""
    parts = []
    for start in range(0, n, block):
        m = min(block, n - start)
        first = rng.integers(0, len(base), m)
        others = neighbours[first[:, None], rng.integers(0, neighbours.shape[1], (m, 2))]
        weights = rng.dirichlet((1.0, 1.0, 1.0), m).astype(np.float32)
        mixed = (
            weights[:, 0:1] * base[first] + weights[:, 1:2] * base[others[:, 0]] + weights[:, 2:3] * base[others[:, 1]]
        )
        mixed /= np.linalg.norm(mixed, axis=1, keepdims=True)
        parts.append(perturb(mixed, rng, noise))
    return np.concatenate(parts) if parts else np.zeros((0, base.shape[1]), dtype=np.float32)


def recall_at_k(index, queries: np.ndarray, k: int = K) -> np.ndarray:
    """Per query: the share of the exact top k (same vectors) that hnswlib's top k found."""
    approx, _ = index.query(queries, k)
    exact, _ = index.exact_query(queries, k)
    pairs = zip(approx, exact, strict=True)
    return np.array([len(set(a.tolist()) & set(e.tolist())) / max(len(e), 1) for a, e in pairs])


# -- the steps ---------------------------------------------------------------------------------


def step_ingest(kb, folder: Path) -> dict:
    counts = {"added": 0, "replaced": 0, "unchanged": 0, "skipped": 0, "failed": 0}
    summary = None
    chunks = 0
    problems = []
    started = time.perf_counter()
    last = started
    for event in kb.add([folder]):
        if event.status == "done":
            summary = event.summary
            continue
        if event.status == "reading":  # OCR progress inside a file, not a file
            continue
        counts[event.status] = counts.get(event.status, 0) + 1
        chunks += event.chunks
        if event.status in ("failed", "skipped"):
            problems.append(f"{event.status}: {event.source}: {event.reason}")
        now = time.perf_counter()
        if now - last > 15:
            last = now
            log(f"  ingest {event.done}/{event.total} files, {chunks} chunks, {now - started:.0f} s")
    seconds = time.perf_counter() - started
    stats = kb.stats()
    return {
        "documents": stats["documents"],
        "chunks": stats["chunks"],
        "files": counts,
        "problems": problems[:20],
        "seconds": round(seconds, 2),
        "documents_per_s": round(stats["documents"] / seconds, 3),
        "chunks_per_s": round(stats["chunks"] / seconds, 2),
        "peak_rss_mb": round(peak_rss_mb(), 1),
        "summary_seconds": round(summary.seconds, 2) if summary else None,
    }


def step_embedder_alone(kb, ingest: dict, sample: int | None, rng: np.random.Generator) -> dict:
    """Time the embedder on exactly the texts the pipeline embedded (or a uniform random sample of
    them with ``sample``: same length distribution, shorter run)."""
    texts = kb.chunk_texts_for_embedding()
    rows = np.arange(len(texts))
    if sample and sample < len(texts):
        rows = np.sort(rng.choice(len(texts), size=sample, replace=False))
    chosen = [texts[i] for i in rows]
    started = time.perf_counter()
    vectors = kb.embedder.encode(chosen)
    seconds = time.perf_counter() - started
    per_s = len(chosen) / seconds
    ratio = ingest["chunks_per_s"] / per_s
    return {
        "chunks": len(chosen),
        "sampled": len(chosen) < len(texts),
        "_rows": rows,
        "seconds": round(seconds, 2),
        "chunks_per_s": round(per_s, 2),
        "pipeline_ratio": round(ratio, 3),
        "goal": GOALS["embed_ratio"],
        "pass": ratio >= GOALS["embed_ratio"],
        "_vectors": vectors,
    }


def step_corpus_index(
    kb, question_vectors: np.ndarray, alone: np.ndarray, alone_rows: np.ndarray, rng: np.random.Generator
) -> dict:
    index = kb.index
    labels, matrix = index.vectors()
    # Sanity check of step 2: the stored vectors (label = chunk row id, the order of
    # chunk_texts_for_embedding) should be what the embedder alone produced for those texts.
    same = None
    if len(matrix) == len(kb.chunk_texts_for_embedding()) and len(alone):
        same = float(np.min(np.sum(matrix[alone_rows] * alone, axis=1)))
    picks = rng.choice(len(matrix), size=min(PERTURBED_QUERIES, len(matrix)), replace=False)
    queries = np.concatenate([question_vectors, perturb(matrix[picks], rng)])
    per_query = recall_at_k(index, queries)
    recall = float(per_query.mean())
    return {
        "vectors": int(len(labels)),
        "min_cosine_stored_vs_alone": None if same is None else round(same, 5),
        "queries": int(len(queries)),
        "recall_at_10": round(recall, 4),
        "recall_questions": round(float(per_query[: len(question_vectors)].mean()), 4),
        "recall_perturbed": round(float(per_query[len(question_vectors) :].mean()), 4),
        "ef_search": index.ef_search,
        "m": index.m,
        "goal": GOALS["recall"],
        "pass": recall >= GOALS["recall"],
    }


def step_search(kb, questions: list[dict], available: set[str]) -> tuple[dict, dict]:
    """Latency per mode over every question (query embedding included) and quality per mode."""
    latency, quality = {}, {}
    answerable = {q["id"] for q in questions if q.get("page") and accepted_pages(q) & available}
    for mode in MODES:
        # First pass: quality, and warming up (torch's first calls at each new input length are slow).
        ranks = {}
        for q in questions:
            hits = kb.search(q["question"], k=K, mode=mode)
            if q["id"] in answerable:
                accept = accepted_pages(q)
                ranks[q["id"]] = next((h.rank for h in hits if h.source in accept), None)
        times = []
        for q in questions:  # second pass: latency
            started = time.perf_counter()
            kb.search(q["question"], k=K, mode=mode)
            times.append(time.perf_counter() - started)
        latency[mode] = percentiles_ms(times)
        n = max(len(answerable), 1)
        found = list(ranks.values())
        quality[mode] = {
            "questions": len(answerable),
            "recall_at_5": round(sum(1 for r in found if r and r <= 5) / n, 3),
            "recall_at_10": round(sum(1 for r in found if r and r <= 10) / n, 3),
            "mrr": round(sum(1.0 / r for r in found if r) / n, 3),
            "missed_at_10": [qid for qid, r in ranks.items() if r is None],
        }
    return latency, quality


def step_100k(kb, questions: list[dict], rng: np.random.Generator, size: int = BIG) -> dict:
    """Latency (query embedding + hnswlib) and recall at ``size`` vectors made from real embeddings."""
    from store.vector_index import VectorIndex

    settings = kb.settings
    params = {
        "m": settings.hnsw_m,
        "ef_construction": settings.hnsw_ef_construction,
        "ef_search": settings.hnsw_ef_search,
    }
    _, real = kb.index.vectors()
    # Hold out real chunk vectors as queries: real, in-distribution, and not in the 100k index.
    held_out = rng.choice(len(real), size=min(PERTURBED_QUERIES, len(real) // 5), replace=False)
    keep = np.setdiff1d(np.arange(len(real)), held_out)
    base = real[keep][:size]
    extra = max(size - len(base), 0)
    # Each real vector's 10 nearest real neighbours among the kept ones (row numbers into base).
    near, _ = VectorIndex.build(kb.embedder.dim, np.arange(len(base), dtype=np.int64), base, **params).query(base, 11)
    neighbours = near[:, 1:]
    if neighbours.shape[1] == 0:  # a one-chunk corpus (--limit): mix a vector with itself
        neighbours = np.arange(len(base))[:, None]
    texts = [q["question"] for q in questions]
    question_vectors = kb.embedder.encode(texts)
    queries = np.concatenate([question_vectors, real[held_out]])
    result: dict = {
        "vectors": len(base) + extra,
        "real": int(len(base)),
        "synthetic": int(extra),
        "queries": int(len(queries)),
        "held_out": int(len(held_out)),
    }

    vectors = np.concatenate([base, neighbour_mixtures(base, neighbours, extra, rng)])
    log(f"  building a {len(vectors):,}-vector hnswlib index ({len(base):,} real, {extra:,} neighbour mixtures)")
    started = time.perf_counter()
    index = VectorIndex.build(kb.embedder.dim, np.arange(len(vectors), dtype=np.int64), vectors, **params)
    result["build_seconds"] = round(time.perf_counter() - started, 1)
    for text in texts:  # warm up: torch's first call at each new input length is slow
        index.query(kb.embedder.encode([text]), K)
    total, only_embed, only_index = [], [], []
    for text in texts:
        t0 = time.perf_counter()
        query = kb.embedder.encode([text])
        t1 = time.perf_counter()
        index.query(query, K)
        t2 = time.perf_counter()
        total.append(t2 - t0)
        only_embed.append(t1 - t0)
        only_index.append(t2 - t1)
    result["latency"] = percentiles_ms(total)
    result["embed_only"] = percentiles_ms(only_embed)
    result["index_only"] = percentiles_ms(only_index)
    exact = []
    for query in question_vectors:  # plain numpy exact search over the same matrix, for comparison
        t0 = time.perf_counter()
        scores = vectors @ query
        top = np.argpartition(-scores, K)[:K]
        top[np.argsort(-scores[top])]
        exact.append(time.perf_counter() - t0)
    result["exact_numpy"] = percentiles_ms(exact)
    per_query = recall_at_k(index, queries)
    result["recall_at_10"] = round(float(per_query.mean()), 4)
    result["recall_questions"] = round(float(per_query[: len(question_vectors)].mean()), 4)
    result["recall_held_out"] = round(float(per_query[len(question_vectors) :].mean()), 4)
    result["nn_cosine"] = _nn_cosine(index, vectors, rng)
    result["nn_cosine_real"] = _nn_cosine(kb.index, real, rng)
    del index, vectors

    vectors = np.concatenate([base, perturb(base[rng.integers(0, len(base), extra)], rng, ISO_NOISE)])
    log(f"  building a {len(vectors):,}-vector hnswlib index ({len(base):,} real, {extra:,} isotropic copies)")
    index = VectorIndex.build(kb.embedder.dim, np.arange(len(vectors), dtype=np.int64), vectors, **params)
    result["stress_recall_at_10"] = round(float(recall_at_k(index, queries).mean()), 4)
    result["stress_nn_cosine"] = _nn_cosine(index, vectors, rng)
    del index, vectors

    result.update(
        {
            "mix_noise": MIX_NOISE,
            "iso_noise": ISO_NOISE,
            "goal_p50_ms": GOALS["p50_100k_ms"],
            "pass_latency": result["latency"]["p50_ms"] <= GOALS["p50_100k_ms"],
            "pass_recall": result["recall_at_10"] >= GOALS["recall"],
            "peak_rss_mb": round(peak_rss_mb(), 1),
        }
    )
    return result


def _nn_cosine(index, vectors: np.ndarray, rng: np.random.Generator, sample: int = 500) -> float:
    """Mean cosine between a stored vector and its nearest other stored vector (exact search):
    how dense the data is, to compare the synthetic sets with the real corpus."""
    rows = rng.choice(len(vectors), size=min(sample, len(vectors)), replace=False)
    _, distances = index.exact_query(vectors[rows], 2)
    return round(float(np.mean(1.0 - distances[:, -1])), 3)


# -- running and printing ------------------------------------------------------------------------


def run(args: argparse.Namespace) -> dict:
    from store import KnowledgeBase, Settings

    rng = np.random.default_rng(SEED)
    questions = load_questions(args.questions)
    log("fetching the corpus (bench/.cache, reused when present)")
    root, files = python_docs(args.cache_dir, include_indexes=args.include_indexes)
    result: dict = {
        "corpus": {
            "name": "python3.11-doc HTML manual",
            "root": str(root),
            "documents": len(files),
            "index_pages_included": args.include_indexes,
        }
    }
    # Other processes on the machine skew every timing: record the load to read them against.
    result["machine"] = {"cpus": os.cpu_count(), "load_at_start": round(os.getloadavg()[0], 2)}

    with tempfile.TemporaryDirectory(prefix="domainsmith-bench-") as tmp:
        home = Path(tmp) / "home"
        folder = corpus_subset(root, files, args.limit, questions, Path(tmp) / "corpus")
        result["corpus"]["ingested"] = args.limit and min(args.limit, len(files)) or len(files)
        settings = Settings.load(home=home)
        kb = KnowledgeBase.open(settings, name="bench")
        result["settings"] = {
            "embedder": kb.embedder.name,
            "chunk_tokens": settings.chunk_tokens,
            "chunk_overlap": settings.chunk_overlap,
            "embed_batch_size": settings.embed_batch_size,
            "hnsw_m": settings.hnsw_m,
            "hnsw_ef_construction": settings.hnsw_ef_construction,
            "hnsw_ef_search": settings.hnsw_ef_search,
        }
        try:
            log(f"1/5 ingesting {result['corpus']['ingested']} documents from {folder}")
            result["ingest"] = step_ingest(kb, folder)
            if result["ingest"]["chunks"] == 0:
                raise BenchError("nothing was ingested: " + "; ".join(result["ingest"]["problems"][:3]))
            sample = args.baseline_sample or "all"
            log(f"2/5 the embedder alone on the same chunks ({sample} of {result['ingest']['chunks']})")
            alone = step_embedder_alone(kb, result["ingest"], args.baseline_sample, rng)
            base, base_rows = alone.pop("_vectors"), alone.pop("_rows")
            result["embedder_alone"] = alone
            log("3/5 hnswlib recall@10 against exact search")
            question_vectors = kb.embedder.encode([q["question"] for q in questions])
            result["index"] = step_corpus_index(kb, question_vectors, base, base_rows, rng)
            log("4-5/5 search latency and retrieval quality per mode")
            available = {d.source for d in kb.documents()}
            result["latency"], result["quality"] = step_search(kb, questions, available)
            result["latency"]["chunks"] = result["ingest"]["chunks"]
            if args.skip_100k:
                result["at_100k"] = None
            else:
                log(f"4/5 at {BIG:,} vectors")
                result["at_100k"] = step_100k(kb, questions, rng)
        finally:
            kb.close()
    result["machine"]["load_at_end"] = round(os.getloadavg()[0], 2)
    if "torch" in sys.modules:  # the embedder's intra-op threads (single-query latency depends on them)
        result["machine"]["torch_threads"] = sys.modules["torch"].get_num_threads()
    result["peak_rss_mb"] = round(peak_rss_mb(), 1)
    return result


def _ok(flag: bool) -> str:
    return "PASS" if flag else "FAIL"


def render(r: dict) -> str:
    ing, alone, idx = r["ingest"], r["embedder_alone"], r["index"]
    files = ing["files"]
    machine = r["machine"]
    lines = [
        f"Corpus: {r['corpus']['name']}, {r['corpus']['ingested']} of {r['corpus']['documents']} documents",
        f"Machine: {machine['cpus']} CPUs, load average {machine['load_at_start']} before the run, "
        f"{machine['load_at_end']} after it (this run adds about 1-2; more means other work skewed the timings); "
        f"torch threads {machine.get('torch_threads', '?')}",
        "Settings: " + ", ".join(f"{k} {v}" for k, v in r.get("settings", {}).items()),
        "",
        "1. Ingestion (fresh DOMAINSMITH_HOME)",
        f"   documents            {ing['documents']:>10,}   ({files['added']} added, {files['skipped']} skipped, "
        f"{files['failed']} failed)",
        f"   chunks               {ing['chunks']:>10,}",
        f"   seconds              {ing['seconds']:>10.1f}",
        f"   documents/s          {ing['documents_per_s']:>10.2f}",
        f"   chunks/s             {ing['chunks_per_s']:>10.2f}",
        f"   peak RSS (MB)        {ing['peak_rss_mb']:>10.0f}",
        "",
        f"2. Embedder alone on the same chunks ({alone['chunks']:,}"
        f"{', a uniform random sample' if alone['sampled'] else ''})",
        f"   seconds              {alone['seconds']:>10.1f}",
        f"   chunks/s             {alone['chunks_per_s']:>10.2f}",
        f"   pipeline / embedder  {alone['pipeline_ratio']:>10.3f}   goal >= {alone['goal']}  {_ok(alone['pass'])}",
        "",
        f"3. hnswlib recall@10 vs exact ({idx['queries']} queries, M={idx['m']}, ef={idx['ef_search']})",
        f"   at {idx['vectors']:,} vectors   {idx['recall_at_10']:>10.4f}   goal >= {idx['goal']}  {_ok(idx['pass'])}",
        f"   (questions {idx['recall_questions']:.4f}, perturbed chunk vectors {idx['recall_perturbed']:.4f})",
        f"   (stored vectors vs the embedder-alone ones: min cosine {idx['min_cosine_stored_vs_alone']})",
        "",
        f"4. Search latency, k={K}, query embedding included ({r['latency']['chunks']:,} chunks)",
        "   mode          p50 ms     p95 ms",
    ]
    for mode in MODES:
        lat = r["latency"][mode]
        lines.append(f"   {mode:<10} {lat['p50_ms']:>9.1f} {lat['p95_ms']:>10.1f}")
    big = r.get("at_100k")
    if big:
        lines += [
            f"   at {big['vectors']:,} vectors ({big['real']:,} real embeddings + {big['synthetic']:,} neighbour "
            f"mixtures; built in {big['build_seconds']:.0f} s):",
            f"   embed + hnswlib  p50 {big['latency']['p50_ms']:.1f} ms  p95 {big['latency']['p95_ms']:.1f} ms"
            f"   goal p50 <= {big['goal_p50_ms']:.0f} ms  {_ok(big['pass_latency'])}",
            f"     embedding only p50 {big['embed_only']['p50_ms']:.1f} ms, hnswlib only p50 "
            f"{big['index_only']['p50_ms']:.2f} ms, exact numpy search p50 {big['exact_numpy']['p50_ms']:.1f} ms",
            f"   recall@10 vs exact {big['recall_at_10']:.4f} ({big['queries']} queries)"
            f"   goal >= {GOALS['recall']}  {_ok(big['pass_recall'])}",
            f"     questions {big['recall_questions']:.4f}, held-out real chunk vectors {big['recall_held_out']:.4f}",
            f"   stress: isotropic copies (noise {big['iso_noise']}) recall@10 {big['stress_recall_at_10']:.4f}",
            f"   nearest-neighbour cosine: real corpus {big['nn_cosine_real']:.3f}, mixtures {big['nn_cosine']:.3f}, "
            f"isotropic copies {big['stress_nn_cosine']:.3f}",
        ]
    else:
        lines.append("   100k: skipped (--skip-100k)")
    q = r["quality"]
    n = q[MODES[0]]["questions"]
    lines += [
        "",
        f"5. Retrieval quality: the expected page among the hits ({n} answerable questions)",
        "   mode        recall@5  recall@10      MRR   missed at 10",
    ]
    for mode in MODES:
        m = q[mode]
        missed = ", ".join(m["missed_at_10"]) or "-"
        lines.append(f"   {mode:<10} {m['recall_at_5']:>9.3f} {m['recall_at_10']:>10.3f} {m['mrr']:>8.3f}   {missed}")
    lines += ["", f"Peak RSS of the run: {r['peak_rss_mb']:.0f} MB"]
    if ing["problems"]:
        lines += ["", "Files not ingested:"] + [f"   {p}" for p in ing["problems"]]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Domainsmith ingestion benchmark on the Python 3.11 manual.")
    parser.add_argument(
        "--limit", type=int, default=None, help="ingest N documents only (the questions' pages first) for a quick run"
    )
    parser.add_argument("--skip-100k", action="store_true", help=f"skip the {BIG:,}-vector index step")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of the table")
    parser.add_argument(
        "--content-only",
        dest="include_indexes",
        action="store_false",
        help="leave out the 33 index pages (497 documents instead of 530)",
    )
    parser.add_argument("--cache-dir", type=Path, default=None, help="where the corpus is cached (bench/.cache)")
    parser.add_argument(
        "--baseline-sample",
        type=int,
        default=None,
        metavar="N",
        help="time the embedder alone on N randomly chosen chunks instead of all of them",
    )
    parser.add_argument("--questions", type=Path, default=QUESTIONS, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.limit is not None and args.limit < 1:
        parser.error("--limit must be at least 1")
    try:
        result = run(args)
    except (CorpusError, BenchError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(result, indent=2) if args.json else render(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
