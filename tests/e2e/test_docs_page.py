"""GET /docs: Swagger UI served offline by the gateway, driven in Debian's headless chromium
(Playwright with the system browser: no browser download)."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
from playwright.sync_api import sync_playwright

from tests.support.auth import DEV_KEY

pytestmark = pytest.mark.e2e

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


async def test_page_is_self_contained_with_a_strict_policy(anon_api):
    page = await anon_api.get("/docs")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    policy = page.headers["content-security-policy"]
    assert "default-src 'none'" in policy and "connect-src 'self'" in policy
    assert "http" not in policy  # no source elsewhere
    markup = re.sub(r"<script([^>]*)>.*?</script>", r"<script\1>", page.text, flags=re.S)
    assert re.findall(r"""(?:src|href)=['"](?!data:)""", markup) == []  # nothing fetched
    assert page.headers["x-content-type-options"] == "nosniff"
    assert "buf:lint" not in page.text


def test_operations_render_and_try_it_reaches_the_gateway(stack):
    assert Path(CHROMIUM).exists(), "chromium missing: `make test-tools` installs it"
    errors: list[str] = []
    outside: list[str] = []
    base = stack.cfg.base_url
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        page = browser.new_page()
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.on(
            "response",
            lambda r: (
                errors.append(f"{r.status} {r.request.method} {r.url}") if r.status >= 400 else None
            ),
        )
        page.on(
            "request",
            lambda r: None if r.url.startswith((base, "data:")) else outside.append(r.url),
        )
        page.goto(f"{base}/docs", wait_until="load")
        page.wait_for_selector(".opblock", timeout=30_000)
        assert page.locator(".opblock").count() >= 30
        assert page.get_by_text("/api/v1/search", exact=True).count() >= 1

        # Authorize with the API key (HTTP bearer: Swagger UI adds "Bearer ").
        # The dialog also lists the OAuth 2.0 token endpoint's basic scheme: use the bearer one.
        page.locator("button.authorize").first.click()
        bearer = page.locator(".auth-container").filter(has_text="bearer").first
        bearer.locator("input").first.fill(DEV_KEY)
        bearer.locator(".auth-btn-wrapper button.authorize").click()
        bearer.locator("button.btn-done").click()

        # Try it: GET /api/v1/embedding-models needs a key, so 200 proves it was sent.
        op = page.locator("#operations-EmbedderService-ListEmbeddingModels")
        op.locator(".opblock-summary").click()  # try-it mode is on from the start
        with page.expect_response(lambda r: r.url.endswith("/api/v1/embedding-models")) as info:
            op.locator("button.execute").click()
        assert info.value.status == 200
        assert "authorization" in {k.lower() for k in info.value.request.headers}
        # The page shows the gateway's answer (the body row under the table's header).
        status = op.locator(".live-responses-table tbody .response-col_status").first
        status.wait_for()
        assert status.inner_text().strip().startswith("200")
        browser.close()
    assert errors == [], errors
    assert outside == []
