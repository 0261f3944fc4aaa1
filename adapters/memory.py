"""Memory: estimate a training job's peak before it starts, refuse what the machine cannot hold,
and the ``auto`` rule that picks QLoRA or plain LoRA.

The estimate is deliberately coarse and on the high side. Measured on SmolLM2-135M, batch 4
(../shared/STACK-NOTES.md, bench/train.py): plain LoRA fp32 5.8 GB padded to 256 tokens and
2.5 GB padded per batch; QLoRA NF4 with gradient checkpointing 2.9 GB. Activations and the
vocabulary-wide logits dominate at this size, so NF4 only pays once the fp32 weights themselves
crowd the memory; below that it is slower and less stable (it collapsed at lr 1e-3), so ``auto``
picks plain LoRA whenever it fits.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import psutil

from adapters.base_model import BaseModel
from adapters.hyperparameters import Hyperparameters
from store.errors import DomainsmithError

RUNTIME_BYTES = 600 * 2**20  # torch, transformers, tokenizer, Python
ACTIVATION_FLOATS = 56  # per token, per layer, per hidden unit, without checkpointing (fitted to 5.8 GB above)
CHECKPOINTED_FLOATS = 8  # with gradient checkpointing (QLoRA): one layer's activations at a time, plus inputs
LOGIT_FLOATS = 3  # per token per vocabulary entry: logits, log-softmax, their gradient
SAFETY = 0.85  # refuse a job whose estimate is over this share of the available memory
LORA_PREFERRED_SHARE = 0.6  # auto: plain LoRA while its estimate stays under this share


class InsufficientMemory(DomainsmithError):
    """The job would not fit in this machine's memory."""


@dataclass(frozen=True)
class MemoryEstimate:
    method: str
    peak_bytes: int
    weight_bytes: int
    activation_bytes: int

    @property
    def gib(self) -> float:
        return self.peak_bytes / 2**30


def available_bytes() -> int:
    """Memory available to a new process without swapping (MemAvailable on Linux)."""
    return int(psutil.virtual_memory().available)


def estimate(base: BaseModel, method: str, hp: Hyperparameters, longest_tokens: int) -> MemoryEstimate:
    """Peak resident memory of training ``base`` with ``method`` on batches up to ``longest_tokens`` long."""
    n = max(base.n_params, 1)
    embed = base.vocab_size * base.hidden_size
    if method == "qlora":
        weights = 4 * embed + int(0.55 * max(n - embed, 0))
    else:
        weights = 4 * n
    load_peak = 2 * 4 * n if base.kind == "gguf" else weights  # dequantizing a GGUF holds two fp32 copies briefly
    lora_params = 2 * hp.lora_r * base.hidden_size * 7 * max(base.n_layers, 1)
    optimizer = 16 * lora_params  # weights, gradients, two Adam moments
    tokens = hp.batch_size * min(max(longest_tokens, 16), hp.max_length)
    per_layer = CHECKPOINTED_FLOATS if method == "qlora" else ACTIVATION_FLOATS
    activations = 4 * tokens * (per_layer * base.hidden_size * max(base.n_layers, 1) + LOGIT_FLOATS * base.vocab_size)
    peak = RUNTIME_BYTES + max(load_peak, weights + optimizer + activations)
    return MemoryEstimate(method, peak, weights, activations)


def choose_method(
    requested: str, base: BaseModel, hp: Hyperparameters, longest_tokens: int, available: int | None = None
) -> tuple[str, str, MemoryEstimate]:
    """Resolve ``auto`` and check the job fits; returns (method, reason, estimate).

    Raises ``InsufficientMemory`` when the chosen method (or, for ``auto``, either) cannot fit.
    """
    available = available_bytes() if available is None else available
    lora = estimate(base, "lora", hp, longest_tokens)
    qlora = estimate(base, "qlora", hp, longest_tokens)
    size = f"{base.n_params / 1e6:.0f}M parameters"
    if requested == "auto":
        if lora.peak_bytes <= LORA_PREFERRED_SHARE * available:
            method, reason = (
                "lora",
                (
                    f"plain LoRA: the {size} base fits in memory in full precision (about {lora.gib:.1f} GiB of "
                    f"{available / 2**30:.1f} GiB available); 4-bit NF4 would be slower and save little at this size"
                ),
            )
        else:
            method, reason = (
                "qlora",
                (
                    f"QLoRA: full precision would need about {lora.gib:.1f} GiB "
                    f"of {available / 2**30:.1f} GiB available; "
                    f"4-bit NF4 needs about {qlora.gib:.1f} GiB"
                ),
            )
    elif requested in ("lora", "qlora"):
        method, reason = requested, f"{'QLoRA (4-bit NF4)' if requested == 'qlora' else 'plain LoRA'}, as asked"
    else:
        raise DomainsmithError(f"unknown method {requested!r}: use auto, qlora or lora")
    chosen = lora if method == "lora" else qlora
    if chosen.peak_bytes > SAFETY * available:
        hint = (
            " Try --method qlora, a smaller batch or shorter examples."
            if method == "lora"
            else (" Try a smaller batch, shorter examples or a smaller base model.")
        )
        raise InsufficientMemory(
            f"this job needs about {chosen.gib:.1f} GiB of memory ({method}, {size}, batch {hp.batch_size}, "
            f"up to {min(longest_tokens, hp.max_length)} tokens per example) but only "
            f"{available / 2**30:.1f} GiB is available.{hint}"
        )
    return method, reason, chosen


def fit_batch(
    requested: str,
    base: BaseModel,
    hp: Hyperparameters,
    longest_tokens: int,
    available: int | None = None,
    batch_given: bool = False,
) -> tuple[str, str, MemoryEstimate, Hyperparameters]:
    """``choose_method``, halving the batch (and doubling the accumulation steps, so each optimizer
    step still sees as many examples) until the job fits, unless the batch size was given. ``auto``
    first halves the batch for plain LoRA, and takes QLoRA only when LoRA is not preferred even at
    batch 1.

    Grounded examples are long (sources in the prompt, up to 2,048 tokens): at batch 4 the logits
    alone of a 150k-word vocabulary need about 15 GiB, at batch 1 a quarter of that.
    """
    available = available_bytes() if available is None else available
    if requested == "auto" and not batch_given:
        # Plain LoRA in smaller batches before 4-bit NF4: on two cores it trains grounded rows on the
        # 0.5B about twice as fast (75-81 against 35-45 tok/s), and each step still sees as many examples.
        smaller = hp
        while smaller.batch_size > 1 and not _preferred(base, smaller, longest_tokens, available):
            smaller = replace(smaller, batch_size=smaller.batch_size // 2, grad_accum=smaller.grad_accum * 2)
        if smaller is not hp and _preferred(base, smaller, longest_tokens, available):
            method, reason, estimate = choose_method(requested, base, smaller, longest_tokens, available)
            return method, reason, estimate, smaller
    while True:
        try:
            method, reason, estimate = choose_method(requested, base, hp, longest_tokens, available)
        except InsufficientMemory:
            if batch_given or hp.batch_size <= 1:
                raise
            hp = replace(hp, batch_size=hp.batch_size // 2, grad_accum=hp.grad_accum * 2)
            continue
        return method, reason, estimate, hp


def _preferred(base: BaseModel, hp: Hyperparameters, longest_tokens: int, available: int) -> bool:
    """Whether ``auto`` takes plain LoRA for this job: its estimate within ``LORA_PREFERRED_SHARE``."""
    return estimate(base, "lora", hp, longest_tokens).peak_bytes <= LORA_PREFERRED_SHARE * available


def example_chars(example: dict) -> int:
    """The characters of an example the tokenizer reads: its messages' contents, or its text (not the
    JSON around them, which made a grounded example's 1,100 tokens read as 1,800 and sent ``auto`` to
    QLoRA, half as fast, for a job plain LoRA held in 11.7 GiB: ../shared/STACK-NOTES.md)."""
    if example.get("kind") == "text":
        return len(example.get("text", ""))
    return sum(len(m.get("content", "")) + 16 for m in example.get("messages", []))  # 16: a turn's markers


def tokens_from_chars(chars: int) -> int:
    """A generous token count for text of ``chars`` characters (about 3.5 characters a token, plus template)."""
    return math.ceil(chars / 3.0) + 48
