"""Answering: a question in, a streamed answer with checked citations out.

The flow starts at ``Assistant.ask(question, history, options)`` (``assistant/assistant.py``) and
passes through, in order:

- ``retrieval``: hybrid search in the knowledge base, the follow-up query, the relevance gate;
- ``prompting``: numbered sources wrapped as data, the token budget, the chat messages;
- ``llm``: the llama.cpp runtime that streams the model's reply (``remote_llm``: the same from an
  OpenAI-compatible server, for ``remote:NAME`` models);
- ``reply_check``: the answer policy (``citations`` checks each ``[n]``, ``extractive`` quotes a
  passage when the reply fails, or the abstention reply);
- ``events``: what ``ask`` yields (``Token``, ``Notice``, ``Done(Answer)``).

``evaluation`` runs ``eval rag`` over a question file. This package imports ``store`` only; it
never imports ``adapters`` or ``ui``. The names below are the front door (``from assistant import
Assistant``), imported on first use so that ``import assistant.prompting`` stays light.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from store.lazy_exports import lazy_exports

if TYPE_CHECKING:
    from assistant.assistant import AskOptions, Assistant, ask_once
    from assistant.events import Answer, AnswerEvent, Citation, Done, Notice, Source, Token

_EXPORTS = {
    "Assistant": "assistant.assistant",
    "AskOptions": "assistant.assistant",
    "ask_once": "assistant.assistant",
    **dict.fromkeys(("Answer", "AnswerEvent", "Citation", "Done", "Notice", "Source", "Token"), "assistant.events"),
}

__all__ = [
    "Answer",
    "AnswerEvent",
    "AskOptions",
    "Assistant",
    "Citation",
    "Done",
    "Notice",
    "Source",
    "Token",
    "ask_once",
]

__getattr__ = lazy_exports(__name__, _EXPORTS, globals())
