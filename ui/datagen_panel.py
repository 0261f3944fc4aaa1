"""Fine-tune tab, "Generate from documents": generate Q&A rows from a knowledge base, review them
beside their source passage, train on the accepted ones.

Generation runs in a background thread of the app (``ui.datagen_jobs``), polled by a timer like
training, with a Stop button; a stopped generation resumes into the same file. The review
(``adapters.datagen_review``) accepts, rejects, edits or deletes rows in the file itself; "Train on
accepted rows" starts a run through the tab's own ``finetune_tab.start``: the file as Q&A data,
grounded in the rows' knowledge base (rendered in Chat's prompt with distractors), and the train
loader keeps only the accepted rows.

Handlers are plain functions over ``Services`` and the app's ``Generations``; ``build`` wires them.
(No ``from __future__ import annotations`` here: Gradio reads the ``gr.SelectData`` annotation of
the row-select handler at run time.)
"""

import dataclasses
import html
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from adapters import datagen_review as review
from adapters.datagen import GenerateOptions
from store.errors import DomainsmithError
from ui.datagen_jobs import Generations, checked_output, datasets_dir, new_output, progress_html
from ui.lineage_view import dataset_marker
from ui.passages import passage_url
from ui.services import Services

COLUMNS = ["State", "Kind", "Question", "Answer", "Source"]
SHOW = ["all", "pending", "accepted", "rejected"]
ACTIONS = {"accept": "accepted", "reject": "rejected"}


@dataclass(frozen=True)
class GenerateForm:
    """The panel's generation settings, as the page sends them (blank numbers: the defaults)."""

    kb: str | None
    model: str | None = None
    per_chunk: float | None = 2
    unanswerable: float | None = 0.25
    limit: float | None = None

    def options(self) -> GenerateOptions:
        return GenerateOptions(
            kb=self.kb or None,
            model=self.model or None,
            per_chunk=int(self.per_chunk) if self.per_chunk else 2,
            unanswerable=float(self.unanswerable) if self.unanswerable is not None else 0.25,
            limit=int(self.limit) if self.limit else None,
        )


# -- generation -------------------------------------------------------------------------------------


def start_generation(
    services: Services, generations: Generations, form: GenerateForm, resume: str | None = None
) -> tuple[str, str]:
    """Start generating into a new file, or into ``resume`` (a stopped one, from the knowledge base its
    rows name, with the form's other settings); returns (file, status)."""
    options = form.options()
    kb = options.kb or services.settings.default_kb
    out = checked_output(services, resume) if resume else None
    if out is not None:
        kbs = sorted({str((r.get("provenance") or {}).get("kb")) for r in review.read_rows(out)} - {"None"})
        kb = kbs[0] if kbs else kb
    services.kb(kb, create=False)  # a knowledge base that is not there, or is empty, is refused here
    services.assistant.searchable_kb(kb)
    out = out or new_output(services, kb)
    generations.start(services, dataclasses.replace(options, kb=kb), out)
    verb = "Resuming" if resume else "Generating"
    return str(out.resolve()), f"{verb} into **{html.escape(out.name)}**: rows appear below as each passage is done."


def stop_generation(generations: Generations, out: str | None) -> str:
    if generations.cancel(Path(out) if out else None):
        return "Stopping after the current passage; the rows so far are kept (Resume continues)."
    return "No generation is running."


# -- the rows ---------------------------------------------------------------------------------------


def file_choices(services: Services) -> list[tuple[str, str]]:
    """(label, path) of each generated file, newest first; a file made from documents changed since says so."""
    choices = []
    for path in review.generated_files(datasets_dir(services)):
        stale = dataset_marker(services, str(path))
        choices.append((path.name + (f" ({stale})" if stale else ""), str(path.resolve())))
    return choices


def rows_view(services: Services, out: str | None, show: str = "all") -> tuple[list[list[str]], list[str], str]:
    """(table rows, their keys, counts markdown) of a generated file; empty before its first row."""
    if not out:
        return [], [], ""
    path = checked_output(services, out, must_exist=False)
    rows = review.read_rows(path) if path.exists() else []
    shown = [r for r in rows if show in (None, "", "all") or review.state_of(r) == show]
    table = [
        [
            review.state_of(r) + (" (edited)" if r.get("edited") else ""),
            str(r.get("kind", "")),
            str(r.get("question", "")),
            str(r.get("answer") or ""),
            _place(r),
        ]
        for r in shown
    ]
    return table, [review.row_key(r) for r in shown], counts_markdown(rows)


def counts_markdown(rows: list[dict[str, Any]]) -> str:
    if not rows:
        return "No rows yet."
    c = review.counts(rows)
    kinds = Counter(str(r.get("kind", "")) for r in rows if review.state_of(r) == "accepted")
    return (
        f"**{len(rows)} rows:** {c['accepted']} accepted ({kinds['answerable']} answerable, "
        f"{kinds['unanswerable']} unanswerable), {c['pending']} pending, {c['rejected']} rejected"
    )


def _place(row: dict[str, Any]) -> str:
    p = row.get("provenance") or {}
    label = p.get("page_label") or p.get("page")
    parts = [str(p.get("document") or "")] + ([f"p. {label}"] if label else []) + [str(p.get("section") or "")]
    return ", ".join(part for part in parts if part)


def show_row(services: Services, out: str | None, key: str | None) -> tuple[str, str, str]:
    """(question, answer, source passage markdown) of the selected row."""
    if not key:
        return "", "", ""
    path = checked_output(services, out)
    row = next((r for r in review.read_rows(path) if review.row_key(r) == key), None)
    if row is None:
        raise DomainsmithError("that row is no longer in the file (deleted or changed elsewhere): reload the rows")
    return str(row.get("question", "")), str(row.get("answer") or ""), passage_markdown(services, row)


def passage_markdown(services: Services, row: dict[str, Any]) -> str:
    """The row's source passage as the knowledge base holds it now, or why it is gone."""
    source = review.source_of(row, lambda name: services.kb(name, create=False))
    p = row.get("provenance") or {}
    head = f"**Source:** {html.escape(source.document)}" + (f" — {html.escape(source.place)}" if source.place else "")
    if source.text is not None:
        head += f" · <a href='{passage_url(str(p['kb']), str(p['chunk_id']))}' target='_blank'>open in context ↗</a>"
    lines = [head]
    if row.get("edited"):
        original = row.get("original") or {}
        lines.append(f"*Edited; generated as:* {html.escape(str(original.get('question', '')))}")
    renamed = row.get("renamed")
    if isinstance(renamed, dict):
        lines.append(
            f"*Unanswerable by design:* made from “{html.escape(str(renamed.get('from', '')))}” with "
            f"{html.escape(str(renamed.get('name', '')))} renamed to {html.escape(str(renamed.get('invented', '')))}, "
            "a name no document uses."
        )
    if source.text is not None:
        lines.append("> " + html.escape(source.text).replace("\n", "\n> "))
    if source.note:
        lines.append(f"⚠️ {html.escape(source.note)}")
    return "\n\n".join(lines)


# -- the review -------------------------------------------------------------------------------------


def review_row(services: Services, out: str | None, key: str | None, action: str) -> str:
    """Accept, reject or delete the selected row; returns the status line."""
    if not key:
        raise DomainsmithError("select a row in the table first")
    path = checked_output(services, out)
    if action == "delete":
        row = review.delete(path, key)
        return f"Deleted: {html.escape(str(row.get('question', '')))} (kept in {path.stem}.rejected.jsonl for audit)."
    if action not in ACTIONS:
        raise DomainsmithError(f"unknown review action {action!r}")
    review.set_review(path, [key], ACTIONS[action])
    return f"Row {ACTIONS[action]}."


def accept_all(services: Services, out: str | None) -> str:
    n = review.accept_pending(checked_output(services, out))
    return f"Accepted {n} pending rows." if n else "No pending rows."


def save_edit(services: Services, out: str | None, key: str | None, question: str, answer: str) -> str:
    if not key:
        raise DomainsmithError("select a row in the table first")
    review.edit(checked_output(services, out), key, question, answer)
    return "Edit saved (the generated text is kept beside it)."


def train_accepted(
    services: Services, out: str | None, base: str | None, preset: str, method: str, *advanced: Any
) -> tuple[str, str]:
    """Start a run on the file's accepted rows, grounded in their knowledge base, through the tab's
    own ``start``; returns (run id, status markdown)."""
    from ui import finetune_tab

    path = checked_output(services, out)
    if review.is_generating(path):
        raise DomainsmithError(f"a generation is writing {path.name}: stop it or wait until it ends, then train")
    rows = review.read_rows(path)
    accepted = [r for r in rows if review.state_of(r) == "accepted"]
    if not accepted:
        pending = review.counts(rows)["pending"]
        raise DomainsmithError(
            f"no accepted rows in {path.name} ({pending} pending): accept the rows to train on first"
        )
    kbs = Counter(str((r.get("provenance") or {}).get("kb") or "") for r in accepted)
    kb = kbs.most_common(1)[0][0] or services.settings.default_kb
    return finetune_tab.start(
        services, finetune_tab.SOURCE_FILE, str(path), kb, True, base, preset, method, None, *advanced
    )


# -- the components ---------------------------------------------------------------------------------


def build(services: Services, train_inputs: list, run_outputs: list) -> Generations:
    """The panel, in an accordion. ``train_inputs`` are the tab's (base, preset, method, *advanced)
    components, ``run_outputs`` its (run id, status, timer, runs picker): "Train on accepted rows"
    sets them as the tab's Train button does."""
    import gradio as gr

    from ui import finetune_tab
    from ui.chat_tab import kb_choices, model_choices
    from ui.gradio_errors import errors_into, user_errors

    generations = Generations()
    with gr.Accordion("Generate from documents", open=False, elem_id="ds-gen") as accordion:
        gr.Markdown(
            "A local model writes questions and answers from each passage of a knowledge base. Each row must "
            "find its passage with Chat's retrieval and be supported by it, and keeps its source. Review the "
            "rows, then train on the accepted ones, grounded in the knowledge base."
        )
        with gr.Row():
            kb = gr.Dropdown(
                kb_choices(services), value=services.settings.default_kb, label="Knowledge base", elem_id="ds-gen-kb"
            )
            models = model_choices(services)
            model = gr.Dropdown(models, value=models[0][1], label="Generator model", info="any model Chat can use")
            per_chunk = gr.Number(2, label="Questions per passage", precision=0, minimum=1, maximum=10)
            unanswerable = gr.Number(0.25, label="Unanswerable share", minimum=0, maximum=1, step=0.05)
            limit = gr.Number(0, label="Passages (0: all)", precision=0, minimum=0)
        with gr.Row():
            generate_button = gr.Button("Generate", variant="primary", elem_id="ds-gen-start")
            stop_button = gr.Button("Stop", variant="stop", elem_id="ds-gen-stop")
            resume_button = gr.Button("Resume the picked file", elem_id="ds-gen-resume")
        gen_status = gr.Markdown(elem_id="ds-gen-status")
        bar = gr.HTML(elem_id="ds-gen-progress")
        timer = gr.Timer(1.0, active=False)
        with gr.Row():
            file = gr.Dropdown(
                file_choices(services), value=None, label="Generated file", elem_id="ds-gen-file", scale=3
            )
            show = gr.Radio(SHOW, value="all", label="Show", scale=2)
        counts = gr.Markdown(elem_id="ds-gen-counts")
        keys = gr.State([])
        key = gr.State(None)
        table = gr.Dataframe(
            headers=COLUMNS,
            interactive=False,
            wrap=True,
            max_height=360,
            elem_id="ds-gen-rows",
            column_widths=["11%", "10%", "30%", "31%", "18%"],
        )
        with gr.Row():
            with gr.Column(scale=1):
                question = gr.Textbox(label="Question", lines=2, elem_id="ds-gen-question")
                answer = gr.Textbox(label="Answer", lines=3, elem_id="ds-gen-answer")
                with gr.Row():
                    accept_button = gr.Button("Accept", variant="primary", elem_id="ds-gen-accept")
                    reject_button = gr.Button("Reject", elem_id="ds-gen-reject")
                    delete_button = gr.Button("Delete", variant="stop", elem_id="ds-gen-delete")
                with gr.Row():
                    edit_button = gr.Button("Save edit", elem_id="ds-gen-edit")
                    all_button = gr.Button("Accept all pending", elem_id="ds-gen-accept-all")
            with gr.Column(scale=1):
                passage = gr.Markdown(elem_id="ds-gen-passage")
        train_button = gr.Button("Train on accepted rows", variant="primary", elem_id="ds-gen-train")

    unselected = (None, "", "", "")  # key, question, answer, passage: no row selected

    def started(out, text):
        table_rows, row_keys, text_counts = rows_view(services, out, "all")
        picker = gr.Dropdown(choices=file_choices(services), value=out)
        return (
            picker,
            text,
            progress_html(generations, out)[0],
            table_rows,
            row_keys,
            text_counts,
            gr.Timer(active=True),
            *unselected,
        )

    @errors_into(1, 11)
    def gen_start(kb_name, model_name, n, share, cap):
        return started(*start_generation(services, generations, GenerateForm(kb_name, model_name, n, share, cap)))

    @errors_into(1, 11)
    def gen_resume(out, kb_name, model_name, n, share, cap):
        form = GenerateForm(kb_name, model_name, n, share, cap)
        return started(*start_generation(services, generations, form, resume=out))

    def gen_tick(out, which, shown_keys):
        line, finished = progress_html(generations, out)
        try:
            table_rows, row_keys, text = rows_view(services, out, which)
        except DomainsmithError:  # the picked file is gone: stop polling
            return line, gr.skip(), gr.skip(), gr.skip(), gr.Timer(active=False)
        fresh = row_keys != shown_keys  # redraw the table only when rows came: a redraw drops the selection
        skip = gr.skip()
        return line, table_rows if fresh else skip, row_keys if fresh else skip, text, gr.Timer(active=not finished)

    @errors_into(0, 1)
    def gen_stop(out):
        return stop_generation(generations, out)

    @errors_into(4, 10)
    def gen_pick(out, which):
        table_rows, row_keys, text = rows_view(services, out, which)
        line, finished = progress_html(generations, out)
        return table_rows, row_keys, text, line, "", gr.Timer(active=not finished), *unselected

    def gen_select(row_keys, evt: gr.SelectData):
        row = evt.index[0] if isinstance(evt.index, (list, tuple)) else evt.index
        return row_keys[row] if isinstance(row, int) and 0 <= row < len(row_keys) else None

    @user_errors
    def gen_show(out, selected):
        return show_row(services, out, selected)

    def changed(out, which, message):
        return message, *rows_view(services, out, which)

    @errors_into(0, 4)
    def gen_accept(out, which, selected):
        return changed(out, which, review_row(services, out, selected, "accept"))

    @errors_into(0, 4)
    def gen_reject(out, which, selected):
        return changed(out, which, review_row(services, out, selected, "reject"))

    @errors_into(0, 8)
    def gen_delete(out, which, selected):
        return *changed(out, which, review_row(services, out, selected, "delete")), *unselected

    @errors_into(0, 4)
    def gen_accept_all(out, which):
        return changed(out, which, accept_all(services, out))

    @errors_into(0, 4)
    def gen_edit(out, which, selected, q, a):
        return changed(out, which, save_edit(services, out, selected, q, a))

    @errors_into(1, 5)
    def gen_train(out, *settings):
        run_id, text = train_accepted(services, out, *settings)
        runs = gr.Dropdown(choices=finetune_tab.run_choices(services), value=run_id)
        return run_id, text, gr.Timer(active=True), runs, text

    def gen_refresh(kb_name, model_name, out):  # files, models and knowledge bases made since the page loaded
        return (
            gr.Dropdown(choices=kb_choices(services), value=kb_name),
            gr.Dropdown(choices=model_choices(services), value=model_name),
            gr.Dropdown(choices=file_choices(services), value=out),
        )

    accordion.expand(gen_refresh, [kb, model, file], [kb, model, file], show_progress="hidden")
    form = [kb, model, per_chunk, unanswerable, limit]
    selection = [key, question, answer, passage]
    after_start = [file, gen_status, bar, table, keys, counts, timer, *selection]
    generate_button.click(gen_start, form, after_start)
    resume_button.click(gen_resume, [file, *form], after_start)
    stop_button.click(gen_stop, file, gen_status)
    timer.tick(gen_tick, [file, show, keys], [bar, table, keys, counts, timer], show_progress="hidden")
    picked = [table, keys, counts, bar, gen_status, timer, *selection]
    file.input(gen_pick, [file, show], picked)
    show.input(gen_pick, [file, show], picked)
    table.select(gen_select, keys, key).then(gen_show, [file, key], [question, answer, passage])
    after_change = [gen_status, table, keys, counts]
    accept_button.click(gen_accept, [file, show, key], after_change)
    reject_button.click(gen_reject, [file, show, key], after_change)
    delete_button.click(gen_delete, [file, show, key], [*after_change, *selection])
    all_button.click(gen_accept_all, [file, show], after_change)
    edit_button.click(gen_edit, [file, show, key, question, answer], after_change)
    run_id, status, run_timer, runs = run_outputs
    train_button.click(gen_train, [file, *train_inputs], [run_id, gen_status, run_timer, runs, status])
    return generations
