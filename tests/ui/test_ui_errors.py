"""Every error path of the page, through the handlers the page itself wires (``build_ui``): a
failed action writes its reason into its status line, and the few handlers whose output is only
a value raise ``gr.Error`` with the same plain words. Each test checks the message a user sees."""

from __future__ import annotations

import gradio as gr
import pytest

from store.errors import DomainsmithError, ModelNotFound
from ui.gradio_errors import errors_into, plain_words, user_errors


@pytest.fixture(scope="module")
def page(tmp_path_factory):
    """The app's Blocks over a fresh home, and its handlers by function name."""
    from store.settings import Settings
    from ui.services import Services
    from ui.web import build_ui

    home = tmp_path_factory.mktemp("ui-errors-home")
    services = Services(Settings.load(home=home))
    demo = build_ui(services)
    handlers: dict[str, object] = {}
    for block_fn in demo.fns.values():
        handlers.setdefault(getattr(block_fn.fn, "__name__", ""), block_fn.fn)
    yield handlers
    services.close()


def status_of(result, position: int = 0) -> str:
    value = result[position] if isinstance(result, tuple) else result
    assert isinstance(value, str), result
    return value


def test_plain_words_make_a_sentence_with_what_to_do():
    assert plain_words(DomainsmithError("the file is empty")) == "The file is empty."
    assert plain_words(ModelNotFound("no model file named 'x.gguf'")).endswith(
        "Choose another model in the Model box, or see the README's Models section."
    )
    assert plain_words(ValueError("boom")).startswith("Something went wrong (ValueError: boom).")


def test_errors_into_writes_the_reason_into_the_status_output_and_skips_the_others():
    @errors_into(1, 3)
    def action():
        raise DomainsmithError("pick a run first")

    @errors_into(0, 1)
    def streaming():
        yield "working…"
        raise RuntimeError("the disk is full")

    skipped, status, other = action()
    assert status == "❌ Pick a run first." and skipped == gr.skip() and other == gr.skip()
    assert list(streaming())[-1].startswith("❌ Something went wrong (RuntimeError: the disk is full)")


def test_user_errors_raises_the_plain_words_as_a_toast():
    with pytest.raises(gr.Error) as raised:
        user_errors(lambda: (_ for _ in ()).throw(DomainsmithError("no such thing")))()
    assert raised.value.message == "No such thing."


# -- Knowledge Base tab ------------------------------------------------------------------------


def test_adding_to_an_invalid_knowledge_base_says_why_in_the_status(page, tmp_path):
    doc = tmp_path / "notes.md"
    doc.write_text("# Notes\n\nThe valve opens at 3 bar.\n", encoding="utf-8")
    *_, last = page["on_add"]("bad name!", [str(doc)], None, progress=lambda *a, **k: None)
    assert status_of(last).startswith("❌ Invalid knowledge base name 'bad name!'")


def test_removing_without_a_selected_document_says_to_select_one(page):
    result = page["on_remove"]("default", "")
    assert status_of(result, 3) == "❌ No document '': select a row in the table first."


def test_reindexing_asks_first(page):
    result = page["on_reindex"]("default")
    assert result[0].visible is True and "Re-embed every chunk of **default**" in result[1] and result[3] == ""


def test_confirming_the_removal_of_an_unknown_document_says_so(page):
    result = page["on_confirm"]("remove", "default", "0123456789ab")
    assert status_of(result).startswith("❌ ") and "0123456789ab" in status_of(result)


def test_an_unknown_search_mode_is_a_toast_naming_the_modes(page):
    with pytest.raises(gr.Error, match=r"Unknown search mode 'fuzzy': use one of hybrid, vector, keyword\."):
        page["on_search"]("default", "valve", "fuzzy")


def test_creating_a_knowledge_base_with_a_bad_name_is_a_toast_with_the_rule(page):
    with pytest.raises(gr.Error, match=r"Invalid knowledge base name '../etc'"):
        page["on_create"]("../etc")


def test_picking_an_invalid_knowledge_base_is_a_toast_with_the_rule(page):
    with pytest.raises(gr.Error, match=r"Invalid knowledge base name"):
        page["on_pick_kb"]("a/b")


# -- Fine-tune tab -----------------------------------------------------------------------------


def test_training_without_a_file_says_to_upload_one_in_the_status(page):
    from ui.finetune_tab import ADVANCED_SETTINGS, SOURCE_FILE

    blank = [None] * len(ADVANCED_SETTINGS)
    result = page["on_start"](SOURCE_FILE, None, "default", False, None, "standard", "auto", None, *blank)
    assert status_of(result, 1) == "❌ Upload a Q&A file first (.jsonl or .csv)."


def test_exporting_without_a_run_says_to_train_first(page):
    result = page["on_export"](None, "q8_0", progress=lambda *a, **k: None)
    assert status_of(result) == "❌ Train an adapter first (or pick a finished run)."


def test_resuming_without_a_run_says_to_pick_one(page):
    assert status_of(page["on_resume"](None)) == "❌ Pick an interrupted or cancelled run first."


def test_using_a_model_before_exporting_one_says_so(page):
    assert status_of(page["on_use"]("")) == "❌ Export a model first."


# -- Chat tab ----------------------------------------------------------------------------------


def test_asking_with_an_empty_question_answers_in_the_conversation(page):
    updates = list(page["ask"]("", [], "default", "SmolLM2-135M-Instruct", True, None, progress=lambda *a, **k: None))
    history = updates[0][0]
    assert history == [
        {"role": "assistant", "content": "⚠️ **I could not answer.** The question is empty: type a question first."}
    ]
    assert updates[-1][-1].visible is True  # the start-here panel: this knowledge base has no documents
