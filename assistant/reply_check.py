"""The answer policy: what Chat makes of a model's grounded reply.

A reply is kept when it cites a source that supports it and addresses the question (an
abstention sentence tacked onto a real answer is dropped, and the rest judged); otherwise the
best sentence of a passage that answers the question is quoted with its citation; otherwise the
answer is the abstention reply. Fine-tuning scores base and adapted replies with retrieval on
through this same function (``adapters.rag_eval``), so its numbers are what Chat would show.
"""

from __future__ import annotations

from collections.abc import Sequence

from assistant.citations import cite
from assistant.events import Answer, Source
from assistant.extractive import addresses, best_sentence
from assistant.prompting import ABSTAIN_REPLY
from assistant.sentences import split_sentences
from store.terms import key_terms


def check_reply(
    reply: str,
    question: str,
    sources: Sequence[Source],
    embedder,
    support_threshold: float,
    *,
    check_claims: bool = True,
    unknown: Sequence[str] = (),
) -> Answer:
    """The reply cited and checked, a quoted passage, or the abstention (see the module docstring).

    ``check_claims=False``: citations judged by their support score alone, as before the claim check
    (``bench/claim_check.py`` compares the two). ``unknown``: the question's words no passage of the
    knowledge base contains (``Retrieval.unknown_names``): a sentence naming one is unsupported."""
    if is_abstention(reply):
        if refuses(reply):
            return Answer(ABSTAIN_REPLY, True, [], list(sources), reason="the model found no answer in the sources")
        reply = without_abstention(reply)
    cited = cite(
        reply, sources, embedder, support_threshold, question=question, check_claims=check_claims, unknown=unknown
    )
    if any(c.supported for c in cited.citations) and addresses(question, cited.text, embedder):
        return Answer(cited.text, False, cited.citations, list(sources))
    extract = best_sentence(question, sources, embedder)
    if extract is not None and extract.score >= support_threshold:
        quoted = cite(
            f"{extract.sentence} [{extract.n}]",
            sources,
            embedder,
            support_threshold,
            question=question,
            check_claims=check_claims,
        )
        return Answer(quoted.text, False, quoted.citations, list(sources), extractive=True)
    return Answer(ABSTAIN_REPLY, True, [], list(sources), reason="the answer is not supported by the sources")


# An answer with its abstention sentence removed must still say this much to be judged as an answer
# (a 1.5B model sometimes answers correctly, then adds "The documents do not contain the answer").
MIN_ANSWER_TERMS = 4


def second_look_due(reply: str, relevance: float, threshold: float) -> bool:
    """The model refused although retrieval scored a passage at least ``threshold`` (0: never asked again).

    A 1.5B model sometimes answers a question whose answer is in its first passage with the
    abstention sentence; asked again with its reply begun as an answer, it often gives the answer.
    The relevance gate's own threshold lets unanswerable questions through on some collections,
    so this one sits higher (``Settings.second_look_relevance``, chosen in bench/answer_policy.py).
    """
    return threshold > 0 and relevance >= threshold and refuses(reply)


def after_second_look(refusal: Answer, second: Answer) -> Answer:
    """The second look's answer when the model's own reply was kept; the refusal otherwise.

    A reply got by asking again is not quoted over (the extractive fallback): on the refused
    questions of the dev half, the best sentence answered only one in three.
    """
    return second if not second.abstained and not second.extractive else refusal


def refuses(reply: str) -> bool:
    """True when the reply is the model's abstention and says too little besides to be an answer."""
    return is_abstention(reply) and len(key_terms(without_abstention(reply))) < MIN_ANSWER_TERMS


def without_abstention(reply: str) -> str:
    """The reply without its abstention sentences (the rest is checked like any answer)."""
    return " ".join(s for s in split_sentences(reply) if not is_abstention(s)).strip()


def is_abstention(reply: str) -> bool:
    """True when the model said, in any of its usual words, that the sources hold no answer."""
    text = reply.lower()
    return (
        ABSTAIN_REPLY.lower().rstrip(".") in text
        or "do not contain the answer" in text
        or "does not contain the answer" in text
    )
