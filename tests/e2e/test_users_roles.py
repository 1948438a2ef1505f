"""Users, roles, key owners and the audit log through the real Envoy (issue 16).

A tenant's owner is created by the operator (the development key); from there the tenant
manages itself with its own users' keys, and everything it does is in its audit log."""

from __future__ import annotations

import asyncio
import ipaddress
import secrets
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from tests.support.assertions import error_body, reason_of
from tests.support.gateway import bearer, wait_until

pytestmark = pytest.mark.e2e

ALL = ["embeddings", "search", "chat", "ingest", "analytics", "admin"]
MODELS = "/api/v1/embedding-models"


def _tenant() -> str:
    return f"t-{secrets.token_hex(4)}"


async def _user(client: httpx.AsyncClient, role: str, tenant: str = "", **extra: Any) -> dict:
    body = {"email": f"{role.lower()}-{secrets.token_hex(3)}@example.com", "role": role, **extra}
    if tenant:
        body["tenant"] = tenant
    reply = await client.post("/api/v1/users", json=body)
    assert reply.status_code == 200, reply.text
    return reply.json()


async def _key(client: httpx.AsyncClient, tenant: str, owner: str, scopes: list[str]) -> tuple:
    reply = await client.post(
        "/api/v1/keys",
        json={"tenant": tenant, "owner": owner, "scopes": scopes, "tier": "enterprise"},
    )
    assert reply.status_code == 200, reply.text
    return reply.json()["key"], reply.json()["api_key"]


class Tenant:
    """A tenant with an owner and a client that acts as that owner."""

    def __init__(self, name: str, owner: dict, key: str, client: httpx.AsyncClient) -> None:
        self.name, self.owner, self.key, self.client = name, owner, key, client


@pytest.fixture
async def tenant(api, stack):
    name = _tenant()
    owner = await _user(api, "ROLE_OWNER", name)
    key, _ = await _key(api, name, owner["name"], ALL)
    async with httpx.AsyncClient(
        base_url=stack.cfg.base_url, timeout=60, headers=bearer(key)
    ) as client:
        yield Tenant(name, owner, key, client)


async def _client_for(stack, key: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=stack.cfg.base_url, timeout=60, headers=bearer(key))


async def _events(client: httpx.AsyncClient, filter_text: str = "") -> list[dict]:
    params = {"filter": filter_text} if filter_text else {}
    reply = await client.get("/api/v1/auditEvents", params=params)
    assert reply.status_code == 200, reply.text
    return reply.json()["audit_events"]


# -- users and roles -------------------------------------------------------------------------
async def test_an_owner_manages_the_tenants_users_with_roles(tenant):
    admin = await _user(tenant.client, "ROLE_ADMIN", display_name="Ada")
    assert admin["name"].startswith("users/usr_") and admin["tenant"] == tenant.name
    assert admin["role"] == "ROLE_ADMIN" and admin["state"] == "USER_STATE_ACTIVE"
    assert admin["scopes"] == ALL and admin["create_time"].endswith("Z")
    viewer = await _user(tenant.client, "ROLE_VIEWER")
    assert viewer["scopes"] == ["search", "chat", "analytics"]
    got = await tenant.client.get(f"/api/v1/{viewer['name']}")
    assert got.status_code == 200 and got.json()["email"] == viewer["email"]
    # The same address twice in one tenant: 409 naming the field.
    again = await tenant.client.post(
        "/api/v1/users", json={"email": viewer["email"], "role": "ROLE_MEMBER"}
    )
    assert reason_of(error_body(again, 409)) == "USER_EXISTS"
    bad = await tenant.client.post("/api/v1/users", json={"email": "x@y.z"})
    assert reason_of(error_body(bad, 400)) == "INVALID_ROLE"


async def test_users_list_by_role_and_page(tenant):
    for role in ("ROLE_MEMBER", "ROLE_MEMBER", "ROLE_VIEWER"):
        await _user(tenant.client, role)
    members = await tenant.client.get("/api/v1/users", params={"filter": "role = ROLE_MEMBER"})
    assert members.status_code == 200, members.text
    assert [u["role"] for u in members.json()["users"]] == ["ROLE_MEMBER", "ROLE_MEMBER"]
    seen, token = [], ""
    while True:
        page = await tenant.client.get(
            "/api/v1/users", params={"page_size": 1, "page_token": token}
        )
        assert page.status_code == 200, page.text
        seen += [u["name"] for u in page.json()["users"]]
        token = page.json()["next_page_token"]
        if not token:
            break
    assert len(seen) == len(set(seen)) == 4  # the owner and the three
    bad = await tenant.client.get("/api/v1/users", params={"filter": "colour = blue"})
    assert reason_of(error_body(bad, 400)) == "INVALID_FILTER"
    assert "colour" in bad.json()["message"]
    bad = await tenant.client.get("/api/v1/users", params={"page_token": "nope"})
    assert reason_of(error_body(bad, 400)) == "INVALID_PAGE_TOKEN"


async def test_a_key_never_exceeds_its_owners_role(tenant):
    viewer = await _user(tenant.client, "ROLE_VIEWER")
    reply = await tenant.client.post(
        "/api/v1/keys", json={"owner": viewer["name"], "scopes": ["search", "ingest"]}
    )
    body = error_body(reply, 403)
    assert reason_of(body) == "SCOPE_EXCEEDS_ROLE" and "'ingest'" in body["message"]
    assert "ROLE_VIEWER" in body["message"]
    # Within the role it works, and the key names its owner and the owner's tenant.
    _, record = await _key(tenant.client, "", viewer["name"], ["search", "chat"])
    assert record["owner"] == viewer["name"] and record["tenant"] == tenant.name
    # Rotation keeps the owner.
    rotated = await tenant.client.post(f"/api/v1/keys/{record['key_id']}:rotate", json={})
    assert rotated.status_code == 200, rotated.text
    assert rotated.json()["api_key"]["owner"] == viewer["name"]
    # An unknown owner, or one of another tenant, is a 404 naming it.
    reply = await tenant.client.post(
        "/api/v1/keys", json={"owner": "users/usr_nosuchuser", "scopes": ["search"]}
    )
    assert reason_of(error_body(reply, 404)) == "OWNER_NOT_FOUND"


async def test_a_tenant_keeps_an_owner(tenant, api):
    # The owner cannot leave (delete itself) nor be demoted or deleted by the operator while
    # it is the only one; with a second owner it can be.
    for reply in (
        await api.patch(
            f"/api/v1/{tenant.owner['name']}",
            params={"update_mask": "role"},
            json={"role": "ROLE_ADMIN"},
        ),
        await api.delete(f"/api/v1/{tenant.owner['name']}"),
    ):
        body = error_body(reply, 400)
        assert reason_of(body) == "LAST_OWNER" and tenant.owner["name"] in body["message"]
    await _user(tenant.client, "ROLE_OWNER")
    demoted = await api.patch(
        f"/api/v1/{tenant.owner['name']}",
        params={"update_mask": "role"},
        json={"role": "ROLE_ADMIN"},
    )
    assert demoted.status_code == 200 and demoted.json()["role"] == "ROLE_ADMIN"


async def test_viewers_and_members_cannot_administer(tenant, stack):
    viewer = await _user(tenant.client, "ROLE_VIEWER")
    key, _ = await _key(tenant.client, "", viewer["name"], ["search", "chat", "analytics"])
    async with await _client_for(stack, key) as as_viewer:
        for method, path, body in (
            ("POST", "/api/v1/users", {"email": "a@b.c", "role": "ROLE_VIEWER"}),
            ("GET", "/api/v1/users", None),
            ("GET", "/api/v1/auditEvents", None),
            ("POST", "/api/v1/keys", {"scopes": ["search"]}),
            ("DELETE", f"/api/v1/{tenant.owner['name']}", None),
        ):
            reply = await as_viewer.request(method, path, json=body)
            assert reason_of(error_body(reply, 403)) == "SCOPE_DENIED", (method, path)
        # What the role does hold works.
        # Past the gateway and the scope check: the collection just does not exist.
        search = await as_viewer.post("/api/v1/search", json={"query": "x", "collection": "c"})
        assert reason_of(error_body(search, 404)) == "COLLECTION_NOT_FOUND"


async def test_an_admin_cannot_touch_owners(tenant, stack):
    admin = await _user(tenant.client, "ROLE_ADMIN")
    key, _ = await _key(tenant.client, "", admin["name"], ALL)
    async with await _client_for(stack, key) as as_admin:
        reply = await as_admin.post("/api/v1/users", json={"email": "o2@x.y", "role": "ROLE_OWNER"})
        assert reason_of(error_body(reply, 403)) == "ROLE_TOO_LOW"
        reply = await as_admin.delete(f"/api/v1/{tenant.owner['name']}")
        assert reason_of(error_body(reply, 403)) == "ROLE_TOO_LOW"
        member = await _user(as_admin, "ROLE_MEMBER")
        reply = await as_admin.patch(
            f"/api/v1/{member['name']}",
            params={"update_mask": "role"},
            json={"role": "ROLE_OWNER"},
        )
        assert reason_of(error_body(reply, 403)) == "ROLE_TOO_LOW"
        # The operator's own keys are not the tenant's to manage.
        dev = await as_admin.get("/api/v1/keys", params={"tenant": "dev-1"})
        assert reason_of(error_body(dev, 404)) == "TENANT_NOT_FOUND"


async def test_other_tenants_are_invisible(tenant, api, stack):
    other_owner = await _user(api, "ROLE_OWNER", (other := _tenant()))
    other_key, _ = await _key(api, other, other_owner["name"], ALL)
    member = await _user(tenant.client, "ROLE_MEMBER")
    _, member_key = await _key(tenant.client, "", member["name"], ["search"])
    async with await _client_for(stack, other_key) as stranger:
        for method, path, params, body in (
            ("GET", f"/api/v1/{member['name']}", None, None),
            ("DELETE", f"/api/v1/{member['name']}", None, None),
            ("PATCH", f"/api/v1/{member['name']}", None, {"role": "ROLE_VIEWER"}),
            ("GET", f"/api/v1/keys/{member_key['key_id']}", None, None),
            ("POST", f"/api/v1/keys/{member_key['key_id']}:revoke", None, {}),
            ("GET", "/api/v1/users", {"tenant": tenant.name}, None),
            ("GET", "/api/v1/keys", {"tenant": tenant.name}, None),
            ("GET", "/api/v1/auditEvents", {"tenant": tenant.name}, None),
            ("GET", "/api/v1/analytics/usage", {"tenant": tenant.name}, None),
            ("POST", "/api/v1/keys", None, {"tenant": tenant.name, "scopes": ["search"]}),
            (
                "POST",
                "/api/v1/users",
                None,
                {"tenant": tenant.name, "email": "a@b.c", "role": "ROLE_VIEWER"},
            ),
        ):
            reply = await stranger.request(method, path, params=params, json=body)
            assert reply.status_code == 404, (method, path, reply.text)
            assert reason_of(error_body(reply, 404)) in (
                "USER_NOT_FOUND",
                "KEY_NOT_FOUND",
                "TENANT_NOT_FOUND",
            )
        # Its own lists hold nothing of the first tenant.
        users = (await stranger.get("/api/v1/users")).json()["users"]
        assert [u["name"] for u in users] == [other_owner["name"]]
        keys = (await stranger.get("/api/v1/keys")).json()["api_keys"]
        assert {k["tenant"] for k in keys} == {other}
    # The key of the first tenant still works: nothing was revoked.
    assert (await tenant.client.get(f"/api/v1/keys/{member_key['key_id']}")).json()[
        "state"
    ] == "API_KEY_STATE_ACTIVE"


# -- deleting and demoting -------------------------------------------------------------------
async def test_deleting_a_user_revokes_their_keys_at_the_gateway(tenant, anon_api):
    member = await _user(tenant.client, "ROLE_MEMBER")
    key, record = await _key(tenant.client, "", member["name"], ["embeddings", "search"])
    assert (await anon_api.get(MODELS, headers=bearer(key))).status_code == 200
    deleted = await tenant.client.delete(f"/api/v1/{member['name']}")
    assert deleted.status_code == 200, deleted.text
    assert deleted.json()["state"] == "USER_STATE_DELETED" and deleted.json()["delete_time"]

    async def refused() -> bool:
        reply = await anon_api.get(MODELS, headers=bearer(key))
        return reply.status_code == 401 and reason_of(reply.json()) == "KEY_REVOKED"

    # Within the gateway key cache's second (plus the revocation broadcast).
    assert await wait_until(refused, timeout=10) < 10
    state = (await tenant.client.get(f"/api/v1/keys/{record['key_id']}")).json()["state"]
    assert state == "API_KEY_STATE_REVOKED"
    # A deleted user gets no new key, is not listed, and is gone for a second delete.
    reply = await tenant.client.post(
        "/api/v1/keys", json={"owner": member["name"], "scopes": ["search"]}
    )
    assert reason_of(error_body(reply, 404)) == "OWNER_NOT_FOUND"
    names = [u["name"] for u in (await tenant.client.get("/api/v1/users")).json()["users"]]
    assert member["name"] not in names
    shown = await tenant.client.get("/api/v1/users", params={"show_deleted": "true"})
    assert member["name"] in [u["name"] for u in shown.json()["users"]]
    again = await tenant.client.delete(f"/api/v1/{member['name']}")
    assert reason_of(error_body(again, 404)) == "USER_NOT_FOUND"
    # The address is free again.
    reuse = await tenant.client.post(
        "/api/v1/users", json={"email": member["email"], "role": "ROLE_VIEWER"}
    )
    assert reuse.status_code == 200, reuse.text


async def test_demoting_a_user_narrows_their_keys(tenant, anon_api):
    member = await _user(tenant.client, "ROLE_MEMBER")
    key, record = await _key(tenant.client, "", member["name"], ["search", "ingest"])
    _, ingest_record = await _key(tenant.client, "", member["name"], ["ingest"])
    assert (await anon_api.get("/api/v1/collections", headers=bearer(key))).status_code == 200
    reply = await tenant.client.patch(
        f"/api/v1/{member['name']}",
        params={"update_mask": "role"},
        json={"role": "ROLE_VIEWER"},
    )
    assert reply.status_code == 200, reply.text
    assert reply.json()["role"] == "ROLE_VIEWER"
    narrowed = (await tenant.client.get(f"/api/v1/keys/{record['key_id']}")).json()
    assert narrowed["scopes"] == ["search"] and narrowed["state"] == "API_KEY_STATE_ACTIVE"
    gone = (await tenant.client.get(f"/api/v1/keys/{ingest_record['key_id']}")).json()
    assert gone["state"] == "API_KEY_STATE_REVOKED"

    async def ingest_denied() -> bool:
        reply = await anon_api.get("/api/v1/collections", headers=bearer(key))
        return reply.status_code == 403

    await wait_until(ingest_denied, timeout=10)
    search = await anon_api.post(
        "/api/v1/search", headers=bearer(key), json={"query": "x", "collection": "c"}
    )
    assert reason_of(error_body(search, 404)) == "COLLECTION_NOT_FOUND"
    bad = await tenant.client.patch(
        f"/api/v1/{member['name']}", params={"update_mask": "email"}, json={"email": "n@x.y"}
    )
    assert reason_of(error_body(bad, 400)) == "INVALID_UPDATE_MASK"


async def test_no_key_outlives_its_deleted_owner_under_concurrency(tenant, anon_api):
    """Keys created while their owner is deleted: whichever wins, none stays active."""
    for _ in range(3):
        member = await _user(tenant.client, "ROLE_MEMBER")
        owner = member["name"]

        async def create(owner: str = owner) -> httpx.Response:
            return await tenant.client.post(
                "/api/v1/keys", json={"owner": owner, "scopes": ["embeddings"]}
            )

        async def delete(owner: str = owner) -> httpx.Response:
            await asyncio.sleep(0.02)
            return await tenant.client.delete(f"/api/v1/{owner}")

        replies = await asyncio.gather(*[create() for _ in range(8)], delete())
        assert replies[-1].status_code == 200, replies[-1].text
        for reply in replies[:-1]:
            assert reply.status_code in (200, 404, 409), reply.text
        listed = await tenant.client.get("/api/v1/keys", params={"owner": owner, "page_size": 200})
        states = {k["state"] for k in listed.json()["api_keys"]}
        assert states <= {"API_KEY_STATE_REVOKED"}, listed.text
        made = [r.json()["key"] for r in replies[:-1] if r.status_code == 200]

        async def all_refused(made: list[str] = made) -> bool:
            codes = [(await anon_api.get(MODELS, headers=bearer(k))).status_code for k in made]
            return all(c == 401 for c in codes)

        await wait_until(all_refused, timeout=10)


async def test_no_key_keeps_a_scope_its_demoted_owner_lost_under_concurrency(tenant):
    """Keys created while their owner is demoted: none keeps a scope the new role lacks."""
    for _ in range(3):
        member = await _user(tenant.client, "ROLE_MEMBER")
        owner = member["name"]

        async def create(owner: str = owner) -> httpx.Response:
            return await tenant.client.post(
                "/api/v1/keys", json={"owner": owner, "scopes": ["search", "ingest"]}
            )

        async def demote(owner: str = owner) -> httpx.Response:
            await asyncio.sleep(0.02)
            return await tenant.client.patch(
                f"/api/v1/{owner}", params={"update_mask": "role"}, json={"role": "ROLE_VIEWER"}
            )

        replies = await asyncio.gather(*[create() for _ in range(8)], demote())
        assert replies[-1].status_code == 200, replies[-1].text
        for reply in replies[:-1]:
            assert reply.status_code in (200, 403, 409), reply.text
        listed = await tenant.client.get("/api/v1/keys", params={"owner": owner, "page_size": 200})
        for key in listed.json()["api_keys"]:
            if key["state"] == "API_KEY_STATE_ACTIVE":
                assert "ingest" not in key["scopes"], key


# -- the audit log ---------------------------------------------------------------------------
async def test_every_admin_action_is_in_the_audit_log(tenant, stack):
    started = datetime.now(UTC) - timedelta(seconds=5)
    # A client-sent x-forwarded-for does not become the recorded address.
    tenant.client.headers["x-forwarded-for"] = "203.0.113.9"
    user = await _user(tenant.client, "ROLE_MEMBER")
    _, record = await _key(tenant.client, "", user["name"], ["search"])
    assert (
        await tenant.client.post(f"/api/v1/keys/{record['key_id']}:rotate", json={})
    ).status_code == 200
    assert (
        await tenant.client.post(f"/api/v1/keys/{record['key_id']}:revoke", json={})
    ).status_code == 200
    patch = await tenant.client.patch(
        f"/api/v1/{user['name']}", params={"update_mask": "role"}, json={"role": "ROLE_VIEWER"}
    )
    assert patch.status_code == 200, patch.text
    assert (await tenant.client.delete(f"/api/v1/{user['name']}")).status_code == 200
    events = await _events(tenant.client)
    actions = [e["action"] for e in events]
    # Newest first.
    assert actions[:6] == [
        "user.delete",
        "user.update",
        "api_key.revoke",
        "api_key.rotate",
        "api_key.create",
        "user.create",
    ], actions
    key_id = record["key_id"]
    by_action = {e["action"]: e for e in events[:6]}
    assert by_action["api_key.create"]["target"] == f"apiKeys/{key_id}"
    assert by_action["api_key.create"]["details"]["owner"] == user["name"]
    assert by_action["user.update"]["details"]["role"] == "ROLE_VIEWER"
    assert by_action["user.update"]["details"]["previous_role"] == "ROLE_MEMBER"
    for event in events[:6]:
        assert event["actor"] == tenant.owner["name"], event
        assert event["tenant"] == tenant.name
        # The address the gateway saw (its last x-forwarded-for entry), never the client's say.
        assert ipaddress.ip_address(event["source_ip"]), event
        assert event["source_ip"] != "203.0.113.9", event
        assert event["user_agent"].startswith("python-httpx"), event
        assert event["request_id"] and event["name"].startswith("auditEvents/")
        assert datetime.fromisoformat(event["create_time"].replace("Z", "+00:00")) >= started
    # Filters: by action, by actor, by time; and pages.
    deletes = await _events(tenant.client, 'action = "user.delete"')
    assert [e["target"] for e in deletes] == [user["name"]]
    since = (datetime.now(UTC) + timedelta(minutes=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert await _events(tenant.client, f'create_time >= "{since}"') == []
    mine = await _events(tenant.client, f'actor = "{tenant.owner["name"]}"')
    assert mine == [e for e in events if e["actor"] == tenant.owner["name"]]
    # The fixture's own steps were the operator's (it made the owner and the owner's key).
    assert {e["actor"] for e in events} == {tenant.owner["name"], "serviceAccounts/operator"}
    first = await tenant.client.get("/api/v1/auditEvents", params={"page_size": 2})
    second = await tenant.client.get(
        "/api/v1/auditEvents",
        params={"page_size": 2, "page_token": first.json()["next_page_token"]},
    )
    assert [e["name"] for e in first.json()["audit_events"] + second.json()["audit_events"]] == [
        e["name"] for e in events[:4]
    ]
    bad = await tenant.client.get(
        "/api/v1/auditEvents", params={"filter": "create_time >= yesterday"}
    )
    assert reason_of(error_body(bad, 400)) == "INVALID_FILTER"


async def test_the_operator_sees_every_tenant_and_its_keys_keep_working(api, tenant):
    """The development keys are the operator's (back-compat): every scope, every tenant."""
    await _user(tenant.client, "ROLE_VIEWER")
    events = (await api.get("/api/v1/auditEvents", params={"tenant": tenant.name})).json()
    assert events["audit_events"][0]["action"] == "user.create"
    everyone = (await api.get("/api/v1/auditEvents", params={"page_size": 200})).json()
    assert {e["tenant"] for e in everyone["audit_events"]} >= {tenant.name}
    dev = (await api.get("/api/v1/keys", params={"tenant": "dev-1"})).json()["api_keys"]
    assert dev and all(
        k["owner"] == "serviceAccounts/operator" for k in dev if k["key_id"].startswith("dev_")
    )
    # A key created the old way (no owner) is still the operator's.
    reply = await api.post("/api/v1/keys", json={"tenant": _tenant(), "scopes": ["search"]})
    assert reply.json()["api_key"]["owner"] == "serviceAccounts/operator"
