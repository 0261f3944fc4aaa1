"""The README is the manual: every setting and every command-line flag is in it."""

from __future__ import annotations

import argparse
import dataclasses
import re

from store.settings import Settings
from tests.conftest import ROOT
from ui.cli import build_parser

README = (ROOT / "README.md").read_text(encoding="utf-8")


def command_flags(parser: argparse.ArgumentParser, path: str = "python app.py") -> dict[str, set[str]]:
    """``{"python app.py kb search": {"--kb", "-k", ...}}`` for every command, subcommands included."""
    found: dict[str, set[str]] = {path: set()}
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                found.update(command_flags(sub, f"{path} {name}"))
        elif action.option_strings and not isinstance(action, argparse._HelpAction):
            found[path].update(action.option_strings)
    return found


def test_every_setting_is_documented():
    names = [f.name for f in dataclasses.fields(Settings) if f.name != "home"]
    missing = [n for n in names if f"`{n}`" not in README]
    assert not missing, f"settings missing from the README's Settings table: {missing}"


def test_every_command_line_flag_is_documented():
    missing = sorted(
        f"{command}: {flag}"
        for command, flags in command_flags(build_parser()).items()
        for flag in flags
        if not re.search(rf"(?<![\w-]){re.escape(flag)}(?![\w-])", README)
    )
    assert not missing, "flags missing from the README:\n" + "\n".join(missing)


def test_the_flag_walk_sees_subcommands():
    flags = command_flags(build_parser())
    assert "--mode" in flags["python app.py kb search"] and "--resume" in flags["python app.py train"]
