"""Knowledge Base tab: upload files, list documents, search, remove and re-index.

Handlers are plain functions over ``Services`` (testable without a browser); ``build`` only
wires them to components.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

from store.errors import DomainsmithError
from store.uploads import stage_upload
from ui.services import Services

DOC_COLUMNS = ["ID", "Name", "Type", "Pages", "Chunks", "Added", "Source"]
HIT_COLUMNS = ["#", "Source", "Page", "Section", "Passage", "Score"]


def documents_table(services: Services, kb_name: str) -> list[list]:
    return [[d.id, d.name, d.kind, d.pages or "", d.chunks, d.added_at[:16].replace("T", " "), d.source]
            for d in services.kb(kb_name).documents()]


def upload(services: Services, kb_name: str, files: list[str] | None) -> Iterator[tuple[str, list[list]]]:
    """Stage uploads, ingest them, yield (status markdown, documents table) as files finish."""
    if not files:
        yield "Choose one or more files first.", documents_table(services, kb_name)
        return
    kb = services.kb(kb_name)
    staged, lines = [], []
    for file in files:
        path = Path(file)
        try:
            staged.append(stage_upload(services.settings.uploads_dir, kb.name, path, path.name,
                                       services.settings.parse_limits.max_file_bytes))
        except DomainsmithError as exc:
            lines.append(f"- ❌ {exc}")
    for event in kb.add(staged):
        if event.status == "done":
            s = event.summary
            lines.insert(0, f"**Done:** {len(s.added)} added, {len(s.replaced)} replaced, "
                            f"{len(s.unchanged)} unchanged, {len(s.skipped)} skipped, {len(s.failed)} failed.")
        elif event.status in ("added", "replaced"):
            lines.append(f"- ✅ {event.source}: {event.status}, {event.chunks} chunks")
        else:
            icon = "❌" if event.status == "failed" else "➖"
            lines.append(f"- {icon} {event.source}: {event.status}: {event.reason}")
        yield "\n".join(lines), documents_table(services, kb_name)


def search(services: Services, kb_name: str, query: str, mode: str) -> list[list]:
    return [[h.rank, h.source, h.page or "", h.section, h.text, round(h.score, 4)]
            for h in services.kb(kb_name).search(query, k=10, mode=mode)]


def remove(services: Services, kb_name: str, doc_id: str) -> tuple[str, list[list]]:
    doc = services.kb(kb_name).remove(doc_id.strip())
    return f"Removed {doc.source} ({doc.chunks} chunks).", documents_table(services, kb_name)


def reindex(services: Services, kb_name: str) -> str:
    count = services.kb(kb_name, allow_embedder_change=True).reindex()
    return f"Re-embedded {count} chunks; index rebuilt."


def build(services: Services) -> None:
    import gradio as gr

    def guard(fn):
        def wrapped(*args):
            try:
                return fn(*args)
            except DomainsmithError as exc:
                raise gr.Error(str(exc)) from exc
        return wrapped

    def guard_gen(fn):
        def wrapped(*args):
            try:
                yield from fn(*args)
            except DomainsmithError as exc:
                raise gr.Error(str(exc)) from exc
        return wrapped

    with gr.Row():
        kb_name = gr.Textbox(value=services.settings.default_kb, label="Knowledge base", scale=1)
    with gr.Row():
        with gr.Column(scale=1):
            files = gr.File(label="Add documents (PDF, DOCX, Markdown, HTML, TXT)", file_count="multiple")
            add_button = gr.Button("Add to knowledge base", variant="primary")
            status = gr.Markdown()
        with gr.Column(scale=2):
            table = gr.Dataframe(headers=DOC_COLUMNS, label="Documents", interactive=False)
            with gr.Row():
                doc_id = gr.Textbox(label="Document id", scale=2)
                remove_button = gr.Button("Remove", variant="stop", scale=1)
                reindex_button = gr.Button("Re-index", scale=1)
    with gr.Row():
        query = gr.Textbox(label="Search", placeholder="Ask about your documents", scale=3)
        mode = gr.Radio(["hybrid", "vector", "keyword"], value="hybrid", label="Mode", scale=1)
    hits = gr.Dataframe(headers=HIT_COLUMNS, label="Passages", interactive=False, wrap=True)

    add_button.click(guard_gen(lambda name, f: upload(services, name, f)), [kb_name, files], [status, table])
    query.submit(guard(lambda name, q, m: search(services, name, q, m)), [kb_name, query, mode], hits)
    remove_button.click(guard(lambda name, d: remove(services, name, d)), [kb_name, doc_id], [status, table])
    reindex_button.click(guard(lambda name: reindex(services, name)), [kb_name], status)
    kb_name.change(guard(lambda name: documents_table(services, name)), kb_name, table)
