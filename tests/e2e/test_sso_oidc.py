"""Single sign-on against a real OpenID Connect provider: Ory Hydra v2.3.0
(scripts/install_hydra.sh, run on an in-memory database, telemetry off) issues access
tokens as JWTs; the gateway of a stack configured with Hydra as OIDC_ISSUER accepts them,
maps their claims to a tenant and a role, and refuses the bad ones. The dashboard signs in
through Hydra in a real browser (authorization code + PKCE), with a minimal login and
consent app of this module standing in for an organisation's user directory."""

from __future__ import annotations

import base64
import html
import json
import os
import secrets
import subprocess
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from playwright.sync_api import Browser

from ragline_stack.stack import Stack, free_port
from tests.conftest import stack_config
from tests.support.assertions import error_body, reason_of
from tests.support.browser import Browsing, browser, open_browsing
from tests.support.gateway import bearer

pytestmark = pytest.mark.e2e
__all__ = ["browser"]  # a fixture

ROOT = Path(__file__).resolve().parents[2]
HYDRA = ROOT / ".bin" / "hydra"
AUDIENCE = "ragline-sso"
TENANT = "acme"
ROLE_MAP = {"ragline.admin": "admin", "ragline.viewer": "viewer"}
# The organisation's people and the scopes the consent app grants each (mallory: none, so
# her sign-in is refused).
PEOPLE = {"alice": ["openid", "ragline.admin"], "victor": ["openid", "ragline.viewer"]}
DASHBOARD_SCOPES = "openid ragline.admin ragline.viewer"


class LoginConsent:
    """Hydra's login and consent endpoints (its "login & consent app"): a form that asks
    who you are, then consent granted for the scopes that person has, with the tenant in
    the access token's `ext` claims."""

    def __init__(self, admin: str) -> None:
        self.admin = admin
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        app = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:  # quiet
                pass

            def do_GET(self) -> None:
                url = urlsplit(self.path)
                query = {k: v[0] for k, v in parse_qs(url.query).items()}
                if url.path == "/login":
                    self._html(app.login_form(query.get("login_challenge", "")))
                elif url.path == "/consent":
                    self._redirect(app.consent(query.get("consent_challenge", "")))
                else:  # the browser's favicon request: nothing, without a console error
                    self.send_response(204)
                    self.end_headers()

            def do_POST(self) -> None:
                length = int(self.headers.get("content-length", "0"))
                form = {k: v[0] for k, v in parse_qs(self.rfile.read(length).decode()).items()}
                self._redirect(app.login(form.get("challenge", ""), form.get("user", "")))

            def _html(self, body: str) -> None:
                self.send_response(200)
                self.send_header("content-type", "text/html; charset=utf-8")
                self.end_headers()
                self.wfile.write(body.encode())

            def _redirect(self, to: str) -> None:
                self.send_response(302)
                self.send_header("location", to)
                self.end_headers()

        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def login_form(self, challenge: str) -> str:
        return (
            "<!doctype html><title>Sign in</title><form method=post action=/login>"
            f"<input type=hidden name=challenge value='{html.escape(challenge, quote=True)}'>"
            "<input id=user name=user autofocus><button id=login type=submit>Sign in</button>"
            "</form>"
        )

    def login(self, challenge: str, user: str) -> str:
        base = f"{self.admin}/admin/oauth2/auth/requests/login"
        if user in PEOPLE:
            body: dict[str, object] = {"subject": user, "remember": False}
            reply = httpx.put(f"{base}/accept", params={"login_challenge": challenge}, json=body)
        else:
            body = {"error": "access_denied", "error_description": f"{user} may not sign in"}
            reply = httpx.put(f"{base}/reject", params={"login_challenge": challenge}, json=body)
        reply.raise_for_status()
        return str(reply.json()["redirect_to"])

    def consent(self, challenge: str) -> str:
        base = f"{self.admin}/admin/oauth2/auth/requests/consent"
        asked = httpx.get(base, params={"consent_challenge": challenge})
        asked.raise_for_status()
        request = asked.json()
        allowed = PEOPLE[request["subject"]]
        reply = httpx.put(
            f"{base}/accept",
            params={"consent_challenge": challenge},
            json={
                "grant_scope": [s for s in request["requested_scope"] if s in allowed],
                "grant_access_token_audience": request["requested_access_token_audience"],
                "session": {"access_token": {"tenant": TENANT}},
            },
        )
        reply.raise_for_status()
        return str(reply.json()["redirect_to"])


class Hydra:
    def __init__(self, public: int, admin: int) -> None:
        self.public = f"http://127.0.0.1:{public}"
        self.admin = f"http://127.0.0.1:{admin}"
        self.issuer = f"{self.public}/"

    def dashboard_client(self) -> str:
        """A public client (no secret: PKCE) for the dashboard; its redirect URI is set once
        the gateway's address is known (Hydra v2 chooses client ids itself)."""
        reply = httpx.post(
            f"{self.admin}/admin/clients",
            json={
                "client_name": "ragline dashboard",
                "grant_types": ["authorization_code"],
                "response_types": ["code"],
                "scope": DASHBOARD_SCOPES,
                "audience": [AUDIENCE],
                "token_endpoint_auth_method": "none",
                "access_token_strategy": "jwt",
                "redirect_uris": ["http://127.0.0.1/admin"],
            },
            timeout=10,
        )
        assert reply.status_code == 201, reply.text
        return str(reply.json()["client_id"])

    def allow_dashboard_at(self, client_id: str, base_url: str) -> None:
        client = httpx.get(f"{self.admin}/admin/clients/{client_id}", timeout=10).json()
        client.update(redirect_uris=[f"{base_url}/admin"], allowed_cors_origins=[base_url])
        reply = httpx.put(f"{self.admin}/admin/clients/{client_id}", json=client, timeout=10)
        assert reply.status_code == 200, reply.text

    def client(self, scope: str, audience: list[str]) -> tuple[str, str]:
        reply = httpx.post(
            f"{self.admin}/admin/clients",
            json={
                "grant_types": ["client_credentials"],
                "scope": scope,
                "audience": audience,
                "token_endpoint_auth_method": "client_secret_basic",
                "access_token_strategy": "jwt",
            },
            timeout=10,
        )
        assert reply.status_code == 201, reply.text
        return reply.json()["client_id"], reply.json()["client_secret"]

    def token(self, scope: str, audience: str = AUDIENCE, scopes: str = "") -> str:
        client_id, secret = self.client(scopes or scope, [audience])
        reply = httpx.post(
            f"{self.public}/oauth2/token",
            auth=(client_id, secret),
            data={"grant_type": "client_credentials", "scope": scope, "audience": audience},
            timeout=10,
        )
        assert reply.status_code == 200, reply.text
        return str(reply.json()["access_token"])


@pytest.fixture(scope="module")
def login_consent() -> Iterator[LoginConsent]:
    app = LoginConsent("")  # Hydra's admin address is set once Hydra has its ports
    app.thread.start()
    yield app
    app.server.shutdown()


@pytest.fixture(scope="module")
def hydra(tmp_path_factory: pytest.TempPathFactory, login_consent: LoginConsent) -> Iterator[Hydra]:
    assert HYDRA.exists(), "Ory Hydra is not installed: run scripts/install_hydra.sh"
    public, admin = free_port(), free_port()
    server = Hydra(public, admin)
    login_consent.admin = server.admin
    env = {
        **os.environ,
        "DSN": "memory",
        "URLS_SELF_ISSUER": server.issuer,
        "STRATEGIES_ACCESS_TOKEN": "jwt",
        "SECRETS_SYSTEM": secrets.token_hex(32),
        "SERVE_PUBLIC_HOST": "127.0.0.1",
        "SERVE_PUBLIC_PORT": str(public),
        "SERVE_ADMIN_HOST": "127.0.0.1",
        "SERVE_ADMIN_PORT": str(admin),
        "LOG_LEVEL": "warn",
        "SQA_OPT_OUT": "true",
        "URLS_LOGIN": f"{login_consent.url}/login",
        "URLS_CONSENT": f"{login_consent.url}/consent",
        # The dashboard fetches the discovery document and trades its code from the browser.
        "SERVE_PUBLIC_CORS_ENABLED": "true",
        "OAUTH2_PKCE_ENFORCED_FOR_PUBLIC_CLIENTS": "true",
    }
    log = tmp_path_factory.mktemp("hydra") / "hydra.log"
    with open(log, "ab") as out:
        proc = subprocess.Popen(
            [str(HYDRA), "serve", "all", "--dev", "--sqa-opt-out"],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 120
        while True:
            assert proc.poll() is None, log.read_text()[-3000:]
            try:
                if httpx.get(f"{server.admin}/health/ready", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, log.read_text()[-3000:]
            time.sleep(0.3)
        # Hydra makes its signing keys on first use, which takes seconds on a busy machine.
        httpx.get(f"{server.public}/.well-known/jwks.json", timeout=60).raise_for_status()
        yield server
    finally:
        proc.terminate()
        proc.wait(30)


@pytest.fixture(scope="module")
def sso_stack(hydra: Hydra, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    dashboard = hydra.dashboard_client()
    cfg = stack_config(
        tmp_path_factory.mktemp("sso"),
        OIDC_ISSUER=hydra.issuer,
        OIDC_AUDIENCE=AUDIENCE,
        OIDC_TENANT_CLAIM="ext.tenant",
        OIDC_TENANT=TENANT,
        OIDC_ROLE_CLAIM="scp",
        OIDC_ROLE_MAP=json.dumps(ROLE_MAP),
        OIDC_DASHBOARD_CLIENT_ID=dashboard,
        OIDC_DASHBOARD_SCOPES=DASHBOARD_SCOPES,
    )
    hydra.allow_dashboard_at(dashboard, cfg.base_url)
    stack = Stack(cfg)
    try:
        stack.start_all(timeout=300)
        yield stack
    finally:
        stack.stop_all()


@pytest.fixture
async def gateway(sso_stack: Stack) -> Iterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=sso_stack.cfg.base_url, timeout=60) as client:
        yield client


async def test_an_sso_admin_manages_its_tenant(hydra, gateway):
    token = bearer(hydra.token("ragline.admin"))
    reply = await gateway.get("/api/v1/embedding-models", headers=token)
    assert reply.status_code == 200, reply.text
    made = await gateway.post(
        "/api/v1/users", headers=token, json={"email": "v@acme.example", "role": "ROLE_VIEWER"}
    )
    assert made.status_code == 200, made.text
    assert made.json()["tenant"] == TENANT
    events = (await gateway.get("/api/v1/auditEvents", headers=token)).json()["audit_events"]
    assert events[0]["action"] == "user.create"
    assert events[0]["actor"].startswith("ssoUsers/") and events[0]["tenant"] == TENANT
    # Its tenant only.
    other = await gateway.get("/api/v1/users", headers=token, params={"tenant": "dev-1"})
    assert reason_of(error_body(other, 404)) == "TENANT_NOT_FOUND"


async def test_a_role_gets_its_scopes_and_no_more(hydra, gateway):
    token = bearer(hydra.token("ragline.viewer"))
    search = await gateway.post(
        "/api/v1/search", headers=token, json={"query": "x", "collection": "none"}
    )
    assert reason_of(error_body(search, 404)) == "COLLECTION_NOT_FOUND"
    for path in ("/api/v1/embedding-models", "/api/v1/users"):
        reply = await gateway.get(path, headers=token)
        assert reason_of(error_body(reply, 403)) == "SCOPE_DENIED", path


async def test_unmapped_wrong_audience_and_forged_tokens_are_refused(hydra, gateway):
    unmapped = await gateway.get(
        "/api/v1/embedding-models", headers=bearer(hydra.token("reports.read"))
    )
    body = error_body(unmapped, 403)
    assert reason_of(body) == "ROLE_NOT_MAPPED" and "'scp'" in body["message"]
    other_audience = hydra.token("ragline.admin", audience="someone-else")
    reply = await gateway.get("/api/v1/embedding-models", headers=bearer(other_audience))
    assert reason_of(error_body(reply, 401)) == "INVALID_TOKEN"
    # The same claims with a signature of our own making.
    header, payload, _ = hydra.token("ragline.admin").split(".")
    forged = f"{header}.{payload}.{base64.urlsafe_b64encode(b'x' * 256).decode().rstrip('=')}"
    reply = await gateway.get("/api/v1/embedding-models", headers=bearer(forged))
    assert reason_of(error_body(reply, 401)) == "INVALID_TOKEN"
    # These were Hydra's own tokens, as configured: its issuer, the scope asked for.
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    assert claims["iss"] == hydra.issuer and claims["scp"] == ["ragline.admin"]


async def test_keys_and_ragline_tokens_keep_working_beside_sso(gateway):
    reply = await gateway.get("/api/v1/embedding-models", headers=bearer("dev-key-1"))
    assert reply.status_code == 200
    token = await gateway.post("/api/v1/tokens", headers=bearer("dev-key-1"), json={})
    assert token.status_code == 200, token.text
    reply = await gateway.get(
        "/api/v1/embedding-models", headers=bearer(token.json()["access_token"])
    )
    assert reply.status_code == 200


@pytest.fixture
def sso_browsing(sso_stack: Stack, browser: Browser) -> Iterator[Browsing]:
    yield from open_browsing(browser, sso_stack.cfg.base_url)


def _sign_in_through_hydra(b: Browsing, user: str) -> None:
    b.page.goto(f"{b.base}/admin", wait_until="load")
    b.page.click("#sso-sign-in")
    b.page.wait_for_selector("#user")  # the organisation's sign-in page, via Hydra
    b.page.fill("#user", user)
    b.page.click("#login")


def test_the_dashboard_signs_in_through_the_provider_with_pkce(
    hydra: Hydra, sso_browsing: Browsing
) -> None:
    b, page = sso_browsing, sso_browsing.page
    policy = httpx.get(f"{b.base}/admin", timeout=10).headers["content-security-policy"]
    assert f"connect-src 'self' {hydra.public};" in policy, policy

    _sign_in_through_hydra(b, "alice")
    page.wait_for_selector("nav a[data-page=keys]")
    assert page.inner_text("nav .who") == f"tenant {TENANT} · admin"
    # The reply is gone from the address bar, and nothing of the sign-in stays behind.
    assert "code=" not in page.url and "state=" not in page.url, page.url
    assert page.evaluate("sessionStorage.length + localStorage.length") == 0
    b.go("users")  # the API accepts the provider's token for admin work
    page.wait_for_selector("#users-list table")
    b.shot("sso-alice")
    # The code went to Hydra's token endpoint with the verifier (PKCE), never to the gateway.
    authorize = next(u for u in b.urls if "/oauth2/auth?" in u)
    asked = {k: v[0] for k, v in parse_qs(urlsplit(authorize).query).items()}
    assert asked["code_challenge_method"] == "S256" and len(asked["code_challenge"]) == 43
    assert asked["response_mode"] == "fragment" and asked["audience"] == AUDIENCE
    assert not [u for u in b.urls if u.startswith(b.base) and "code=" in u]
    b.sign_out()

    _sign_in_through_hydra(b, "victor")
    page.wait_for_selector("nav a[data-page=usage]")
    assert page.inner_text("nav .who") == f"tenant {TENANT} · read-only"
    assert page.locator("nav a[data-page=keys]").count() == 0
    b.shot("sso-victor")
    b.sign_out()

    _sign_in_through_hydra(b, "mallory")
    page.wait_for_selector("#sign-in .notice.error")
    assert "refused the sign-in: access_denied" in page.inner_text("#sign-in .notice.error")
    assert page.locator("nav").count() == 0
    assert b.errors == [], b.errors
