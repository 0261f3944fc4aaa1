"""The CLI's progress bar for a bundled model assembled on first use (``store.model_assembly``)."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import TypeVar

from store.model_catalogue import BundledModel, Progress

T = TypeVar("T")


def with_assembly_bar(model: BundledModel | None, work: Callable[[Progress | None], T]) -> T:
    """``work(progress)``; when ``model`` is about to be assembled, ``progress`` draws a tqdm bar on stderr."""
    if model is None:
        return work(None)
    from tqdm import tqdm

    print(f"{model.name}: first use, assembling and verifying {model.size:,} bytes", file=sys.stderr)
    with tqdm(
        total=model.size, unit="B", unit_scale=True, desc=f"assemble {model.key}", file=sys.stderr, disable=None
    ) as bar:

        def progress(done: int, total: int) -> None:
            bar.total = total
            bar.update(done - bar.n)

        return work(progress)
