"""The first ten minutes, in headless chromium against the real app on a fresh home (issue 17).

A new user opens the app, is told where to start, drops a one-page Markdown handbook on the
Knowledge Base tab, presses "Add to knowledge base", switches to Chat at once and asks about it.
The question waits for the handbook (the status says so in the conversation), then the answer
cites it; no "Error" badge appears anywhere.
"""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.browser import browser_page, running_app
from tests.conftest import TINY_MODEL_PIN

pytestmark = pytest.mark.browser

HANDBOOK = """# Pump handbook

## Priming

Prime the P-20 pump before its first start: fill the casing with about 2 liters of clean water
through the priming plug, then open the suction valve. A dry start destroys the mechanical seal
within 30 seconds.

## Seals

Replace the mechanical seal every 4,000 operating hours, or at once when the drip rate exceeds
ten drops per minute. Use seal kit SK-20 only.

## Storage

Drain the casing before storing the pump below 5 °C.
"""


def no_error_badge(page) -> None:
    expect(page.get_by_text("Error", exact=True)).to_have_count(0)


def test_ask_right_after_adding_a_handbook_waits_for_it_then_cites_it(tmp_path):
    handbook = tmp_path / "pump-handbook.md"
    handbook.write_text(HANDBOOK, encoding="utf-8")
    with running_app(tmp_path / "home", env=TINY_MODEL_PIN) as url, browser_page() as page:
        page.goto(url)
        start_here = page.locator("#ds-start-here")
        expect(start_here).to_contain_text("Start here")
        page.locator("#ds-to-kb").click()  # the empty state leads to the Knowledge Base tab
        expect(page.locator("#ds-formats")).to_contain_text("What you can add")
        expect(page.locator("#ds-formats")).to_contain_text("MB per file")

        page.locator("#ds-upload input[type=file]").set_input_files(str(handbook))
        page.locator("#ds-add").click()
        page.get_by_role("tab", name="Chat").click()
        page.locator("#ds-question textarea").fill("How much water does priming the P-20 pump take?")
        page.locator("#ds-ask").click()

        chat = page.locator("#ds-chatbot")
        expect(chat).to_contain_text("Waiting for pump-handbook.md to finish indexing (1 of 1)", timeout=60_000)
        expect(page.locator("#ds-sources")).to_contain_text("pump-handbook.md", timeout=180_000)
        reply = page.locator('#ds-chatbot [data-testid="bot"]').last.inner_text()
        assert "Waiting for" not in reply and "could not answer" not in reply, reply
        no_error_badge(page)
        expect(start_here).to_be_hidden()

        page.get_by_role("tab", name="Knowledge Base").click()
        expect(page.locator("#ds-upload-status")).to_contain_text("1 added")
        no_error_badge(page)


def test_asking_an_empty_knowledge_base_answers_in_the_conversation(tmp_path):
    with running_app(tmp_path / "home", env=TINY_MODEL_PIN) as url, browser_page() as page:
        page.goto(url)
        page.locator("#ds-question textarea").fill("How much water does priming take?")
        page.locator("#ds-ask").click()
        reply = page.locator('#ds-chatbot [data-testid="bot"]').last
        expect(reply).to_contain_text("I could not answer", timeout=120_000)
        expect(reply).to_contain_text("has no documents yet: add them on the Knowledge Base tab")
        expect(page.locator("#ds-start-here")).to_be_visible()
        no_error_badge(page)
