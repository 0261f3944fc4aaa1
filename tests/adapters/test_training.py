"""Real training on tiny random models: LoRA and QLoRA steps, kill -9 and resume, cancel, and the
merge → GGUF → quantize → llama.cpp chain on a Llama and a Phi-3 (fused projections)."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import pytest

from adapters import catalogue
from adapters import events as ev
from adapters.job import TrainJob
from adapters.memory import InsufficientMemory
from adapters.process import TrainingProcess, train
from adapters.service import prepare_run
from store.errors import ModelNotFound
from store.settings import Settings
from tests import tiny_models
from tests.app_cli import cli

FAST = {"eval_examples": 1, "max_new_tokens": 4}


@pytest.fixture(scope="module")
def models(tmp_path_factory, tiny_llama):
    root = tmp_path_factory.mktemp("tiny-models")
    return SimpleNamespace(llama=tiny_llama, phi3=tiny_models.tiny_phi3(root / "phi3"))


@pytest.fixture(scope="module")
def qa_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("data") / "qa.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in tiny_models.qa_rows(24)), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    return tmp_path_factory.mktemp("home")


def examples(count: int = 24) -> list[dict]:
    from adapters.datasets import _example

    return [_example(r, Path("qa.jsonl"), i) for i, r in enumerate(tiny_models.qa_rows(count), start=1)]


def steps(settings: Settings, run_id: str) -> list[ev.Step]:
    return [e for e in catalogue.read_events(catalogue.run_dir(settings, run_id)) if isinstance(e, ev.Step)]


def tiny_run(settings: Settings, base: Path, method: str, **overrides) -> TrainJob:
    """A run of the 24 tiny Q&A examples on ``base``, prepared (not started), evaluation kept short."""
    return prepare_run(
        settings, examples(), {"kind": "test"}, base=str(base), method=method, overrides=overrides, **FAST
    )


def mean(values) -> float:
    values = list(values)
    return sum(values) / len(values)


@pytest.fixture(scope="module")
def llama_run(models, qa_file, home):
    reworded = qa_file.with_name("reworded.jsonl")  # every row of qa_file trains: measured on other wordings
    rows = [{**r, "question": f"Which colour has pump {i}?"} for i, r in enumerate(tiny_models.qa_rows(3), start=1)]
    reworded.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    result = cli(
        home,
        "train",
        "--data",
        str(qa_file),
        "--eval",
        str(reworded),
        "--base",
        str(models.llama),
        "--epochs",
        "4",
        "--checkpoint-every",
        "100",
    )
    assert result.code == 0, result.err
    return result


def test_cli_train_lora_loss_falls(llama_run, home):
    settings = Settings.load(home=home)
    run_id = llama_run.out.strip().splitlines()[-1]
    assert "plain LoRA" in llama_run.err  # auto says what it picked and why
    log = steps(settings, run_id)
    assert len(log) == 24 and log[-1].total_steps == 24  # all 24 examples, batch 4: 6 steps x 4 epochs
    assert mean(e.loss for e in log[-6:]) < mean(e.loss for e in log[:6]) - 1.0
    assert all(e.tokens_per_s > 0 and e.eta_s is not None for e in log)
    events = catalogue.read_events(catalogue.run_dir(settings, run_id))
    evals = [e.val_loss for e in events if isinstance(e, ev.Eval)]
    assert len(evals) == 4 and evals[-1] < evals[0]
    done = events[-1]
    assert isinstance(done, ev.Done) and done.version == ev.FORMAT_VERSION
    assert done.metrics["val_loss_after"] < done.metrics["val_loss_before"]
    assert {"answers_base", "answers_adapted"} <= set(done.metrics)
    listing = json.loads(cli(home, "runs", "list", "--json").out)["runs"]
    assert [(r["run_id"], r["status"], r["method"]) for r in listing] == [(run_id, "done", "lora")]


def test_cli_export_gguf_loads_and_generates_then_quantize(llama_run, home, tmp_path):
    from llama_cpp import Llama

    from adapters.export import quantize

    run_id = llama_run.out.strip().splitlines()[-1]
    result = cli(home, "export", run_id, "--quant", "f16", "--json")
    assert result.code == 0, result.err
    exported = json.loads(result.out)
    assert set(exported) == {"model", "path", "quant", "size_bytes"}
    assert exported["quant"] == "f16" and Path(exported["path"]).stat().st_size == exported["size_bytes"]
    models_listed = json.loads(cli(home, "models", "list", "--json").out)["models"]
    assert [m["name"] for m in models_listed] == [exported["model"]]
    record = models_listed[0]
    assert record["run_id"] == run_id and record["metrics"]["smoke_test"]["greedy_agreement"] >= 0.5
    assert record["hyperparameters"]["lora_r"] == 16 and record["data_hash"]

    small = quantize(Path(exported["path"]), tmp_path / "q4_k_m.gguf", "q4_k_m")
    for path in (exported["path"], small):
        llm = Llama(model_path=str(path), n_ctx=256, n_threads=1, verbose=False)
        assert llm.metadata["tokenizer.chat_template"].startswith("{% for message in messages %}")
        reply = llm.create_chat_completion(
            [{"role": "user", "content": "What colour is pump 3?"}], max_tokens=8, temperature=0.0
        )
        assert reply["choices"][0]["message"]["content"]
        llm.close()


def test_failed_export_registers_nothing(llama_run, home):
    from adapters.export import ExportFailed, export
    from store.registry import open_registry

    settings = Settings.load(home=home)
    run_id = llama_run.out.strip().splitlines()[-1]
    with pytest.raises(ExportFailed, match="greedy answers agree"):
        export(settings, run_id, "f16", name="impossible", min_agreement=1.01)
    db, registry = open_registry(settings.db_path)
    try:
        assert registry.find("impossible") is None
    finally:
        db.close()
    assert not (settings.home / "models" / "impossible.gguf").exists()
    assert not catalogue.run_dir(settings, run_id).export_dirs()


def test_qlora_real_steps_loss_falls(models, settings):
    job = tiny_run(settings, models.llama, "qlora", epochs=2, learning_rate=5e-3)
    assert job.method == "qlora" and "as asked" in job.method_reason
    events = list(train(settings, job))
    assert events[-1].kind == "done", events[-1].message + events[-1].log_tail
    start = next(e for e in events if e.kind == "start")
    assert start.data["lora_targets"] == ["down_proj", "gate_proj", "k_proj", "o_proj", "q_proj", "up_proj", "v_proj"]
    losses = [e.loss for e in events if e.kind == "step"]
    assert mean(losses[-6:]) < mean(losses[:6]) - 0.3


def test_kill_9_then_resume_continues_from_checkpoint_in_the_same_order(models, settings):
    job = tiny_run(settings, models.llama, "lora", epochs=2, checkpoint_every=2)
    process = TrainingProcess(settings, job.run_id)
    before = {}
    for event in process.events():
        if event.kind == "step":
            before[event.step] = event.data
            if event.step == 5:
                process.kill()  # SIGKILL: no chance to write anything more
        last = event
    assert last.kind == "failed" and "signal 9" in last.message and f"--resume {job.run_id}" in last.message
    folder = catalogue.run_dir(settings, job.run_id)
    assert catalogue.run_status(folder)["status"] == "interrupted"

    after = list(train(settings, catalogue.resume(settings, job.run_id)))
    assert after[-1].kind == "done", after[-1].message + after[-1].log_tail
    resumed = next(e for e in after if e.kind == "resumed")
    # The child may finish a step or two between the parent's kill and the signal landing:
    # it resumes from the last checkpoint it wrote (every 2 steps), at step 4 or later.
    assert resumed.step >= 4 and resumed.step % 2 == 0
    replayed = {e.step: e.data for e in after if e.kind == "step"}
    assert sorted(replayed) == list(range(resumed.step + 1, 13))
    # Steps that ran both before the kill and after the resume saw the same batch and loss
    # (almost always step 5 at least; none only if the kill landed right after a checkpoint).
    for step in sorted(set(replayed) & set(before)):
        assert replayed[step]["batch"] == before[step]["batch"]
        assert replayed[step]["loss"] == pytest.approx(before[step]["loss"], rel=1e-3)


def test_cancel_stops_after_a_checkpoint(models, settings):
    job = tiny_run(settings, models.llama, "lora", epochs=3, checkpoint_every=50)
    process = TrainingProcess(settings, job.run_id)
    for event in process.events():
        if event.kind == "step" and event.step == 2:
            process.cancel()
        last = event
    assert last.kind == "cancelled" and 2 <= last.step < 18
    folder = catalogue.run_dir(settings, job.run_id)
    assert (folder.checkpoint(last.step) / "adapter_model.safetensors").exists()
    assert catalogue.run_status(folder)["status"] == "cancelled"


def test_phi3_train_merge_gguf_llama_cpp(models, settings):
    from llama_cpp import Llama

    from adapters.export import export

    job = tiny_run(settings, models.phi3, "lora", epochs=2)
    events = list(train(settings, job))
    assert events[-1].kind == "done", events[-1].message + events[-1].log_tail
    targets = next(e for e in events if e.kind == "start").data["lora_targets"]
    assert {"qkv_proj", "gate_up_proj", "o_proj", "down_proj"} <= set(targets)
    record = export(settings, job.run_id, "f16")
    llm = Llama(model_path=record.file, n_ctx=256, n_threads=1, verbose=False)
    assert llm.metadata["general.architecture"] == "phi3"
    reply = llm.create_chat_completion(
        [{"role": "user", "content": "What colour is pump 3?"}], max_tokens=8, temperature=0.0
    )
    assert reply["choices"][0]["finish_reason"] in ("stop", "length")
    llm.close()


def test_refused_before_anything_starts(models, settings):
    with pytest.raises(ModelNotFound, match="no base model at this path"):
        prepare_run(settings, examples(), {"kind": "test"}, base=str(settings.home / "nope.gguf"))
    with pytest.raises(InsufficientMemory, match="needs about"):
        prepare_run(settings, examples(), {"kind": "test"}, base=str(models.llama), available_memory=2**20)
    assert not catalogue.list_runs(settings)


def test_patience_stops_when_validation_loss_rises_and_delivers_the_best_epoch(models, settings):
    """``patience`` (the default of grounded runs): training stops after that many epochs without a
    lower validation loss, and the adapter delivered, evaluated and exported is the best epoch's."""
    from safetensors.torch import load_file

    generated = [{**e, "generated": True} for e in examples()]  # generated rows: some held out to validate
    job = prepare_run(
        settings,
        generated,
        {"kind": "test"},
        base=str(models.llama),
        method="lora",
        overrides={"epochs": 8, "learning_rate": 5e-2, "patience": 1},
        **FAST,
    )
    events = list(train(settings, job))
    assert events[-1].kind == "done", events[-1].message + events[-1].log_tail
    losses = {e.data["epoch"]: e.data["val_loss"] for e in events if e.kind == "eval"}
    best = min(losses, key=losses.get)
    last = max(losses)  # the last epoch trained
    assert best < last < 8 and losses[last] > losses[best], losses  # it rose after the best; stopped early
    assert list(losses) == list(range(1, best + 2))  # one epoch without improvement, then stop
    metrics = events[-1].data["metrics"]
    assert metrics["kept_epoch"] == best and metrics["stopped_early"] is True
    assert metrics["val_loss_after"] == pytest.approx(losses[best], rel=1e-3)
    folder = catalogue.run_dir(settings, job.run_id)
    kept, delivered = (load_file(str(p / "adapter_model.safetensors")) for p in (folder.best, folder.adapter))
    assert kept.keys() == delivered.keys() and all((kept[k] == delivered[k]).all() for k in kept)
