"""The training loop, run inside the worker process (``adapters.worker``); imports torch.

Loads the base (a cached safetensors copy of a GGUF, or a Hugging Face folder) in fp32 for plain
LoRA or as 4-bit NF4 through bitsandbytes for QLoRA, puts LoRA on every linear projection the
model has (found by walking its modules: Phi-3's fused ``qkv_proj``/``gate_up_proj`` included),
and trains with AdamW on answer tokens only. Every ``checkpoint_every`` optimizer steps the
adapter, the optimizer moments (safetensors, no pickle) and the step are saved; a restarted run
loads the newest checkpoint and continues with the same data order, because the order is a pure
function of the seed, the epoch and the example lengths, and the RNG is re-seeded every step.
"""

from __future__ import annotations

import json
import logging
import math
import os
import shutil
import time
from pathlib import Path
from typing import Any, Callable

import torch

from adapters import batching, evaluation, rag_eval
from adapters.base_model import materialize
from adapters.datasets import read_examples
from adapters.job import TrainJob
from store.errors import ModelNotFound

log = logging.getLogger(__name__)

Emit = Callable[[dict[str, Any]], None]
KEEP_CHECKPOINTS = 2


def load_model(folder: Path, method: str, gradient_checkpointing: bool = True):
    """The base model for ``method`` ("lora": fp32; "qlora": NF4 weights, fp32 compute)."""
    from transformers import AutoModelForCausalLM, BitsAndBytesConfig

    kwargs: dict[str, Any] = {"dtype": torch.float32, "use_safetensors": True}
    if method == "qlora":
        kwargs["quantization_config"] = BitsAndBytesConfig(
            load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_compute_dtype=torch.float32)
    try:
        model = AutoModelForCausalLM.from_pretrained(str(folder), **kwargs)
    except (ValueError, KeyError) as exc:
        raise ModelNotFound(f"unsupported or damaged base model ({exc})", path=folder) from exc
    if method == "qlora":
        from peft import prepare_model_for_kbit_training

        model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=gradient_checkpointing)
    return model


def lora_targets(model) -> list[str]:
    """The names of all linear projections in the model's layers (not the output head)."""
    linear_types: tuple[type, ...] = (torch.nn.Linear,)
    try:
        import bitsandbytes as bnb

        linear_types += (bnb.nn.Linear4bit, bnb.nn.Linear8bitLt)
    except ImportError:  # pragma: no cover - bitsandbytes is a requirement
        pass
    output = model.get_output_embeddings()
    names = {name.rsplit(".", 1)[-1] for name, module in model.named_modules()
             if isinstance(module, linear_types) and module is not output}
    if not names:
        raise ModelNotFound("found no linear projections to put LoRA on in this model")
    return sorted(names)


def add_lora(model, job: TrainJob):
    """The peft model with LoRA on every linear projection, and the projection names."""
    from peft import LoraConfig, get_peft_model

    hp = job.hyperparameters
    targets = lora_targets(model)
    config = LoraConfig(r=hp.lora_r, lora_alpha=hp.lora_alpha, lora_dropout=hp.lora_dropout,
                        target_modules=targets, task_type="CAUSAL_LM", bias="none")
    return get_peft_model(model, config), targets


# -- checkpoints ---------------------------------------------------------------------------------


def save_checkpoint(model, optimizer, run_dir: Path, step: int, state: dict[str, Any]) -> Path:
    from safetensors.torch import save_file

    root = run_dir / "checkpoints"
    root.mkdir(exist_ok=True)
    final = root / f"step-{step:06d}"
    tmp = root / f".tmp-step-{step:06d}"
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(str(tmp))
    tensors, meta = {}, {"param_groups": optimizer.state_dict()["param_groups"], "steps": {}}
    for index, slot in optimizer.state_dict()["state"].items():
        for key, value in slot.items():
            if torch.is_tensor(value) and value.dim() > 0:
                tensors[f"{index}.{key}"] = value.contiguous()
            else:
                meta["steps"][f"{index}.{key}"] = float(value)
    save_file(tensors, str(tmp / "optimizer.safetensors"))
    (tmp / "optimizer.json").write_text(json.dumps(meta))
    (tmp / "state.json").write_text(json.dumps({**state, "step": step}))
    if final.exists():
        shutil.rmtree(final)
    os.replace(tmp, final)
    for old in sorted(root.glob("step-*"))[:-KEEP_CHECKPOINTS]:
        shutil.rmtree(old, ignore_errors=True)
    return final


def latest_checkpoint(run_dir: Path) -> Path | None:
    found = sorted(p for p in (run_dir / "checkpoints").glob("step-*") if (p / "state.json").exists())
    return found[-1] if found else None


def load_checkpoint(model, optimizer, path: Path) -> dict[str, Any]:
    from peft import set_peft_model_state_dict
    from safetensors.torch import load_file

    set_peft_model_state_dict(model, load_file(str(path / "adapter_model.safetensors")))
    meta = json.loads((path / "optimizer.json").read_text())
    tensors = load_file(str(path / "optimizer.safetensors"))
    state: dict[int, dict[str, Any]] = {}
    for key, value in tensors.items():
        index, name = key.split(".", 1)
        state.setdefault(int(index), {})[name] = value
    for key, value in meta["steps"].items():
        index, name = key.split(".", 1)
        state.setdefault(int(index), {})[name] = torch.tensor(value)
    optimizer.load_state_dict({"state": state, "param_groups": meta["param_groups"]})
    return json.loads((path / "state.json").read_text())


# -- the loop -----------------------------------------------------------------------------------


def batch_loss(model, batch: dict) -> torch.Tensor:
    return model(**batch).loss


@torch.no_grad()
def mean_loss(model, encoded: list[batching.Encoded], pad_id: int, batch_size: int) -> float | None:
    if not encoded:
        return None
    model.eval()
    total, count = 0.0, 0
    for start in range(0, len(encoded), batch_size):
        items = encoded[start:start + batch_size]
        n = sum(1 for e in items for t in e.labels[1:] if t != batching.IGNORE)  # what the shifted loss averages
        total += float(batch_loss(model, batching.collate(items, pad_id))) * max(n, 1)
        count += max(n, 1)
    model.train()
    return total / count


@torch.no_grad()
def generate(model, fmt: batching.ChatFormat, messages: list[dict], max_new_tokens: int) -> tuple[str, list[int]]:
    """Greedy answer to ``messages[:-1]``: (text, token ids), stopping at the end-of-turn token."""
    ids = torch.tensor([fmt.prompt_ids(messages)])
    out = model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), max_new_tokens=max_new_tokens,
                         do_sample=False, eos_token_id=fmt.end_of_turn_id, pad_token_id=fmt.end_of_turn_id)
    new = out[0, ids.shape[1]:].tolist()
    return fmt.tokenizer.decode(new, skip_special_tokens=True).strip(), new


def train(job: TrainJob, run_dir: Path, emit: Emit, should_stop: Callable[[], bool]) -> str:
    """Train (or resume) the run in ``run_dir``; returns "done" or "cancelled"."""
    from transformers import AutoTokenizer

    hp = job.hyperparameters
    torch.set_num_threads(job.threads or os.cpu_count() or 1)
    torch.manual_seed(job.seed)
    emit({"type": "status", "message": "loading the base model"})
    folder = materialize(Path(job.base), Path(job.base_cache))
    tokenizer = AutoTokenizer.from_pretrained(str(folder))
    fmt = batching.ChatFormat(tokenizer)
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else fmt.end_of_turn_id
    model, targets = add_lora(load_model(folder, job.method), job)
    model.train()

    train_set = [fmt.encode(e, hp.max_length) for e in read_examples(run_dir / "train.jsonl")]
    val_examples = read_examples(run_dir / "val.jsonl")
    val_set = [fmt.encode(e, hp.max_length) for e in val_examples]
    lengths = [len(e.input_ids) for e in train_set]
    epochs = [batching.plan_epoch(lengths, hp.batch_size, job.seed, epoch) for epoch in range(hp.epochs)]
    steps_per_epoch = math.ceil(len(epochs[0]) / hp.grad_accum)
    total_steps = steps_per_epoch * hp.epochs

    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=hp.learning_rate, weight_decay=hp.weight_decay)
    state: dict[str, Any] = {}
    checkpoint = latest_checkpoint(run_dir)
    if checkpoint is not None:
        state = load_checkpoint(model, optimizer, checkpoint)
        emit({"type": "resumed", "step": state["step"], "checkpoint": checkpoint.name})
    start_step = int(state.get("step", 0))
    if "val_loss_before" not in state:
        state["val_loss_before"] = mean_loss(model, val_set, pad_id, hp.batch_size)
    emit({"type": "start", "total_steps": total_steps, "start_step": start_step, "method": job.method,
          "train_examples": len(train_set), "val_examples": len(val_set),
          "trainable_params": sum(p.numel() for p in params), "val_loss": state["val_loss_before"],
          "lora_targets": targets})

    timer_start, tokens_done, steps_done = time.perf_counter(), 0, 0
    for step in range(start_step + 1, total_steps + 1):
        epoch, within = divmod(step - 1, steps_per_epoch)
        micro = epochs[epoch][within * hp.grad_accum:(within + 1) * hp.grad_accum]
        optimizer.zero_grad(set_to_none=True)
        step_loss, real_tokens, answer_tokens = 0.0, 0, 0
        for k, indices in enumerate(micro):
            torch.manual_seed(job.seed * 1_000_003 + step * 97 + k)  # dropout: same draws after a resume
            items = [train_set[i] for i in indices]
            loss = batch_loss(model, batching.collate(items, pad_id)) / len(micro)
            loss.backward()
            step_loss += loss.item()
            real_tokens += sum(len(e.input_ids) for e in items)
            answer_tokens += sum(e.answer_tokens for e in items)
        if hp.max_grad_norm > 0:
            torch.nn.utils.clip_grad_norm_(params, hp.max_grad_norm)
        optimizer.step()
        tokens_done += real_tokens
        steps_done += 1
        elapsed = time.perf_counter() - timer_start
        emit({"type": "step", "step": step, "total_steps": total_steps, "epoch": round(epoch + (within + 1) / steps_per_epoch, 3),
              "loss": round(step_loss, 5), "lr": hp.learning_rate, "tokens": real_tokens,
              "tokens_per_s": round(tokens_done / elapsed, 1), "eta_s": round(elapsed / steps_done * (total_steps - step), 1),
              "batch": [i for b in micro for i in b]})
        last_of_epoch = within == steps_per_epoch - 1
        if last_of_epoch and val_set:
            val_loss = mean_loss(model, val_set, pad_id, hp.batch_size)
            emit({"type": "eval", "step": step, "epoch": epoch + 1, "val_loss": round(val_loss, 5),
                  "perplexity": round(evaluation.perplexity(val_loss), 3)})
        stopping = should_stop()
        if step % hp.checkpoint_every == 0 or step == total_steps or stopping:
            path = save_checkpoint(model, optimizer, run_dir, step, state)
            emit({"type": "checkpoint", "step": step, "path": path.name})
        if stopping and step < total_steps:
            emit({"type": "cancelled", "step": step})
            return "cancelled"

    adapter_dir = run_dir / "adapter"
    tmp = run_dir / ".adapter-tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(str(tmp))
    shutil.rmtree(adapter_dir, ignore_errors=True)
    os.replace(tmp, adapter_dir)
    metrics = evaluate(model, fmt, job, val_examples, val_set, pad_id, state, emit)
    metrics.update(evaluate_with_retrieval(model, fmt, job, run_dir, emit))
    (run_dir / "metrics.json").write_text(json.dumps(metrics, indent=2))
    emit({"type": "done", "step": total_steps, "metrics": metrics})
    return "done"


def evaluate(model, fmt, job: TrainJob, val_examples: list[dict], val_set: list, pad_id: int,
             state: dict[str, Any], emit: Emit) -> dict[str, Any]:
    """Validation loss/perplexity before and after, and base vs adapted answers on held-out Q&A."""
    metrics: dict[str, Any] = {}
    before, after = state.get("val_loss_before"), mean_loss(model, val_set, pad_id, job.hyperparameters.batch_size)
    if before is not None and after is not None:
        metrics.update({"val_loss_before": round(before, 5), "val_loss_after": round(after, 5),
                        "perplexity_before": round(evaluation.perplexity(before), 3),
                        "perplexity_after": round(evaluation.perplexity(after), 3)})
    questions = [e for e in val_examples if e["kind"] == "chat"][: job.eval_examples]
    if questions:
        emit({"type": "status", "message": f"answering {len(questions)} held-out questions with and without the adapter"})
        model.eval()
        references = [e["messages"][-1]["content"] for e in questions]
        adapted = [generate(model, fmt, e["messages"], job.max_new_tokens)[0] for e in questions]
        with model.disable_adapter():
            base = [generate(model, fmt, e["messages"], job.max_new_tokens)[0] for e in questions]
        metrics["answers_base"] = evaluation.answer_scores(base, references)
        metrics["answers_adapted"] = evaluation.answer_scores(adapted, references)
        metrics["samples"] = [{"question": e["messages"][-2]["content"], "reference": ref, "base": b, "adapted": a}
                              for e, ref, b, a in list(zip(questions, references, base, adapted))[:5]]
    return metrics


def evaluate_with_retrieval(model, fmt, job: TrainJob, run_dir: Path, emit: Emit) -> dict[str, Any]:
    """Base vs adapted on the held-out questions in Chat's prompt, scored as ``eval rag`` scores (``adapters.rag_eval``)."""
    rows = rag_eval.load(run_dir)
    if not rows:
        return {}
    asked = sum(1 for r in rows if r["messages"])
    emit({"type": "status", "message": f"answering {asked} held-out questions with retrieval on "
                                       f"({job.rag.get('kb', '')}), with and without the adapter"})
    model.eval()

    def replies() -> list[str | None]:
        # The prompt is everything before the last message: an empty assistant turn stands for the reply.
        return [generate(model, fmt, r["messages"] + [{"role": "assistant", "content": ""}], job.rag_max_new_tokens)[0]
                if r["messages"] else None for r in rows]

    adapted = replies()
    with model.disable_adapter():
        base = replies()
    from store.embedding import Embedder

    embedder = Embedder(job.rag.get("embedder") or None)
    metrics = rag_eval.score(rows, {"base": base, "adapted": adapted}, embedder, job.rag.get("support_threshold", 0.5))
    metrics["rag"] = {k: job.rag[k] for k in ("kb", "questions", "k") if k in job.rag}
    return metrics
