"""Single sign-on against a real OpenID Connect provider: Ory Hydra v2.3.0
(scripts/install_hydra.sh, run on an in-memory database, telemetry off) issues
client-credentials access tokens as JWTs; the gateway of a stack configured with Hydra as
OIDC_ISSUER accepts them, maps their claims to a tenant and a role, and refuses the bad ones."""

from __future__ import annotations

import base64
import json
import os
import secrets
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from ragline_stack.stack import Stack, free_port
from tests.conftest import stack_config
from tests.support.assertions import error_body, reason_of
from tests.support.gateway import bearer

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
HYDRA = ROOT / ".bin" / "hydra"
AUDIENCE = "ragline-sso"
TENANT = "acme"
ROLE_MAP = {"ragline.admin": "admin", "ragline.viewer": "viewer"}


class Hydra:
    def __init__(self, public: int, admin: int) -> None:
        self.public = f"http://127.0.0.1:{public}"
        self.admin = f"http://127.0.0.1:{admin}"
        self.issuer = f"{self.public}/"

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
def hydra(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Hydra]:
    assert HYDRA.exists(), "Ory Hydra is not installed: run scripts/install_hydra.sh"
    public, admin = free_port(), free_port()
    server = Hydra(public, admin)
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
    cfg = stack_config(
        tmp_path_factory.mktemp("sso"),
        OIDC_ISSUER=hydra.issuer,
        OIDC_AUDIENCE=AUDIENCE,
        OIDC_TENANT_CLAIM="ext.tenant",
        OIDC_TENANT=TENANT,
        OIDC_ROLE_CLAIM="scp",
        OIDC_ROLE_MAP=json.dumps(ROLE_MAP),
    )
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
