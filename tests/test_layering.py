"""The layers, enforced: ``app.py`` → ``ui`` → (``assistant``, ``adapters``) → ``store``.

Every import in the packages counts, the lazy ones inside functions too: a layer that reaches
upwards, even lazily, is the start of an import cycle and of logic in the wrong place.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tests.conftest import ROOT

PACKAGES = ("store", "assistant", "adapters", "ui")
# What each package may not import (the layers above it).
FORBIDDEN = {
    "store": {"assistant", "adapters", "ui"},
    "assistant": {"adapters", "ui"},
    "adapters": {"ui"},
    "ui": set(),
}
UI_ONLY = {"gradio"}  # nothing below ui imports gradio
HEAVY_AT_IMPORT = {"torch", "gradio", "llama_cpp", "transformers", "peft", "sentence_transformers"}


def imports(path: Path, top_level_only: bool = False) -> set[str]:
    """The root names of every module ``path`` imports (relative imports excluded: there are none)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    nodes = tree.body if top_level_only else ast.walk(tree)
    found: set[str] = set()
    for node in nodes:
        if isinstance(node, ast.Import):
            found.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module.split(".")[0])
    return found


def modules(package: str) -> list[Path]:
    return sorted((ROOT / package).rglob("*.py"))


@pytest.mark.parametrize("package", PACKAGES)
def test_no_package_imports_a_layer_above_it(package):
    forbidden = FORBIDDEN[package] | (UI_ONLY if package != "ui" else set())
    wrong = {f"{p.relative_to(ROOT)} imports {name}" for p in modules(package) for name in imports(p) & forbidden}
    assert not wrong, "\n".join(sorted(wrong))


def test_store_imports_no_heavy_library_when_imported():
    """Opening a knowledge base must not pay for torch or gradio: the embedder loads torch lazily."""
    wrong = {
        f"{p.relative_to(ROOT)} imports {name} at module level"
        for p in modules("store")
        for name in imports(p, top_level_only=True) & HEAVY_AT_IMPORT
    }
    assert not wrong, "\n".join(sorted(wrong))


def test_the_checker_sees_lazy_imports(tmp_path):
    """The rule is not vacuous: an import inside a function is found."""
    sample = tmp_path / "sample.py"
    sample.write_text("def f():\n    from ui.web import launch\n    import gradio as gr\n", encoding="utf-8")
    assert imports(sample) == {"ui", "gradio"}
    assert imports(sample, top_level_only=True) == set()


def test_every_package_says_where_its_flows_start():
    for package in PACKAGES:
        init = ROOT / package / "__init__.py"
        doc = ast.get_docstring(ast.parse(init.read_text(encoding="utf-8")))
        assert doc and len(doc) > 80, f"{package}/__init__.py has no docstring saying where its flows start"
