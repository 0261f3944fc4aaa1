"""The training loop, run inside the worker process (``adapters.worker``); imports torch.

Loads the base (``adapters.lora_model``: a cached safetensors copy of a GGUF, or a Hugging Face
folder; fp32 for LoRA, NF4 for QLoRA) with LoRA on every linear projection, and trains with AdamW
on answer tokens only. Every ``checkpoint_every`` optimizer steps a checkpoint is saved
(``adapters.checkpoints``); a restarted run loads the newest one and continues with the same
data order, because the order is a pure function of the seed, the epoch and the example lengths,
and the RNG is re-seeded every step. With ``patience`` (grounded runs) the epoch with the lowest
validation loss is kept (``checkpoints/best``) and training stops after ``patience`` epochs
without a lower one; the kept epoch is the adapter delivered. At the end the adapter is saved and
the before/after evaluation (``adapters.model_eval``) goes to ``metrics.json`` and the last event.
"""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from adapters import batching, evaluation
from adapters import events as ev
from adapters.base_model import materialize
from adapters.checkpoints import (
    latest_checkpoint,
    load_best,
    load_checkpoint,
    read_best,
    save_adapter,
    save_best,
    save_checkpoint,
)
from adapters.datasets import read_examples
from adapters.job import TrainJob
from adapters.lora_model import add_lora, load_model
from adapters.model_eval import evaluate, evaluate_with_retrieval, mean_loss
from adapters.run_folder import RunFolder


def train(job: TrainJob, folder: RunFolder, emit: ev.Emit, should_stop: Callable[[], bool]) -> str:
    """Train (or resume) the run in ``folder``; returns "done" or "cancelled"."""
    from transformers import AutoTokenizer

    hp = job.hyperparameters
    torch.set_num_threads(job.threads or os.cpu_count() or 1)
    torch.manual_seed(job.seed)
    emit(ev.Status(message="loading the base model"))
    base_folder = materialize(Path(job.base), Path(job.base_cache))
    tokenizer = AutoTokenizer.from_pretrained(str(base_folder))
    fmt = batching.ChatFormat(tokenizer)
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else fmt.end_of_turn_id
    model, targets = add_lora(load_model(base_folder, job.method), job)
    model.train()

    train_set = [fmt.encode(e, hp.max_length) for e in read_examples(folder.train)]
    val_examples = read_examples(folder.val)
    val_set = [fmt.encode(e, hp.max_length) for e in val_examples]
    lengths = [len(e.input_ids) for e in train_set]
    epochs = [batching.plan_epoch(lengths, hp.batch_size, job.seed, epoch) for epoch in range(hp.epochs)]
    steps_per_epoch = math.ceil(len(epochs[0]) / hp.grad_accum)
    total_steps = steps_per_epoch * hp.epochs

    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=hp.learning_rate, weight_decay=hp.weight_decay)
    state: dict[str, Any] = {}
    checkpoint = latest_checkpoint(folder)
    if checkpoint is not None:
        state = load_checkpoint(model, optimizer, checkpoint)
        emit(ev.Resumed(step=state["step"], checkpoint=checkpoint.name))
    start_step = int(state.get("step", 0))
    if "val_loss_before" not in state:
        state["val_loss_before"] = mean_loss(model, val_set, pad_id, hp.batch_size)
    emit(
        ev.Start(
            total_steps=total_steps,
            start_step=start_step,
            method=job.method,
            train_examples=len(train_set),
            val_examples=len(val_set),
            trainable_params=sum(p.numel() for p in params),
            val_loss=state["val_loss_before"],
            lora_targets=targets,
        )
    )

    timer_start, tokens_done = time.perf_counter(), 0
    last_step = start_step if state.get("stopped_early") else total_steps  # stopped before a restart
    for step in range(start_step + 1, last_step + 1):
        epoch, within = divmod(step - 1, steps_per_epoch)
        micro = epochs[epoch][within * hp.grad_accum : (within + 1) * hp.grad_accum]
        optimizer.zero_grad(set_to_none=True)
        step_loss, real_tokens = 0.0, 0
        for k, indices in enumerate(micro):
            torch.manual_seed(job.seed * 1_000_003 + step * 97 + k)  # dropout: same draws after a resume
            items = [train_set[i] for i in indices]
            loss = model(**batching.collate(items, pad_id)).loss / len(micro)
            loss.backward()
            step_loss += loss.item()
            real_tokens += sum(len(e.input_ids) for e in items)
        if hp.max_grad_norm > 0:
            torch.nn.utils.clip_grad_norm_(params, hp.max_grad_norm)
        optimizer.step()
        tokens_done += real_tokens
        steps_done = step - start_step  # in this process
        elapsed = time.perf_counter() - timer_start
        emit(
            ev.Step(
                step=step,
                total_steps=total_steps,
                epoch=round(epoch + (within + 1) / steps_per_epoch, 3),
                loss=round(step_loss, 5),
                lr=hp.learning_rate,
                tokens=real_tokens,
                tokens_per_s=round(tokens_done / elapsed, 1),
                eta_s=round(elapsed / steps_done * (total_steps - step), 1),
                batch=[i for b in micro for i in b],
            )
        )
        no_better = False
        if within == steps_per_epoch - 1 and val_set:  # the last step of an epoch
            val_loss = mean_loss(model, val_set, pad_id, hp.batch_size)
            emit(
                ev.Eval(
                    step=step,
                    epoch=epoch + 1,
                    val_loss=round(val_loss, 5),
                    perplexity=round(evaluation.perplexity(val_loss), 3),
                )
            )
            no_better = hp.patience > 0 and not keep_if_best(model, folder, epoch + 1, step, val_loss, hp.patience)
        if no_better and step < total_steps:
            state["stopped_early"] = True
            emit(
                ev.Status(
                    message=f"validation loss not lower for {hp.patience} epoch(s): stopping after epoch {epoch + 1}"
                )
            )
        stopping = should_stop()
        if step % hp.checkpoint_every == 0 or step == total_steps or stopping or state.get("stopped_early"):
            path = save_checkpoint(model, optimizer, folder, step, state)
            emit(ev.Checkpoint(step=step, path=path.name))
        if state.get("stopped_early"):
            break
        if stopping and step < total_steps:
            emit(ev.Cancelled(step=step))
            return "cancelled"

    best = read_best(folder) if hp.patience > 0 and val_set else None
    if best is not None:
        load_best(model, folder)
        emit(ev.Status(message=f"keeping epoch {best['epoch']}, the lowest validation loss ({best['val_loss']:.4f})"))
    save_adapter(model, folder)
    metrics = evaluate(model, fmt, job, val_examples, val_set, pad_id, state, emit)
    if best is not None:
        metrics["kept_epoch"] = best["epoch"]
        metrics["stopped_early"] = bool(state.get("stopped_early"))
    metrics.update(evaluate_with_retrieval(model, fmt, job, folder, emit))
    folder.metrics.write_text(json.dumps(metrics, indent=2))
    emit(ev.Done(step=total_steps, metrics=metrics))
    return "done"


def keep_if_best(model, folder: RunFolder, epoch: int, step: int, val_loss: float, patience: int) -> bool:
    """Keep this epoch's adapter when its validation loss is the lowest yet; False when ``patience``
    epochs have now passed without one (training should stop)."""
    best = read_best(folder)
    if best is None or val_loss < best["val_loss"]:
        save_best(model, folder, epoch, step, val_loss)
        return True
    return epoch - best["epoch"] < patience
