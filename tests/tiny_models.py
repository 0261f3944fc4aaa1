"""Tiny random chat models for the fine-tune tests, built offline in a folder the test gives.

- a Llama (hidden 64, 2 layers) with SmolLM2's real tokenizer and ChatML template, read from the
  bundled GGUF, so the GGUF converter recognises its pre-tokenizer;
- a Phi-3 (hidden 64, 2 layers, fused ``qkv_proj``/``gate_up_proj``) with a small sentencepiece
  tokenizer trained here on a few paragraphs (the converter wants ``tokenizer.model`` for Phi-3,
  ../shared/STACK-NOTES.md) and Phi-3's chat template.

Weights use ``initializer_range=0.2`` so greedy decoding has clear winners (a 0.02 init gives
near-uniform logits, where any rounding flips the argmax).
"""

from __future__ import annotations

import json
from pathlib import Path

PHI3_TEMPLATE = (
    "{% for message in messages %}{{ '<|' + message['role'] + '|>\n' + message['content'] + '<|end|>\n' }}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|assistant|>\n' }}{% endif %}"
)

CORPUS = (
    """The pump station runs three centrifugal pumps in parallel. Each pump has a mechanical seal that is
replaced every eight thousand hours. The operator checks the vibration level every morning and records it in the
log. When the vibration exceeds the limit, the pump is stopped and inspected. The impeller is made of bronze and
the casing of cast iron. Questions and answers about maintenance help new technicians learn the station quickly.
What is the seal interval? The seal is replaced every eight thousand hours. Who checks the vibration? The operator.
"""
    * 3
)


def smollm_tokenizer(dest: Path) -> Path:
    from transformers import AutoTokenizer

    from store.bundled import chat_model_path

    gguf = chat_model_path()
    AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name).save_pretrained(str(dest))
    return dest


def tiny_llama(dest: Path, tokenizer_dir: Path, seed: int = 0) -> Path:
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    tok = AutoTokenizer.from_pretrained(str(tokenizer_dir))
    config = LlamaConfig(
        vocab_size=len(tok),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=1024,
        bos_token_id=tok.bos_token_id,
        eos_token_id=tok.eos_token_id,
        pad_token_id=tok.pad_token_id,
        tie_word_embeddings=True,
        initializer_range=0.2,
    )
    torch.manual_seed(seed)
    LlamaForCausalLM(config).save_pretrained(str(dest))
    tok.save_pretrained(str(dest))
    return dest


def tiny_phi3(dest: Path, seed: int = 0) -> Path:
    import sentencepiece as spm
    import torch
    from transformers import AutoTokenizer, Phi3Config, Phi3ForCausalLM

    dest.mkdir(parents=True, exist_ok=True)
    text = dest / "corpus.txt"
    text.write_text(CORPUS)
    spm.SentencePieceTrainer.train(
        input=str(text),
        model_prefix=str(dest / "tokenizer"),
        vocab_size=300,
        model_type="bpe",
        user_defined_symbols=["<|end|>", "<|user|>", "<|assistant|>", "<|system|>", "<|endoftext|>"],
        bos_id=1,
        eos_id=2,
        unk_id=0,
        pad_id=-1,
        byte_fallback=True,
        minloglevel=2,
    )
    text.unlink()
    (dest / "tokenizer.vocab").unlink()
    (dest / "tokenizer_config.json").write_text(
        json.dumps({"tokenizer_class": "LlamaTokenizer", "legacy": False, "add_bos_token": False})
    )
    tok = AutoTokenizer.from_pretrained(str(dest))
    tok.eos_token = "<|end|>"
    tok.pad_token = "<|endoftext|>"
    tok.chat_template = PHI3_TEMPLATE
    config = Phi3Config(
        vocab_size=len(tok),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=4,
        max_position_embeddings=1024,
        original_max_position_embeddings=1024,
        bos_token_id=1,
        eos_token_id=tok.eos_token_id,
        pad_token_id=tok.pad_token_id,
        initializer_range=0.2,
        tie_word_embeddings=False,
    )
    torch.manual_seed(seed)
    Phi3ForCausalLM(config).save_pretrained(str(dest))
    tok.save_pretrained(str(dest))
    return dest


def qa_rows(count: int = 24) -> list[dict[str, str]]:
    """Short, learnable Q&A pairs about made-up pumps."""
    colours = ["red", "blue", "green", "black", "white", "grey"]
    return [
        {"question": f"What colour is pump {i}?", "answer": f"Pump {i} is {colours[i % len(colours)]}."}
        for i in range(1, count + 1)
    ]


def _smollm_shape():
    from adapters.base_model import BaseModel

    return BaseModel(
        path=None,
        kind="gguf",
        architecture="llama",
        n_params=134_515_008,
        hidden_size=576,
        n_layers=30,
        vocab_size=49152,
    )


SMOLLM = _smollm_shape()  # the bundled SmolLM2-135M's shape, as ``adapters.base_model.describe`` reads it
