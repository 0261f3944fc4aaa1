"""Uploaded files: sanitised names, staged inside the uploads folder, size-limited."""

from __future__ import annotations

import pytest

from store.errors import FileTooLarge
from store.uploads import MAX_NAME_LENGTH, safe_name, stage_upload


@pytest.mark.parametrize(
    "name, expected",
    [
        ("report.pdf", "report.pdf"),
        ("../../etc/passwd", "passwd"),
        ("/abs/path/manual.docx", "manual.docx"),
        ("C:\\Users\\x\\notes.txt", "notes.txt"),
        ("nul\x00byte.md", "nulbyte.md"),
        ("..", "upload"),
        ("", "upload"),
        ("semi;colon|pipe.html", "semi_colon_pipe.html"),
    ],
)
def test_safe_name(name, expected):
    assert safe_name(name) == expected


def test_long_names_keep_their_suffix():
    name = safe_name("a" * 1000 + ".pdf")
    assert len(name) <= MAX_NAME_LENGTH and name.endswith(".pdf")


def test_stage_upload_stays_inside_the_uploads_folder(tmp_path):
    source = tmp_path / "tmpupload"
    source.write_text("hello")
    uploads = tmp_path / "uploads"
    for hostile in ("../../escape.txt", "/etc/cron.d/job.txt", "x/../../y.txt", "\x00.txt"):
        target = stage_upload(uploads, "kb", source, hostile, max_bytes=1000)
        assert target.parent == (uploads / "kb").resolve() and target.read_text() == "hello"
    assert not (tmp_path / "escape.txt").exists()
    with pytest.raises(FileTooLarge):
        stage_upload(uploads, "kb", source, "big.txt", max_bytes=2)
    odd = stage_upload(uploads, "..", source, "..", max_bytes=1000)
    assert odd == (uploads / "upload" / "upload").resolve()
