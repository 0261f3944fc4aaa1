"""The front door of fine-tuning: what to train on and how (``TrainRequest``) in, a run folder ready
to train out. The CLI (``ui/cli_train.py``), the web app (``adapters.finetune.FineTuner``) and the
benches all prepare runs here, so the data rules (relevance gate, grounded prompt length) and
the knowledge base they use are the same everywhere.

``prepare`` = ``prepare_data`` (load and validate the examples a request names, grounded in a
knowledge base if asked) + ``prepare_run`` (split, check base model and memory, choose the
method, write the run folder). The knowledge base a request opens is handed on to the
retrieval-on evaluation, so no second copy of it (or of its embedding model) is loaded.
Training it is ``adapters.process.train``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from adapters import datasets, memory, rag_eval
from adapters.base_model import bundled_base, describe
from adapters.hyperparameters import DEFAULT_PRESET, GROUNDED_PATIENCE, grounded_epochs, preset
from adapters.job import TrainJob, new_run_id
from adapters.run_folder import RunFolder
from store import lineage
from store.errors import DomainsmithError, InvalidTrainingData
from store.settings import Settings

GROUNDED_MAX_LENGTH = 2048  # sources make long prompts; a cut prompt would lose them
OpenKB = Callable[[str], Any]  # a knowledge base by name (``Services.kb(name, create=False)``)


@dataclass(frozen=True)
class TrainRequest:
    """What to train on and how; exactly one of ``data`` (a Q&A file) or ``kb`` is the source."""

    data: str | None = None
    kb: str | None = None
    grounded: str | None = None  # with ``data``: render questions with sources from this knowledge base
    base: str | None = None
    preset: str = DEFAULT_PRESET
    method: str = "auto"
    seed: int = 0
    val_fraction: float = 0.1
    overrides: dict[str, Any] = field(default_factory=dict)  # hyperparameters; None: the preset's
    eval_data: str | None = None  # a Q&A file asked before and after training, never trained on
    # With ``grounded``: the share of cited rows also rendered without their passage (None: the default).
    abstain_share: float | None = None
    # With ``grounded``: sources in a seeded random order per example instead of Chat's rank order.
    shuffle_sources: bool = False
    # Generated unanswerable rows (``data generate``) are not trained unless this is set: on
    # bench/loop.py's Debian Policy runs (2026-12-02) every training set with refusals in it made the
    # 0.5B refuse questions the documents answer (15-21 of 49, the base 8), and the same rows without
    # them met the loop's goals (abstention F1 0.48 -> 0.70, citation support 0.25 -> 0.43: Chat's
    # relevance gate and reply check do the refusing). Held back, they are asked before and after
    # training with retrieval on, so the run still shows how each model abstains.
    train_unanswerable: bool = False


@dataclass
class PreparedData:
    """The validated examples of a request, where they come from, and what the user should know."""

    examples: list[dict[str, Any]]
    source: dict[str, Any]
    overrides: dict[str, Any]
    data_notes: list[str] = field(default_factory=list)  # the Q&A file's report ("line 4: duplicate of line 1, ...")
    grounding: str | None = None  # how the grounded examples came out
    kb: Any | None = None  # the knowledge base the data comes from or is grounded in, as opened
    eval_examples: list[dict[str, Any]] = field(default_factory=list)  # the evaluation file's, rendered alike
    # Generated unanswerable rows not trained (``train_unanswerable`` off), rendered alike: asked
    # before and after training with the held-out questions, outside the validation loss.
    held_back: list[dict[str, Any]] = field(default_factory=list)

    def notes(self, file_label: str) -> list[str]:
        """All notes as lines, the file's prefixed with ``file_label``."""
        return [f"{file_label}, {note}" for note in self.data_notes] + ([self.grounding] if self.grounding else [])


def prepare_data(request: TrainRequest, open_kb: OpenKB, settings: Settings) -> PreparedData:
    """Load and validate the examples a request names, and its evaluation file's (raises the typed
    data errors)."""
    data = _training_data(request, open_kb, settings)
    if request.eval_data:
        data.eval_examples = _evaluation_examples(request, data, settings)
    return data


def _evaluation_examples(request: TrainRequest, data: PreparedData, settings: Settings) -> list[dict[str, Any]]:
    """The evaluation file's questions, rendered as the training examples are (in Chat's prompt when
    grounded, without the source-removed variants) and marked ``"set": "eval_file"``."""
    report = datasets.load_file(request.eval_data, minimum=1)
    examples = report.examples
    if request.grounded:
        from adapters.grounded import grounded_examples

        examples, _ = grounded_examples(
            data.kb, examples, k=settings.retrieval_k, threshold=settings.relevance_threshold, abstain_share=0.0
        )
    trained = {datasets.normalized(datasets.question_of(e)) for e in data.examples if e["kind"] == "chat"}
    kept = [e for e in examples if e["kind"] == "chat" and datasets.normalized(datasets.question_of(e)) not in trained]
    if len(kept) < len(examples):
        data.data_notes.append(
            f"evaluation file: {len(examples) - len(kept)} questions also in the training data left out"
        )
    if not kept:
        raise InvalidTrainingData("every question of the evaluation file is also trained on", path=request.eval_data)
    return [{**e, "set": "eval_file"} for e in kept]


def _training_data(request: TrainRequest, open_kb: OpenKB, settings: Settings) -> PreparedData:
    overrides = dict(request.overrides)
    if bool(request.data) == bool(request.kb):
        raise DomainsmithError("choose one data source: a Q&A file or a knowledge base")
    if request.kb:
        if request.grounded:
            raise DomainsmithError("grounded training needs a Q&A file to join with the knowledge base")
        kb = open_kb(request.kb)  # too few examples: refused after the split (prepare_run)
        return PreparedData(datasets.examples_from_kb(kb), {"kind": "kb", "name": kb.name}, overrides, kb=kb)
    report = datasets.load_file(request.data)
    data = PreparedData(report.examples, {"kind": "file", "path": str(request.data)}, overrides, report.notes())
    held_back = [] if request.train_unanswerable else [e for e in data.examples if e.get("unanswerable")]
    if held_back:
        data.examples = [e for e in data.examples if not e.get("unanswerable")]
        data.source["unanswerable_held_back"] = len(held_back)
        data.data_notes.append(
            f"{len(held_back)} generated unanswerable row{'s' if len(held_back) > 1 else ''} not trained"
            + (": asked before and after training with retrieval on" if request.grounded else "")
            + " (--train-unanswerable trains them)"
        )
    if request.grounded:
        from adapters.grounded import default_abstain_share, grounded_examples

        share = default_abstain_share(data.examples) if request.abstain_share is None else request.abstain_share
        data.kb = kb = open_kb(request.grounded)
        data.examples, counts = grounded_examples(
            kb,
            data.examples,
            k=settings.retrieval_k,
            threshold=settings.relevance_threshold,
            abstain_share=share,
            seed=request.seed,
            shuffle_sources=request.shuffle_sources,
        )
        if held_back:
            data.held_back, _ = grounded_examples(
                kb, held_back, k=settings.retrieval_k, threshold=settings.relevance_threshold, abstain_share=0.0
            )
        data.source = {
            **data.source,
            "grounded": kb.name,
            "abstain_share": share,
            "shuffle_sources": request.shuffle_sources,
        }
        data.grounding = (
            f"grounded in {kb.name}: {counts['cited']} answers cite their source, "
            f"{counts['abstain_no_source'] + counts['abstain_removed']} abstain"
        )
        if overrides.get("max_length") is None:
            overrides["max_length"] = GROUNDED_MAX_LENGTH
        if overrides.get("epochs") is None:
            overrides["epochs"] = epochs = grounded_epochs(request.preset, len(data.examples))
            data.grounding += f"; {epochs} epochs for {len(data.examples)} grounded examples"
        if overrides.get("patience") is None:
            overrides["patience"] = GROUNDED_PATIENCE
    return data


def prepare_run(
    settings: Settings,
    examples: list[dict],
    source: dict[str, Any],
    *,
    base: str | None = None,
    preset_name: str = DEFAULT_PRESET,
    method: str = "auto",
    seed: int = 0,
    val_fraction: float = 0.1,
    overrides: dict[str, Any] | None = None,
    available_memory: int | None = None,
    kb: Any | None = None,
    eval_file_examples: list[dict[str, Any]] | None = None,
    held_back: list[dict[str, Any]] | None = None,
    **job_fields: Any,
) -> TrainJob:
    """Validate and write a new run folder; returns its job (not started yet). The validation set is
    the held-out generated questions (``datasets.split``) and ``eval_file_examples``, the expert's
    evaluation file (never trained on).

    When ``source`` involves a knowledge base (``{"kind": "kb", "name"}`` or a ``"grounded"``
    name), the held-out questions are also rendered through Chat's retrieval for the evaluation
    with retrieval on (``adapters.rag_eval``); ``kb`` is that knowledge base when the caller has it
    open (otherwise it is opened here). The job records the data's lineage (``store.lineage``): that
    knowledge base's documents and those the examples' ``provenance`` names (a ``lineage`` job field
    given by the caller is kept as given). ``held_back`` (rows never trained, outside the validation
    loss) joins the held-out questions of that evaluation. Raises ``InvalidTrainingData``, ``ModelNotFound``,
    ``InsufficientMemory``, ``ConfigError`` or ``KnowledgeBaseError`` before anything is written.
    """
    recorded = job_fields.pop("lineage", None)
    train_set, val_set = datasets.split(examples, val_fraction, seed)
    datasets.check_minimum(len(train_set))
    val_set = [{**e, "set": "held_out"} for e in val_set] + list(eval_file_examples or [])
    info = describe(base, settings)
    bundled, _ = bundled_base(base, settings)
    base_lr = bundled.learning_rate if bundled is not None else None  # the rate this base trains best at
    hp = preset(preset_name, "lora", base_lr, **(overrides or {}))
    # The evaluation file's examples run through the model too (validation loss, answers).
    longest = max(memory.tokens_from_chars(memory.example_chars(e)) for e in [*examples, *(eval_file_examples or [])])
    given = overrides or {}
    chosen, reason, _estimate, fitted = memory.fit_batch(
        method, info, hp, longest, available_memory, batch_given=given.get("batch_size") is not None
    )
    if fitted.batch_size != hp.batch_size:
        reason += (
            f"; batch {fitted.batch_size} with {fitted.grad_accum} accumulation steps (instead of batch "
            f"{hp.batch_size}) to fit in memory"
        )
        given = {**given, "batch_size": fitted.batch_size, "grad_accum": fitted.grad_accum}
    hp = preset(preset_name, chosen, base_lr, **given)
    job = TrainJob(
        run_id=new_run_id(),
        base=str(info.path),
        method=chosen,
        method_requested=method,
        method_reason=reason,
        preset=preset_name,
        hyperparameters=hp,
        seed=seed,
        val_fraction=val_fraction,
        source=source,
        data_hash=datasets.data_hash(examples),
        n_train=len(train_set),
        n_val=len(val_set),
        base_cache=str(settings.home / "models" / "base-cache"),
        **job_fields,
    )
    with _knowledge_base(settings, _rag_kb_name(source), kb) as used:
        job.lineage = recorded or _lineage(source, examples, used) or {}
        asked = val_set + [{**e, "set": "held_out"} for e in held_back or []]
        rag_rows = _rag_questions(settings, job, train_set, asked, used)
    folder = RunFolder.in_home(settings.home, job.run_id)
    folder.path.mkdir(parents=True)
    datasets.save_examples(folder.train, train_set)
    datasets.save_examples(folder.val, val_set)
    if rag_rows:
        rag_eval.save(folder.rag_eval, rag_rows)
    job.save(folder)
    return job


def prepare(
    settings: Settings, request: TrainRequest, open_kb: OpenKB, on_data: Callable[[PreparedData], None] | None = None
) -> tuple[TrainJob, PreparedData]:
    """``prepare_data`` then ``prepare_run``: the new run's job (not started yet) and its data.

    ``on_data`` sees the data before the run is checked and written (the CLI prints its notes then).
    """
    data = prepare_data(request, open_kb, settings)
    if on_data is not None:
        on_data(data)
    job = prepare_run(
        settings,
        data.examples,
        data.source,
        base=request.base or None,
        preset_name=request.preset,
        method=request.method,
        seed=request.seed,
        val_fraction=request.val_fraction,
        overrides=data.overrides,
        kb=data.kb,
        eval_file_examples=data.eval_examples,
        held_back=data.held_back,
    )
    return job, data


def _rag_kb_name(source: dict[str, Any]) -> str | None:
    """The knowledge base a run's data comes from or is grounded in, if any."""
    return source.get("grounded") or (source.get("name") if source.get("kind") == "kb" else None)


@contextmanager
def _knowledge_base(settings: Settings, name: str | None, kb: Any | None) -> Iterator[Any | None]:
    """Knowledge base ``name``: ``kb`` when that is it, else opened here (and closed after); None without a name."""
    if not name:
        yield None
    elif kb is not None and kb.name == name:
        yield kb
    else:
        from store.knowledge_base import KnowledgeBase

        with KnowledgeBase.open(settings, name, create=False) as opened:
            yield opened


def _lineage(source: dict[str, Any], examples: list[dict], kb: Any | None) -> dict[str, Any] | None:
    """Where a run's data came from: every document of the knowledge base it comes from or is
    grounded in (with grounding, any passage may be a distractor), joined with the documents that
    generated rows name in their ``provenance``; None when no knowledge base is involved."""
    generated = lineage.of_provenance(lineage.provenance_of(examples, source.get("path")))
    return lineage.merge(lineage.of_knowledge_base(kb) if kb is not None else None, generated)


def _rag_questions(
    settings: Settings, job: TrainJob, train_set: list[dict], val_set: list[dict], kb: Any | None
) -> list[dict[str, Any]]:
    """Render the held-out questions through Chat's retrieval (sets ``job.rag``); [] without a knowledge base."""
    if kb is None:
        return []
    rows = rag_eval.prepare(
        kb,
        train_set,
        val_set,
        k=settings.retrieval_k,
        threshold=settings.relevance_threshold,
        limit=job.eval_examples,
    )
    job.rag = {
        "kb": kb.name,
        "questions": len(rows),
        "k": settings.retrieval_k,
        "relevance_threshold": settings.relevance_threshold,
        "support_threshold": settings.support_threshold,
        "embedder": str(kb.embedder.path),
    }
    return rows
