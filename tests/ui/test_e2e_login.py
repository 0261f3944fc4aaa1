"""Login in headless chromium: with a password set, the app is shown only after a login.

(Its own module: Playwright's sync API allows one running instance, and the main browser test
module keeps its browser open for all its tests.)
"""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.browser import browser_page, running_app

pytestmark = pytest.mark.browser


def test_with_a_password_the_app_asks_for_a_login_first(tmp_path):
    env = {"DOMAINSMITH_USERNAME": "expert", "DOMAINSMITH_PASSWORD": "correct horse"}
    with running_app(tmp_path / "home", env=env) as url, browser_page() as page:
        page.goto(url)
        expect(page.locator("body")).to_contain_text("Login", timeout=60_000)
        assert page.locator("#ds-question").count() == 0, "the app is shown before logging in"
        page.get_by_label("username").fill("expert")
        page.get_by_label("password").fill("wrong")
        page.get_by_role("button", name="Login").click()
        expect(page.locator("body")).to_contain_text("Incorrect", timeout=30_000)
        page.get_by_label("username").fill("expert")
        page.get_by_label("password").fill("correct horse")
        page.get_by_role("button", name="Login").click()
        page.wait_for_selector("#ds-question", timeout=60_000)
