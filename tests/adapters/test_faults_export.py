"""Faults during export: kill -9 half-way, and a disk that fills up.

A finished training run on a tiny Llama and an earlier registered model are set up once. After
each fault: the registry still lists exactly the earlier model, whose file is unchanged; no new
GGUF sits in ``models/``; the run is still "done" with its adapter intact, so it can be exported
again. (A failed smoke test registering nothing is in test_training.py.)
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from store.settings import Settings
from tests import reliability_log, tiny_models
from tests.conftest import ROOT
from tests.fault_tools import file_digest, register_model, run_app_limited, tree_digest, wait_for


@pytest.fixture(scope="module")
def exported_home(tmp_path_factory, tiny_llama):
    """A home with a finished run (1 epoch on a tiny Llama) and one model registered earlier."""
    from adapters.catalogue import run_dir
    from adapters.datasets import _example
    from adapters.process import train
    from adapters.service import prepare_run
    from store.bundled import chat_model_path

    root = tmp_path_factory.mktemp("export-faults")
    home = root / "home"
    settings = Settings.load(home=home, env={})
    llama = tiny_llama
    examples = [_example(r, Path("qa.jsonl"), i) for i, r in enumerate(tiny_models.qa_rows(12), start=1)]
    job = prepare_run(
        settings,
        examples,
        {"kind": "test"},
        base=str(llama),
        method="lora",
        overrides={"epochs": 1},
        eval_examples=1,
        max_new_tokens=4,
    )
    events = list(train(settings, job))
    assert events[-1].kind == "done", events[-1].message
    earlier = home / "models" / "earlier.gguf"
    earlier.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(chat_model_path(), earlier)
    register_model(settings.db_path, "earlier", earlier, "q4_1")
    folder = run_dir(settings, job.run_id)
    return SimpleNamespace(
        home=home,
        settings=settings,
        run_id=job.run_id,
        folder=folder,
        earlier=earlier,
        earlier_digest=file_digest(earlier),
        adapter_digest=tree_digest(folder.adapter),
    )


def assert_nothing_changed(env: SimpleNamespace) -> None:
    from adapters.catalogue import run_status
    from store.registry import open_registry

    db, registry = open_registry(env.settings.db_path)
    try:
        assert [m.name for m in registry.list()] == ["earlier"], "a half-exported model was registered"
    finally:
        db.close()
    assert sorted(p.name for p in (env.home / "models").glob("*.gguf")) == ["earlier.gguf"]
    assert file_digest(env.earlier) == env.earlier_digest
    assert run_status(env.folder)["status"] == "done"
    assert tree_digest(env.folder.adapter) == env.adapter_digest


def test_kill_9_during_export(exported_home):
    env = exported_home
    process = subprocess.Popen(
        [sys.executable, str(ROOT / "app.py"), "--home", str(env.home), "export", env.run_id, "--quant", "f16"],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )  # its converter child dies with it
    try:
        merged = lambda: any(any((work / "hf").glob("*.safetensors")) for work in env.folder.export_dirs())
        wait_for(merged, timeout=240, what="the merged model to be written", process=process)
        os.killpg(process.pid, signal.SIGKILL)
    finally:
        process.wait(timeout=30)
    assert process.returncode == -signal.SIGKILL
    assert_nothing_changed(env)
    leftovers = [p.name for p in env.folder.export_dirs()]
    reliability_log.record("fault", name="kill -9 during export", survived=True, lost=0, leftover_work_dirs=leftovers)
    for stale in env.folder.export_dirs():  # the killed export's scratch folder (see the report)
        shutil.rmtree(stale)


def test_full_disk_during_export(exported_home):
    env = exported_home
    result = run_app_limited(
        ["--home", str(env.home), "export", env.run_id, "--quant", "f16", "--json"],
        max_file_bytes=4 * 1024 * 1024,
        env={"DOMAINSMITH_HOME": str(env.home)},
    )
    assert result.returncode != 0
    assert_nothing_changed(env)
    assert not env.folder.export_dirs(), "the scratch folder was removed"
    assert "Traceback" not in result.stderr, result.stderr[-2000:]
    assert "could not write the model (File too large)" in result.stderr, result.stderr[-2000:]
    reliability_log.record("fault", name="full disk during export", survived=True, lost=0, clear_message=True)
