"""The heading trail every structured parser keeps: which section the next text belongs to."""

from __future__ import annotations


class HeadingTrail:
    """Headings seen so far, outermost first; a heading closes every open one of its level or deeper."""

    def __init__(self) -> None:
        self._open: list[tuple[int, str]] = []
        self.first_h1 = ""  # the first level-1 heading: the document's title when nothing better says

    def enter(self, level: int, title: str) -> tuple[str, ...]:
        """Open a heading; returns the new path (the heading's own section)."""
        if level == 1 and not self.first_h1:
            self.first_h1 = title
        while self._open and self._open[-1][0] >= level:
            self._open.pop()
        self._open.append((level, title))
        return self.path

    @property
    def path(self) -> tuple[str, ...]:
        return tuple(title for _, title in self._open)
