"""A real browser for the dashboard tests: Debian's chromium driven by Playwright, with
what must never happen recorded (console errors, requests, URLs)."""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, sync_playwright

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
SCREENSHOTS = Path(__file__).resolve().parents[2] / "run" / "screenshots"


@dataclass
class Browsing:
    """A browser page that records what must not happen: console errors, requests that
    leave the gateway, and secrets in any URL."""

    page: Page
    base: str
    errors: list[str] = field(default_factory=list)
    urls: list[str] = field(default_factory=list)

    def shot(self, name: str) -> None:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        self.page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)

    def sign_in(self, key: str) -> None:
        self.page.goto(f"{self.base}/admin", wait_until="load")
        self.page.fill("#api-key", key)
        self.page.click("#sign-in button[type=submit]")
        self.page.wait_for_selector("nav a[data-page=usage]")

    def sign_out(self) -> None:
        self.page.click("#sign-out")
        self.page.wait_for_selector("#sign-in")

    def go(self, name: str) -> None:
        self.page.click(f"nav a[data-page={name}]")
        self.page.wait_for_selector(f"main[data-page={name}]")


@pytest.fixture
def browser() -> Iterator[Browser]:
    assert Path(CHROMIUM).exists(), "chromium missing: `make test-tools` installs it"
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield b
        b.close()


def wait_until(check: Callable[[], bool], what: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.2)


def open_browsing(browser: Browser, base: str) -> Iterator[Browsing]:
    """A fresh browser context on the gateway at `base`, closed after use."""
    context = browser.new_context(viewport={"width": 1400, "height": 900}, accept_downloads=True)
    page = context.new_page()
    b = Browsing(page, base)
    page.on("console", lambda m: b.errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: b.errors.append(str(e)))
    page.on("request", lambda r: b.urls.append(r.url))
    page.on("dialog", lambda d: d.accept())  # the revoke / rotate confirmations
    yield b
    context.close()
