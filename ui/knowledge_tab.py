"""Knowledge Base tab: choose or create a knowledge base, upload, list, search, remove and re-index.

Handlers are plain functions over ``Services`` (testable without a browser); ``build`` only
wires them to components. (No ``from __future__ import annotations`` here: Gradio reads the
``gr.SelectData`` annotation of the row-select handler at run time.)
"""

from collections.abc import Callable, Iterator
from pathlib import Path

from store import indexing
from store.errors import DomainsmithError
from store.indexing import INDEXING
from store.knowledge_base import validate_name
from store.parsing import SUPPORTED_SUFFIXES
from store.uploads import stage_upload
from ui.gradio_errors import errors_into, user_errors
from ui.passages import passage_url
from ui.services import Services

DOC_COLUMNS = ["ID", "Name", "Type", "Pages", "Chunks", "Added", "Source"]
HIT_COLUMNS = ["#", "Source", "Page", "Section", "Passage", "Score", "Open"]


def documents_table(services: Services, kb_name: str) -> list[list]:
    return [
        [d.id, d.name, d.kind, d.pages or "", d.chunks, d.added_at[:16].replace("T", " "), d.source]
        for d in services.kb(kb_name).documents()
    ]


def upload(
    services: Services, kb_name: str, files: list[str] | None, progress: Callable[[float, str], None] | None = None
) -> Iterator[tuple[str, list[list]]]:
    """Stage uploads, ingest them, yield (status markdown, documents table) as files finish.

    The batch is recorded (``store.indexing``) before anything else, so a question asked in Chat
    the moment "Add" is pressed waits for these files instead of finding them missing.
    """
    if not files:
        yield "Choose one or more files first.", documents_table(services, kb_name)
        return
    name = validate_name(kb_name or services.settings.default_kb)
    with INDEXING.batch(indexing.key(services.settings.db_path, name), files) as batch:
        yield from _ingest(services, name, [Path(f) for f in files], batch, progress)


def _ingest(services: Services, kb_name: str, files: list[Path], batch, progress) -> Iterator[tuple[str, list[list]]]:
    kb = services.kb(kb_name)
    staged, lines, taken = [], [], set()
    for path in files:
        try:
            staged.append(
                stage_upload(
                    services.settings.uploads_dir,
                    kb.name,
                    path,
                    path.name,
                    services.settings.parse_limits.max_file_bytes,
                    taken,
                )
            )
        except DomainsmithError as exc:
            lines.append(f"- ❌ {exc}")
    done = 0
    for event in kb.add(staged, batch=batch):
        if event.status == "reading":  # a scan's pages being read by OCR: progress, not a result
            if progress is not None:
                share = (done + event.pages_done / max(1, event.pages_total)) / max(1, len(staged))
                progress(share, f"{event.source}: OCR page {event.pages_done} of {event.pages_total}")
            reading = f"- ⏳ {event.source}: reading scanned pages by OCR ({event.pages_done} of {event.pages_total})"
            yield "\n".join([*lines, reading]), documents_table(services, kb_name)
            continue
        if progress is not None and event.status != "done":
            done += 1
            progress(done / max(1, len(staged)), f"{done}/{len(staged)} files")
        if event.status == "done":
            s = event.summary
            lines.insert(
                0,
                f"**Done:** {len(s.added)} added, {len(s.replaced)} replaced, "
                f"{len(s.unchanged)} unchanged, {len(s.skipped)} skipped, {len(s.failed)} failed.",
            )
        elif event.status in ("added", "replaced"):
            notes = f" ({'; '.join(event.notes)})" if event.notes else ""
            lines.append(f"- ✅ {event.source}: {event.status}, {event.chunks} chunks{notes}")
        else:
            icon = "❌" if event.status == "failed" else "➖"
            lines.append(f"- {icon} {event.source}: {event.status}: {event.reason}")
        yield "\n".join(lines), documents_table(services, kb_name)


def page_cell(page: int | None, label: str | None) -> str:
    """The Page column: the label a reader's viewer shows, with the physical page when it differs."""
    if not page:
        return ""
    return f"{label} (PDF page {page})" if label and label != str(page) else str(page)


def formats_note(services: Services) -> str:
    """What can be added, shown before anything is uploaded."""
    s = services.settings
    suffixes = ", ".join(SUPPORTED_SUFFIXES)
    return (
        f"**What you can add:** PDF (scanned pages are read by OCR), Word (.docx), Markdown, HTML and plain text "
        f"({suffixes}), one file, many, or a whole folder. Up to {s.max_file_mb:g} MB per file"
        f" and {s.max_pdf_pages:,} pages per PDF. You can ask in Chat as soon as you press *Add*: "
        "the answer waits for the documents to finish indexing."
    )


def search(services: Services, kb_name: str, query: str, mode: str) -> list[list]:
    return [
        [
            h.rank,
            h.source,
            page_cell(h.page, h.page_label),
            h.section,
            h.text,
            round(h.score, 4),
            f"[{'page' if h.page else 'context'} ↗]({passage_url(kb_name, h.chunk_id)})",
        ]
        for h in services.kb(kb_name).search(query, k=10, mode=mode)
    ]


def remove(services: Services, kb_name: str, doc_id: str) -> tuple[str, list[list]]:
    doc = services.kb(kb_name).remove(doc_id.strip())
    return f"Removed {doc.source} ({doc.chunks} chunks).", documents_table(services, kb_name)


def reindex(services: Services, kb_name: str) -> str:
    count = services.kb(kb_name, allow_embedder_change=True).reindex()
    return f"Re-embedded {count} chunks; index rebuilt."


def create(services: Services, name: str) -> tuple[str, list[str]]:
    """Create (or open) a knowledge base; returns (its name, every knowledge base's name)."""
    kb = services.kb((name or "").strip())
    return kb.name, kb_names(services)


def kb_names(services: Services) -> list[str]:
    names = [b["name"] for b in services.knowledge_bases()]
    return names or [services.settings.default_kb]


def describe(services: Services, kb_name: str, doc_id: str) -> str:
    """The document a confirmation names: "turbine.pdf (12 chunks)"."""
    doc = next((d for d in services.kb(kb_name).documents() if d.id == (doc_id or "").strip()), None)
    if doc is None:
        raise DomainsmithError(f"no document {doc_id!r}: select a row in the table first")
    return f"{doc.source} ({doc.chunks} chunks)"


def build(services: Services):
    """The tab's components; returns the knowledge-base picker."""
    import gradio as gr

    with gr.Row():
        kb_name = gr.Dropdown(
            kb_names(services), value=services.settings.default_kb, label="Knowledge base", scale=2, elem_id="ds-kb"
        )
        new_name = gr.Textbox(label="New knowledge base", placeholder="letters, digits, - and _", scale=2)
        create_button = gr.Button("Create", scale=1)
    with gr.Row():
        with gr.Column(scale=1):
            files = gr.File(
                label="Add documents (PDF, DOCX, Markdown, HTML, TXT): drop files here",
                file_count="multiple",
                elem_id="ds-upload",
            )
            folder = gr.File(label="…or a whole folder", file_count="directory", elem_id="ds-upload-folder")
            gr.Markdown(formats_note(services), elem_id="ds-formats")
            add_button = gr.Button("Add to knowledge base", variant="primary", elem_id="ds-add")
            status = gr.Markdown(elem_id="ds-upload-status")
        with gr.Column(scale=2):
            table = gr.Dataframe(
                documents_table(services, services.settings.default_kb),
                headers=DOC_COLUMNS,
                label="Documents (select a row to remove it)",
                interactive=False,
                elem_id="ds-documents",
                column_widths=["14%", "22%", "10%", "8%", "8%", "16%", "22%"],
            )
            with gr.Row():
                doc_id = gr.Textbox(label="Selected document id", scale=2)
                remove_button = gr.Button("Remove…", variant="stop", scale=1)
                reindex_button = gr.Button("Re-index…", scale=1)
            with gr.Row(visible=False) as confirm_row:
                question = gr.Markdown()
                action = gr.State("")
                yes = gr.Button("Yes, do it", variant="stop", elem_id="ds-confirm")
                no = gr.Button("Cancel")
    with gr.Row():
        query = gr.Textbox(label="Search", placeholder="Search your documents", scale=3, elem_id="ds-search")
        mode = gr.Radio(["hybrid", "vector", "keyword"], value="hybrid", label="Mode", scale=1)
    hits = gr.Dataframe(
        headers=HIT_COLUMNS,
        label="Passages",
        interactive=False,
        wrap=True,
        elem_id="ds-hits",
        datatype=["number", "str", "str", "str", "str", "number", "markdown"],
        column_widths=["4%", "15%", "6%", "17%", "44%", "6%", "8%"],
    )

    @errors_into(0, 2)
    def on_add(name, chosen, chosen_folder, progress=gr.Progress()):
        paths = list(chosen or []) + list(chosen_folder or [])
        yield from upload(services, name, paths, lambda share, desc: progress(share, desc=desc))

    def on_select(rows, evt: gr.SelectData):
        row = evt.index[0] if isinstance(evt.index, (list, tuple)) else evt.index
        return str(rows.iloc[row, 0]) if hasattr(rows, "iloc") else str(rows[row][0])

    @errors_into(3, 4)
    def ask_confirm(kind, name, selected):
        what = (
            f"Remove **{describe(services, name, selected)}** from {name}?"
            if kind == "remove"
            else f"Re-embed every chunk of **{name}** and rebuild its index? This can take a while."
        )
        return gr.Row(visible=True), what, kind, ""

    @errors_into(0, 4)
    def on_confirm(kind, name, selected):
        message = remove(services, name, selected)[0] if kind == "remove" else reindex(services, name)
        return message, documents_table(services, name), gr.Row(visible=False), ""

    @user_errors
    def on_create(name):
        created, names = create(services, name)
        return gr.Dropdown(choices=names, value=created), ""

    add_button.click(on_add, [kb_name, files, folder], [status, table], api_name="upload")

    @user_errors
    def on_search(name, q, m):
        return search(services, name, q, m)

    @user_errors
    def on_pick_kb(name):
        return documents_table(services, name)

    query.submit(on_search, [kb_name, query, mode], hits, api_name="search")
    table.select(on_select, table, doc_id)
    confirm_outputs = [confirm_row, question, action, status]

    def on_remove(name, selected):
        return ask_confirm("remove", name, selected)

    def on_reindex(name):
        return ask_confirm("reindex", name, "")

    remove_button.click(on_remove, [kb_name, doc_id], confirm_outputs)
    reindex_button.click(on_reindex, [kb_name], confirm_outputs)
    yes.click(on_confirm, [action, kb_name, doc_id], [status, table, confirm_row, doc_id])
    no.click(lambda: gr.Row(visible=False), None, confirm_row)
    create_button.click(on_create, new_name, [kb_name, new_name])
    kb_name.change(on_pick_kb, kb_name, table)
    return kb_name
