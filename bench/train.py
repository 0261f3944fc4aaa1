"""Training speed and memory, QLoRA vs plain LoRA vs the cookbook recipe, and the quant table.

On the bundled SmolLM2-135M-Instruct and the 30 Q&A pairs of ``bench/data/facts.jsonl``, all in
one run, each measurement in its own process (clean peak RSS, no thread interference):

1. Domainsmith's training (``adapters.service`` + ``adapters.process``, the product path) with plain LoRA and with QLoRA
   (NF4): real (non-padding) tokens/s and the worker's peak RSS (VmHWM);
2. the common cookbook recipe: peft + transformers ``Trainer``, every example padded to a fixed
   256 tokens, same model, LoRA settings (r 16, alpha 32, all linear projections), data, batch
   and epochs: its real tokens/s, and our LoRA's ratio to it (goal ≥ 2.0);
3. the LoRA run merged and exported to each quant type: file size, perplexity on English prose
   (this README's first 2,048 tokens) and on the facts' answers (the domain text), and greedy
   generation tokens/s in llama.cpp; with the shipped Q4_1 base for reference.

    .venv/bin/python bench/train.py [--epochs 2] [--threads 1] [--json]     # about 5 minutes on 2 cores
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
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

FACTS = ROOT / "bench" / "data" / "facts.jsonl"
WORK = ROOT / "bench" / "out" / "train"
COOKBOOK_LENGTH = 256
QUANTS = ("f16", "q8_0", "q6_k", "q5_k_m", "q4_k_m", "q4_0")


def qa_examples() -> list[dict]:
    rows = [json.loads(line) for line in FACTS.read_text(encoding="utf-8").splitlines() if line.strip()]
    return [
        {
            "kind": "chat",
            "origin": f"facts:{i}",
            "messages": [{"role": "user", "content": r["question"]}, {"role": "assistant", "content": r["answer"]}],
        }
        for i, r in enumerate(rows, start=1)
    ]


def vm_hwm(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


# -- 1. ours ---------------------------------------------------------------------------------------


def ours(settings, method: str, epochs: int) -> dict:
    from adapters import catalogue, events, service
    from adapters.process import TrainingProcess

    job = service.prepare_run(
        settings,
        qa_examples(),
        {"kind": "bench"},
        method=method,
        val_fraction=0.0,
        overrides={"epochs": epochs, "checkpoint_every": 10_000},
    )
    process = TrainingProcess(settings, job.run_id)
    peak, last = 0, None
    for event in process.events():
        peak = max(peak, vm_hwm(process.process.pid))
        if event.kind == "step":
            last = event
        elif event.kind == "failed":
            raise SystemExit(f"{method} training failed: {event.message}\n{event.log_tail}")
    steps = [e for e in catalogue.read_events(catalogue.run_dir(settings, job.run_id)) if isinstance(e, events.Step)]
    seconds = steps[-1].time - steps[0].time + steps[0].tokens / max(steps[0].tokens_per_s, 1e-9)
    return {
        "method": method,
        "run_id": job.run_id,
        "steps": len(steps),
        "real_tokens": sum(e.tokens for e in steps),
        "seconds": round(seconds, 1),
        "tokens_per_s": last.tokens_per_s,
        "peak_rss": peak,
        "final_loss": last.loss,
        "s_per_step": round(seconds / len(steps), 2),
    }


# -- 2. the cookbook recipe (child process) ------------------------------------------------------


def cookbook(folder: str, epochs: int) -> dict:
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer, Trainer, TrainingArguments, default_data_collator

    tokenizer = AutoTokenizer.from_pretrained(folder)
    model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32)
    model = get_peft_model(
        model, LoraConfig(r=16, lora_alpha=32, lora_dropout=0.0, target_modules="all-linear", task_type="CAUSAL_LM")
    )
    rows = []
    for example in qa_examples():
        text = tokenizer.apply_chat_template(example["messages"], tokenize=False)
        enc = tokenizer(text, padding="max_length", truncation=True, max_length=COOKBOOK_LENGTH, return_tensors="pt")
        ids, mask = enc["input_ids"][0], enc["attention_mask"][0]
        rows.append({"input_ids": ids, "attention_mask": mask, "labels": ids.masked_fill(mask == 0, -100)})
    args = TrainingArguments(
        output_dir=str(WORK / "cookbook-out"),
        per_device_train_batch_size=4,
        num_train_epochs=epochs,
        learning_rate=1e-3,
        lr_scheduler_type="constant",
        logging_steps=10_000,
        save_strategy="no",
        report_to=[],
        use_cpu=True,
        dataloader_num_workers=0,
        seed=0,
        disable_tqdm=True,
    )
    trainer = Trainer(model=model, args=args, train_dataset=rows, data_collator=default_data_collator)
    start = time.perf_counter()
    trainer.train()
    seconds = time.perf_counter() - start
    real = epochs * sum(int(r["attention_mask"].sum()) for r in rows)
    return {
        "method": f"cookbook Trainer, padded to {COOKBOOK_LENGTH}",
        "real_tokens": real,
        "seconds": round(seconds, 1),
        "tokens_per_s": round(real / seconds, 1),
        "peak_rss": vm_hwm(os.getpid()),
        "steps": trainer.state.global_step,
        "s_per_step": round(seconds / max(trainer.state.global_step, 1), 2),
    }


# -- 3. quant table (each GGUF measured in a child process) ----------------------------------------


def measure_gguf(path: str, threads: int) -> dict:
    import numpy as np
    from llama_cpp import Llama

    llm = Llama(model_path=path, n_ctx=1024, n_batch=512, logits_all=True, n_threads=threads, verbose=False)

    def perplexity(text: str, limit: int = 2048) -> tuple[float, int]:
        tokens = llm.tokenize(text.encode(), add_bos=False)[:limit]
        nll, count = 0.0, 0
        for start in range(0, len(tokens) - 1, 512):
            chunk = tokens[start : start + 512]
            if len(chunk) < 2:
                break
            llm.reset()
            llm.eval(chunk)
            logits = np.asarray(llm.scores[: len(chunk)], dtype=np.float64)
            logits -= logits.max(axis=1, keepdims=True)
            logp = logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))
            nll -= float(sum(logp[i, chunk[i + 1]] for i in range(len(chunk) - 1)))
            count += len(chunk) - 1
        return float(np.exp(nll / count)), count

    prose = (ROOT / "README.md").read_text(encoding="utf-8")
    domain = " ".join(e["messages"][1]["content"] for e in qa_examples())
    ppl_prose, n_prose = perplexity(prose)
    ppl_domain, _ = perplexity(domain)
    llm.reset()
    prompt = llm.tokenize(
        b"<|im_start|>user\nTell me about water turbines.<|im_end|>\n<|im_start|>assistant\n",
        add_bos=False,
        special=True,
    )
    llm.eval(prompt)
    start, generated = time.perf_counter(), 0
    for _token in llm.generate(prompt, top_k=1, temp=0.0, repeat_penalty=1.0, reset=False):
        generated += 1
        if generated >= 128:
            break
    speed = generated / (time.perf_counter() - start)
    return {
        "ppl_prose": round(ppl_prose, 3),
        "prose_tokens": n_prose,
        "ppl_domain": round(ppl_domain, 3),
        "gen_tokens_per_s": round(speed, 1),
    }


def child(mode: str, *args: str) -> dict:
    result = subprocess.run([sys.executable, __file__, "--child", mode, *args], capture_output=True, text=True)
    if result.returncode != 0:
        raise SystemExit(f"{mode} failed:\n{result.stderr[-3000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def quant_table(settings, run_id: str, threads: int) -> list[dict]:
    from adapters import catalogue, export
    from adapters.job import TrainJob
    from store.bundled import chat_model_path

    folder = catalogue.run_dir(settings, run_id)
    out = WORK / "quants"
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    hf, _ = export.merge(TrainJob.load(folder), folder, out / "hf", 0)
    rows = []
    f16 = export.convert(hf, out, "f16")
    for quant in QUANTS:
        path = (
            f16
            if quant == "f16"
            else (
                export.convert(hf, out, quant)
                if quant in export.CONVERTER_TYPES
                else export.quantize(f16, out / f"model-{quant}.gguf", quant)
            )
        )
        rows.append({"quant": quant, "size_bytes": path.stat().st_size, **child("measure", str(path), str(threads))})
    shipped = chat_model_path()
    rows.append(
        {
            "quant": "Q4_1 (shipped base)",
            "size_bytes": shipped.stat().st_size,
            **child("measure", str(shipped), str(threads)),
        }
    )
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, default=2, help="epochs over the 30 examples (default 2: 16 steps)")
    parser.add_argument("--threads", type=int, default=1, help="llama.cpp threads for the quant table (default 1)")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        mode, *rest = args.child
        result = cookbook(rest[0], int(rest[1])) if mode == "cookbook" else measure_gguf(rest[0], int(rest[1]))
        print(json.dumps(result))
        return 0

    from adapters.base_model import materialize, resolve_base
    from adapters.run_folder import runs_root
    from store.settings import Settings

    home = WORK / "home"
    shutil.rmtree(runs_root(home), ignore_errors=True)
    settings = Settings.load(home=home)
    print(
        "SmolLM2-135M-Instruct, 30 Q&A pairs, batch 4, LoRA r 16 / alpha 32 on all linear projections, "
        f"{args.epochs} epochs; threads: torch {os.cpu_count()}, OMP_WAIT_POLICY={os.environ['OMP_WAIT_POLICY']}",
        flush=True,
    )
    lora = ours(settings, "lora", args.epochs)
    print(f"  ours, plain LoRA: {lora['tokens_per_s']:.0f} real tok/s", flush=True)
    qlora = ours(settings, "qlora", args.epochs)
    print(f"  ours, QLoRA NF4:  {qlora['tokens_per_s']:.0f} real tok/s", flush=True)
    base_folder = materialize(resolve_base("smollm2-135m"), home / "models" / "base-cache")
    book = child("cookbook", str(base_folder), str(args.epochs))
    ratio = lora["tokens_per_s"] / book["tokens_per_s"]

    print(f"\n{'training':<36}{'real tok/s':>11}{'s/step':>8}{'peak RSS':>10}{'final loss':>11}")
    for row in (lora, qlora, book):
        loss = f"{row['final_loss']:.3f}" if "final_loss" in row else "-"
        print(
            f"{row['method']:<36}{row['tokens_per_s']:>11.1f}{row['s_per_step']:>8.2f}"
            f"{row['peak_rss'] / 2**30:>8.2f} G{loss:>11}"
        )
    print(f"ratio, our plain LoRA vs the cookbook recipe (real tokens/s): {ratio:.2f}x (goal >= 2.0)")
    print(
        f"ratio, our QLoRA vs our plain LoRA: {qlora['tokens_per_s'] / lora['tokens_per_s']:.2f}x speed, "
        f"{qlora['peak_rss'] / lora['peak_rss']:.2f}x peak RSS",
        flush=True,
    )

    table = quant_table(settings, lora["run_id"], args.threads)
    f16 = next(r for r in table if r["quant"] == "f16")
    print(
        f"\n{'quant':<22}{'size':>9}{'ppl prose':>11}{'vs f16':>8}{'ppl facts':>11}{'gen tok/s':>11}"
        f"   ({f16['prose_tokens']} prose tokens, {args.threads} llama.cpp thread(s))"
    )
    for r in table:
        print(
            f"{r['quant']:<22}{r['size_bytes'] / 2**20:>7.1f} M{r['ppl_prose']:>11.2f}"
            f"{(r['ppl_prose'] / f16['ppl_prose'] - 1) * 100:>7.1f}%{r['ppl_domain']:>11.2f}"
            f"{r['gen_tokens_per_s']:>11.1f}"
        )
    if args.json:
        print(json.dumps({"lora": lora, "qlora": qlora, "cookbook": book, "ratio": round(ratio, 3), "quants": table}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
