"""API keys, scopes and tenants at the gateway, over REST and native gRPC."""

from __future__ import annotations

import secrets
import time

import grpc
import httpx
import pytest

from ragline.analytics.v1 import analytics_service_pb2 as an_pb
from ragline.analytics.v1 import analytics_service_pb2_grpc as an_grpc
from ragline.embedder.v1 import embedder_service_pb2 as emb_pb
from ragline.embedder.v1 import embedder_service_pb2_grpc as emb_grpc
from tests.support.assertions import error_body, reason_of
from tests.support.auth import DEV_TENANT, bearer_interceptors
from tests.support.gateway import bearer, cors_preflight, create_key, wait_until

pytestmark = pytest.mark.e2e

MODELS = "/api/v1/embedding-models"


def _tenant() -> str:
    return f"t-{secrets.token_hex(4)}"


# -- public and unauthenticated ----------------------------------------------------------
async def test_health_and_documents_need_no_key(anon_api):
    assert (await anon_api.get("/health")).status_code == 200
    doc = await anon_api.get("/openapi.json")
    assert doc.status_code == 200 and doc.json()["openapi"] == "3.1.0"
    page = await anon_api.get("/docs")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "/api/v1/embeddings" in page.text and "<script src" not in page.text
    jwks = await anon_api.get("/.well-known/jwks.json")
    assert jwks.status_code == 200 and jwks.json()["keys"][0]["alg"] == "RS256"


@pytest.mark.parametrize(
    ("headers", "reason"),
    [
        ({}, "MISSING_CREDENTIALS"),
        ({"authorization": "dev-key-1"}, "MALFORMED_CREDENTIALS"),
        ({"authorization": "Basic ZGV2LWtleS0xOng="}, "MALFORMED_CREDENTIALS"),
        ({"authorization": "Bearer"}, "MALFORMED_CREDENTIALS"),
        ({"authorization": "Bearer rl_live_doesnotexist000000000000000000000"}, "INVALID_API_KEY"),
        ({"authorization": "Bearer dev-key-1 extra"}, "MALFORMED_CREDENTIALS"),
    ],
)
async def test_missing_malformed_unknown_keys_are_401(anon_api, headers, reason):
    reply = await anon_api.get(MODELS, headers=headers)
    body = error_body(reply, 401)
    assert reason_of(body) == reason and body["code"] == 16
    assert reply.headers["www-authenticate"].startswith("Bearer")


@pytest.mark.parametrize(
    "path",
    [
        "//api/v1/embedding-models",
        "/api/v1//embedding-models",
        "/api/v1/./embedding-models",
        "/api/v1/x/../embedding-models",
        "/api/v1%2Fembedding-models",
        "/api/v1/embedding%2Dmodels",
        "/ragline.embedder.v1.EmbedderService/ListEmbeddingModels",
        "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
        "/no/such/path",
    ],
)
async def test_no_path_or_encoding_skips_authentication(anon_api, path):
    reply = await anon_api.get(path)
    assert reply.status_code in (400, 401), (path, reply.status_code, reply.text)
    if reply.status_code == 401:
        error_body(reply, 401)
    else:  # escaped slashes: rejected by Envoy before routing (empty message)
        assert reply.json()["code"] == 3 and reason_of(reply.json()) == "INVALID_ARGUMENT"


async def test_unknown_path_with_a_key_is_404(api):
    reply = await api.get("/api/v1/no-such-thing")
    assert reason_of(error_body(reply, 404)) == "NOT_FOUND"


async def test_native_grpc_needs_a_key(anon_channel):
    stub = emb_grpc.EmbedderServiceStub(anon_channel)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.ListEmbeddingModels(emb_pb.ListEmbeddingModelsRequest(), timeout=10)
    assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.ListEmbeddingModels(
            emb_pb.ListEmbeddingModelsRequest(),
            timeout=10,
            metadata=(("authorization", "Bearer wrong-key"),),
        )
    assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED
    assert "invalid API key" in (caught.value.details() or "")


async def test_grpc_reflection_needs_a_key(anon_channel):
    from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

    stub = reflection_pb2_grpc.ServerReflectionStub(anon_channel)
    call = stub.ServerReflectionInfo(
        iter([reflection_pb2.ServerReflectionRequest(list_services="")]), timeout=10
    )
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        async for _ in call:
            pass
    assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED


# -- scopes ----------------------------------------------------------------------------
ENDPOINTS = {
    "embeddings": ("GET", MODELS, None),
    "search": ("POST", "/api/v1/search", {"query": "x", "collection": "scope-test"}),
    "chat": ("POST", "/api/v1/chat", {"message": ""}),
    "ingest": ("GET", "/api/v1/collections", None),
    "analytics": ("GET", "/api/v1/analytics/usage", None),
    "admin": ("GET", "/api/v1/keys", None),
}


@pytest.fixture(scope="module")
def scoped_keys():
    return {}


async def _key_for(api, scoped_keys, scope):
    if scope not in scoped_keys:
        scoped_keys[scope], _ = await create_key(api, f"scope-{scope}", [scope])
    return scoped_keys[scope]


@pytest.mark.parametrize("scope", list(ENDPOINTS))
@pytest.mark.parametrize("endpoint", list(ENDPOINTS))
async def test_each_scope_opens_only_its_endpoints(api, anon_api, scoped_keys, scope, endpoint):
    key = await _key_for(api, scoped_keys, scope)
    method, path, body = ENDPOINTS[endpoint]
    reply = await anon_api.request(method, path, json=body, headers=bearer(key))
    if scope == endpoint:
        assert reply.status_code not in (401, 403), reply.text
    else:
        body_json = error_body(reply, 403)
        assert reason_of(body_json) == "SCOPE_DENIED" and endpoint in body_json["message"]


async def test_grpc_scopes(api, stack, scoped_keys):
    search_key = await _key_for(api, scoped_keys, "search")
    emb_key = await _key_for(api, scoped_keys, "embeddings")
    addr = f"127.0.0.1:{stack.cfg.api_port}"
    async with grpc.aio.insecure_channel(addr, interceptors=bearer_interceptors(search_key)) as ch:
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await emb_grpc.EmbedderServiceStub(ch).ListEmbeddingModels(
                emb_pb.ListEmbeddingModelsRequest(), timeout=10
            )
        assert caught.value.code() == grpc.StatusCode.PERMISSION_DENIED
    async with grpc.aio.insecure_channel(addr, interceptors=bearer_interceptors(emb_key)) as ch:
        reply = await emb_grpc.EmbedderServiceStub(ch).ListEmbeddingModels(
            emb_pb.ListEmbeddingModelsRequest(), timeout=10
        )
        assert reply.models


# -- key management: bad input ------------------------------------------------------------
@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        ({"tenant": "a", "scopes": ["embeddings", "bogus"]}, "INVALID_SCOPE"),
        ({"tenant": "a", "scopes": []}, "INVALID_SCOPE"),
        ({"tenant": "bad tenant!", "scopes": ["search"]}, "INVALID_TENANT"),
        ({"tenant": "a", "scopes": ["search"], "tier": "platinum"}, "INVALID_TIER"),
        ({"tenant": "a", "scopes": ["search"], "ttl_seconds": -5}, "INVALID_ARGUMENT"),
    ],
)
async def test_create_key_bad_input_is_400(api, payload, reason):
    reply = await api.post("/api/v1/keys", json=payload)
    assert reason_of(error_body(reply, 400)) == reason


async def test_revoke_or_rotate_unknown_key_is_404(api):
    for action in ("revoke", "rotate"):
        reply = await api.post(f"/api/v1/keys/key_{secrets.token_hex(8)}:{action}", json={})
        assert reason_of(error_body(reply, 404)) == "KEY_NOT_FOUND"


async def test_created_key_is_shown_once_and_listed_without_secret(api, anon_api):
    tenant = _tenant()
    key, record = await create_key(api, tenant, ["embeddings"], name="ci", environment=2)
    assert key.startswith("rl_test_") and len(key) > 40
    assert (
        record["prefix"] == key[: len(record["prefix"])]
        and record["state"] == "API_KEY_STATE_ACTIVE"
    )
    listed = (await api.get("/api/v1/keys", params={"tenant": tenant})).json()
    assert [k["key_id"] for k in listed["api_keys"]] == [record["key_id"]]
    assert key not in str(listed) and "digest" not in str(listed)
    got = (await api.get(f"/api/v1/keys/{record['key_id']}")).json()
    assert got["tenant"] == tenant and key not in str(got)
    # The key works, and its use is recorded.
    assert (await anon_api.get(MODELS, headers=bearer(key))).status_code == 200


async def test_list_keys_paginates(api):
    tenant = _tenant()
    ids = {(await create_key(api, tenant, ["search"]))[1]["key_id"] for _ in range(3)}
    seen: list[str] = []
    token = ""
    for _ in range(5):
        page = (
            await api.get(
                "/api/v1/keys", params={"tenant": tenant, "page_size": 2, "page_token": token}
            )
        ).json()
        seen += [k["key_id"] for k in page["api_keys"]]
        token = page["next_page_token"]
        if not token:
            break
    assert sorted(seen) == sorted(ids)
    bad = await api.get("/api/v1/keys", params={"page_token": "garbage!"})
    assert reason_of(error_body(bad, 400)) == "INVALID_PAGE_TOKEN"


# -- revocation, rotation, expiry -----------------------------------------------------------
async def test_revoked_key_is_rejected_within_three_seconds(api, anon_api, stack):
    key, record = await create_key(api, _tenant(), ["embeddings"])
    assert (await anon_api.get(MODELS, headers=bearer(key))).status_code == 200
    revoked = await api.post(f"/api/v1/keys/{record['key_id']}:revoke", json={})
    assert (
        revoked.status_code == 200 and revoked.json()["api_key"]["state"] == "API_KEY_STATE_REVOKED"
    )
    started = time.monotonic()

    async def rejected() -> bool:
        reply = await anon_api.get(MODELS, headers=bearer(key))
        return reply.status_code == 401

    await wait_until(rejected, timeout=3.0, interval=0.05)
    assert time.monotonic() - started < 3.0
    reply = await anon_api.get(MODELS, headers=bearer(key))
    assert reason_of(error_body(reply, 401)) == "KEY_REVOKED"
    async with grpc.aio.insecure_channel(
        f"127.0.0.1:{stack.cfg.api_port}", interceptors=bearer_interceptors(key)
    ) as channel:
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await emb_grpc.EmbedderServiceStub(channel).ListEmbeddingModels(
                emb_pb.ListEmbeddingModelsRequest(), timeout=10
            )
        assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED


async def test_rotation_keeps_the_old_key_for_the_grace_period(api, anon_api):
    old_key, record = await create_key(api, _tenant(), ["embeddings"])
    reply = await api.post(
        f"/api/v1/keys/{record['key_id']}:rotate", json={"grace_period_seconds": 3}
    )
    assert reply.status_code == 200, reply.text
    new_key = reply.json()["key"]
    assert reply.json()["previous"]["replaced_by"] == reply.json()["api_key"]["key_id"]
    assert new_key != old_key
    for key in (old_key, new_key):
        assert (await anon_api.get(MODELS, headers=bearer(key))).status_code == 200

    async def old_expired() -> bool:
        return (await anon_api.get(MODELS, headers=bearer(old_key))).status_code == 401

    took = await wait_until(old_expired, timeout=8.0, interval=0.25)
    assert took >= 1.5  # not before the grace period
    reply = await anon_api.get(MODELS, headers=bearer(old_key))
    body = error_body(reply, 401)
    assert reason_of(body) == "KEY_EXPIRED" and "expired" in body["message"]
    assert (await anon_api.get(MODELS, headers=bearer(new_key))).status_code == 200


async def test_expired_key_is_401_saying_expired(api, anon_api):
    key, _ = await create_key(api, _tenant(), ["embeddings"], ttl_seconds=1)
    assert (await anon_api.get(MODELS, headers=bearer(key))).status_code == 200

    async def expired() -> bool:
        return (await anon_api.get(MODELS, headers=bearer(key))).status_code == 401

    await wait_until(expired, timeout=6.0, interval=0.25)
    body = error_body(await anon_api.get(MODELS, headers=bearer(key)), 401)
    assert reason_of(body) == "KEY_EXPIRED"


# -- identity headers -----------------------------------------------------------------------
FORGED = {
    "x-ragline-tenant": "victim",
    "x-ragline-key-id": "key_victim",
    "x-ragline-scopes": "embeddings,search,chat,ingest,analytics,admin",
    "x-ragline-tier": "enterprise",
    "x-ragline-auth": "api_key",
}


async def test_forged_identity_headers_are_ignored(api, anon_api):
    tenant = _tenant()
    key, _ = await create_key(api, tenant, ["analytics"])
    # The tenant the services see is the key's, not the forged one.
    usage = await anon_api.get("/api/v1/analytics/usage", headers={**FORGED, **bearer(key)})
    assert usage.status_code == 200 and usage.json()["tenant"] == tenant
    # Forged scopes do not open the admin API.
    keys = await anon_api.get("/api/v1/keys", headers={**FORGED, **bearer(key)})
    assert reason_of(error_body(keys, 403)) == "SCOPE_DENIED"
    # Forged headers alone are no credential.
    error_body(await anon_api.get(MODELS, headers=FORGED), 401)


async def test_forged_identity_metadata_is_ignored_over_grpc(api, stack):
    tenant = _tenant()
    key, _ = await create_key(api, tenant, ["analytics"])
    async with grpc.aio.insecure_channel(
        f"127.0.0.1:{stack.cfg.api_port}", interceptors=bearer_interceptors(key)
    ) as channel:
        reply = await an_grpc.AnalyticsServiceStub(channel).GetUsage(
            an_pb.GetUsageRequest(), timeout=10, metadata=tuple(FORGED.items())
        )
        assert reply.tenant == tenant


async def test_dev_key_belongs_to_its_dev_tenant(api):
    usage = await api.get("/api/v1/analytics/usage")
    assert usage.status_code == 200 and usage.json()["tenant"] == DEV_TENANT


# -- CORS ------------------------------------------------------------------------------------
async def test_cors_preflight_is_answered_at_the_edge(anon_api):
    reply = await cors_preflight(anon_api, "/api/v1/embeddings")
    assert reply.status_code == 200
    assert reply.headers["access-control-allow-origin"] == "http://localhost:3000"
    assert "POST" in reply.headers["access-control-allow-methods"]
    assert "authorization" in reply.headers["access-control-allow-headers"]
    assert "x-ratelimit-remaining" in reply.headers["access-control-expose-headers"]


async def test_cors_rejects_other_origins(api):
    reply = await api.get(MODELS, headers={"origin": "https://evil.example"})
    assert reply.status_code == 200
    assert "access-control-allow-origin" not in reply.headers
    ok = await api.get(MODELS, headers={"origin": "http://localhost:3000"})
    assert ok.headers["access-control-allow-origin"] == "http://localhost:3000"


# -- nothing leaks ------------------------------------------------------------------------------
async def test_services_never_see_the_credential(api, stack):
    # The auth service removes Authorization before the request goes upstream; the
    # services' logs (which log metadata-free lines anyway) never hold a key.
    key, _ = await create_key(api, _tenant(), ["embeddings"])
    async with httpx.AsyncClient(base_url=stack.cfg.base_url, timeout=30) as client:
        reply = await client.post(
            "/api/v1/embeddings", json={"text": "no key leaks"}, headers=bearer(key)
        )
        assert reply.status_code == 200
    for name in stack.components():
        path = stack.log_path(name)
        if path.exists():
            assert key not in path.read_text(errors="replace"), name
