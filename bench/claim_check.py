"""The claim-level citation check (issue 17) before and after, on cached replies of the default model.

Re-scores the raw replies that ``bench/answer_runs.py`` cached (no model runs): each reply goes
through Chat's answer policy (the relevance gate, then ``check_reply``) twice, with the citation
check as it was (support score alone: ``check_claims=False``) and with the claim check
(``assistant/claims.py``). Prints, per cache: citations of the model's own reply and the share
supported, answers kept / quoted instead / abstained, the eval metrics, and every citation whose
judgement changed, with its sentence, what the claim check found and the passage.

    .venv/bin/python bench/claim_check.py                      # Qwen2.5-Coder-1.5B, Chat's prompt: test half
    .venv/bin/python bench/claim_check.py --half dev           # the same prompt's dev half, when cached
    .venv/bin/python bench/claim_check.py --cache qwen2.5-coder-1.5b-instruct-86f434e0bbb3 --half dev

``--cache`` names folders under ``bench/.cache/answers/`` (repeatable); the default is the one of
Chat's default model and prompt (``prompt_key`` of the grounded style, 320 tokens). The dev half's
replies were cached under an earlier user-message frame with the same system prompt.
"""

from __future__ import annotations

import argparse
import os
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import json  # noqa: E402

from assistant import prompting  # noqa: E402
from assistant.citations import cite, claim_spans, markers, strip_markers  # noqa: E402
from assistant.claims import outside_code, unsupported_claims  # noqa: E402
from assistant.evaluation import Tally, answer_metrics, load_qa  # noqa: E402
from assistant.events import Source  # noqa: E402
from assistant.reply_check import check_reply, is_abstention, refuses, without_abstention  # noqa: E402
from assistant.sentences import split_sentences  # noqa: E402
from bench.answer_runs import CACHE, prompt_key  # noqa: E402
from bench.questions import HALVES, half  # noqa: E402
from store.settings import Settings  # noqa: E402

QUESTIONS = ROOT / "bench" / "data" / "python_docs_questions.jsonl"
DEFAULT_MODEL = "qwen2.5-coder-1.5b-instruct"
MAX_TOKENS = 320  # Settings.max_tokens


def default_cache() -> str:
    grounded = prompting.style("grounded")
    key = prompt_key(grounded["system_prompt"], MAX_TOKENS, grounded["answer_rule"], Settings().source_tokens)
    return f"{DEFAULT_MODEL}-{key}"


def own_citations(record: dict, question: str, embedder, gate: float, support: float, check_claims: bool) -> dict:
    """The citations of the model's own reply as Chat checks it (before any fallback): n -> record."""
    sources = [Source(**s) for s in record["sources"]]
    reply = record["raw"]
    if record["relevance"] < gate or not sources:
        return {}
    if refuses(reply):
        return {}
    if is_abstention(reply):
        reply = without_abstention(reply)
    cited = cite(reply, sources, embedder, support, question=question, check_claims=check_claims)
    out = {}
    sentences = split_sentences(cited.text)
    plain = [strip_markers(s) for s in sentences]
    prose = dict(zip(plain, outside_code(plain), strict=True))
    spans = claim_spans([(p, markers(s)) for p, s in zip(plain, sentences, strict=True)])
    for c in cited.citations:
        # What the claim check finds in the claims this marker covers, against this passage alone
        # (shown for both modes: before, it is what the check would have said).
        reference = f"{c.document}\n{c.section}\n{c.text}"
        claims = [claim for span, numbers in spans if c.n in numbers for claim in span]
        found = [gap for claim in claims for gap in unsupported_claims(prose[claim], [reference], question)]
        out[c.n] = {
            "supported": c.supported,
            "support": c.support,
            "claims": list(dict.fromkeys(found)),
            "sentences": [s for s in sentences if c.n in markers(s)],
            "passage": c.text,
        }
    return out


def run(folder: str, embedder, gate: float, support: float, which: str = "test") -> dict:
    items = {i.id: i for i in half(load_qa(QUESTIONS), which)}
    records = [json.loads(p.read_text()) for p in sorted((CACHE / folder).glob("q*.json"))]
    records = [r for r in records if r["id"] in items]  # a cache may hold both halves
    result = {"cache": folder, "questions": len(records), "modes": {}, "changed": [], "outcomes": {}}
    per_mode = {}
    for mode, check in (("before", False), ("after", True)):
        tally, kept, quoted, abstained, answerable = Tally(), 0, 0, 0, 0
        citations: dict[tuple[str, int], dict] = {}
        for record in records:
            item = items[record["id"]]
            sources = [Source(**s) for s in record["sources"]]
            if record["relevance"] < gate or not sources:
                answer = prompting_abstain(sources)
            else:
                answer = check_reply(record["raw"], item.question, sources, embedder, support, check_claims=check)
            tally.add_answer(item, answer)
            result["outcomes"].setdefault(record["id"], []).append(outcome(answer))
            if not item.unanswerable:
                answerable += 1
                quoted += answer.extractive
                abstained += answer.abstained
                kept += not answer.extractive and not answer.abstained
            for n, c in own_citations(record, item.question, embedder, gate, support, check).items():
                citations[record["id"], n] = c
        supported = sum(c["supported"] for c in citations.values())
        per_mode[mode] = citations
        result["modes"][mode] = {
            "citations": len(citations),
            "supported": supported,
            "supported_share": round(supported / len(citations), 3) if citations else None,
            "own_kept": round(kept / answerable, 3),
            "quoted": round(quoted / answerable, 3),
            "abstained_answerable": round(abstained / answerable, 3),
            **answer_metrics(tally),
        }
    before, after = per_mode["before"], per_mode["after"]
    for key in sorted(set(before) | set(after)):
        old, new = before.get(key), after.get(key)
        if (old and old["supported"]) != (new and new["supported"]) or bool(old) != bool(new):
            result["changed"].append({"id": key[0], "n": key[1], "before": old, "after": new})
    return result


def prompting_abstain(sources):
    from assistant.events import Answer

    return Answer(prompting.ABSTAIN_REPLY, True, [], sources, reason="gate")


def state(citation: dict | None) -> str:
    return "absent" if not citation else ("supported" if citation["supported"] else "unsupported")


def outcome(answer) -> str:
    return "abstained" if answer.abstained else "quoted" if answer.extractive else "kept"


def show(result: dict) -> None:
    print(f"\n{result['cache']}: {result['questions']} questions")
    rows = (
        ("citations of the model's own replies", "citations", "d"),
        ("  supported", "supported", "d"),
        ("  share supported", "supported_share", ".3f"),
        ("answerable: model's reply kept", "own_kept", ".3f"),
        ("answerable: passage quoted instead", "quoted", ".3f"),
        ("answerable: abstained", "abstained_answerable", ".3f"),
        ("keyword accuracy", "keyword_accuracy", ".3f"),
        ("citation support (eval metric)", "citation_support", ".3f"),
        ("abstention precision", "abstention_precision", ".3f"),
        ("abstention recall", "abstention_recall", ".3f"),
    )
    print(f"| {'':40} | {'before':>8} | {'after':>8} |")
    for label, key, spec in rows:
        cells = ["-" if m[key] is None else format(m[key], spec) for m in result["modes"].values()]
        print(f"| {label:40} | {cells[0]:>8} | {cells[1]:>8} |")
    moved = {q: o for q, o in result["outcomes"].items() if o[0] != o[1]}
    print(f"\nanswers that changed: {', '.join(f'{q} {o[0]} -> {o[1]}' for q, o in moved.items()) or 'none'}")
    print(f"\n{len(result['changed'])} citation(s) judged differently (renumbered markers show as absent/present):")
    for change in result["changed"]:
        old, new = change["before"], change["after"]
        print(f"- {change['id']} [{change['n']}]: {state(old)} -> {state(new)}", end="")
        c = new or old
        claims = ", ".join(c["claims"]) or "-"
        print(f" (support {c['support']:.3f}; claims it covers that this passage lacks: {claims})")
        for sentence in c["sentences"]:
            print(textwrap.indent(textwrap.fill(sentence, 110), "    > "))
        print(textwrap.indent(textwrap.fill(c["passage"][:600], 110), "    | "))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cache", action="append", help="a folder under bench/.cache/answers (repeatable)")
    parser.add_argument("--gate", type=float, default=0.50, help="relevance threshold (Chat's default 0.50)")
    parser.add_argument("--support", type=float, default=0.5, help="support threshold (Chat's default 0.5)")
    parser.add_argument("--half", choices=HALVES, default="test", help="questions (default test)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    from store.embedding import Embedder

    embedder = Embedder()
    results = [run(folder, embedder, args.gate, args.support, args.half) for folder in args.cache or [default_cache()]]
    if args.json:
        print(json.dumps(results, indent=1))
        return 0
    for result in results:
        show(result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
