"""Start the real app in a child process and drive it with Debian's chromium through Playwright.

Shared by the browser tests and ``docs/screenshots.py``. No browser is downloaded: Playwright
launches ``/usr/bin/chromium`` (``make test`` installs it with apt).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.http_app import serve

CHROMIUM = Path(os.environ.get("DOMAINSMITH_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = ["--no-sandbox", "--disable-background-networking", "--disable-dev-shm-usage"]


@contextmanager
def running_app(home: Path, *, env: dict[str, str] | None = None, timeout: float = 180) -> Iterator[str]:
    """Serve ``python app.py`` on a free loopback port with ``home`` as DOMAINSMITH_HOME; yields its URL."""
    with serve(home, env=env, timeout=timeout) as app:
        yield app.url + "/"


@contextmanager
def browser_page(width: int = 1400, height: int = 1000):
    """A fresh Playwright page in headless chromium."""
    from playwright.sync_api import sync_playwright

    if not CHROMIUM.exists():
        raise RuntimeError(f"{CHROMIUM} is missing: `make test` installs Debian's chromium (apt-get install chromium)")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        try:
            page = browser.new_page(viewport={"width": width, "height": height})
            page.set_default_timeout(60_000)
            yield page
        finally:
            browser.close()
