"""The export smoke test on prompts longer than its old fixed context (grounded runs check five-source prompts)."""

from __future__ import annotations

from adapters import smoke
from store.bundled import chat_model_path


def test_the_context_grows_with_the_longest_check_prompt():
    assert smoke.context_for([]) == smoke.MIN_CONTEXT
    assert smoke.context_for([{"prompt_ids": [1] * 100}]) == smoke.MIN_CONTEXT
    assert smoke.context_for([{"prompt_ids": [1] * 100}, {"prompt_ids": [1] * 1500}]) >= 1500 + smoke.CHECK_TOKENS


def test_a_check_prompt_past_1024_tokens_is_answered():
    """Before, llama.cpp ran with a 1,024-token context and failed to decode such a prompt, so the export
    of a model trained grounded in a knowledge base failed its smoke test."""
    from llama_cpp import Llama

    llm = Llama(model_path=str(chat_model_path()), n_ctx=512, verbose=False, vocab_only=True)
    text = "The pump seal is replaced every 4,000 hours. " * 92
    messages = [{"role": "user", "content": f"{text}\nHow often is the seal replaced?"}]
    prompt = llm.tokenize(
        f"<|im_start|>user\n{messages[0]['content']}<|im_end|>\n<|im_start|>assistant\n".encode(), special=True
    )
    end = llm.token_eos()
    llm.close()
    assert len(prompt) > 1100
    short = [{"role": "user", "content": "Hi"}]
    reference = [
        {"messages": short, "prompt_ids": prompt[:8], "ids": [], "stopped": False, "end_of_turn": end},
        {"messages": messages, "prompt_ids": prompt, "ids": [], "stopped": False, "end_of_turn": end},
    ]
    checks = smoke.check(chat_model_path(), reference, min_agreement=0.0)
    assert checks["prompts"] == 2 and "greedy_agreement" in checks
