"""The one place where library errors become what Gradio shows the user.

A handler raises ``DomainsmithError`` (a message written for the expert); wrapped with
``user_errors`` it reaches the page as a ``gr.Error`` toast with that message. Generator
handlers (streaming) stay generators, and the signature Gradio reads (``gr.Progress``
defaults, ``gr.SelectData`` annotations) is kept through ``functools.wraps``.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Any

from store.errors import DomainsmithError


def user_errors(fn: Callable[..., Any]) -> Callable[..., Any]:
    """``fn`` with a ``DomainsmithError`` re-raised as ``gr.Error`` carrying its message."""
    import gradio as gr

    if inspect.isgeneratorfunction(fn):

        @functools.wraps(fn)
        def streaming(*args: Any, **kwargs: Any):
            try:
                yield from fn(*args, **kwargs)
            except DomainsmithError as exc:
                raise gr.Error(str(exc)) from exc

        return streaming

    @functools.wraps(fn)
    def plain(*args: Any, **kwargs: Any):
        try:
            return fn(*args, **kwargs)
        except DomainsmithError as exc:
            raise gr.Error(str(exc)) from exc

    return plain
