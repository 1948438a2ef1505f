"""The admin dashboard at /admin (tools/admin-ui), driven in Debian's headless chromium
against the live stack: sign in with an admin key, create a key, use it, revoke it and see
the API refuse it, see the request in the usage chart, export CSV; a viewer sees usage
read-only and neither the key pages nor the keys API. Screenshots of each page go to
run/screenshots/<page>.png; any console error fails the test."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser

from tests.support.auth import DEV_KEY
from tests.support.browser import Browsing, browser, open_browsing, wait_until

pytestmark = pytest.mark.e2e
__all__ = ["browser"]  # a fixture


async def test_admin_files_have_strict_headers(anon_api):
    page = await anon_api.get("/admin")  # public: the files hold no data
    assert page.status_code == 200, page.text
    assert page.headers["content-type"].startswith("text/html")
    policy = page.headers["content-security-policy"]
    for directive in (
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "connect-src 'self'",
        "frame-ancestors 'none'",
        "object-src 'none'",
    ):
        assert directive in policy, policy
    assert "unsafe" not in policy and "http" not in policy  # no inline code, no CDN
    assert page.headers["x-frame-options"] == "DENY"
    assert page.headers["x-content-type-options"] == "nosniff"
    assert page.headers["referrer-policy"] == "no-referrer"
    assert page.headers["cache-control"] == "no-cache"
    assert "set-cookie" not in page.headers
    # Every script is a file of this origin: none inline, none from elsewhere.
    scripts = re.findall(r"<script([^>]*)>(.*?)</script>", page.text, flags=re.S)
    assert scripts and all(body.strip() == "" for _, body in scripts)
    sources = re.findall(r"""(?:src|href)=["']([^"']+)""", page.text)
    assert sources and all(s.startswith("/admin/assets/") or s == "data:," for s in sources)

    assert (await anon_api.get("/admin/")).text == page.text
    script = next(s for s in sources if s.endswith(".js"))
    asset = await anon_api.get(script)
    assert asset.status_code == 200
    assert asset.headers["content-type"].startswith("text/javascript")
    assert "immutable" in asset.headers["cache-control"]
    assert asset.headers["content-security-policy"] == policy

    missing = await anon_api.get("/admin/assets/nope.js")
    assert missing.status_code == 404
    assert missing.json()["details"][0]["reason"] == "CONSOLE_FILE_NOT_FOUND"
    # Only the build's files are served (read into memory at start-up): no path leads out.
    assert (await anon_api.get("/admin/package.json")).status_code == 404
    for probe in ("/admin/..%2f..%2f..%2fpyproject.toml", "/admin/assets/../../vite.config.ts"):
        r = await anon_api.get(probe)
        # 400 (escaped slash), or the path resolved outside /admin: 401 as any unknown path.
        assert r.status_code in (400, 401, 404), (probe, r.status_code)


@pytest.fixture
def browsing(stack, browser: Browser) -> Iterator[Browsing]:
    yield from open_browsing(browser, stack.cfg.base_url)


def test_admin_manages_keys_and_sees_usage_a_viewer_only_reads(stack, browsing: Browsing):
    base, page = stack.cfg.base_url, browsing.page
    http = httpx.Client(base_url=base, timeout=30)
    tenant = f"dash-{uuid.uuid4().hex[:8]}"
    secrets = [DEV_KEY]

    page.goto(f"{base}/admin", wait_until="load")
    page.wait_for_selector("#sign-in")
    browsing.shot("sign-in")

    # A wrong key: the form says why and nothing is kept.
    page.fill("#api-key", "rl_live_not-a-key")
    with page.expect_response(lambda r: r.url.endswith("/api/v1/tokens")) as refused:
        page.click("#sign-in button[type=submit]")
    assert refused.value.status == 401
    page.wait_for_selector("#sign-in .notice.error")
    assert "INVALID_API_KEY" in page.inner_text("#sign-in .notice.error")
    browsing.errors.clear()  # the browser logs the 401 it was asked to show

    # Sign in with an admin key: it is exchanged for a JWT, then every call carries that.
    with page.expect_request(lambda r: "/api/v1/analytics/usage" in r.url) as usage_call:
        browsing.sign_in(DEV_KEY)
    auth = usage_call.value.headers["authorization"]
    assert auth.startswith("Bearer ey") and DEV_KEY not in auth
    secrets.append(auth.removeprefix("Bearer "))
    stored = page.evaluate(
        "() => JSON.stringify([Object.entries(localStorage), Object.entries(sessionStorage),"
        " document.cookie])"
    )
    assert stored == '[[],[],""]'
    nav = page.locator("nav a").all_inner_texts()
    assert {"Usage", "Keys", "System"} <= set(nav)

    # Keys: create one for a new tenant; its secret is shown once, with copy.
    browsing.go("keys")
    page.fill("#new-key-tenant", tenant)
    page.fill("#new-key-name", "dashboard test")
    page.check("#scope-embeddings")
    page.uncheck("#scope-search")
    page.click("#create-key-submit")
    page.wait_for_selector("#secret:not([hidden]) #secret-value")
    key = page.input_value("#secret-value")
    assert key.startswith("rl_live_")
    secrets.append(key)
    browsing.shot("keys-secret")
    page.click("#secret-copy")
    page.wait_for_selector("#secret-copied:not(:empty)")  # "copied" (or "selected")
    page.click("#secret-dismiss")
    assert page.locator("#secret-value").count() == 0  # gone from the page

    # The key works through the API.
    call = http.post(
        "/api/v1/embeddings",
        headers={"authorization": f"Bearer {key}"},
        json={"text": "dashboard"},
    )
    assert call.status_code == 200, call.text

    # Search filters the table; the new key's row has its actions.
    page.fill("#keys-search", tenant)
    row = page.locator("#keys-table tbody tr", has_text=tenant)
    row.wait_for()
    assert page.locator("#keys-table tbody tr").count() == 1
    old_id = row.locator(".actions").get_attribute("data-key-id")
    assert old_id
    browsing.shot("keys")

    def embed(credential: str) -> httpx.Response:
        return http.post(
            "/api/v1/embeddings",
            headers={"authorization": f"Bearer {credential}"},
            json={"text": "dashboard"},
        )

    # Rotate with no grace: a new secret, shown once; the old key stops, the new one works.
    row.locator("input[aria-label='grace hours']").fill("0")
    row.locator("button.rotate").click()
    page.wait_for_selector("#secret:not([hidden]) #secret-value")
    new_key = page.input_value("#secret-value")
    assert new_key.startswith("rl_live_") and new_key != key
    secrets.append(new_key)
    title = page.inner_text("#secret h2")  # "Key <old id> rotated to <new id>"
    key_id = title.rsplit(" ", 1)[-1]
    assert title.startswith(f"Key {old_id} rotated to key_"), title
    page.click("#secret-dismiss")
    wait_until(lambda: embed(key).status_code == 401, "the rotated key to be refused", 10)
    assert embed(new_key).status_code == 200
    row = page.locator("#keys-table tbody tr", has_text=key_id)
    row.wait_for()

    # Revoke it in the page; the API refuses it within seconds.
    row.locator("button.revoke").click()
    page.wait_for_selector("#keys-notice.ok")
    page.locator("#keys-table tbody tr", has_text=key_id).filter(has_text="revoked").wait_for()
    assert page.locator("#keys-table button.revoke").count() == 0  # no active key left

    def refused_now() -> bool:
        r = embed(new_key)
        return r.status_code == 401 and "KEY_REVOKED" in r.text

    wait_until(refused_now, "the revoked key to be refused", timeout=10)

    # Usage: the request made with the key shows in its tenant's chart and CSV.
    browsing.go("usage")
    page.wait_for_selector(f"#usage-tenant option[value='{tenant}']", state="attached")

    def counted() -> bool:
        page.select_option("#usage-tenant", tenant)
        page.click("#usage-refresh")
        page.wait_for_selector("#total-requests")
        page.wait_for_selector("#page .notice", state="hidden")
        return int(page.inner_text("#total-requests").replace(",", "")) >= 1

    wait_until(counted, "the request in the tenant's usage")
    assert "/api/v1/embeddings" in page.inner_text("#endpoint-table")
    # The chart is drawn (Chart.js is bundled, not a global: read the canvas's pixels).
    drawn = page.evaluate(
        "() => { const c = document.getElementById('chart-requests');"
        " const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;"
        " for (let i = 3; i < d.length; i += 4) if (d[i] > 0) return true; return false }"
    )
    assert drawn
    # The tenant's spend cap: none configured for it (the suite caps only capped-tenant).
    assert page.inner_text("#spend-state").endswith("today, no cap")
    capped = http.get(
        "/api/v1/analytics/usage",
        params={"tenant": "capped-tenant"},
        headers={"authorization": f"Bearer {DEV_KEY}"},
    )
    assert capped.status_code == 200, capped.text
    cap = capped.json()["spend_cap"]
    assert cap["daily_cap_usd"] == pytest.approx(1e-7) and cap["known"] is True
    assert cap["reset_time"].endswith("T00:00:00Z")
    browsing.shot("usage")
    with page.expect_download() as dl:
        page.click("#usage-csv")
    csv = Path(dl.value.path()).read_text()
    assert csv.startswith("kind,key,requests,errors,")
    assert re.search(r"^endpoint,POST /api/v1/embeddings,[1-9]", csv, flags=re.M), csv
    assert csv.splitlines()[0].endswith(",mean_latency_ms,p95_latency_ms")
    # Per key (the calls were made with the key before its rotation) and per owner.
    assert re.search(rf"^key,{old_id},[1-9]", csv, flags=re.M), csv
    page.locator("#key-table tbody tr", has_text=old_id).wait_for()
    owner_rows = page.locator("#user-table tbody tr").all_inner_texts()
    assert owner_rows and all("\t" in r for r in owner_rows), owner_rows
    # p95 from the latency histogram: a gateway round trip takes at least a millisecond.
    assert int(page.inner_text("#total-p95").removesuffix(" ms")) >= 1
    assert float(csv.splitlines()[1].split(",")[-1]) >= 1  # the total row's p95

    # System: health of every component, models, collections (one ingested for it).
    collection = f"dash-{uuid.uuid4().hex[:8]}"
    ingested = http.post(
        "/api/v1/ingest",
        headers={"authorization": f"Bearer {DEV_KEY}"},
        json={"collection": collection, "documents": [{"title": "t", "content": "Envoy."}]},
        timeout=120,
    )
    assert ingested.status_code == 200, ingested.text
    job_id = ingested.json()["job_id"]

    def job_done() -> bool:
        job = http.get(f"/api/v1/jobs/{job_id}", headers={"authorization": f"Bearer {DEV_KEY}"})
        return job.json()["state"] == "JOB_STATE_SUCCEEDED"

    wait_until(job_done, "the ingest job", timeout=120)
    browsing.go("system")
    page.wait_for_selector("#health-status")
    wait_until(lambda: page.inner_text("#health-status") == "SERVING", "health SERVING")
    components = page.locator("#health-table tbody tr td:first-child").all_inner_texts()
    assert {"embedder", "retriever", "chat", "ingest"} <= set(components)
    page.wait_for_selector("#chat-models-table")
    page.wait_for_selector("#embedding-models-table")
    assert "all-MiniLM-L6-v2" in page.inner_text("#embedding-models-table")
    row = page.locator("#collections-table tbody tr", has_text=collection)
    row.wait_for()
    assert row.locator("td").nth(1).inner_text() == "1"  # documents

    # The index: the answering retriever replica's, in step with the database once it has
    # loaded the new collection (the page reads it once per visit).
    def index_in_step() -> bool:
        cell = page.locator("#collections-table tbody tr", has_text=collection).locator("td")
        if "in step (1 chunks)" in cell.nth(3).inner_text():
            return True
        browsing.go("usage")
        browsing.go("system")
        page.locator("#collections-table tbody tr", has_text=collection).wait_for()
        return False

    wait_until(index_in_step, "the collection's index in step")
    free = page.locator("#tiers-table tbody tr", has_text="free")
    free.wait_for()
    assert free.locator("td").nth(3).inner_text() == "20"  # chat, per minute per key
    auth = page.locator("#configuration details[data-service=auth]")
    auth.wait_for()
    auth.locator("summary").click()
    pepper = auth.locator("tr", has_text="API_KEY_PEPPER")
    assert pepper.locator("td").nth(1).inner_text() == "[set]"
    assert page.locator("#configuration details").count() == 5
    browsing.shot("system")

    # Users (once the gateway serves the users API): invite, change a role, remove.
    viewer_owner: dict[str, str] = {}
    if page.locator("nav a[data-page=users]").count():
        browsing.go("users")

        def add_user(email: str, role: str) -> None:
            page.fill("#new-user-email", email)
            page.fill("#new-user-tenant", tenant)
            page.select_option("#new-user-role", role)
            page.click("#create-user-submit")
            page.wait_for_selector("#users-notice.ok")
            page.locator("#users-table tbody tr", has_text=email).wait_for()

        viewer_email, gone_email = f"viewer@{tenant}.example.com", f"gone@{tenant}.example.com"
        add_user(viewer_email, "ROLE_MEMBER")
        add_user(gone_email, "ROLE_VIEWER")
        row = page.locator("#users-table tbody tr", has_text=viewer_email)
        row.locator("select.role").select_option("ROLE_VIEWER")
        page.locator("#users-notice.ok", has_text="now viewer").wait_for()
        name = row.locator("button.remove").get_attribute("data-user") or ""
        assert name.startswith("users/")
        viewer_owner = {"owner": name}
        browsing.shot("users")
        page.locator("#users-table tbody tr", has_text=gone_email).locator("button.remove").click()
        page.locator("#users-notice.ok", has_text="removed").wait_for()
        assert page.locator("#users-table tbody tr", has_text=gone_email).count() == 0

    # The audit log has the page's key actions (once the gateway serves it).
    if page.locator("nav a[data-page=audit]").count():
        browsing.go("audit")
        page.fill("#audit-tenant", tenant)
        page.select_option("#audit-action", "api_key.revoke")
        page.locator("#audit-table tbody tr", has_text=key_id).wait_for()
        assert "api_key.revoke" in page.inner_text("#audit-table tbody")
        page.select_option("#audit-action", "")
        for action in ("api_key.create", "api_key.rotate", "api_key.revoke"):
            page.locator("#audit-table tbody tr", has_text=action).first.wait_for()
        browsing.shot("audit")

    # A viewer (the viewer user's key, or a key with the viewer role's scopes): usage only.
    made = http.post(
        "/api/v1/keys",
        headers={"authorization": f"Bearer {DEV_KEY}"},
        json={
            "tenant": tenant,
            "scopes": ["search", "chat", "analytics"],
            "name": "viewer",
            **viewer_owner,
        },
    )
    assert made.status_code == 200, made.text
    viewer_key = made.json()["key"]
    secrets.append(viewer_key)
    browsing.sign_out()
    with page.expect_request(lambda r: "/api/v1/analytics/usage" in r.url) as usage_call:
        browsing.sign_in(viewer_key)
    viewer_jwt = usage_call.value.headers["authorization"].removeprefix("Bearer ")
    secrets.append(viewer_jwt)
    assert page.locator("nav a").all_inner_texts() == ["Usage"]
    page.wait_for_selector("#read-only")
    assert page.is_disabled("#usage-tenant")
    page.evaluate("() => { window.location.hash = '#/keys' }")
    page.wait_for_selector("main[data-page=usage]")
    assert page.locator("#create-key").count() == 0
    wait_until(lambda: page.inner_text("#total-requests") not in ("", "0"), "viewer's usage")
    browsing.shot("viewer-usage")
    # ...and the API refuses key management to the viewer's key and to its token.
    for credential in (viewer_key, viewer_jwt):
        r = http.get("/api/v1/keys", headers={"authorization": f"Bearer {credential}"})
        assert r.status_code == 403, r.text
        assert "SCOPE_DENIED" in r.text

    assert browsing.errors == [], browsing.errors
    # Every request stayed on the gateway, and no URL carried a key or token.
    assert all(u.startswith((base, "data:", "blob:")) for u in browsing.urls), browsing.urls
    leaked = [u for u in browsing.urls for s in secrets if s in u]
    assert leaked == []
    # Nor did any component log one.
    for name in stack.components():
        log = stack.log_path(name)
        text = log.read_text(errors="replace") if log.exists() else ""
        assert not [s for s in secrets if s in text], name
