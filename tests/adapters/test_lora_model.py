"""QLoRA's base model (adapters.lora_model): NF4 layers stay trainable after an evaluation pass."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")


@pytest.fixture(scope="module")
def biased_base(tmp_path_factory):
    """A tiny random Llama with biases on its attention projections, as Qwen2 has on q/k/v."""
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(
        vocab_size=96,
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=128,
        attention_bias=True,
    )
    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("biased-llama")
    LlamaForCausalLM(config).save_pretrained(str(folder))
    return folder


def test_qlora_trains_after_an_evaluation_pass_with_biased_projections(biased_base):
    """The before-training evaluation runs the NF4 model in eval mode; training must still work and
    reach every layer's LoRA (bitsandbytes' CPU inference repacking used to break both)."""
    from peft import LoraConfig, get_peft_model

    from adapters.lora_model import load_model

    model = load_model(biased_base, "qlora", gradient_checkpointing=False)
    model = get_peft_model(model, LoraConfig(r=4, lora_alpha=8, target_modules="all-linear", task_type="CAUSAL_LM"))
    ids = torch.randint(0, 96, (2, 12))
    model.eval()
    with torch.no_grad():
        model(input_ids=ids)
    model.train()
    loss = model(input_ids=ids, labels=ids).loss
    loss.backward()
    # LoRA's B starts at zero, so only B gets a gradient on the first step.
    first_layer = [p for n, p in model.named_parameters() if "layers.0." in n and "lora_B" in n]
    assert first_layer and all(p.grad is not None and p.grad.abs().sum() > 0 for p in first_layer)
