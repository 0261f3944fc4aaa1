"""Fine-tune tab: pick data and a base, train an adapter with a live loss curve, evaluate, export.

Handlers are plain functions over ``Services`` (``services.finetuner`` does the work); ``build``
wires them to components. Progress is polled from the run folder by a timer, so training never
holds a request open and the other tabs stay responsive while it runs. The advanced fields are
the training settings declared with a ``ui`` label (``adapters.job.training_settings``).
"""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any

from adapters.export import DEFAULT_QUANT, QUANTS
from adapters.finetune import RunProgress, evaluation_rows
from adapters.hyperparameters import DEFAULT_PRESET, PRESETS
from adapters.job import METHODS, training_settings
from adapters.service import TrainRequest
from store.errors import DomainsmithError
from store.uploads import stage_upload
from ui.gradio_errors import errors_into
from ui.lineage_view import dataset_marker, marked_runs, stale_report
from ui.services import Services

SOURCE_FILE, SOURCE_KB = "Q&A file", "Knowledge base"
TRAINING_UPLOADS = "_training-data"  # uploads/<this>/: not a valid knowledge-base name, so never a KB's folder
EVAL_COLUMNS = ["Measure", "Base model", "With adapter", "Base model, no retrieval"]
ADVANCED_SETTINGS = [s for s in training_settings() if s.spec.ui]
ADVANCED = tuple(s.name for s in ADVANCED_SETTINGS)  # the order of ``start``'s trailing arguments


def preview(services: Services, file: str | None) -> tuple[list[list[str]], str]:
    """The first rows of an uploaded Q&A file and its validation report."""
    if not file:
        return [], ""
    try:
        rows, notes = services.finetuner.preview(file)
    except DomainsmithError as exc:
        return [], f"❌ **This file cannot be used:** {html.escape(str(exc))}"
    table = [[_question(r), _answer(r)] for r in rows]
    stale = dataset_marker(services, file)  # generated rows whose documents changed since
    notes = [*notes, f"⚠️ {stale}: these rows were made from documents changed since"] if stale else notes
    return table, "✅ " + "  \n".join(html.escape(n) for n in notes)


def start(
    services: Services,
    source: str,
    file: str | None,
    kb: str | None,
    grounded: bool,
    base: str | None,
    preset: str,
    method: str,
    eval_file: str | None,
    *advanced: Any,
) -> tuple[str, str]:
    """Start a run in the background; returns (run id, status markdown). ``eval_file``: a Q&A file
    asked before and after training, never trained on (None: none)."""
    # A blank number field arrives as None or 0: both mean "the preset's value" (a job setting's default).
    values = {s.name: s.type(v) if v else s.blank for s, v in zip(ADVANCED_SETTINGS, advanced, strict=True)}
    overrides = {s.name: values[s.name] for s in ADVANCED_SETTINGS if not s.of_job and values[s.name] is not None}
    job_settings = {s.name: values[s.name] for s in ADVANCED_SETTINGS if s.of_job}
    by_file = source == SOURCE_FILE
    if by_file and not file:
        raise DomainsmithError("upload a Q&A file first (.jsonl or .csv)")
    s = services.settings

    def staged(upload: str) -> str:  # keep the run's files under DOMAINSMITH_HOME (upload temp files are cleaned up)
        path = Path(upload)
        return str(stage_upload(s.uploads_dir, TRAINING_UPLOADS, path, path.name, s.parse_limits.max_file_bytes))

    if by_file:
        file = staged(file)
    if eval_file:
        eval_file = staged(eval_file)
    request = TrainRequest(
        data=file if by_file else None,
        kb=None if by_file else kb,
        grounded=kb if by_file and grounded else None,
        base=base or None,
        preset=preset,
        method=method,
        overrides=overrides,
        eval_data=eval_file or None,
        **job_settings,
    )
    job, notes = services.finetuner.start(request)
    lines = [
        f"**Run {job.run_id}** started: {job.n_train} training and {job.n_val} validation examples, "
        f"preset {job.preset}.",
        f"Method: {html.escape(job.method_reason)}",
        *map(html.escape, notes),
    ]
    if not job.n_val:
        lines.append(
            "Every row trains and none is held out: add an evaluation file (questions in other words, never "
            "trained) to see what the adapter learned."
        )
    return job.run_id, "  \n".join(lines)


def progress_html(p: RunProgress) -> str:
    parts = [f"step {p.step}/{p.total_steps or '?'}", f"epoch {p.epoch:.1f}"]
    if p.losses and p.losses[-1]["series"] == "training":
        parts.append(f"loss {p.losses[-1]['loss']:.3f}")
    if p.tokens_per_s:
        parts.append(f"{p.tokens_per_s:.0f} tokens/s")
    if p.eta_s is not None and p.status == "running":
        parts.append(f"about {int(p.eta_s)} s left")
    labels = {
        "done": "✅ finished",
        "cancelled": "⏹ cancelled",
        "failed": "❌ failed",
        "interrupted": "⚠️ interrupted (resume it)",
        "running": "⏳ training",
        "new": "waiting",
    }
    label = labels.get(p.status, p.status)
    message = f"<div class='ds-run-message'>{html.escape(p.message)}</div>" if p.message else ""
    return (
        f"<div class='ds-progress' data-status='{p.status}' data-step='{p.step}'>"
        f"<b>{html.escape(p.run_id)}</b>: {label}: {' · '.join(parts)}"
        f"<progress max='1' value='{p.fraction:.3f}' style='width:100%'></progress>{message}</div>"
    )


def refresh(services: Services, run_id: str | None):
    """(progress html, loss points, log, evaluation rows, finished?) of a run."""
    if not run_id:
        return "", loss_frame([]), "", [], True
    p = services.finetuner.progress(run_id)
    points = loss_frame(p.losses)
    rows = [
        [m, round(b, 4), round(a, 4), "" if c is None else round(c, 4)] for m, b, a, c in evaluation_rows(p.metrics)
    ]
    return progress_html(p), points, p.log, rows, p.finished


def loss_frame(points: list[dict[str, Any]]):
    """Loss points with fixed column types, or None while there are none.

    Works around Gradio 6.31's plot, measured in chromium: given an empty frame it never draws a
    line again; untyped columns read as categories; and a series absent from the first frames is
    never drawn. So: no empty frames, typed columns, and both series named from the first frame
    (a validation row with no value, which draws nothing, until the first real one arrives).
    """
    import pandas as pd

    if not points:
        return None
    if not any(p["series"] == "validation" for p in points):
        points = [*points, {"step": points[0]["step"], "loss": float("nan"), "series": "validation"}]
    frame = pd.DataFrame(points, columns=["step", "loss", "series"])
    return frame.astype({"step": "int64", "loss": "float64", "series": "object"})


def cancel(services: Services, run_id: str | None) -> str:
    if not run_id:
        return "No run is selected."
    if services.finetuner.cancel(run_id):
        return f"Asked run {run_id} to stop after its current step (a checkpoint is kept)."
    return f"Run {run_id} is not training."


def resume(services: Services, run_id: str | None) -> str:
    if not run_id:
        raise DomainsmithError("pick an interrupted or cancelled run first")
    job = services.finetuner.resume(run_id)
    return f"Resuming run {job.run_id} from its last checkpoint (same data order)."


def export(services: Services, run_id: str | None, quant: str, say=None) -> tuple[str, str]:
    """Merge and export a finished run; returns (status markdown, registered model name)."""
    if not run_id:
        raise DomainsmithError("train an adapter first (or pick a finished run)")
    record = services.finetuner.export(run_id, quant, progress=say)
    agreement = record.metrics.get("smoke_test", {}).get("greedy_agreement")
    checked = f"; greedy agreement with the merged model {agreement:.0%}" if agreement is not None else ""
    size = f"{record.size_bytes / 2**20:.1f} MB"
    return (
        f"✅ Exported **{html.escape(record.name)}** ({record.quant}, {size}){checked}. "
        f"It is in the Chat model picker.",
        record.name,
    )


def run_choices(services: Services) -> list[tuple[str, str]]:
    def data(source: dict[str, Any]) -> str:
        return Path(source["path"]).name if source.get("path") else f"knowledge base {source.get('name')}"

    def mark(run: dict[str, Any]) -> str:
        return f" ({run['stale_marker']})" if run["stale_marker"] else ""

    return [
        (f"{r['run_id']} ({r['status']}, {data(r['source'])}){mark(r)}", r["run_id"])
        for r in reversed(marked_runs(services, services.finetuner.runs()))
    ]


def _question(example: dict[str, Any]) -> str:
    return next((m["content"] for m in example.get("messages", []) if m["role"] == "user"), example.get("question", ""))


def _answer(example: dict[str, Any]) -> str:
    return next(
        (m["content"] for m in reversed(example.get("messages", [])) if m["role"] == "assistant"),
        example.get("answer", ""),
    )


def build(services: Services, chat_model=None, tabs=None, chat_tab_id: str | None = None) -> None:
    """The tab's components; ``chat_model`` and ``tabs`` let "Use in Chat" switch Chat's model."""
    import gradio as gr

    from ui import datagen_panel
    from ui.chat_tab import kb_choices, model_choices

    run_id = gr.State(None)
    model_name = gr.State(None)
    timer = gr.Timer(1.0, active=False)
    with gr.Row():
        with gr.Column(scale=1):
            gr.Markdown("### 1. Data")
            source = gr.Radio([SOURCE_FILE, SOURCE_KB], value=SOURCE_FILE, label="Train on")
            file = gr.File(
                label="Q&A file: .jsonl (question/answer or messages) or .csv",
                file_types=[".jsonl", ".csv"],
                type="filepath",
                elem_id="ds-train-file",
            )
            kb = gr.Dropdown(
                kb_choices(services),
                value=services.settings.default_kb,
                label="Knowledge base",
                info="with a Q&A file: used when 'grounded' is ticked",
            )
            grounded = gr.Checkbox(False, label="Grounded: train answers that cite this knowledge base's sources")
            eval_file = gr.File(
                label="Evaluation file (optional): questions never trained, asked before and after",
                file_types=[".jsonl", ".csv"],
                type="filepath",
                elem_id="ds-eval-file",
            )
            report = gr.Markdown(elem_id="ds-data-report")
            sample = gr.Dataframe(
                headers=["Question", "Answer"], label="Preview", interactive=False, wrap=True, max_height=240
            )
        with gr.Column(scale=1):
            gr.Markdown("### 2. Model and settings")
            base_choices = services.base_choices()
            base = gr.Dropdown(
                base_choices,
                value=base_choices[0][1],
                allow_custom_value=True,
                label="Base model",
                info="a bundled model (assembled on first use), a .gguf file or a Hugging Face folder",
                elem_id="ds-train-base",
            )
            preset = gr.Radio(
                list(PRESETS),
                value=DEFAULT_PRESET,
                label="Preset",
                info="quick: 5 epochs, a first look; standard: 20 epochs, learns a few dozen facts",
            )
            method = gr.Radio(
                list(METHODS),
                value="auto",
                label="Method",
                info="auto picks QLoRA (4-bit) or plain LoRA from the model's size and your memory",
            )
            with gr.Accordion("Advanced settings (blank or 0: the preset's)", open=False):
                advanced = []
                for row in range(0, len(ADVANCED_SETTINGS), 3):
                    with gr.Row():
                        advanced += [
                            gr.Number(s.blank, label=s.spec.ui, precision=0 if s.type is int else None)
                            for s in ADVANCED_SETTINGS[row : row + 3]
                        ]
            with gr.Row():
                train = gr.Button("Train adapter", variant="primary", elem_id="ds-train")
                stop = gr.Button("Cancel", variant="stop", elem_id="ds-cancel")
                again = gr.Button("Resume", elem_id="ds-resume")
            runs = gr.Dropdown(
                run_choices(services),
                label="Runs",
                info="pick a run to see its progress and results",
                elem_id="ds-runs",
            )
    status = gr.Markdown(elem_id="ds-train-status")
    datagen_panel.build(services, [base, preset, method, *advanced], [run_id, status, timer, runs])

    def stale_runs_and_models() -> str:  # trained on documents removed or replaced since; read at each page load
        return stale_report(services)

    gr.Markdown(stale_runs_and_models, elem_id="ds-stale")
    bar = gr.HTML(elem_id="ds-progress")
    plot = gr.LinePlot(
        x="step",
        y="loss",
        color="series",
        title="Loss",
        height=280,
        elem_id="ds-loss-plot",
        color_map={"training": "#2563eb", "validation": "#ea580c"},
    )
    with gr.Row():
        evaluation = gr.Dataframe(
            headers=EVAL_COLUMNS, label="Before / after evaluation", interactive=False, elem_id="ds-eval"
        )
        with gr.Column():
            quant = gr.Dropdown(
                list(QUANTS),
                value=DEFAULT_QUANT,
                label="GGUF type",
                elem_id="ds-quant",
                info=f"{DEFAULT_QUANT}: +0.4 % perplexity over f16, measured",
            )
            export_button = gr.Button("Merge & export GGUF", elem_id="ds-export")
            use_button = gr.Button("Use in Chat", elem_id="ds-use", interactive=False)
            export_status = gr.Markdown(elem_id="ds-export-status")
    with gr.Accordion("Log", open=False):
        log = gr.Textbox(lines=12, max_lines=12, show_label=False, autoscroll=True)

    @errors_into(1, 4)
    def on_start(*values):
        new_id, text = start(services, *values)
        return new_id, text, gr.Timer(active=True), gr.Dropdown(choices=run_choices(services), value=new_id)

    def shown(rid):
        """(progress, plot, log, evaluation, timer) outputs of a run, and whether it has finished."""
        bar_html, points, text, rows, finished = refresh(services, rid)
        return (bar_html, points, text, rows, gr.Timer(active=not finished)), finished

    def on_pick(rid):
        return rid, *shown(rid)[0]

    def on_tick(rid):
        outputs, finished = shown(rid)
        # The last tick also relabels the run in the picker, which still says "running".
        return *outputs, gr.Dropdown(choices=run_choices(services), value=rid) if finished else gr.skip()

    @errors_into(0, 3)
    def on_export(rid, q, progress=gr.Progress()):
        text, name = export(services, rid, q, say=lambda stage: progress(None, desc=stage))
        return text, name, gr.Button(interactive=True)

    use_outputs = [export_status, chat_model] + ([tabs] if tabs is not None else [])

    @errors_into(0, len(use_outputs))
    def on_use(name):
        if not name:
            raise DomainsmithError("export a model first")
        updates = [gr.skip(), gr.Dropdown(choices=model_choices(services), value=name)]
        if tabs is not None:
            updates.append(gr.Tabs(selected=chat_tab_id))
        return tuple(updates)

    file.change(lambda f: preview(services, f), file, [sample, report])
    train.click(
        on_start,
        [source, file, kb, grounded, base, preset, method, eval_file, *advanced],
        [run_id, status, timer, runs],
        api_name="train",
    )
    timer.tick(on_tick, run_id, [bar, plot, log, evaluation, timer, runs], show_progress="hidden")
    runs.select(on_pick, runs, [run_id, bar, plot, log, evaluation, timer])
    stop.click(errors_into(0, 1)(lambda rid: cancel(services, rid)), run_id, status)

    @errors_into(0, 2)
    def on_resume(rid):
        return resume(services, rid), gr.Timer(active=True)

    again.click(on_resume, run_id, [status, timer])
    export_button.click(on_export, [run_id, quant], [export_status, model_name, use_button], api_name="export")
    if chat_model is not None:
        use_button.click(on_use, model_name, use_outputs)
