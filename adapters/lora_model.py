"""The model in the worker (and in export's merge): load a base, wrap it in LoRA, answer greedily. Imports torch.

The base is loaded in fp32 for plain LoRA or as 4-bit NF4 through bitsandbytes for QLoRA. LoRA
goes on every linear projection the model has, output head excluded: peft's ``"all-linear"``
finds them from the model itself, so Phi-3's fused ``qkv_proj``/``gate_up_proj`` and
bitsandbytes' ``Linear4bit`` layers are covered without a list of names.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from adapters.batching import ChatFormat
from adapters.job import TrainJob
from store.errors import ModelNotFound


def load_model(folder: Path, method: str, gradient_checkpointing: bool = True):
    """The base model for ``method`` ("lora": fp32; "qlora": NF4 weights, fp32 compute)."""
    from transformers import AutoModelForCausalLM, BitsAndBytesConfig

    kwargs: dict[str, Any] = {"dtype": torch.float32, "use_safetensors": True}
    if method == "qlora":
        kwargs["quantization_config"] = BitsAndBytesConfig(
            load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_compute_dtype=torch.float32
        )
    try:
        model = AutoModelForCausalLM.from_pretrained(str(folder), **kwargs)
    except (ValueError, KeyError) as exc:
        raise ModelNotFound(f"unsupported or damaged base model ({exc})", path=folder) from exc
    if method == "qlora":
        from peft import prepare_model_for_kbit_training

        keep_weights_trainable(model)
        model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=gradient_checkpointing)
    return model


def keep_weights_trainable(model) -> None:
    """Stop bitsandbytes repacking NF4 weights for CPU inference on the first forward in eval mode.

    On CPUs with AVX512-BF16 a ``Linear4bit`` run in eval mode (the before-training evaluation)
    converts its weight to a packed inference layout and never converts it back; in training the
    layer then takes an inference kernel that autograd cannot see through: with a bias (Qwen2's
    q/k/v projections) training crashed ("a view of a leaf Variable that requires grad is being used
    in an in-place operation"), and without one the gradient to the layers below would be lost.
    """
    import bitsandbytes as bnb

    for module in model.modules():
        if isinstance(module, bnb.nn.Linear4bit):
            module.support_avx512bf16_for_cpu = False


def lora_targets(peft_model) -> list[str]:
    """The projection names LoRA was put on (``q_proj``, ...), from the modules peft resolved "all-linear" to."""
    resolved = peft_model.peft_config[peft_model.active_adapter].target_modules  # full module paths
    return sorted({name.rsplit(".", 1)[-1] for name in resolved})


def add_lora(model, job: TrainJob):
    """The peft model with LoRA on every linear projection (not the output head), and the projection names."""
    from peft import LoraConfig, get_peft_model

    hp = job.hyperparameters
    config = LoraConfig(
        r=hp.lora_r,
        lora_alpha=hp.lora_alpha,
        lora_dropout=hp.lora_dropout,
        target_modules="all-linear",
        task_type="CAUSAL_LM",
        bias="none",
    )
    try:
        wrapped = get_peft_model(model, config)
    except ValueError as exc:  # peft: no module matched
        raise ModelNotFound(f"found no linear projections to put LoRA on in this model ({exc})") from exc
    targets = lora_targets(wrapped)
    if not targets:
        raise ModelNotFound("found no linear projections to put LoRA on in this model")
    return wrapped, targets


@torch.no_grad()
def generate(model, fmt: ChatFormat, messages: list[dict], max_new_tokens: int) -> tuple[str, list[int]]:
    """Greedy answer to ``messages[:-1]``: (text, token ids), stopping at the end-of-turn token."""
    ids = torch.tensor([fmt.prompt_ids(messages)])
    out = model.generate(
        input_ids=ids,
        attention_mask=torch.ones_like(ids),
        max_new_tokens=max_new_tokens,
        do_sample=False,
        eos_token_id=fmt.end_of_turn_id,
        pad_token_id=fmt.end_of_turn_id,
    )
    new = out[0, ids.shape[1] :].tolist()
    return fmt.tokenizer.decode(new, skip_special_tokens=True).strip(), new
