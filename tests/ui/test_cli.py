"""The CLI contract that outside tools rely on: subcommands, flags and JSON shapes."""

from __future__ import annotations

import json

import pytest

from tests import factories as f
from tests.conftest import run_app


class Result:
    def __init__(self, returncode: int, stdout: str, stderr: str):
        self.returncode, self.stdout, self.stderr = returncode, stdout, stderr


@pytest.fixture
def cli(capsys):
    """Run ``app.main(ARGS)`` in this process (the same parser and printing, without a torch start-up each time)."""
    from app import main

    def _run(*args: str) -> Result:
        capsys.readouterr()
        code = main(list(args))
        out, err = capsys.readouterr()
        return Result(code, out, err)

    return _run


@pytest.fixture
def docs(tmp_path):
    folder = tmp_path / "manuals"
    (folder / "pumps").mkdir(parents=True)
    f.make_pdf(folder / "pumps" / "turbine.pdf", pages=3)
    f.make_markdown(folder / "guide.md")
    return folder


def test_help_lists_the_subcommands():
    result = run_app("--help")
    assert result.returncode == 0
    for word in ("serve", "kb", "--host", "--port"):
        assert word in result.stdout
    kb_help = run_app("kb", "--help").stdout
    for word in ("add", "list", "search", "remove", "reindex"):
        assert word in kb_help


def test_kb_commands_end_to_end(docs, cli):
    added = run_app("kb", "add", str(docs), "--kb", "manuals")
    assert added.returncode == 0, added.stderr
    assert "2 added" in added.stdout

    listing = json.loads(cli("kb", "list", "--kb", "manuals", "--json").stdout)
    assert listing["kb"] == "manuals"
    by_source = {d["source"]: d for d in listing["documents"]}
    assert set(by_source) == {"pumps/turbine.pdf", "guide.md"}
    pdf = by_source["pumps/turbine.pdf"]
    assert set(pdf) == {"id", "name", "source", "type", "pages", "chunks", "size_bytes", "added"}
    assert (pdf["name"], pdf["type"], pdf["pages"]) == ("turbine.pdf", "pdf", 3)

    for mode in ("hybrid", "vector", "keyword"):
        result = cli("kb", "search", f.page_sentence(2), "--kb", "manuals", "-k", "3", "--mode", mode, "--json")
        assert result.returncode == 0, result.stderr
        payload = json.loads(result.stdout)
        assert payload["query"] == f.page_sentence(2)
        first = payload["results"][0]
        assert set(first) == {
            "rank",
            "score",
            "chunk_id",
            "document",
            "source",
            "page",
            "page_label",
            "section",
            "text",
            "ocr",
        }
        assert (first["rank"], first["document"], first["source"], first["page"]) == (
            1,
            "turbine.pdf",
            "pumps/turbine.pdf",
            2,
        )
        assert len(payload["results"]) <= 3

    text = cli("kb", "search", "impeller wear ring", "--kb", "manuals").stdout
    assert text.startswith("[1] guide.md") and "Maintenance" in text

    removed = cli("kb", "remove", pdf["id"], "--kb", "manuals")
    assert removed.returncode == 0 and "pumps/turbine.pdf" in removed.stdout
    assert cli("kb", "remove", pdf["id"], "--kb", "manuals").returncode == 1

    reindexed = cli("kb", "reindex", "--kb", "manuals")
    assert reindexed.returncode == 0 and "re-embedded" in reindexed.stdout
    check = cli("kb", "check", "--kb", "manuals")
    assert check.returncode == 0 and "consistent (1 documents" in check.stdout


def test_searching_an_empty_knowledge_base_says_so(cli):
    result = cli("kb", "search", "anything", "--kb", "empty")
    assert result.returncode == 0 and "is empty" in result.stdout
    assert json.loads(cli("kb", "search", "anything", "--kb", "empty", "--json").stdout)["results"] == []


def test_errors_are_one_clear_line(cli, monkeypatch):
    result = cli("kb", "list", "--kb", "../x")
    assert result.returncode == 1
    assert result.stderr.strip().startswith("error: invalid knowledge base name")
    assert "Traceback" not in result.stderr
    monkeypatch.setenv("DOMAINSMITH_CHUNK_TOKENS", "many")
    bad_config = cli("kb", "bases")
    assert bad_config.returncode == 1 and "chunk_tokens must be int" in bad_config.stderr
