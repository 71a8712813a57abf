"""The dashboard's browser tests: Playwright driving Debian's Chromium, headless.

The browser comes from Debian (``apt-get install chromium``), never from Playwright's own
download (which this machine cannot reach); the set-up installs it when it is missing and
it may (root with apt-get), else the tests skip saying so (and fail in CI, where every
backend is required). Screenshots of the pages go to ``test-output/web/``.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from tests._support import ROOT, backend_missing

from micro.testing import MicroServerProcess

SCREENSHOTS = ROOT / "test-output" / "web"
_FLAGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def chromium() -> str:
    """Debian's Chromium, installed first if it is missing and this process may."""
    found = shutil.which("chromium")
    if found is None and os.geteuid() == 0 and shutil.which("apt-get"):
        subprocess.run(
            ["apt-get", "install", "-y", "-q", "chromium"],
            capture_output=True,
            timeout=900,
            check=False,
            env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"},
        )
        found = shutil.which("chromium")
    if found is None:
        backend_missing("Chromium is not installed (apt-get install chromium)")
    return found


@contextmanager
def launch() -> Iterator[Any]:
    """A headless Chromium, closed at the end of the block."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        backend_missing("playwright is not installed (the dev extra)")
    executable = chromium()
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=_FLAGS)
        yield browser
        browser.close()


@contextmanager
def new_page(browser: Any) -> Iterator[Any]:
    """A page in a fresh browser context (no cookies from elsewhere), closed after."""
    context = browser.new_context(viewport={"width": 1280, "height": 860})
    page = context.new_page()
    page.set_default_timeout(15_000)
    yield page
    context.close()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """One headless Chromium per test module. (Not per session: Playwright's sync API keeps
    an event loop running in this thread while it is open, and the async tests of the
    modules after these need the thread's loop to themselves.)"""
    with launch() as browser:
        yield browser


@pytest.fixture
def page(browser: Any, request: pytest.FixtureRequest) -> Iterator[Any]:
    """A fresh browser context and page (no cookies from other tests)."""
    with new_page(browser) as page:
        yield page


def screenshot(page: Any, name: str) -> Path:
    """Save the page as ``test-output/web/<name>.png``."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def log_in(page: Any, server: MicroServerProcess, *, username: str = "admin",
           password: str | None = None, namespace: str = "micro") -> None:  # fmt: skip
    """Log in through the login form."""
    page.goto(f"{server.web}/login")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", password or server.admin_password)
    page.fill("input[name=namespace]", namespace)
    page.click("button[type=submit]")
    page.wait_for_url("**/services**")


def csrf_of(page: Any) -> str:
    """The session's CSRF token, as the page shown carries it (htmx's header)."""
    headers = page.evaluate("document.body.getAttribute('hx-headers')")
    token: str = json.loads(headers)["X-CSRF-Token"]
    return token
