"""A real headless Chromium for tests: Debian's ``chromium`` driven by Playwright through
``executable_path`` (Playwright's own browser downloads are not needed, nor possible here)."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from conftest import optional_import, under_ci


def chromium_path() -> str:
    """The system Chromium; missing, a skip locally and a failure under CI=true
    (`.ci/run` installs it)."""
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    reason = "no system Chromium (apt-get install -y chromium)"
    if under_ci():
        pytest.fail(f"CI=true: {reason}", pytrace=False)
    pytest.skip(reason)


@contextmanager
def browser_page() -> Iterator[Any]:
    """A fresh page in a headless Chromium, closed afterwards."""
    optional_import("playwright", "dev")
    from playwright.sync_api import sync_playwright

    executable = chromium_path()
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, headless=True)
        try:
            yield browser.new_page(viewport={"width": 1200, "height": 900})
        finally:
            browser.close()
