"""``python app.py --home HOME ARGS`` run in this process (the same parser and printing, without a
torch start-up per call), its exit code and output captured."""

from __future__ import annotations

import contextlib
import io
from pathlib import Path
from types import SimpleNamespace


def cli(home: Path, *args: str) -> SimpleNamespace:
    """``SimpleNamespace(code, out, err)`` of ``app.main(["--home", home, *args])``."""
    from app import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(["--home", str(home), *args])
    return SimpleNamespace(code=code, out=out.getvalue(), err=err.getvalue())
