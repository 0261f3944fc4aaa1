"""Training memory: the estimate, the ``auto`` rule (plain LoRA or QLoRA) and the batch that fits."""

import json

import pytest

from adapters import memory
from adapters.base_model import BaseModel
from adapters.hyperparameters import preset
from tests.tiny_models import SMOLLM


def test_auto_method_rule_and_memory_refusal():
    hp = preset("standard")
    method, reason, estimate = memory.choose_method("auto", SMOLLM, hp, 120, available=16 * 2**30)
    assert method == "lora" and "plain LoRA" in reason and estimate.peak_bytes < 4 * 2**30
    big = BaseModel(
        **{
            **SMOLLM.__dict__,
            "kind": "hf",
            "n_params": 3_800_000_000,
            "hidden_size": 3072,
            "n_layers": 32,
            "vocab_size": 32064,
        }
    )
    method, reason, _ = memory.choose_method("auto", big, hp, 120, available=20 * 2**30)
    assert method == "qlora" and "4-bit NF4" in reason
    with pytest.raises(memory.InsufficientMemory, match=r"needs about .* GiB of memory .* only 0.5 GiB"):
        memory.choose_method("lora", SMOLLM, hp, 512, available=2**29)


def test_long_examples_train_in_smaller_batches_when_batch_4_does_not_fit():
    """Grounded examples (2,048 tokens) on a 150k-vocabulary base: batch 4 needs about 15 GiB of logits."""
    qwen = BaseModel(
        **{**SMOLLM.__dict__, "n_params": 630_000_000, "hidden_size": 896, "n_layers": 24, "vocab_size": 151_936}
    )
    hp = preset("standard", max_length=2048)
    available = 12 * 2**30
    with pytest.raises(memory.InsufficientMemory):
        memory.choose_method("auto", qwen, hp, 2048, available=available)
    method, _, estimate, fitted = memory.fit_batch("auto", qwen, hp, 2048, available=available)
    assert fitted.batch_size < hp.batch_size
    assert fitted.batch_size * fitted.grad_accum == hp.batch_size * hp.grad_accum  # same examples per step
    assert estimate.peak_bytes <= memory.SAFETY * available
    with pytest.raises(memory.InsufficientMemory):  # a batch size the user chose is kept, and refused
        memory.fit_batch("auto", qwen, hp, 2048, available=available, batch_given=True)


def test_a_grounded_example_is_sized_by_what_the_tokenizer_reads_and_auto_keeps_plain_lora_when_it_fits():
    """Measured (../shared/STACK-NOTES.md): plain LoRA on Qwen2.5-Coder-0.5B, batch 1, a grounded example
    of about 1,100 tokens (4,600 characters of messages), peaked at 11.7 GiB; QLoRA ran half as fast.
    The median row bench/loop.py generated from Debian Policy has 4,389 characters; its longest, 6,070,
    still goes to QLoRA (15.7 GiB estimated: 2,072 tokens at 3 characters a token)."""
    qwen = BaseModel(
        path=None,
        kind="gguf",
        architecture="qwen2",
        n_params=630_167_424,  # as describe() reads the GGUF (its output head is not tied)
        hidden_size=896,
        n_layers=24,
        vocab_size=151_936,
    )
    sources = "Sources:\n" + "\n".join(f'<source n="{n}">' + "policy text " * 65 + "</source>" for n in range(1, 6))
    example = {
        "kind": "chat",
        "question": "What must a package's copyright file hold?",
        "messages": [
            {"role": "system", "content": "You answer from the sources. " * 10},
            {"role": "user", "content": sources + "\n\nQuestion: What must a package's copyright file hold?"},
            {"role": "assistant", "content": "The full licence text [2]."},
        ],
    }
    chars = memory.example_chars(example)
    assert 4_400 <= chars < len(json.dumps(example))  # the JSON around the messages is not read by the tokenizer
    hp = preset("standard", batch_size=1, max_length=2048)
    tokens = memory.tokens_from_chars(chars)
    assert memory.estimate(qwen, "lora", hp, tokens).gib >= 11.7, "still on the high side of the measured peak"
    assert memory.choose_method("auto", qwen, hp, tokens, available=int(22.4 * 2**30))[0] == "lora"
    assert memory.choose_method("auto", qwen, hp, tokens, available=16 * 2**30)[0] == "qlora"  # less room: NF4
    standard = preset("standard", max_length=2048)  # batch 4: plain LoRA would need about 40 GiB
    method, reason, _, fitted = memory.fit_batch("auto", qwen, standard, tokens, available=int(22.4 * 2**30))
    assert (method, fitted.batch_size, fitted.grad_accum) == ("lora", 1, 4 * standard.grad_accum), reason
    method, _, _, fitted = memory.fit_batch("auto", qwen, standard, tokens, available=16 * 2**30)
    assert method == "qlora", "no batch makes plain LoRA comfortable: 4-bit NF4, as before"
