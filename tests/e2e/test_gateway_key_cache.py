"""The gateway's API-key cache (envoy/key_cache.lua): a key's check is reused for up to
GATEWAY_KEY_CACHE_TTL (1 s by default) per Envoy worker, and a reused answer still keeps
the key's tenant and scopes. Revocation, rotation and expiry through the cache are in
test_gateway_auth.py."""

from __future__ import annotations

import math
import secrets
import time

import grpc
import httpx
import pytest

from ragline.auth.v1 import auth_service_pb2 as auth_pb
from ragline.auth.v1 import auth_service_pb2_grpc as auth_grpc
from ragline.embedder.v1 import embedder_service_pb2 as emb_pb
from ragline.embedder.v1 import embedder_service_pb2_grpc as emb_grpc
from ragline_stack.stack import Stack
from tests.support.assertions import error_body, reason_of
from tests.support.auth import bearer_interceptors
from tests.support.gateway import bearer, create_key

pytestmark = pytest.mark.e2e

MODELS = "/api/v1/embedding-models"
USAGE = "/api/v1/analytics/usage"
TTL_S = 1.0  # GATEWAY_KEY_CACHE_TTL's default, which the test stack keeps


def _tenant() -> str:
    return f"t-{secrets.token_hex(4)}"


async def _auth_checks(stack: Stack) -> int:
    """Checks ext_authz has sent to the auth service so far (Envoy's own counters)."""
    async with httpx.AsyncClient(timeout=10) as admin:
        reply = await admin.get(
            f"http://127.0.0.1:{stack.cfg.admin_port}/stats",
            params={"filter": r"^http\.api\.ext_authz\.(ok|denied|error)$", "format": "json"},
        )
    stats = reply.json()["stats"]
    assert {s["name"] for s in stats} >= {"http.api.ext_authz.ok"}, stats
    return sum(int(s["value"]) for s in stats)


async def test_a_key_is_checked_once_per_ttl_not_per_request(anon_api, api, stack):
    key, _ = await create_key(api, _tenant(), ["embeddings"])
    # One connection is served by one Envoy worker, which has one cache.
    assert (await anon_api.get(MODELS, headers=bearer(key))).status_code == 200
    before = await _auth_checks(stack)
    started = time.monotonic()
    for _ in range(30):
        assert (await anon_api.get(MODELS, headers=bearer(key))).status_code == 200
    took = time.monotonic() - started
    checks = await _auth_checks(stack) - before
    # At most one check per TTL that passed (the first answer may just have expired).
    assert checks <= math.ceil(took / TTL_S), (checks, took)


async def test_a_cached_key_still_needs_each_routes_scope(anon_api, api):
    key, _ = await create_key(api, _tenant(), ["embeddings"])
    for _ in range(3):
        assert (await anon_api.get(MODELS, headers=bearer(key))).status_code == 200
    search = await anon_api.post(
        "/api/v1/search", json={"collection": "docs", "query": "x"}, headers=bearer(key)
    )
    assert reason_of(error_body(search, 403)) == "SCOPE_DENIED"
    keys = await anon_api.get("/api/v1/keys", headers=bearer(key))
    assert reason_of(error_body(keys, 403)) == "SCOPE_DENIED"
    # ... and the denial did not evict or spoil the cached answer.
    assert (await anon_api.get(MODELS, headers=bearer(key))).status_code == 200


async def test_cached_keys_keep_their_own_tenant_and_ignore_forged_headers(anon_api, api):
    tenants = [_tenant(), _tenant()]
    keys = [(await create_key(api, t, ["analytics"]))[0] for t in tenants]
    forged = {"x-ragline-tenant": "victim", "x-ragline-scopes": "admin", "x-ragline-auth": "jwt"}
    for _ in range(3):
        for key, tenant in zip(keys, tenants, strict=True):
            reply = await anon_api.get(USAGE, headers={**bearer(key), **forged})
            assert reply.status_code == 200 and reply.json()["tenant"] == tenant
            other = await anon_api.get(
                USAGE, params={"tenant": "victim"}, headers={**bearer(key), **forged}
            )
            assert reason_of(error_body(other, 404)) == "TENANT_NOT_FOUND"


async def test_a_cached_key_works_over_native_grpc(api, stack):
    key, _ = await create_key(api, _tenant(), ["embeddings"])
    async with grpc.aio.insecure_channel(
        f"127.0.0.1:{stack.cfg.api_port}", interceptors=bearer_interceptors(key)
    ) as channel:
        stub = emb_grpc.EmbedderServiceStub(channel)
        for _ in range(5):
            reply = await stub.ListEmbeddingModels(emb_pb.ListEmbeddingModelsRequest(), timeout=10)
            assert reply.models
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await auth_grpc.AuthServiceStub(channel).ListApiKeys(
                auth_pb.ListApiKeysRequest(), timeout=10
            )
        assert caught.value.code() == grpc.StatusCode.PERMISSION_DENIED


async def test_admin_routes_are_never_answered_from_the_cache(anon_api, api):
    admin_key, record = await create_key(api, _tenant(), ["admin", "embeddings"])
    for _ in range(3):
        assert (await anon_api.get("/api/v1/keys", headers=bearer(admin_key))).status_code == 200
        assert (await anon_api.get(MODELS, headers=bearer(admin_key))).status_code == 200
    await api.post(f"/api/v1/keys/{record['key_id']}:revoke", json={})
    # A revoked admin key cannot manage keys even within the cache's second.
    reply = await anon_api.get("/api/v1/keys", headers=bearer(admin_key))
    assert reason_of(error_body(reply, 401)) == "KEY_REVOKED"


async def test_two_authorization_headers_are_never_answered_from_the_cache(anon_api, api):
    key, _ = await create_key(api, _tenant(), ["embeddings"])
    assert (await anon_api.get(MODELS, headers=bearer(key))).status_code == 200
    # Envoy joins repeated headers ("Bearer k,Bearer other"): never a cached key, and the
    # auth service refuses the joined value.
    doubled = [("authorization", f"Bearer {key}"), ("authorization", "Bearer other")]
    reply = await anon_api.get(MODELS, headers=doubled)
    assert reply.status_code == 401, reply.text
