"""A home written by an earlier version keeps working: its knowledge base, chat session and training run.

``tests/data/legacy-home/`` was written by commit be41ea6 (before the restructuring of issue 11):
a knowledge base ``legacy`` (pumps.md, station.txt), one saved chat, and a finished grounded
training run of a tiny random Llama (``tests/data/legacy-home/README.md`` says how it was made).
Everything here goes through the stable edges (the CLI's JSON and the UI's handlers), so the test
holds whatever the modules behind them are called.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tests.app_cli import cli
from tests.conftest import ROOT

LEGACY = ROOT / "tests" / "data" / "legacy-home"
RUN_ID = "r20261201-050205-0d9d"


@pytest.fixture
def home(domainsmith_home: Path) -> Path:
    shutil.copytree(LEGACY, domainsmith_home)
    return domainsmith_home


def test_legacy_knowledge_base_opens_searches_and_takes_new_documents(home, tmp_path):
    bases = json.loads(cli(home, "kb", "bases", "--json").out)
    assert [(b["name"], b["documents"], b["chunks"]) for b in bases["knowledge_bases"]] == [("legacy", 2, 25)]
    assert cli(home, "kb", "check", "--kb", "legacy").code == 0

    found = json.loads(cli(home, "kb", "search", "What colour is pump 3?", "--kb", "legacy", "--json").out)
    assert "Pump 3" in found["results"][0]["section"] and "black" in found["results"][0]["text"]

    note = tmp_path / "valves.md"
    note.write_text("# Valves\n\nThe relief valve opens at 12 bar and is tested every spring.\n", encoding="utf-8")
    assert cli(home, "kb", "add", str(note), "--kb", "legacy").code == 0
    assert cli(home, "kb", "check", "--kb", "legacy").code == 0
    found = json.loads(cli(home, "kb", "search", "relief valve pressure", "--kb", "legacy", "--json").out)
    assert found["results"][0]["document"] == "valves.md"


def test_legacy_chat_session_reopens(home):
    from store.settings import Settings
    from ui import chat_tab
    from ui.services import Services

    services = Services(Settings.load(home=home))
    try:
        ((label, session_id),) = chat_tab.session_choices(services)
        assert "pump 3" in label.lower()
        history, _, reopened = chat_tab.reopen(services, session_id)
        assert reopened == session_id
        assert [m["role"] for m in history] == ["user", "assistant"]
        assert "black" in history[1]["content"]
    finally:
        services.close()


def test_legacy_run_is_listed_shown_and_exported(home, tiny_llama):
    from store.settings import Settings
    from ui import finetune_tab
    from ui.services import Services

    runs = json.loads(cli(home, "runs", "list", "--json").out)["runs"]
    (run,) = runs
    assert (run["run_id"], run["status"], run["step"], run["total_steps"]) == (RUN_ID, "done", 14, 14)
    assert run["source"]["grounded"] == "legacy" and run["val_loss"] is not None

    services = Services(Settings.load(home=home))
    try:
        html, points, log, rows, finished = finetune_tab.refresh(services, RUN_ID)
        assert finished and "finished" in html
        assert set(points["series"]) == {"training", "validation"} and len(points) == 14 + 2
        assert any(measure.startswith("with retrieval") for measure, *_ in rows)
    finally:
        services.close()

    # The base model of the run lived in a temporary folder: point the manifest at the same tiny
    # Llama rebuilt (same seed, same shapes), as a user would after moving their models.
    base = tiny_llama
    job_file = home / "runs" / RUN_ID / "job.json"  # spelled as the old code wrote it
    job = json.loads(job_file.read_text(encoding="utf-8"))
    job_file.write_text(
        json.dumps({**job, "base": str(base), "base_cache": str(home / "models" / "base-cache")}), encoding="utf-8"
    )
    exported = cli(home, "export", RUN_ID, "--quant", "f16", "--json")
    assert exported.code == 0, exported.err
    record = json.loads(exported.out)
    assert Path(record["path"]).is_file() and record["quant"] == "f16"
    assert record["model"] in json.dumps(json.loads(cli(home, "models", "list", "--json").out))
