"""Chat tab: streaming grounded answers with numbered, expandable sources.

Handlers are plain generators over ``Services``; ``build`` wires them to components.
"""

from __future__ import annotations

import html
from collections.abc import Iterator

from assistant.assistant import AskOptions
from assistant.events import Answer, Done, Notice, Token
from store.errors import DomainsmithError
from store.model_catalogue import Progress
from ui.gradio_errors import user_errors
from ui.services import Services

NOT_IN_DOCUMENTS = "⚠️ **Not in the documents.**"


def model_choices(services: Services) -> list[tuple[str, str]]:
    return services.model_choices()


def kb_choices(services: Services) -> list[str]:
    names = [b["name"] for b in services.knowledge_bases()]
    return names or [services.settings.default_kb]


def sources_markdown(answer: Answer) -> str:
    """Numbered sources, each expanding to its passage; failed checks marked."""
    if answer.abstained:
        return f"{NOT_IN_DOCUMENTS} {html.escape(answer.reason)}"
    if not answer.citations:
        return ""
    lines = ["**Sources**"]
    for c in answer.citations:
        where = c.where
        flag = "" if c.supported else " ❗ *citation not supported by this passage*"
        lines.append(
            f"<details><summary>[{c.n}] {html.escape(c.source)}"
            f"{' — ' + html.escape(where) if where else ''}{flag}</summary>\n\n"
            f"> {html.escape(c.text).replace(chr(10), chr(10) + '> ')}\n</details>"
        )
    return "\n".join(lines)


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
    """
    history = list(history or [])
    prior = [{"role": m["role"], "content": m["content"]} for m in history if isinstance(m.get("content"), str)]
    history += [{"role": "user", "content": message}, {"role": "assistant", "content": ""}]
    notes: list[str] = []
    bundled = services.assistant.needs_assembly(model)
    if bundled is not None:
        yield (
            history,
            f"*Preparing {bundled.name} (first use: assembling and verifying {bundled.size / 1e9:.1f} GB)…*",
            session_id,
        )
        services.assistant.model_path(model, assembly)
    answer = None
    for event in services.assistant.ask(message, prior, AskOptions(kb=kb, model=model, use_kb=use_kb)):
        if isinstance(event, Token):
            history[-1]["content"] += event.text
        elif isinstance(event, Notice):
            notes.append(f"*{event.text}*")
        elif isinstance(event, Done):
            answer = event.answer
            history[-1]["content"] = answer.text
        yield history, "\n\n".join(notes), session_id
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
    yield history, "\n\n".join(notes + [sources_markdown(answer)]), session_id


def compare(
    services: Services,
    message: str,
    history_a: list[dict],
    history_b: list[dict],
    kb: str,
    models: tuple[str, str],
    use_kb: bool,
) -> Iterator[tuple[list[dict], str, list[dict], str]]:
    """One question, two models, the same retrieved sources; streams both answers side by side."""
    histories = [list(history_a or []), list(history_b or [])]
    for h in histories:
        h += [{"role": "user", "content": message}, {"role": "assistant", "content": ""}]
    panels = ["", ""]
    prior = [
        {"role": m["role"], "content": m["content"]} for m in (history_a or []) if isinstance(m.get("content"), str)
    ]
    for side, event in services.assistant.compare(message, models, prior, AskOptions(kb=kb, use_kb=use_kb)):
        if isinstance(event, Token):
            histories[side][-1]["content"] += event.text
        elif isinstance(event, Notice):
            panels[side] += f"*{event.text}*\n\n"
        elif isinstance(event, Done):
            histories[side][-1]["content"] = event.answer.text
            panels[side] += f"**{html.escape(event.answer.model)}**\n\n" + sources_markdown(event.answer)
        yield histories[0], panels[0], histories[1], panels[1]


def session_choices(services: Services) -> list[tuple[str, str]]:
    return [(f"{s.title} ({s.updated_at[:16].replace('T', ' ')})", s.id) for s in services.sessions.sessions()]


def reopen(services: Services, session_id: str | None) -> tuple[list[dict], str, str | None]:
    if not session_id:
        return [], "", None
    messages = services.sessions.messages(session_id)
    return [{"role": m["role"], "content": m["content"]} for m in messages], "", session_id


def build(services: Services):
    """The tab's components; returns the model picker so other tabs can switch it."""
    import gradio as gr

    session = gr.State(None)
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

    @user_errors
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
        if not (message or "").strip():
            raise DomainsmithError("Type a question first.")
        if comparing:
            for a, panel_a, b, panel_b in compare(
                services, message, history, history_b, kb_name, (model_name, second_model), use
            ):
                yield a, panel_a, sid, b, panel_b
        else:

            def assembly(done: int, total: int) -> None:
                progress(done / max(total, 1), desc="Assembling the model (first use)")

            for h, panel, saved in respond(services, message, history, kb_name, model_name, use, sid, assembly):
                yield h, panel, saved, gr.skip(), gr.skip()

    inputs = [question, chatbot, kb, model, use_kb, session, compare_on, model_b, chatbot_b]
    outputs = [chatbot, sources, session, chatbot_b, sources_b]
    events = [
        send.click(ask, inputs, outputs, api_name="ask"),
        question.submit(ask, inputs, outputs, api_visibility="private"),
    ]
    for event in events:
        event.then(
            lambda: (gr.Textbox(value=""), gr.Dropdown(choices=session_choices(services))), None, [question, past]
        )
    stop.click(None, None, None, cancels=events)
    new.click(lambda: ([], "", None, [], ""), None, outputs)
    past.input(lambda sid: reopen(services, sid), past, [chatbot, sources, session])
    compare_on.change(lambda on: gr.Column(visible=on), compare_on, second)
    return model, kb, model_b
