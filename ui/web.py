"""The Gradio app: one tab per area, each built by its own module."""

from __future__ import annotations

import logging

from ui.access import login_required
from ui.services import Services

log = logging.getLogger(__name__)


def build_ui(services: Services):
    import gradio as gr

    from ui import chat_tab, finetune_tab, knowledge_tab

    with gr.Blocks(title="Domainsmith") as demo:
        gr.Markdown("# Domainsmith\nYour documents, your model, your machine.")
        with gr.Tabs() as tabs:
            with gr.Tab("Chat", id="chat") as chat:
                chat_model, chat_kb, chat_model_b, start_here = chat_tab.build(services, tabs=tabs, kb_tab_id="kb")
            with gr.Tab("Knowledge Base", id="kb"):
                knowledge_tab.build(services)
            with gr.Tab("Fine-tune", id="finetune"):
                finetune_tab.build(services, chat_model=chat_model, tabs=tabs, chat_tab_id="chat")

        def pickers(kb_name):  # a page load sees models exported and knowledge bases created since start
            models, kbs = chat_tab.model_choices(services), chat_tab.kb_choices(services)
            first = gr.Column(visible=chat_tab.needs_documents(services, kb_name))
            return gr.Dropdown(choices=models), gr.Dropdown(choices=kbs), gr.Dropdown(choices=models), first

        demo.load(pickers, chat_kb, [chat_model, chat_kb, chat_model_b, start_here], api_visibility="private")
        chat.select(
            lambda name: gr.Column(visible=chat_tab.needs_documents(services, name)),
            chat_kb,
            start_here,
            api_visibility="private",
        )
    return demo


def launch(services: Services) -> int:
    from store.api_keys import ApiKeys
    from ui import api

    s = services.settings
    demo = build_ui(services)
    keys: list[ApiKeys] = []

    def api_key_valid(key: str) -> bool:
        if not keys:
            keys.append(ApiKeys(services.db))
        return keys[0].valid(key)

    auth = (s.username, s.password) if s.password else None
    if s.host not in ("127.0.0.1", "localhost", "::1"):
        log.warning("serving on %s: reachable from other machines%s", s.host, "" if auth else " without a password")
    demo.queue(default_concurrency_limit=4).launch(
        server_name=s.host,
        server_port=s.port,
        auth=auth,
        # Gradio leaves some routes open and its login page describes the API: ui/access.py closes both.
        # /v1 (ui/api.py) comes before Gradio's routes, behind the same guard (API keys there).
        app_kwargs={"middleware": [login_required(api_key_valid)], "routes": api.routes(services)},
        max_file_size=f"{int(s.max_file_mb)}mb",
        show_error=True,
    )
    return 0
