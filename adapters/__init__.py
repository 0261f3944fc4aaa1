"""``adapters``: making the model an expert: data, QLoRA/LoRA training, evaluation, export to GGUF.

Where its flows start:

- preparing a run: ``prepare(settings, TrainRequest, open_kb)`` (``adapters.service``), the one
  front door of the CLI, the web app and the benches: ``adapters.datasets`` loads and validates
  the examples (``adapters.grounded`` renders them in Chat's prompt), ``adapters.base_model`` and
  ``adapters.memory`` check the base and choose the method, ``adapters.rag_eval`` prepares the
  retrieval-on evaluation, and the run folder (``adapters.run_folder``) gets its manifest
  (``adapters.job``, with ``adapters.hyperparameters``).
- training: ``train(settings, job)`` (``adapters.process``) starts ``python -m adapters.worker
  RUN_DIR``, which runs ``adapters.training`` (``adapters.lora_model``, ``adapters.batching``,
  ``adapters.checkpoints``, ``adapters.model_eval``) and writes ``adapters.events``; the parent
  yields them as ``ProgressEvent``. ``adapters.catalogue`` lists runs and reads their state from
  disk; ``FineTuner`` (``adapters.finetune``) is the web app's long-lived view of all this.
- export: ``adapters.export.export(settings, run_id, quant)``: merge, convert to GGUF, quantize,
  smoke-test in a child process (``adapters.smoke``), register in ``store.registry``.

This package imports ``assistant`` and ``store``, never ``ui``. The names below are imported on
first use, so importing ``adapters`` (or the worker) does not load torch or the services.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from store.lazy_exports import lazy_exports

if TYPE_CHECKING:
    from adapters.catalogue import RunNotFound, list_runs, run_dir
    from adapters.events import ProgressEvent
    from adapters.finetune import FineTuner, RunProgress
    from adapters.job import TrainJob
    from adapters.process import TrainingProcess, cancel, train
    from adapters.run_folder import RunFolder
    from adapters.service import PreparedData, TrainRequest, prepare, prepare_run

_EXPORTS = {
    "TrainRequest": "adapters.service",
    "PreparedData": "adapters.service",
    "prepare": "adapters.service",
    "prepare_run": "adapters.service",
    "FineTuner": "adapters.finetune",
    "RunProgress": "adapters.finetune",
    "train": "adapters.process",
    "cancel": "adapters.process",
    "TrainingProcess": "adapters.process",
    "ProgressEvent": "adapters.events",
    "list_runs": "adapters.catalogue",
    "run_dir": "adapters.catalogue",
    "RunNotFound": "adapters.catalogue",
    "RunFolder": "adapters.run_folder",
    "TrainJob": "adapters.job",
}

__all__ = [  # what _EXPORTS names, for `from adapters import *` and linters
    "TrainRequest",
    "PreparedData",
    "prepare",
    "prepare_run",
    "FineTuner",
    "RunProgress",
    "train",
    "cancel",
    "TrainingProcess",
    "ProgressEvent",
    "list_runs",
    "run_dir",
    "RunNotFound",
    "RunFolder",
    "TrainJob",
]


__getattr__ = lazy_exports(__name__, _EXPORTS, globals())
