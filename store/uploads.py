"""Uploaded files: names sanitised, never used as paths as given; copies kept per knowledge base.

An upload named ``../../etc/passwd`` or ``C:\\x\\y.pdf`` or with NUL bytes becomes a plain file
name inside ``$DOMAINSMITH_HOME/uploads/<kb>/``; the resolved destination is checked to be
inside that folder before anything is written. Names are bounded in characters and in UTF-8
bytes (file systems allow 255 bytes, and 120 CJK characters take 360). Each copy is written
under its own temporary name, so two uploads of one name at the same time never mix.
"""

from __future__ import annotations

import errno
import re
import shutil
import unicodedata
import uuid
from pathlib import Path

from store.errors import DomainsmithError, FileTooLarge

MAX_NAME_LENGTH = 120
MAX_NAME_BYTES = 200  # of the 255 a file name may take: room for the temporary and " (2)" suffixes
_UNSAFE = re.compile(r"[^\w.\- ()+,]", re.UNICODE)


def _split_suffix(name: str) -> tuple[str, str]:
    """``("report", "pdf")`` for ``report.pdf``; ``(name, "")`` when there is no dot."""
    stem, dot, suffix = name.rpartition(".")
    return (stem, suffix) if dot else (name, "")


def safe_name(name: str) -> str:
    """A file name safe to create: no folders, no control characters, bounded length, no dot-only names."""
    name = unicodedata.normalize("NFC", name or "")
    name = re.split(r"[\\/]", name)[-1]  # drop any folder part, POSIX or Windows
    name = "".join(ch for ch in name if unicodedata.category(ch)[0] != "C")
    name = _UNSAFE.sub("_", name).strip(" .")
    if not name:
        name = "upload"
    stem, suffix = _split_suffix(name)
    suffix = suffix[:16]
    stem = stem[: MAX_NAME_LENGTH - len(suffix) - 1]
    budget = MAX_NAME_BYTES - len(suffix.encode()) - 1
    stem = stem.encode()[:budget].decode("utf-8", errors="ignore") or "upload"
    return f"{stem}.{suffix}" if suffix else stem


def unique_name(name: str, taken: set[str]) -> str:
    """``name``, or ``stem (2).suffix``, ``stem (3).suffix``... when ``taken`` already holds it."""
    if name not in taken:
        return name
    stem, suffix = _split_suffix(name)
    count = 2
    while (candidate := f"{stem} ({count})" + (f".{suffix}" if suffix else "")) in taken:
        count += 1
    return candidate


def stage_upload(
    uploads_dir: Path, kb_name: str, source: Path, original_name: str, max_bytes: int, taken: set[str] | None = None
) -> Path:
    """Copy an uploaded temp file to ``uploads/<kb>/<safe name>`` and return the new path.

    The same name uploaded again replaces the earlier copy, so the knowledge base sees a
    changed version of the same document. ``taken`` holds the names staged so far in one batch:
    two files of a batch with the same name (``README.md`` from two folders) become
    ``README.md`` and ``README (2).md`` instead of the second overwriting the first.
    """
    size = source.stat().st_size
    if size > max_bytes:
        raise FileTooLarge(
            f"the file is {size / 1e6:.1f} MB, over the {max_bytes / 1e6:.0f} MB limit", path=safe_name(original_name)
        )
    folder = (uploads_dir / safe_name(kb_name)).resolve()
    folder.mkdir(parents=True, exist_ok=True)
    name = safe_name(original_name)
    if taken is not None:
        name = unique_name(name, taken)
        taken.add(name)
    target = (folder / name).resolve()
    if target.parent != folder:
        raise DomainsmithError("refused an upload name that points outside the uploads folder", path=name)
    tmp = folder / f".{uuid.uuid4().hex}.part"  # hidden: a folder walk skips it
    try:
        shutil.copyfile(source, tmp)
        tmp.replace(target)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        full = exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)
        raise DomainsmithError(
            "the disk is full: the upload was not saved"
            if full
            else f"the upload could not be saved ({exc.strerror or exc})",
            path=name,
        ) from exc
    return target
