"""End to end in headless chromium: the real app on a free port, a temporary DOMAINSMITH_HOME.

The tests run in file order against one app: upload, a bad file, ask, then train, export and
answer with the exported model. Each waits on what the user sees (text in the page), never on
the handlers' internals.
"""

from __future__ import annotations

import json
import re

import pytest
from playwright.sync_api import expect

from tests import factories as f
from tests import tiny_models
from tests.browser import browser_page, running_app

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def files(tmp_path_factory, tiny_llama):
    root = tmp_path_factory.mktemp("e2e-files")
    qa = root / "facts.jsonl"
    qa.write_text("".join(json.dumps(r) + "\n" for r in tiny_models.qa_rows(16)), encoding="utf-8")
    reworded = root / "reworded.jsonl"  # the expert's rows all train: the adapter is measured on these
    rows = [{**r, "question": f"Which colour has pump {i}?"} for i, r in enumerate(tiny_models.qa_rows(3), start=1)]
    reworded.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return {
        "pdf": f.make_pdf(root / "turbine.pdf", pages=3),
        "bad": f.make_corrupt_pdf(root / "broken.pdf"),
        "qa": qa,
        "reworded": reworded,
        "base": tiny_llama,
    }


@pytest.fixture(scope="module")
def page(tmp_path_factory):
    home = tmp_path_factory.mktemp("e2e-home")
    with running_app(home) as url, browser_page() as page:
        page.goto(url)
        page.wait_for_selector("#ds-question")
        yield page


def open_tab(page, name: str) -> None:
    page.get_by_role("tab", name=name).click()


def set_dropdown(page, elem_id: str, value: str) -> None:
    box = page.locator(f"#{elem_id} input")
    box.fill(value)
    box.press("Enter")


def test_uploaded_document_appears_in_the_table(page, files):
    open_tab(page, "Knowledge Base")
    page.locator("#ds-upload input[type=file]").set_input_files(str(files["pdf"]))
    page.locator("#ds-add").click()
    status = page.locator("#ds-upload-status")
    expect(status).to_contain_text("1 added", timeout=120_000)
    expect(status).to_contain_text("turbine.pdf: added")
    expect(page.locator("#ds-documents")).to_contain_text("turbine.pdf")


def test_a_bad_file_shows_its_error(page, files):
    open_tab(page, "Knowledge Base")
    page.locator("#ds-upload input[type=file]").set_input_files(str(files["bad"]))
    page.locator("#ds-add").click()
    status = page.locator("#ds-upload-status")
    expect(status).to_contain_text("1 failed", timeout=120_000)
    text = status.inner_text()
    assert "broken.pdf" in text and "failed" in text and "Traceback" not in text


def test_question_streams_an_answer_citing_the_document_and_page(page, files):
    open_tab(page, "Chat")
    # Count the changes of the last reply while it streams (a MutationObserver sees every update).
    page.evaluate("""() => {
        window.dsReplies = new Set();
        const root = document.querySelector('#ds-chatbot');
        new MutationObserver(() => {
            const bots = root.querySelectorAll('[data-testid="bot"]');
            if (bots.length) window.dsReplies.add(bots[bots.length - 1].innerText);
        }).observe(root, {subtree: true, childList: true, characterData: true});
    }""")
    page.locator("#ds-question textarea").fill("What trips the journal bearing alarm?")
    page.locator("#ds-ask").click()
    sources = page.locator("#ds-sources")
    expect(sources).to_contain_text("turbine.pdf", timeout=180_000)
    expect(sources).to_contain_text("p. 2")
    assert page.evaluate("() => window.dsReplies.size") >= 3, "the answer arrived in one piece, not streamed"
    reply = page.locator('#ds-chatbot [data-testid="bot"]').last.inner_text()
    assert re.search(r"\[\d\]", reply), reply

    # Each source links to the passage viewer: the cited PDF page as an image, the passage highlighted.
    link = page.locator("#ds-sources a[href*='/passage/']").first
    href = link.get_attribute("href")
    viewer = page.context.browser.new_page()
    try:
        viewer.goto(page.url.rstrip("/") + href)
        expect(viewer.locator("#ds-page")).to_be_visible()
        viewer.wait_for_function("() => document.querySelector('#ds-page').naturalWidth > 0")
        expect(viewer.locator("body")).to_contain_text("page 2")
        expect(viewer.locator("#ds-original")).to_have_attribute("href", re.compile(r"/file#page=2$"))
    finally:
        viewer.close()


def test_training_shows_the_loss_curve_then_the_exported_model_answers_in_chat(page, files):
    open_tab(page, "Fine-tune")
    page.locator("#ds-train-file input[type=file]").set_input_files(str(files["qa"]))
    expect(page.locator("#ds-data-report")).to_contain_text("16 usable examples")
    page.locator("#ds-eval-file input[type=file]").set_input_files(str(files["reworded"]))
    set_dropdown(page, "ds-train-base", str(files["base"]))
    page.get_by_label("quick").check()
    page.get_by_text("Advanced settings").click()
    page.get_by_label("Epochs").fill("6")
    page.locator("#ds-train").click()
    expect(page.locator("#ds-train-status")).to_contain_text("started", timeout=120_000)

    progress = page.locator("#ds-progress .ds-progress")
    line = page.locator("#ds-loss-plot .mark-line path").first
    steps_seen: set[str] = set()
    curves_seen: set[str] = set()  # the training curve's SVG path, redrawn as points arrive
    for _ in range(1200):
        if line.count():
            curves_seen.add(line.get_attribute("d") or "")
        if progress.count():
            steps_seen.add(progress.get_attribute("data-step") or "")
            if progress.get_attribute("data-status") == "done":
                break
        page.wait_for_timeout(250)
    assert progress.get_attribute("data-status") == "done", page.locator("#ds-progress").inner_text()
    assert len(steps_seen - {"", "0"}) >= 2, f"the progress bar did not update while training: {steps_seen}"
    assert len(curves_seen - {""}) >= 2, "the loss curve was not redrawn while training"
    expect(page.locator("#ds-loss-plot .mark-line path")).to_have_count(2)  # training and validation curves
    expect(page.locator("#ds-eval")).to_contain_text("validation loss")
    expect(page.locator("#ds-runs input")).to_have_value(re.compile(r"\(done, facts\.jsonl\)$"))

    set_dropdown(page, "ds-quant", "f16")  # a tiny random model: 8-bit rounding would flip its greedy answers
    page.locator("#ds-export").click()
    expect(page.locator("#ds-export-status")).to_contain_text("Exported", timeout=240_000)
    name = page.locator("#ds-export-status strong").inner_text()
    page.locator("#ds-use").click()
    model_box = page.locator("#ds-chat-model input")
    model_box.wait_for(state="visible")
    assert model_box.input_value() == name

    page.get_by_label("Answer from the knowledge base").uncheck()
    replies = page.locator('#ds-chatbot [data-testid="bot"]')
    before = replies.count()
    page.locator("#ds-question textarea").fill("What is the seal interval?")
    page.locator("#ds-ask").click()
    page.wait_for_function(
        f"() => document.querySelectorAll('#ds-chatbot [data-testid=\"bot\"]').length > {before}", timeout=120_000
    )
    expect(replies.last).not_to_have_text("", timeout=60_000)
    expect(page.locator("#ds-chatbot")).not_to_contain_text("Error")
