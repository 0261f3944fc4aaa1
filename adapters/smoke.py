"""The export smoke test, run as ``python -m adapters.smoke GGUF REFERENCE_JSON MIN_AGREEMENT``.

Loads the GGUF in llama-cpp-python and checks, against the merged model's greedy answers that
``adapters.export.merge`` wrote to REFERENCE_JSON: the chat template and stop token are in the
metadata and the stop token is the template's end-of-turn token; a chat completion renders
through the embedded template; generation stops at end of turn where the merged model stopped;
greedy tokens agree (the share of the first ``CHECK_TOKENS`` tokens before the first difference,
averaged over prompts). Prints one JSON line ``{"ok", "checks", "error"}``; exit 0 when ok.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

CHECK_TOKENS = 16
MIN_CONTEXT = 1024


def context_for(reference: list[dict[str, Any]]) -> int:
    """A context window that holds the longest check prompt and its answer: a model trained grounded
    in a knowledge base is checked on prompts with five sources, past 1,024 tokens (llama.cpp then
    fails to decode them: ``llama_decode returned 1``)."""
    longest = max((len(ref["prompt_ids"]) for ref in reference), default=0)
    return max(MIN_CONTEXT, longest + CHECK_TOKENS + 64)


class SmokeFailed(Exception):
    pass


def check(gguf: Path, reference: list[dict[str, Any]], min_agreement: float) -> dict[str, Any]:
    """The checks' results; raises ``SmokeFailed`` saying which failed."""
    from llama_cpp import Llama

    try:
        # One thread: no thread barriers to stall on a busy machine.
        llm = Llama(model_path=str(gguf), n_ctx=context_for(reference), n_threads=1, verbose=False)
    except (ValueError, RuntimeError) as exc:  # llama-cpp-python's load errors
        raise SmokeFailed(f"llama.cpp cannot load the exported model: {exc}") from exc
    try:
        meta = llm.metadata
        if not meta.get("tokenizer.chat_template"):
            raise SmokeFailed("the exported model has no chat template in its metadata")
        stop_ids = {int(meta[k]) for k in ("tokenizer.ggml.eos_token_id", "tokenizer.ggml.eot_token_id") if k in meta}
        checks: dict[str, Any] = {"chat_template": True, "prompts": len(reference)}
        if reference:
            end = reference[0]["end_of_turn"]
            if end not in stop_ids:
                raise SmokeFailed(
                    f"the exported model's stop token ({sorted(stop_ids)}) is not the chat "
                    f"template's end-of-turn token ({end}): it would not stop at end of turn"
                )
            stop_ids.add(end)
            reply = llm.create_chat_completion(reference[0]["messages"], max_tokens=CHECK_TOKENS, temperature=0.0)
            checks["chat_completion"] = reply["choices"][0]["finish_reason"]
        agreements, stops = [], []
        for ref in reference:
            ids = _greedy(llm, ref["prompt_ids"], stop_ids, CHECK_TOKENS)
            stopped = len(ids) < CHECK_TOKENS
            agreements.append(_prefix_agreement(ref["ids"], ids))
            if ref["stopped"]:
                stops.append(stopped)
        agreement = sum(agreements) / len(agreements) if agreements else 1.0
        checks["greedy_agreement"] = round(agreement, 4)
        checks["stops_at_end_of_turn"] = f"{sum(stops)}/{len(stops)}"
        if agreement < min_agreement:
            raise SmokeFailed(
                f"the GGUF's greedy answers agree with the merged model on only {agreement:.0%} of "
                f"their tokens (at least {min_agreement:.0%} needed): try a less lossy --quant"
            )
        if stops and sum(stops) < len(stops) / 2:
            raise SmokeFailed("the GGUF does not stop at the end of its turn where the merged model does")
        return checks
    finally:
        llm.close()


def _greedy(llm, prompt_ids: list[int], stop_ids: set[int], limit: int) -> list[int]:
    out: list[int] = []
    llm.reset()
    for token in llm.generate(prompt_ids, top_k=1, top_p=1.0, min_p=0.0, temp=0.0, repeat_penalty=1.0):
        if token in stop_ids or len(out) >= limit:
            break
        out.append(int(token))
    return out


def _prefix_agreement(a: list[int], b: list[int]) -> float:
    width = min(CHECK_TOKENS, max(len(a), len(b)))
    if width == 0:
        return 1.0
    same = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        same += 1
    return min(same, width) / width


def main(argv: list[str]) -> int:
    gguf, ref_path, min_agreement = Path(argv[0]), Path(argv[1]), float(argv[2])
    try:
        checks = check(gguf, json.loads(ref_path.read_text()), min_agreement)
    except SmokeFailed as exc:
        print(json.dumps({"ok": False, "error": str(exc)}))
        return 1
    print(json.dumps({"ok": True, "checks": checks}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
