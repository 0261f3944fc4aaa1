"""The one place where errors become what the page shows the user.

Errors appear where the user is looking: a failed answer is the assistant's turn in the
conversation (``chat_tab``), a failed action writes its reason into that action's status line
(``errors_into``). ``plain_words`` turns any exception into that text: a ``DomainsmithError``
(a message written for the expert) as a sentence with what to do next, anything else as
"something went wrong" with the details left in the log. ``user_errors`` remains for the few
handlers whose only output is a value (a dropdown, a table): a ``gr.Error`` toast with the same
words. Generator handlers (streaming) stay generators, and the signature Gradio reads
(``gr.Progress`` defaults, ``gr.SelectData`` annotations) is kept through ``functools.wraps``.
"""

from __future__ import annotations

import functools
import inspect
import logging
from collections.abc import Callable
from typing import Any

from store.errors import DomainsmithError, ModelNotFound, RemoteModelError

log = logging.getLogger(__name__)

# What to do next, by kind of error, when its message does not say it already.
_NEXT_STEP: list[tuple[type[DomainsmithError], str]] = [
    (RemoteModelError, "Check that the remote server is running, or choose a local model in the Model box."),
    (ModelNotFound, "Choose another model in the Model box, or see the README's Models section."),
]


def plain_words(exc: BaseException) -> str:
    """What the user reads about ``exc``: the reason, as a sentence, and what to do."""
    if not isinstance(exc, DomainsmithError):
        log.error("unexpected error in a UI action", exc_info=exc)
        return (
            f"Something went wrong ({type(exc).__name__}: {exc}). The details are in the app's log; "
            "try again, and report it if it happens again."
        )
    text = sentence(str(exc))
    step = next((s for kind, s in _NEXT_STEP if isinstance(exc, kind)), "")
    return f"{text} {step}" if step else text


def sentence(text: str) -> str:
    """``text`` with a capital first letter and a final full stop."""
    text = text.strip()
    if not text:
        return text
    text = text[0].upper() + text[1:]
    return text if text[-1] in ".!?…" else text + "."


def error_markdown(exc: BaseException) -> str:
    """A status line for a failed action: "❌ The file is empty." """
    return f"❌ {plain_words(exc)}"


def errors_into(position: int, outputs: int) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Decorate a handler with ``outputs`` outputs: an error becomes ``error_markdown`` in output
    ``position`` (a status line), and the other outputs stay as they are (``gr.skip()``)."""

    def decorate(fn: Callable[..., Any]) -> Callable[..., Any]:
        import gradio as gr

        def failed(exc: BaseException):
            values = [gr.skip()] * outputs
            values[position] = error_markdown(exc)
            return values[0] if outputs == 1 else tuple(values)

        if inspect.isgeneratorfunction(fn):

            @functools.wraps(fn)
            def streaming(*args: Any, **kwargs: Any):
                try:
                    yield from fn(*args, **kwargs)
                except Exception as exc:
                    yield failed(exc)

            return streaming

        @functools.wraps(fn)
        def plain(*args: Any, **kwargs: Any):
            try:
                return fn(*args, **kwargs)
            except Exception as exc:
                return failed(exc)

        return plain

    return decorate


def user_errors(fn: Callable[..., Any]) -> Callable[..., Any]:
    """``fn`` with a ``DomainsmithError`` re-raised as ``gr.Error`` carrying its plain words."""
    import gradio as gr

    if inspect.isgeneratorfunction(fn):

        @functools.wraps(fn)
        def streaming(*args: Any, **kwargs: Any):
            try:
                yield from fn(*args, **kwargs)
            except DomainsmithError as exc:
                raise gr.Error(plain_words(exc)) from exc

        return streaming

    @functools.wraps(fn)
    def plain(*args: Any, **kwargs: Any):
        try:
            return fn(*args, **kwargs)
        except DomainsmithError as exc:
            raise gr.Error(plain_words(exc)) from exc

    return plain
