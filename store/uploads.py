"""Uploaded files: names sanitised, never used as paths as given; copies kept per knowledge base.

An upload named ``../../etc/passwd`` or ``C:\\x\\y.pdf`` or with NUL bytes becomes a plain file
name inside ``$DOMAINSMITH_HOME/uploads/<kb>/``; the resolved destination is checked to be
inside that folder before anything is written.
"""

from __future__ import annotations

import re
import shutil
import unicodedata
from pathlib import Path

from store.errors import DomainsmithError, FileTooLarge

MAX_NAME_LENGTH = 120
_UNSAFE = re.compile(r"[^\w.\- ()+,]", re.UNICODE)


def safe_name(name: str) -> str:
    """A file name safe to create: no folders, no control characters, bounded length, no dot-only names."""
    name = unicodedata.normalize("NFC", name or "")
    name = re.split(r"[\\/]", name)[-1]  # drop any folder part, POSIX or Windows
    name = "".join(ch for ch in name if unicodedata.category(ch)[0] != "C")
    name = _UNSAFE.sub("_", name).strip(" .")
    if not name:
        name = "upload"
    stem, dot, suffix = name.rpartition(".")
    if not dot:
        stem, suffix = name, ""
    suffix = suffix[:16]
    stem = stem[: MAX_NAME_LENGTH - len(suffix) - 1] or "upload"
    return f"{stem}.{suffix}" if suffix else stem


def stage_upload(uploads_dir: Path, kb_name: str, source: Path, original_name: str, max_bytes: int) -> Path:
    """Copy an uploaded temp file to ``uploads/<kb>/<safe name>`` and return the new path.

    The same name uploaded again replaces the earlier copy, so the knowledge base sees a
    changed version of the same document.
    """
    size = source.stat().st_size
    if size > max_bytes:
        raise FileTooLarge(f"the file is {size / 1e6:.1f} MB, over the {max_bytes / 1e6:.0f} MB limit",
                           path=safe_name(original_name))
    folder = (uploads_dir / safe_name(kb_name)).resolve()
    folder.mkdir(parents=True, exist_ok=True)
    target = (folder / safe_name(original_name)).resolve()
    if target.parent != folder:
        raise DomainsmithError("refused an upload name that points outside the uploads folder",
                               path=safe_name(original_name))
    tmp = target.with_name(target.name + ".part")
    shutil.copyfile(source, tmp)
    tmp.replace(target)
    return target
