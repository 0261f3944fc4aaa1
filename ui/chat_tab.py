"""Chat tab: streaming grounded answers with numbered, expandable sources.

Handlers are plain generators over ``Services``; ``build`` wires them to components.
"""

from __future__ import annotations

import html
from collections.abc import Iterator

from assistant.assistant import AskOptions
from assistant.events import Answer, Done, Notice, Token, Waiting
from store import indexing
from store.indexing import INDEXING
from store.model_catalogue import Progress
from ui.gradio_errors import plain_words
from ui.lineage_view import mark_model_choices
from ui.passages import passage_url
from ui.services import Services

NOT_IN_DOCUMENTS = "⚠️ **Not in the documents.**"


def model_choices(services: Services) -> list[tuple[str, str]]:
    """The model picker's (label, value) choices; an exported model trained on documents changed
    since says so in its label (``expert (stale: pump.md removed)``), its value stays its name."""
    return mark_model_choices(services, services.model_choices())


def kb_choices(services: Services) -> list[str]:
    names = [b["name"] for b in services.knowledge_bases()]
    return names or [services.settings.default_kb]


def sources_markdown(answer: Answer, kb: str | None = None) -> str:
    """Numbered sources, each expanding to its passage (with a link to the passage viewer, which
    shows a PDF's cited page highlighted, when ``kb`` is given); failed checks marked."""
    if answer.abstained:
        return f"{NOT_IN_DOCUMENTS} {html.escape(answer.reason)}"
    if not answer.citations:
        return ""
    chunk_ids = {s.n: s.chunk_id for s in answer.sources}
    lines = ["**Sources**"]
    for c in answer.citations:
        where = place_html(c.page, c.page_label, c.section)
        if kb and chunk_ids.get(c.n):
            label = "open the page" if c.page else "open in context"
            where += f" · <a href='{passage_url(kb, chunk_ids[c.n])}' target='_blank' class='ds-open'>{label} ↗</a>"
        flag = (" · *read by OCR*" if c.ocr else "") + ("" if c.supported else f" ❗ *{unsupported_text(c)}*")
        lines.append(
            f"<details><summary>[{c.n}] {html.escape(c.source)}"
            f"{' — ' + where if where else ''}{flag}</summary>\n\n"
            f"> {html.escape(c.text).replace(chr(10), chr(10) + '> ')}\n</details>"
        )
    return "\n".join(lines)


def needs_documents(services: Services, kb_name: str | None) -> bool:
    """True when the knowledge base Chat would search has no documents and none are on their way."""
    name = kb_name or services.settings.default_kb
    chunks = next((b["chunks"] for b in services.knowledge_bases() if b["name"] == name), 0)
    return chunks == 0 and not INDEXING.pending(indexing.key(services.settings.db_path, name))


def error_turn(exc: BaseException) -> str:
    """The assistant's turn when answering failed: the reason in plain words, and what to do."""
    return f"⚠️ **I could not answer.** {plain_words(exc)}"


WAITING_MARK = "*⏳ "


def waiting_turn(text: str) -> str:
    return f"{WAITING_MARK}{text}*"


def unsupported_text(citation) -> str:
    """Why a citation is flagged: what the sentence claims that the passage does not say, when known."""
    if citation.unsupported_claims:
        claims = ", ".join(f"“{html.escape(c)}”" for c in citation.unsupported_claims[:3])
        return f"not supported: this passage does not say {claims}"
    return "citation not supported by this passage"


def place_html(page: int | None, page_label: str | None, section: str) -> str:
    """Where a cited passage sits, for the reader: "p. 24" (the label their viewer shows, with the
    physical "PDF page 29" on hover when it differs), then the section; HTML-escaped."""
    parts = []
    if page:
        label = page_label or str(page)
        hover = f" title='PDF page {page}'" if label != str(page) else ""
        parts.append(f"<span{hover}>p. {html.escape(label)}</span>")
    if section:
        parts.append(html.escape(section))
    return ", ".join(parts)


def respond(
    services: Services,
    message: str,
    history: list[dict],
    kb: str,
    model: str,
    use_kb: bool,
    session_id: str | None,
    assembly: Progress | None = None,
) -> Iterator[tuple[list[dict], str, str | None]]:
    """Stream one answer into the chat history; persist both turns in the session.

    A bundled model used for the first time is assembled first, reported through ``assembly(done, total)``.
    While the knowledge base is still indexing, the assistant's turn says what it waits for. A failure
    becomes the assistant's turn (``error_turn``), never a bare error badge; failed turns are not saved.
    """
    history = list(history or [])
    prior = [{"role": m["role"], "content": m["content"]} for m in history if isinstance(m.get("content"), str)]
    if (message or "").strip():
        history.append({"role": "user", "content": message})
    history.append({"role": "assistant", "content": ""})
    notes: list[str] = []
    answer = None
    options = AskOptions(kb=kb, model=model, use_kb=use_kb)
    try:
        for update in _stream(services, message, prior, history, notes, options, assembly):
            if isinstance(update, Answer):
                answer = update
            else:
                yield history, update, session_id
    except Exception as exc:  # every failure is shown in the conversation (gradio_errors logs the unexpected)
        history[-1]["content"] = error_turn(exc)
        yield history, "\n\n".join(notes), session_id
        return
    assert answer is not None
    sessions = services.sessions
    if session_id is None:
        session_id = sessions.create(message, kb=kb if use_kb else None, model=model)
    sessions.append(session_id, "user", message)
    sessions.append(
        session_id,
        "assistant",
        answer.text,
        abstained=answer.abstained,
        citations=[c.to_json() for c in answer.citations],
    )
    yield history, "\n\n".join(notes + [sources_markdown(answer, kb if use_kb else None)]), session_id


def _stream(services, message, prior, history, notes, options: AskOptions, assembly) -> Iterator[str | Answer]:
    """Fill ``history[-1]`` and ``notes`` from the assistant's events; yields the notes panel, then the answer."""
    reply = history[-1]
    assistant = services.assistant
    assistant.check_question(message)
    if options.use_kb:  # before a first use assembles the model: the documents must be there (or coming)
        for event in assistant.wait_for_indexing(options.kb):
            reply["content"] = waiting_turn(event.text)
            yield "\n\n".join(notes)
        reply["content"] = ""
        assistant.searchable_kb(options.kb)
    bundled = assistant.needs_assembly(options.model)
    if bundled is not None:
        yield f"*Preparing {bundled.name} (first use: assembling and verifying {bundled.size / 1e9:.1f} GB)…*"
        assistant.model_path(options.model, assembly)
    for event in assistant.ask(message, prior, options):
        if isinstance(event, Waiting):
            reply["content"] = waiting_turn(event.text)
        elif isinstance(event, Token):
            if reply["content"].startswith(WAITING_MARK):
                reply["content"] = ""
            reply["content"] += event.text
        elif isinstance(event, Notice):
            notes.append(f"*{event.text}*")
        elif isinstance(event, Done):
            reply["content"] = event.answer.text
            yield "\n\n".join(notes)
            yield event.answer
            return
        yield "\n\n".join(notes)


def compare(
    services: Services,
    message: str,
    history_a: list[dict],
    history_b: list[dict],
    kb: str,
    models: tuple[str, str],
    use_kb: bool,
) -> Iterator[tuple[list[dict], str, list[dict], str]]:
    """One question, two models, the same retrieved sources; streams both answers side by side.

    A failure becomes the assistant's turn on the side it happened (both sides before any answer began).
    """
    histories = [list(history_a or []), list(history_b or [])]
    for h in histories:
        if (message or "").strip():
            h.append({"role": "user", "content": message})
        h.append({"role": "assistant", "content": ""})
    panels = ["", ""]
    prior = [
        {"role": m["role"], "content": m["content"]} for m in (history_a or []) if isinstance(m.get("content"), str)
    ]
    finished: set[int] = set()
    try:
        for side, event in services.assistant.compare(message, models, prior, AskOptions(kb=kb, use_kb=use_kb)):
            reply = histories[side][-1]
            if isinstance(event, Waiting):
                for h in histories:
                    h[-1]["content"] = waiting_turn(event.text)
            elif isinstance(event, Token):
                if reply["content"].startswith(WAITING_MARK):
                    reply["content"] = ""
                reply["content"] += event.text
            elif isinstance(event, Notice):
                panels[side] += f"*{event.text}*\n\n"
            elif isinstance(event, Done):
                finished.add(side)
                reply["content"] = event.answer.text
                panels[side] += f"**{html.escape(event.answer.model)}**\n\n" + sources_markdown(
                    event.answer, kb if use_kb else None
                )
            yield histories[0], panels[0], histories[1], panels[1]
    except Exception as exc:
        for s in {0, 1} - finished:
            histories[s][-1]["content"] = error_turn(exc)
        yield histories[0], panels[0], histories[1], panels[1]


def session_choices(services: Services) -> list[tuple[str, str]]:
    return [(f"{s.title} ({s.updated_at[:16].replace('T', ' ')})", s.id) for s in services.sessions.sessions()]


def reopen(services: Services, session_id: str | None) -> tuple[list[dict], str, str | None]:
    if not session_id:
        return [], "", None
    messages = services.sessions.messages(session_id)
    return [{"role": m["role"], "content": m["content"]} for m in messages], "", session_id


START_HERE = (
    "### Start here\n"
    "1. Open the **Knowledge Base** tab and add your documents: PDF, DOCX, Markdown, HTML or plain text, "
    "one by one or a whole folder.\n"
    "2. Come back here and ask. Answers cite the document, page and passage they come from, and say so "
    "when the documents do not hold the answer.\n\n"
    "You can ask as soon as you have pressed *Add to knowledge base*: the answer waits for the documents "
    "to finish indexing."
)


def build(services: Services, tabs=None, kb_tab_id: str | None = None):
    """The tab's components; returns the model and knowledge base pickers (and the second model's),
    and the start-here panel with its visibility check, so the app can refresh them."""
    import gradio as gr

    session = gr.State(None)
    with gr.Column(visible=needs_documents(services, None), elem_id="ds-start-here") as start_here:
        gr.Markdown(START_HERE)
        to_kb = gr.Button("Open the Knowledge Base tab", variant="primary", elem_id="ds-to-kb", size="sm")
    with gr.Row():
        model = gr.Dropdown(
            model_choices(services),
            value=services.default_model(),
            label="Model",
            allow_custom_value=True,
            info="bundled, exported, or a path to a .gguf file",
            scale=2,
            elem_id="ds-chat-model",
        )
        kb = gr.Dropdown(
            kb_choices(services),
            value=services.settings.default_kb,
            label="Knowledge base",
            allow_custom_value=True,
            scale=2,
            elem_id="ds-chat-kb",
        )
        with gr.Column(scale=1, min_width=180):
            use_kb = gr.Checkbox(value=True, label="Answer from the knowledge base")
            compare_on = gr.Checkbox(value=False, label="Compare two models", elem_id="ds-compare")
        past = gr.Dropdown(session_choices(services), label="Past chats", scale=2)
    with gr.Row():
        with gr.Column():
            chatbot = gr.Chatbot(label="Chat", height=420, elem_id="ds-chatbot")
            sources = gr.Markdown(elem_id="ds-sources")
        with gr.Column(visible=False) as second:
            model_b = gr.Dropdown(
                model_choices(services),
                value=services.default_model(),
                label="Second model",
                allow_custom_value=True,
                elem_id="ds-chat-model-b",
            )
            chatbot_b = gr.Chatbot(label="Second model", height=360, elem_id="ds-chatbot-b")
            sources_b = gr.Markdown(elem_id="ds-sources-b")
    with gr.Row():
        question = gr.Textbox(
            placeholder="Ask a question about your documents", show_label=False, scale=6, elem_id="ds-question"
        )
        send = gr.Button("Ask", variant="primary", scale=1, elem_id="ds-ask")
        stop = gr.Button("Stop", scale=1, elem_id="ds-stop")
        new = gr.Button("New chat", scale=1)

    def ask(
        message,
        history,
        kb_name,
        model_name,
        use,
        sid,
        comparing=False,
        second_model=None,
        history_b=None,
        progress=gr.Progress(),
    ):
        if comparing:
            updates = (
                (a, panel_a, sid, b, panel_b)
                for a, panel_a, b, panel_b in compare(
                    services, message, history, history_b, kb_name, (model_name, second_model), use
                )
            )
        else:

            def assembly(done: int, total: int) -> None:
                progress(done / max(total, 1), desc="Assembling the model (first use)")

            updates = (
                (h, panel, saved, gr.skip(), gr.skip())
                for h, panel, saved in respond(services, message, history, kb_name, model_name, use, sid, assembly)
            )
        # The last update also shows or hides the start-here panel (an empty knowledge base shows it);
        # the API's "ask" endpoint returns that last update, so it must carry the chat, not a skip.
        last = None
        for update in updates:
            if last is not None:
                yield *last, gr.skip()
            last = update
        if last is not None:
            yield *last, gr.Column(visible=needs_documents(services, kb_name))

    inputs = [question, chatbot, kb, model, use_kb, session, compare_on, model_b, chatbot_b]
    outputs = [chatbot, sources, session, chatbot_b, sources_b, start_here]
    events = [
        send.click(ask, inputs, outputs, api_name="ask"),
        question.submit(ask, inputs, outputs, api_visibility="private"),
    ]
    for event in events:
        event.then(
            lambda: (gr.Textbox(value=""), gr.Dropdown(choices=session_choices(services))), None, [question, past]
        )
    stop.click(None, None, None, cancels=events)
    new.click(lambda: ([], "", None, [], "", gr.skip()), None, outputs)
    past.input(lambda sid: reopen(services, sid), past, [chatbot, sources, session])
    compare_on.change(lambda on: gr.Column(visible=on), compare_on, second)
    kb.change(lambda name: gr.Column(visible=needs_documents(services, name)), kb, start_here)
    if tabs is not None:
        to_kb.click(lambda: gr.Tabs(selected=kb_tab_id), None, tabs)
    return model, kb, model_b, start_here
