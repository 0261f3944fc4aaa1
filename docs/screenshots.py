"""Take the README's screenshots from the real app: ``.venv/bin/python docs/screenshots.py``.

Starts ``app.py`` on a free port with a fresh DOMAINSMITH_HOME, drives it in headless chromium
like a user (see the empty state, ask too early, upload documents, search, ask, train an adapter
with the quick preset on ``bench/data/facts.jsonl``) and writes ``docs/empty-state.png``,
``docs/chat-error.png``, ``docs/knowledge-base.png``, ``docs/viewer.png`` (the passage viewer on a
scanned, labelled page), ``docs/chat.png`` and ``docs/fine-tune.png`` (``--first-minutes`` stops
after the first two, ``--viewer`` after the viewer). Takes about 5 minutes on 2 cores, most of it
training. Colour emoji in the status lines need Debian's ``fonts-noto-color-emoji``.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests import factories  # noqa: E402  (the test fixtures' real documents)
from tests.browser import browser_page, running_app  # noqa: E402


def documents(folder: Path) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    manual = factories.make_pdf(folder / "source.pdf", pages=4)
    # Page 3 printed and scanned (read by OCR); front matter numbered i-ii, then chapters from 1.
    scanned = factories.make_scan_of(manual, folder / "turbine-manual.pdf", pages=[3])
    factories.with_page_labels(scanned, [(0, "/r", "", 1), (2, "/D", "", 1)])
    manual.unlink()
    return [
        scanned,
        factories.make_docx(folder / "pump-handbook.docx"),
        factories.make_markdown(folder / "maintenance-notes.md"),
    ]


def shoot(out: Path, train: bool = True, first_minutes_only: bool = False, viewer_only: bool = False) -> list[Path]:
    from playwright.sync_api import expect

    shots = []
    with tempfile.TemporaryDirectory(prefix="domainsmith-shots-") as tmp:
        files = documents(Path(tmp) / "docs")
        with running_app(Path(tmp) / "home") as url, browser_page(1400, 1000) as page:
            page.goto(url)
            page.wait_for_selector("#ds-question")
            expect(page.locator("#ds-start-here")).to_contain_text("Start here")
            shots.append(_save(page, out / "empty-state.png"))

            # Asking before adding anything: the reason and what to do, as the assistant's turn.
            page.locator("#ds-question textarea").fill("What trips the journal bearing alarm?")
            page.locator("#ds-ask").click()
            expect(page.locator('#ds-chatbot [data-testid="bot"]').last).to_contain_text(
                "has no documents yet", timeout=120_000
            )
            shots.append(_save(page, out / "chat-error.png"))
            if first_minutes_only:
                return shots
            page.get_by_role("button", name="New chat").click()

            page.get_by_role("tab", name="Knowledge Base").click()
            page.locator("#ds-upload input[type=file]").set_input_files([str(f) for f in files])
            page.locator("#ds-add").click()
            expect(page.locator("#ds-upload-status")).to_contain_text("3 added", timeout=300_000)
            page.locator("#ds-search textarea").fill("seal replacement interval")
            page.locator("#ds-search textarea").press("Enter")
            expect(page.locator("#ds-hits")).to_contain_text("pump-handbook.docx", timeout=60_000)
            shots.append(_save(page, out / "knowledge-base.png"))

            # The passage viewer: a scanned page read by OCR, its label, the passage highlighted.
            page.locator("#ds-search textarea").fill("exhaust diffuser Inconel sheet segments")
            page.locator("#ds-search textarea").press("Enter")
            link = page.locator("#ds-hits a[href*='/passage/']", has_text="page").first  # a PDF hit
            link.wait_for(state="attached", timeout=60_000)
            viewer = page.context.browser.new_page(viewport={"width": 1000, "height": 1300})
            viewer.goto(url.rstrip("/") + link.get_attribute("href"))
            viewer.wait_for_function("() => document.querySelector('#ds-page')?.naturalWidth > 0")
            shots.append(_save(viewer, out / "viewer.png"))
            viewer.close()
            if viewer_only:
                return shots

            page.get_by_role("tab", name="Chat").click()
            page.locator("#ds-question textarea").fill("What trips the journal bearing alarm?")
            page.locator("#ds-ask").click()
            expect(page.locator("#ds-sources")).to_contain_text("turbine-manual.pdf", timeout=300_000)
            page.locator("#ds-sources summary").first.click()
            shots.append(_save(page, out / "chat.png"))

            page.get_by_role("tab", name="Fine-tune").click()
            page.locator("#ds-train-file input[type=file]").set_input_files(str(ROOT / "bench/data/facts.jsonl"))
            expect(page.locator("#ds-data-report")).to_contain_text("usable examples")
            if train:
                page.get_by_label("quick").check()
                page.locator("#ds-train").click()
                expect(page.locator("#ds-progress .ds-progress")).to_have_attribute(
                    "data-status", "done", timeout=1_800_000
                )
                expect(page.locator("#ds-eval")).to_contain_text("validation loss")
            shots.append(_save(page, out / "fine-tune.png"))
    return shots


def _save(page, path: Path) -> Path:
    page.wait_for_timeout(800)  # let plots and fonts settle
    page.screenshot(path=str(path), full_page=True)
    print(path)
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs")
    parser.add_argument("--no-train", action="store_true", help="skip the training run (Fine-tune shows the data only)")
    parser.add_argument("--first-minutes", action="store_true", help="only the empty state and the early question")
    parser.add_argument("--viewer", action="store_true", help="stop after the Knowledge Base and viewer shots")
    args = parser.parse_args()
    shoot(args.out, train=not args.no_train, first_minutes_only=args.first_minutes, viewer_only=args.viewer)


if __name__ == "__main__":
    main()
