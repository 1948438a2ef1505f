"""OAuth 2.0 client credentials (RFC 6749 section 4.4) at POST /oauth2/token, through the real
Envoy: a service account's id and secret for the JWT the gateway verifies, and RFC 6749's
error bodies for every way it can go wrong."""

from __future__ import annotations

import base64
import secrets

import httpx
import jwt
import pytest

from tests.support.assertions import error_body, reason_of
from tests.support.gateway import bearer

pytestmark = pytest.mark.e2e

TOKEN = "/oauth2/token"
FORM = {"content-type": "application/x-www-form-urlencoded"}
MODELS = "/api/v1/embedding-models"
ALL = ["embeddings", "search", "chat", "ingest", "analytics", "admin"]


def _basic(client_id: str, secret: str) -> dict[str, str]:
    raw = base64.b64encode(f"{client_id}:{secret}".encode()).decode()
    return {"authorization": f"Basic {raw}"}


class Tenant:
    def __init__(self, name: str, client: httpx.AsyncClient) -> None:
        self.name, self.client = name, client

    async def account(self, role: str) -> tuple[dict, str]:
        reply = await self.client.post(
            "/api/v1/serviceAccounts", json={"role": role, "display_name": f"{role} bot"}
        )
        assert reply.status_code == 200, reply.text
        return reply.json()["service_account"], reply.json()["client_secret"]


@pytest.fixture
async def tenant(api, stack):
    name = f"t-{secrets.token_hex(4)}"
    reply = await api.post(
        "/api/v1/users", json={"tenant": name, "email": "owner@example.com", "role": "ROLE_OWNER"}
    )
    assert reply.status_code == 200, reply.text
    owner = reply.json()["name"]
    reply = await api.post(
        "/api/v1/keys", json={"tenant": name, "owner": owner, "scopes": ALL, "tier": "enterprise"}
    )
    assert reply.status_code == 200, reply.text
    async with httpx.AsyncClient(
        base_url=stack.cfg.base_url, timeout=60, headers=bearer(reply.json()["key"])
    ) as client:
        yield Tenant(name, client)


def _oauth_error(reply: httpx.Response, status: int, error: str) -> dict:
    """RFC 6749 section 5.2: a JSON object with `error` (and a description), not a Status."""
    assert reply.status_code == status, reply.text
    assert reply.headers["content-type"].startswith("application/json")
    assert reply.headers["cache-control"] == "no-store"
    body = reply.json()
    assert body.get("error") == error, (body, dict(reply.headers))
    assert isinstance(body["error_description"], str) and body["error_description"]
    assert "code" not in body and "details" not in body
    return body


async def test_a_service_account_gets_a_jwt_with_basic_and_with_the_form(tenant, anon_api):
    account, secret = await tenant.account("ROLE_MEMBER")
    assert account["client_id"] == account["name"].removeprefix("serviceAccounts/")
    assert account["scopes"] == ["embeddings", "search", "chat", "ingest", "analytics"]
    for headers, form in (
        ({**FORM, **_basic(account["client_id"], secret)}, {}),
        (FORM, {"client_id": account["client_id"], "client_secret": secret}),
    ):
        reply = await anon_api.post(
            TOKEN, headers=headers, data={"grant_type": "client_credentials", **form}
        )
        assert reply.status_code == 200, reply.text
        assert reply.headers["cache-control"] == "no-store"
        body = reply.json()
        assert body["token_type"] == "Bearer" and body["expires_in"] == 900
        assert body["scope"] == "embeddings search chat ingest analytics"
        claims = jwt.decode(body["access_token"], options={"verify_signature": False})
        assert claims["sub"] == account["name"] and claims["tenant"] == tenant.name
        assert claims["iss"] == "ragline" and claims["aud"] == "ragline-api"
        # The same JWT the gateway verifies: its scopes apply, and no more.
        token = bearer(body["access_token"])
        assert (await anon_api.get(MODELS, headers=token)).status_code == 200
        denied = await anon_api.get("/api/v1/users", headers=token)
        assert reason_of(error_body(denied, 403)) == "SCOPE_DENIED"


async def test_scope_narrows_the_token(tenant, anon_api):
    account, secret = await tenant.account("ROLE_MEMBER")
    headers = {**FORM, **_basic(account["client_id"], secret)}
    reply = await anon_api.post(
        TOKEN, headers=headers, data={"grant_type": "client_credentials", "scope": "search chat"}
    )
    assert reply.status_code == 200, reply.text
    assert reply.json()["scope"] == "search chat"
    token = bearer(reply.json()["access_token"])
    assert reason_of(error_body(await anon_api.get(MODELS, headers=token), 403)) == "SCOPE_DENIED"
    # Beyond the role, or no scope at all: invalid_scope, naming it.
    for scope in ("search admin", "search telepathy"):
        reply = await anon_api.post(
            TOKEN, headers=headers, data={"grant_type": "client_credentials", "scope": scope}
        )
        body = _oauth_error(reply, 400, "invalid_scope")
        assert scope.split()[1] in body["error_description"]


async def test_client_authentication_failures_are_invalid_client(tenant, anon_api):
    account, secret = await tenant.account("ROLE_VIEWER")
    grant = {"grant_type": "client_credentials"}
    cases = [
        ({**FORM, **_basic(account["client_id"], "wrong-" + secret)}, grant),
        ({**FORM, **_basic("sa_0000000000000000", secret)}, grant),
        ({**FORM, **_basic(account["client_id"], "")}, grant),
        (FORM, {**grant, "client_id": account["client_id"], "client_secret": "nope"}),
        (FORM, grant),  # no credentials at all
        ({**FORM, "authorization": "Basic !!!not-base64"}, grant),
    ]
    bodies = []
    for headers, form in cases:
        reply = await anon_api.post(TOKEN, headers=headers, data=form)
        bodies.append(_oauth_error(reply, 401, "invalid_client"))
        challenge = reply.headers["www-authenticate"]
        assert challenge.startswith("Basic ") and 'error="invalid_client"' in challenge
    # One answer whatever was wrong: nothing tells a guesser which part was.
    assert len({b["error_description"] for b in bodies}) == 1


async def test_bad_requests_name_their_rfc6749_error(tenant, anon_api):
    account, secret = await tenant.account("ROLE_VIEWER")
    auth = _basic(account["client_id"], secret)
    for headers, body, status, error in (
        (
            {**FORM, **auth},
            "grant_type=password&username=a&password=b",
            400,
            "unsupported_grant_type",
        ),
        ({**FORM, **auth}, "grant_type=authorization_code&code=x", 400, "unsupported_grant_type"),
        ({**FORM, **auth}, "scope=search", 400, "invalid_request"),
        (
            {**FORM, **auth},
            "grant_type=client_credentials&grant_type=client_credentials",
            400,
            "invalid_request",
        ),
        (
            {"content-type": "application/json", **auth},
            '{"grant_type": "client_credentials"}',
            400,
            "invalid_request",
        ),
        (
            {**FORM, **auth},
            f"grant_type=client_credentials&client_id={account['client_id']}&client_secret={secret}",
            400,
            "invalid_request",
        ),
    ):
        reply = await anon_api.post(TOKEN, headers=headers, content=body)
        _oauth_error(reply, status, error)
    # Only POST: other methods are a 405 naming what is allowed.
    reply = await anon_api.get(TOKEN)
    assert reply.status_code == 405 and reply.headers["allow"] == "POST"


async def test_tokens_are_audited_and_a_deleted_account_gets_none(tenant, anon_api):
    account, secret = await tenant.account("ROLE_ADMIN")
    headers = {**FORM, **_basic(account["client_id"], secret)}
    grant = {"grant_type": "client_credentials"}
    reply = await anon_api.post(TOKEN, headers=headers, data=grant)
    assert reply.status_code == 200, reply.text
    token = bearer(reply.json()["access_token"])
    # An admin account's token administers the tenant, as that account.
    made = await anon_api.post(
        "/api/v1/users",
        headers=token,
        json={"email": "bot-made@example.com", "role": "ROLE_VIEWER"},
    )
    assert made.status_code == 200, made.text
    events = (await tenant.client.get("/api/v1/auditEvents")).json()["audit_events"]
    assert events[0]["action"] == "user.create" and events[0]["actor"] == account["name"]
    issued = events[1]
    assert issued["action"] == "oauth2.token.issue" and issued["actor"] == account["name"]
    assert issued["actor_credential"] == account["client_id"]
    assert issued["details"]["scope"] == " ".join(ALL) and issued["source_ip"]
    # A key of the account follows it.
    key = await tenant.client.post(
        "/api/v1/keys", json={"owner": account["name"], "scopes": ["search"]}
    )
    assert key.status_code == 200, key.text
    deleted = await tenant.client.delete(f"/api/v1/{account['name']}")
    assert deleted.status_code == 200, deleted.text
    assert deleted.json()["state"] == "SERVICE_ACCOUNT_STATE_DELETED"
    _oauth_error(await anon_api.post(TOKEN, headers=headers, data=grant), 401, "invalid_client")
    state = (await tenant.client.get(f"/api/v1/keys/{key.json()['api_key']['key_id']}")).json()
    assert state["state"] == "API_KEY_STATE_REVOKED"
    # Its unexpired token still passes the gateway's signature check, but administers
    # nothing: administrative calls re-read who the caller is.
    reply = await anon_api.get("/api/v1/users", headers=token)
    assert reason_of(error_body(reply, 401)) == "OWNER_DELETED"
    events = (await tenant.client.get("/api/v1/auditEvents")).json()["audit_events"]
    assert events[0]["action"] == "service_account.delete"
    assert events[0]["details"]["revoked_keys"] == "1"


async def test_other_tenants_accounts_are_invisible(tenant, api, stack):
    account, _ = await tenant.account("ROLE_MEMBER")
    listed = (await tenant.client.get("/api/v1/serviceAccounts")).json()["service_accounts"]
    assert [a["name"] for a in listed] == [account["name"]]
    assert "client_secret" not in listed[0] and "secret_digest" not in str(listed[0])
    other = f"t-{secrets.token_hex(4)}"
    owner = (
        await api.post(
            "/api/v1/users", json={"tenant": other, "email": "o@example.com", "role": "ROLE_OWNER"}
        )
    ).json()["name"]
    key = (
        await api.post("/api/v1/keys", json={"tenant": other, "owner": owner, "scopes": ALL})
    ).json()["key"]
    async with httpx.AsyncClient(
        base_url=stack.cfg.base_url, timeout=60, headers=bearer(key)
    ) as stranger:
        for method in ("GET", "DELETE"):
            reply = await stranger.request(method, f"/api/v1/{account['name']}")
            assert reason_of(error_body(reply, 404)) == "SERVICE_ACCOUNT_NOT_FOUND"
        assert (await stranger.get("/api/v1/serviceAccounts")).json()["service_accounts"] == []


async def test_a_secret_rotates_with_a_grace_period(tenant, anon_api):
    account, first = await tenant.account("ROLE_VIEWER")
    grant = {"grant_type": "client_credentials"}

    async def works(secret: str) -> bool:
        headers = {**FORM, **_basic(account["client_id"], secret)}
        reply = await anon_api.post(TOKEN, headers=headers, data=grant)
        assert reply.status_code in (200, 401), reply.text
        return reply.status_code == 200

    path = f"/api/v1/{account['name']}:rotateSecret"
    reply = await tenant.client.post(path, json={"grace_period_seconds": 600})
    assert reply.status_code == 200, reply.text
    second = reply.json()["client_secret"]
    assert second != first and reply.json()["previous_secret_expire_time"]
    assert await works(first) and await works(second)
    # Without a grace period the replaced secret stops at once.
    reply = await tenant.client.post(path, json={})
    assert reply.status_code == 200, reply.text
    third = reply.json()["client_secret"]
    assert not await works(second) and not await works(first) and await works(third)
    events = (await tenant.client.get("/api/v1/auditEvents")).json()["audit_events"]
    rotations = [e for e in events if e["action"] == "service_account.rotate_secret"]
    assert [e["details"]["grace_period_seconds"] for e in rotations] == ["0", "600"]
    bad = await tenant.client.post(path, json={"grace_period_seconds": -1})
    assert reason_of(error_body(bad, 400)) == "INVALID_ARGUMENT"
