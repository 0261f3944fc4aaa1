"""Settings: precedence, coercion from the real type hints, clear errors, and a help line per setting."""

from __future__ import annotations

from dataclasses import dataclass, fields
from pathlib import Path

import pytest

from store.coerce import coerce
from store.errors import ConfigError
from store.settings import Settings, _setting


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


@pytest.mark.parametrize(
    "config, message",
    [
        ("chunk_tokens = 4\n", "chunk_tokens must be at least"),
        ("colour = 'red'\n", "unknown setting 'colour'"),
        ("port = 'high'\n", "port must be int"),
        ("this is not toml", "cannot read the config file"),
    ],
)
def test_bad_config_is_a_clear_error(tmp_path, config, message):
    (tmp_path / "config.toml").write_text(config)
    with pytest.raises(ConfigError, match=message):
        Settings.load(home=tmp_path, env={})


# -- coercion from the real type hints ----------------------------------------------------------


@dataclass(frozen=True)
class FlagSettings(Settings):
    """Settings with the field types the app's own settings do not use yet."""

    verbose: bool = _setting(True, "talk more")
    limit: int | None = _setting(None, "an optional count")
    folder: Path | None = _setting(None, "an optional folder")


@pytest.mark.parametrize(
    "text, expected",
    [
        ("false", False),
        ("False", False),
        ("0", False),
        ("no", False),
        ("OFF", False),
        ("true", True),
        ("TRUE", True),
        ("1", True),
        ("yes", True),
        ("on", True),
        (" On ", True),
    ],
)
def test_bool_from_the_environment(text, expected):
    assert FlagSettings.load(env={"DOMAINSMITH_VERBOSE": text}).verbose is expected


@pytest.mark.parametrize("toml, expected", [("false", False), ("true", True), ("'off'", False)])
def test_bool_from_toml(tmp_path, toml, expected):
    (tmp_path / "config.toml").write_text(f"verbose = {toml}\n")
    assert FlagSettings.load(home=tmp_path, env={}).verbose is expected


def test_optional_int_and_path_from_the_environment(tmp_path):
    s = FlagSettings.load(env={"DOMAINSMITH_LIMIT": "12", "DOMAINSMITH_FOLDER": "~/data"})
    assert s.limit == 12 and isinstance(s.limit, int)
    assert s.folder == Path.home() / "data"
    assert FlagSettings.load(env={"DOMAINSMITH_LIMIT": ""}).limit is None
    assert FlagSettings.load(env={}).limit is None


def test_optional_str_from_the_environment():
    assert Settings.load(env={"DOMAINSMITH_PASSWORD": "s3cret"}).password == "s3cret"
    assert Settings.load(env={"DOMAINSMITH_PASSWORD": ""}).password is None


def test_numbers_from_the_environment_are_numbers():
    s = Settings.load(
        env={"DOMAINSMITH_PORT": "8123", "DOMAINSMITH_KEYWORD_WEIGHT": "0.25", "DOMAINSMITH_TEMPERATURE": "1"}
    )
    assert (s.port, s.keyword_weight, s.temperature) == (8123, 0.25, 1.0)
    assert isinstance(s.port, int) and isinstance(s.temperature, float)


def test_toml_values_of_the_right_type_pass_through(tmp_path):
    (tmp_path / "config.toml").write_text("max_file_mb = 3\ntemperature = 0.7\nhost = '0.0.0.0'\n")
    s = Settings.load(home=tmp_path, env={})
    assert s.max_file_mb == 3.0 and isinstance(s.max_file_mb, float)
    assert (s.temperature, s.host) == (0.7, "0.0.0.0")


def test_bad_int_from_the_environment_names_key_source_and_type():
    with pytest.raises(ConfigError) as caught:
        Settings.load(env={"DOMAINSMITH_PORT": "high"})
    message = str(caught.value)
    assert "port must be int" in message and "'high'" in message
    assert "environment" in message and "DOMAINSMITH_PORT" in message


def test_bad_value_in_the_config_file_names_the_file(tmp_path):
    config = tmp_path / "config.toml"
    config.write_text("chunk_tokens = 12.5\n")
    with pytest.raises(ConfigError, match=r"chunk_tokens must be int, got 12\.5 \(from .*config\.toml\)"):
        Settings.load(home=tmp_path, env={})


@pytest.mark.parametrize(
    "env, message",
    [
        ({"DOMAINSMITH_VERBOSE": "maybe"}, r"verbose must be bool \(true or false\), got 'maybe'"),
        ({"DOMAINSMITH_LIMIT": "twelve"}, r"limit must be int or empty, got 'twelve'"),
    ],
)
def test_bad_bool_and_optional_int_are_clear_errors(env, message):
    with pytest.raises(ConfigError, match=message):
        FlagSettings.load(env=env)


def test_a_toml_bool_is_not_a_number(tmp_path):
    (tmp_path / "config.toml").write_text("port = true\n")
    with pytest.raises(ConfigError, match="port must be int, got True"):
        Settings.load(home=tmp_path, env={})


def test_overrides_are_coerced_and_checked():
    s = Settings.load(env={}, port="8000")
    assert s.port == 8000
    assert s.replace(max_tokens="64").max_tokens == 64
    with pytest.raises(ConfigError, match=r"unknown setting 'colour' \(from override\)"):
        s.replace(colour="red")
    with pytest.raises(ConfigError, match=r"max_tokens must be int, got 'many' \(from override\)"):
        s.replace(max_tokens="many")


def test_unknown_environment_variables_are_not_settings():
    assert Settings.load(env={"DOMAINSMITH_FUZZ_EXAMPLES": "10"}) == Settings.load(env={})


@pytest.mark.parametrize(
    "value, hint, expected",
    [
        ("3", float, 3.0),
        (3, float, 3.0),
        (4.0, int, 4),
        ("x", str, "x"),
        (None, int | None, None),
    ],
)
def test_coerce(value, hint, expected):
    assert coerce(value, hint) == expected and type(coerce(value, hint)) is type(expected)


# -- documentation ------------------------------------------------------------------------------


def test_every_setting_has_a_one_line_help():
    described = Settings.describe()
    assert [name for name, _, _ in described] == [f.name for f in fields(Settings)]
    for name, _, help_text in described:
        assert help_text and "\n" not in help_text, name
    defaults = {name: default for name, default, _ in described}
    assert defaults["port"] == 7860 and defaults["password"] is None
    assert defaults["home"] == Path.home() / ".domainsmith"
