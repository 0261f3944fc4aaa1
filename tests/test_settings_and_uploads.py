from __future__ import annotations

import pytest

from store.errors import ConfigError, FileTooLarge
from store.settings import Settings
from store.uploads import MAX_NAME_LENGTH, safe_name, stage_upload


def test_precedence_defaults_config_env_overrides(tmp_path):
    home = tmp_path / "h"
    home.mkdir()
    (home / "config.toml").write_text("chunk_tokens = 150\nport = 9000\nmax_file_mb = 5\n")
    env = {"DOMAINSMITH_HOME": str(home), "DOMAINSMITH_PORT": "9100"}
    s = Settings.load(env=env, max_file_mb=7)
    assert s.home == home
    assert (s.chunk_tokens, s.port, s.max_file_mb, s.host) == (150, 9100, 7.0, "127.0.0.1")
    assert s.db_path == home / "domainsmith.db" and s.index_dir == home / "index"
    assert s.parse_limits.max_file_bytes == 7 * 1024 * 1024


def test_defaults_are_safe():
    s = Settings.load(env={})
    assert s.host == "127.0.0.1" and s.password is None and s.max_file_mb == 200


@pytest.mark.parametrize("config, message", [
    ("chunk_tokens = 4\n", "chunk_tokens must be at least"),
    ("colour = 'red'\n", "unknown setting 'colour'"),
    ("port = 'high'\n", "port must be int"),
    ("this is not toml", "cannot read the config file"),
])
def test_bad_config_is_a_clear_error(tmp_path, config, message):
    (tmp_path / "config.toml").write_text(config)
    with pytest.raises(ConfigError, match=message):
        Settings.load(home=tmp_path, env={})


@pytest.mark.parametrize("name, expected", [
    ("report.pdf", "report.pdf"),
    ("../../etc/passwd", "passwd"),
    ("/abs/path/manual.docx", "manual.docx"),
    ("C:\\Users\\x\\notes.txt", "notes.txt"),
    ("nul\x00byte.md", "nulbyte.md"),
    ("..", "upload"),
    ("", "upload"),
    ("semi;colon|pipe.html", "semi_colon_pipe.html"),
])
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
