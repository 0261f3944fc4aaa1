"""From examples to batches: the chat template, answer-only labels, a seeded order, per-batch padding.

The prompt is rendered with the base model's own chat template, exactly as llama.cpp will render
it when the exported model is served, and tokenized on its own; the answer (with the template's
end-of-turn marker, so the model learns to stop) is tokenized after it. Labels are -100 on the
prompt and on padding, so the loss is on answer tokens only. ``text`` examples (knowledge-base
passages) are plain text with the loss on every token.

Batches are padded to their own longest example. Each epoch shuffles with ``seed + epoch`` and
groups examples of similar length (sorted within windows of ``8 × batch`` examples), so little
is padded and a resumed run replays the very same order.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

IGNORE = -100
_SENTINEL = "\u2063ANSWER\u2063"


@dataclass(frozen=True)
class Encoded:
    input_ids: list[int]
    labels: list[int]

    @property
    def answer_tokens(self) -> int:
        return sum(1 for t in self.labels if t != IGNORE)


class ChatFormat:
    """The base model's chat template, applied to training examples and to prompts."""

    def __init__(self, tokenizer: Any):
        if not getattr(tokenizer, "chat_template", None):
            from store.errors import ModelNotFound

            raise ModelNotFound("the base model has no chat template: use an instruct (chat) model as the base")
        self.tokenizer = tokenizer
        rendered = self.render([{"role": "user", "content": "Q"}, {"role": "assistant", "content": _SENTINEL}])
        self.answer_suffix = rendered.split(_SENTINEL, 1)[1]
        self.end_of_turn_id = self._end_of_turn(self.answer_suffix)

    def render(self, messages: list[dict[str, str]], generation_prompt: bool = False) -> str:
        return self.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=generation_prompt)

    def _end_of_turn(self, suffix: str) -> int:
        ids = self.tokenizer.encode(suffix, add_special_tokens=False)
        special = set(self.tokenizer.all_special_ids) | set(getattr(self.tokenizer, "added_tokens_decoder", {}) or {})
        for token in ids:
            if token in special:
                return int(token)
        if self.tokenizer.eos_token_id is None:
            raise ValueError("the chat template has no end-of-turn token and the tokenizer no eos token")
        return int(self.tokenizer.eos_token_id)

    def prompt_text(self, messages: list[dict[str, str]]) -> str:
        """The prompt for everything before the last (assistant) message, ready for generation."""
        return self.render(messages[:-1], generation_prompt=True)

    def prompt_ids(self, messages: list[dict[str, str]]) -> list[int]:
        return self.tokenizer.encode(self.prompt_text(messages), add_special_tokens=False)

    def encode(self, example: dict[str, Any], max_length: int) -> Encoded:
        if example["kind"] == "text":
            ids = self.tokenizer.encode(example["text"], add_special_tokens=False)[:max_length]
            return Encoded(ids, list(ids))
        messages = example["messages"]
        prompt = self.prompt_text(messages)
        full = self.render(messages)
        if not full.startswith(prompt):
            # Templates that rewrite earlier turns: fall back to the answer plus the known suffix.
            answer = messages[-1]["content"] + self.answer_suffix
        else:
            answer = full[len(prompt) :]
        prompt_ids = self.tokenizer.encode(prompt, add_special_tokens=False)
        answer_ids = self.tokenizer.encode(answer, add_special_tokens=False)
        # Keep the whole answer when it fits; cut the prompt from the left, then the answer's end.
        room = max_length - len(answer_ids)
        if room < 8:
            prompt_ids, answer_ids = prompt_ids[-8:], answer_ids[: max_length - 8]
        elif len(prompt_ids) > room:
            prompt_ids = prompt_ids[-room:]
        return Encoded(prompt_ids + answer_ids, [IGNORE] * len(prompt_ids) + answer_ids)


def plan_epoch(lengths: list[int], batch_size: int, seed: int, epoch: int) -> list[list[int]]:
    """The batches (lists of example indices) of one epoch: shuffled, length-grouped, deterministic."""
    rng = random.Random(seed * 1_000_003 + epoch)
    order = list(range(len(lengths)))
    rng.shuffle(order)
    window = batch_size * 8
    batches: list[list[int]] = []
    for start in range(0, len(order), window):
        chunk = sorted(order[start : start + window], key=lambda i: lengths[i])
        batches += [chunk[i : i + batch_size] for i in range(0, len(chunk), batch_size)]
    rng.shuffle(batches)
    return batches


def collate(items: list[Encoded], pad_id: int):
    """Tensors for one batch padded (on the right) to its longest example."""
    import torch

    width = max(len(e.input_ids) for e in items)
    ids = torch.full((len(items), width), pad_id, dtype=torch.long)
    labels = torch.full((len(items), width), IGNORE, dtype=torch.long)
    mask = torch.zeros((len(items), width), dtype=torch.long)
    for row, e in enumerate(items):
        n = len(e.input_ids)
        ids[row, :n] = torch.tensor(e.input_ids)
        labels[row, :n] = torch.tensor(e.labels)
        mask[row, :n] = 1
    return {"input_ids": ids, "labels": labels, "attention_mask": mask}
