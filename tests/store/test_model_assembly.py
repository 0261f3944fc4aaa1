"""Assembling a split bundled GGUF, on small fake part packages built per test (no 1 GB file here)."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import time
from collections import namedtuple
from dataclasses import replace
from pathlib import Path

import pytest

from store import model_assembly, model_catalogue
from store.errors import ModelNotFound
from store.model_assembly import InsufficientDisk, ensure_assembled, quick_state
from store.model_catalogue import BundledModel, split_parts

ROOT = Path(__file__).resolve().parents[2]


def make_parts(site: Path, prefix: str, count: int, size: int = 1000) -> bytes:
    """``<prefix>N/data/partNN.bin`` for N = 1..count, each filled with its own byte; the expected whole file."""
    whole = b""
    for n in range(1, count + 1):
        data = bytes([n]) * size
        folder = site / f"{prefix}{n}" / "data"
        folder.mkdir(parents=True)
        (folder.parent / "__init__.py").write_text("")
        (folder / f"part{n:02d}.bin").write_bytes(data)
        whole += data
    return whole


def fake_model(prefix: str, count: int, whole: bytes, **changes) -> BundledModel:
    model = BundledModel(
        key=f"{prefix}-model",
        name=f"Fake {prefix}",
        cost="test only",
        roles=frozenset({model_catalogue.CHAT}),
        licence="Apache-2.0",
        version="0.1.0",
        parts=split_parts(f"{prefix.replace('_', '-')}", prefix, count),
        size=len(whole),
        sha256=hashlib.sha256(whole).hexdigest(),
    )
    return replace(model, **changes)


@pytest.fixture
def fake(tmp_path, monkeypatch):
    """Twelve fake part packages on ``sys.path`` (part10 must come after part9, not after part1)."""
    site = tmp_path / "site"
    prefix = f"fake_part_{os.getpid()}_{tmp_path.name.replace('-', '_')}_"
    whole = make_parts(site, prefix, 12)
    monkeypatch.syspath_prepend(str(site))
    return fake_model(prefix, 12, whole), whole, tmp_path / "bundled", site


def test_parts_are_joined_in_numeric_order_and_verified(fake):
    model, whole, folder, _ = fake
    seen = []
    path = ensure_assembled(model, folder, lambda done, total: seen.append((done, total)))
    assert path == folder / model.file_name and path.read_bytes() == whole
    assert [p.file for p in model.parts][8:11] == ["data/part09.bin", "data/part10.bin", "data/part11.bin"]
    assert seen[0] == (0, len(whole)) and seen[-1] == (len(whole), len(whole))
    assert quick_state(model, folder) == "assembled"
    sidecar = json.loads((folder / (model.file_name + ".verified.json")).read_text())
    assert sidecar["sha256"] == model.sha256 and sidecar["size"] == len(whole)
    assert sorted(p.name for p in folder.iterdir()) == sorted(
        [model.file_name, model.file_name + ".verified.json", model.file_name + ".lock"]
    )
    # Later uses trust the sidecar: no re-hash, no progress.
    again = []
    assert ensure_assembled(model, folder, lambda d, t: again.append(d)) == path and again == []


def test_checksum_mismatch_is_refused_naming_the_packages_and_leaves_nothing(fake):
    model, _whole, folder, _ = fake
    wrong = replace(model, sha256="0" * 64)
    with pytest.raises(ModelNotFound) as exc:
        ensure_assembled(wrong, folder)
    message = str(exc.value)
    assert model.parts[0].distribution in message and model.parts[-1].distribution in message
    assert "--require-hashes -r requirements-models.txt" in message and "make run" in message
    assert not (folder / model.file_name).exists()
    assert not list(folder.glob("*.gguf.assembling-*"))


def test_a_part_of_the_wrong_content_is_refused(fake):
    model, _whole, folder, site = fake
    part = site / model.parts[4].module / model.parts[4].file
    part.write_bytes(b"\xff" * part.stat().st_size)  # same size, other bytes
    with pytest.raises(ModelNotFound, match="does not match its published checksum"):
        ensure_assembled(model, folder)
    assert not (folder / model.file_name).exists()


def test_missing_part_package_is_named(fake):
    model, _whole, folder, _ = fake
    extra = model_catalogue.Part("fake-missing-part13", "fake_missing_part13_nowhere", "data/part13.bin")
    broken = replace(model, parts=model.parts + (extra,))
    with pytest.raises(ModelNotFound, match="fake-missing-part13") as exc:
        ensure_assembled(broken, folder)
    assert "requirements-models.txt" in str(exc.value)
    assert not (folder / model.file_name).exists()


def test_too_little_disk_is_refused_before_writing(fake, monkeypatch):
    model, whole, folder, _ = fake
    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(model_assembly.shutil, "disk_usage", lambda path: usage(10**6, 10**6 - 100, 100))
    with pytest.raises(InsufficientDisk, match=f"{len(whole):,} bytes"):
        ensure_assembled(model, folder)
    assert not (folder / model.file_name).exists() and not list(folder.glob("*.gguf.assembling-*"))


def test_a_crash_half_way_leaves_only_a_temp_file_cleaned_next_time(fake):
    model, whole, folder, _ = fake

    def crash(done: int, total: int) -> None:
        if done > total // 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        ensure_assembled(model, folder, crash)
    assert not (folder / model.file_name).exists()
    # A hard kill would leave its temp file: the next assembly removes it.
    stale = folder / f"{model.file_name}.assembling-99999"
    stale.write_bytes(b"half")
    assert ensure_assembled(model, folder).read_bytes() == whole
    assert not stale.exists()


def test_deleted_file_is_assembled_again(fake):
    model, whole, folder, _ = fake
    path = ensure_assembled(model, folder)
    path.unlink()
    assert quick_state(model, folder) == "absent"
    assert ensure_assembled(model, folder).read_bytes() == whole


def test_damaged_file_is_detected_and_replaced(fake):
    model, whole, folder, _ = fake
    path = ensure_assembled(model, folder)
    with path.open("ab") as f:
        f.write(b"x")
    assert quick_state(model, folder) == "damaged"
    assert ensure_assembled(model, folder).read_bytes() == whole
    # Same size, other content, newer mtime: re-verified, refused, assembled again.
    path.write_bytes(b"\0" * len(whole))
    assert quick_state(model, folder) == "unverified"
    assert ensure_assembled(model, folder).read_bytes() == whole
    # Touched but intact: re-hashed once, kept.
    os.utime(path, ns=(time.time_ns(), time.time_ns() + 10**9))
    hashed = []
    ensure_assembled(model, folder, lambda d, t: hashed.append(d))
    assert hashed and quick_state(model, folder) == "assembled" and path.read_bytes() == whole


CHILD = """
import json, sys, time
sys.path[:0] = [sys.argv[1], sys.argv[2]]
from dataclasses import replace
from store.model_catalogue import BundledModel, split_parts, CHAT
from store.model_assembly import ensure_assembled
spec = json.loads(sys.argv[3])
model = BundledModel(key=spec["key"], name="fake", cost="", roles=frozenset({CHAT}), licence="x",
                     parts=split_parts(spec["dist"], spec["prefix"], spec["count"]), size=spec["size"],
                     sha256=spec["sha256"])
calls = []
def slow(done, total):
    calls.append(done)
    time.sleep(0.15)
path = ensure_assembled(model, sys.argv[4], slow)
print(json.dumps({"path": str(path), "calls": len(calls)}))
"""


def test_two_processes_assembling_at_once_one_waits_and_reuses(fake):
    model, whole, folder, site = fake
    spec = {
        "key": model.key,
        "dist": model.parts[0].distribution[:-1],
        "prefix": model.parts[0].module[:-1],
        "count": len(model.parts),
        "size": model.size,
        "sha256": model.sha256,
    }
    args = [sys.executable, "-c", CHILD, str(ROOT), str(site), json.dumps(spec), str(folder)]
    first = subprocess.Popen(args, stdout=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 30
    while not list(folder.glob("*.gguf.assembling-*")) and time.monotonic() < deadline:
        time.sleep(0.01)  # the first one is writing, holding the lock
    second = subprocess.Popen(args, stdout=subprocess.PIPE, text=True)
    results = [json.loads(p.communicate(timeout=60)[0]) for p in (first, second)]
    assert first.returncode == second.returncode == 0
    assert results[0]["path"] == results[1]["path"] == str(folder / model.file_name)
    assert results[0]["calls"] > len(model.parts) and results[1]["calls"] == 0  # the second only waited
    assert (folder / model.file_name).read_bytes() == whole
    assert not list(folder.glob("*.gguf.assembling-*"))
