"""The run folder's layout (adapters.run_folder), and a run folder written by an earlier version:
listed, shown and resumable through the catalogue and the web facade."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from adapters import catalogue
from adapters.finetune import FineTuner
from adapters.job import TrainJob
from adapters.run_folder import RunFolder, runs_root
from store.errors import DomainsmithError


def test_the_layout_names_every_file_of_a_run(tmp_path):
    folder = RunFolder.in_home(tmp_path, "r20250101-120000-3f2a")
    assert folder.path == tmp_path / "runs" / "r20250101-120000-3f2a" and folder.run_id == "r20250101-120000-3f2a"
    assert runs_root(tmp_path) == tmp_path / "runs"
    named = {
        name: getattr(folder, name).relative_to(folder.path).as_posix()
        for name in ("job", "train", "val", "rag_eval", "events", "log", "pid", "checkpoints", "adapter", "metrics")
    }
    assert named == {
        "job": "job.json",
        "train": "train.jsonl",
        "val": "val.jsonl",
        "rag_eval": "rag_eval.jsonl",
        "events": "events.jsonl",
        "log": "worker.log",
        "pid": "worker.pid",
        "checkpoints": "checkpoints",
        "adapter": "adapter",
        "metrics": "metrics.json",
    }
    assert folder.checkpoint(50) == folder.path / "checkpoints" / "step-000050"
    assert folder.checkpoint_tmp(50).parent == folder.checkpoints and folder.checkpoint_tmp(50).name.startswith(".")
    assert folder.export_work(1234) == folder.path / "export-1234"
    assert not folder.exists() and folder.checkpoint_dirs() == [] and folder.export_dirs() == []
    folder.checkpoint(2).mkdir(parents=True)
    folder.checkpoint(10).mkdir()
    folder.checkpoint_tmp(12).mkdir()  # being written: not a checkpoint yet
    folder.export_work(7).mkdir()
    assert folder.checkpoint_dirs() == [folder.checkpoint(2), folder.checkpoint(10)]
    assert folder.export_dirs() == [folder.export_work(7)]


def test_run_ids_are_plain_names_of_existing_runs(settings):
    for bad in ("", "../x", ".hidden", "a/b", "r-missing"):
        with pytest.raises(catalogue.RunNotFound, match="no training run"):
            catalogue.run_dir(settings, bad)


def write_old_run(home: Path, run_id: str, finished: bool) -> Path:
    """A run folder exactly as the version before RunFolder and typed events wrote it."""
    folder = home / "runs" / run_id
    folder.mkdir(parents=True)
    job = {
        "run_id": run_id,
        "base": "/models/SmolLM2-135M-Instruct.Q4_1.gguf",
        "method": "lora",
        "method_requested": "auto",
        "method_reason": "plain LoRA: fits",
        "preset": "quick",
        "hyperparameters": {
            "epochs": 2,
            "lora_r": 16,
            "lora_alpha": 32,
            "lora_dropout": 0.0,
            "learning_rate": 0.001,
            "batch_size": 4,
            "grad_accum": 1,
            "max_length": 512,
            "checkpoint_every": 50,
            "weight_decay": 0.0,
            "max_grad_norm": 1.0,
        },
        "seed": 0,
        "val_fraction": 0.1,
        "source": {"kind": "file", "path": "/data/qa.jsonl"},
        "data_hash": "0123456789abcdef",
        "n_train": 22,
        "n_val": 2,
        "base_cache": "/home/models/base-cache",
        "eval_examples": 16,
        "max_new_tokens": 64,
        "rag": {},
        "rag_max_new_tokens": 96,
        "threads": 0,
        "created_at": "2026-11-30T10:00:00+00:00",
    }
    (folder / "job.json").write_text(json.dumps(job, indent=2), encoding="utf-8")
    lines = [
        {"time": 1.0, "type": "status", "message": "loading the base model"},
        {
            "time": 2.0,
            "type": "start",
            "total_steps": 12,
            "start_step": 0,
            "method": "lora",
            "train_examples": 22,
            "val_examples": 2,
            "trainable_params": 4096,
            "val_loss": 4.5,
            "lora_targets": ["q_proj", "v_proj"],
        },
        *(
            {
                "time": 2.0 + s,
                "type": "step",
                "step": s,
                "total_steps": 12,
                "epoch": round(s / 6, 3),
                "loss": 5.0 - s / 4,
                "lr": 0.001,
                "tokens": 300,
                "tokens_per_s": 150.0,
                "eta_s": 12.0 - s,
                "batch": [0, 1, 2, 3],
            }
            for s in range(1, 7)
        ),
        {"time": 9.0, "type": "eval", "step": 6, "epoch": 1, "val_loss": 3.9, "perplexity": 49.402},
        {"time": 9.5, "type": "checkpoint", "step": 6, "path": "step-000006"},
    ]
    if finished:
        lines.append(
            {
                "time": 20.0,
                "type": "done",
                "step": 12,
                "metrics": {
                    "val_loss_before": 4.5,
                    "val_loss_after": 2.0,
                    "perplexity_before": 90.017,
                    "perplexity_after": 7.389,
                },
            }
        )
    (folder / "events.jsonl").write_text("".join(json.dumps(line) + "\n" for line in lines), encoding="utf-8")
    (folder / "worker.log").write_text("INFO loading\n", encoding="utf-8")
    (folder / "worker.pid").write_text("999999999")
    return folder


def test_a_run_written_by_an_earlier_version_is_listed_shown_and_resumable(settings):
    write_old_run(settings.home, "r20261130-100000-aaaa", finished=True)
    write_old_run(settings.home, "r20261130-110000-bbbb", finished=False)
    done, interrupted = catalogue.list_runs(settings)
    assert done == {
        "run_id": "r20261130-100000-aaaa",
        "status": "done",
        "step": 6,
        "total_steps": 12,
        "loss": 3.5,
        "val_loss": 2.0,
        "method": "lora",
        "preset": "quick",
        "base": "SmolLM2-135M-Instruct.Q4_1.gguf",
        "source": {"kind": "file", "path": "/data/qa.jsonl"},
        "examples": 22,
        "created": "2026-11-30T10:00:00+00:00",
        "message": "",
        "lineage": None,  # written before lineage existed: none, and never stale
    }
    assert (interrupted["status"], interrupted["step"], interrupted["total_steps"]) == ("interrupted", 6, 12)

    finetuner = FineTuner(settings, open_kb=lambda name: pytest.fail("no knowledge base is needed"))
    shown = finetuner.progress("r20261130-100000-aaaa")
    assert shown.finished and shown.step == 12 and shown.metrics["val_loss_after"] == 2.0
    assert [p["series"] for p in shown.losses] == ["training"] * 6 + ["validation"]
    assert shown.log == "INFO loading"
    job = catalogue.resume(settings, "r20261130-110000-bbbb")
    assert job == TrainJob.load(catalogue.run_dir(settings, "r20261130-110000-bbbb"))
    assert job.hyperparameters.epochs == 2 and job.preset == "quick"
    with pytest.raises(DomainsmithError, match="already finished"):
        catalogue.resume(settings, "r20261130-100000-aaaa")
