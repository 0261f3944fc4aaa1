"""Checkpoints of a run in training, and its final adapter: written atomically, read back on resume.

A checkpoint (``checkpoints/step-NNNNNN/``) holds the adapter (peft, safetensors), the optimizer
moments (safetensors, no pickle) with their scalar state (``optimizer.json``), and the loop's
state with the step (``state.json``, written last: a folder without it is incomplete). Each is
written under a temporary name and renamed; the newest ``KEEP_CHECKPOINTS`` are kept.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import torch

from adapters.run_folder import RunFolder

KEEP_CHECKPOINTS = 2
ADAPTER_WEIGHTS = "adapter_model.safetensors"  # peft's file name
OPTIMIZER_TENSORS, OPTIMIZER_STATE, LOOP_STATE = "optimizer.safetensors", "optimizer.json", "state.json"
BEST_STATE = "best.json"


def save_checkpoint(model, optimizer, folder: RunFolder, step: int, state: dict[str, Any]) -> Path:
    from safetensors.torch import save_file

    folder.checkpoints.mkdir(exist_ok=True)
    final, tmp = folder.checkpoint(step), folder.checkpoint_tmp(step)
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(str(tmp))
    tensors, meta = {}, {"param_groups": optimizer.state_dict()["param_groups"], "steps": {}}
    for index, slot in optimizer.state_dict()["state"].items():
        for key, value in slot.items():
            if torch.is_tensor(value) and value.dim() > 0:
                tensors[f"{index}.{key}"] = value.contiguous()
            else:
                meta["steps"][f"{index}.{key}"] = float(value)
    save_file(tensors, str(tmp / OPTIMIZER_TENSORS))
    (tmp / OPTIMIZER_STATE).write_text(json.dumps(meta))
    (tmp / LOOP_STATE).write_text(json.dumps({**state, "step": step}))
    if final.exists():
        shutil.rmtree(final)
    os.replace(tmp, final)
    for old in folder.checkpoint_dirs()[:-KEEP_CHECKPOINTS]:
        shutil.rmtree(old, ignore_errors=True)
    return final


def latest_checkpoint(folder: RunFolder) -> Path | None:
    found = [p for p in folder.checkpoint_dirs() if (p / LOOP_STATE).exists()]
    return found[-1] if found else None


def load_checkpoint(model, optimizer, path: Path) -> dict[str, Any]:
    """Restore the adapter and the optimizer from checkpoint ``path``; returns the loop's state."""
    from safetensors.torch import load_file

    load_adapter_weights(model, path)
    meta = json.loads((path / OPTIMIZER_STATE).read_text())
    tensors = load_file(str(path / OPTIMIZER_TENSORS))
    state: dict[int, dict[str, Any]] = {}
    for key, value in tensors.items():
        index, name = key.split(".", 1)
        state.setdefault(int(index), {})[name] = value
    for key, value in meta["steps"].items():
        index, name = key.split(".", 1)
        state.setdefault(int(index), {})[name] = torch.tensor(value)
    optimizer.load_state_dict({"state": state, "param_groups": meta["param_groups"]})
    return json.loads((path / LOOP_STATE).read_text())


def save_adapter(model, folder: RunFolder) -> Path:
    """The final adapter, written beside the run's ``adapter/`` and swapped in."""
    return _swap_in(model, folder.adapter_tmp, folder.adapter)


def _swap_in(model, tmp: Path, final: Path, files: dict[str, str] | None = None) -> Path:
    """The adapter (and ``files``: name -> text) written whole under ``tmp``, then renamed to ``final``."""
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(str(tmp))
    for name, text in (files or {}).items():
        (tmp / name).write_text(text)
    shutil.rmtree(final, ignore_errors=True)
    os.replace(tmp, final)
    return final


def save_best(model, folder: RunFolder, epoch: int, step: int, val_loss: float) -> dict[str, Any]:
    """Keep the adapter as the run's best epoch so far (``best/``, swapped in whole); returns its record."""
    record = {"epoch": epoch, "step": step, "val_loss": val_loss}
    _swap_in(model, folder.best_tmp, folder.best, {BEST_STATE: json.dumps(record)})
    return record


def read_best(folder: RunFolder) -> dict[str, Any] | None:
    """The best epoch's record (``save_best``), or None when none was kept (or it is incomplete)."""
    try:
        return json.loads((folder.best / BEST_STATE).read_text())
    except (OSError, ValueError):
        return None


def load_best(model, folder: RunFolder) -> None:
    """Put the best epoch's adapter weights back into ``model``."""
    load_adapter_weights(model, folder.best)


def load_adapter_weights(model, path: Path) -> None:
    """The LoRA weights saved under ``path`` (a checkpoint or ``best/``) put into ``model``."""
    from peft import set_peft_model_state_dict
    from safetensors.torch import load_file

    set_peft_model_state_dict(model, load_file(str(path / ADAPTER_WEIGHTS)))
