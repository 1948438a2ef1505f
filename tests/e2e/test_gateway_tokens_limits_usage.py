"""JWTs, rate limits, usage analytics and tenant isolation through the real Envoy."""

from __future__ import annotations

import asyncio
import secrets

import grpc
import jwt
import pytest
import redis
from cryptography.hazmat.primitives.asymmetric import rsa

from ragline.auth.v1 import auth_service_pb2 as auth_pb
from ragline.auth.v1 import auth_service_pb2_grpc as auth_grpc
from ragline.embedder.v1 import embedder_service_pb2 as emb_pb
from ragline.embedder.v1 import embedder_service_pb2_grpc as emb_grpc
from tests.support.assertions import error_body, reason_of
from tests.support.auth import bearer_interceptors
from tests.support.gateway import bearer, create_key, wait_until

pytestmark = pytest.mark.e2e

MODELS = "/api/v1/embedding-models"
# Tries of the tenant-isolation test's ingest when it answers a transient 503.
INGEST_ATTEMPTS = 3


def _tenant() -> str:
    return f"t-{secrets.token_hex(4)}"


async def _token(anon_api, key: str, **body) -> dict:
    reply = await anon_api.post("/api/v1/tokens", json=body, headers=bearer(key))
    assert reply.status_code == 200, reply.text
    return reply.json()


# -- JWT -------------------------------------------------------------------------------------
async def test_jwt_is_accepted_with_the_keys_identity(api, anon_api, stack):
    tenant = _tenant()
    key, record = await create_key(api, tenant, ["embeddings", "analytics"])
    token = await _token(anon_api, key)
    assert token["token_type"] == "Bearer" and token["expires_in"] == 900
    assert token["scope"] == "embeddings analytics"
    claims = jwt.decode(token["access_token"], options={"verify_signature": False})
    assert claims["tenant"] == tenant and claims["sub"] == record["key_id"]
    assert (await anon_api.get(MODELS, headers=bearer(token["access_token"]))).status_code == 200
    # The identity headers come from the claims (forged ones are stripped).
    usage = await anon_api.get(
        "/api/v1/analytics/usage",
        headers={**bearer(token["access_token"]), "x-ragline-tenant": "victim"},
    )
    assert usage.status_code == 200 and usage.json()["tenant"] == tenant
    async with grpc.aio.insecure_channel(
        f"127.0.0.1:{stack.cfg.api_port}", interceptors=bearer_interceptors(token["access_token"])
    ) as channel:
        reply = await emb_grpc.EmbedderServiceStub(channel).ListEmbeddingModels(
            emb_pb.ListEmbeddingModelsRequest(), timeout=10
        )
        assert reply.models


async def test_caller_describes_the_credential_of_the_request(api, anon_api, stack):
    """GET /api/v1/caller needs any valid credential and tells what it is (the dashboard
    learns an SSO token's scopes from it): with the key, with its token, over gRPC."""
    tenant = _tenant()
    key, record = await create_key(api, tenant, ["search", "analytics"], tier="free")
    by_key = await anon_api.get("/api/v1/caller", headers=bearer(key))
    assert by_key.status_code == 200, by_key.text
    assert by_key.json() == {
        "tenant": tenant,
        "subject": record["key_id"],
        "scopes": ["search", "analytics"],
        "tier": "free",
        "credential_type": "api_key",
    }
    token = (await _token(anon_api, key))["access_token"]
    by_token = (await anon_api.get("/api/v1/caller", headers=bearer(token))).json()
    assert by_token == {**by_key.json(), "credential_type": "jwt"}
    # Forged identity headers change nothing.
    forged = await anon_api.get(
        "/api/v1/caller", headers={**bearer(key), "x-ragline-tenant": "victim"}
    )
    assert forged.json()["tenant"] == tenant
    async with grpc.aio.insecure_channel(
        f"127.0.0.1:{stack.cfg.api_port}", interceptors=bearer_interceptors(token)
    ) as channel:
        reply = await auth_grpc.AuthServiceStub(channel).GetCaller(
            auth_pb.GetCallerRequest(), timeout=10
        )
    assert (reply.tenant, list(reply.scopes), reply.credential_type) == (
        tenant,
        ["search", "analytics"],
        "jwt",
    )
    for headers in ({}, bearer("rl_live_not-a-key"), bearer(token[:-4] + "AAAA")):
        refused = await anon_api.get("/api/v1/caller", headers=headers)
        assert refused.status_code == 401, (headers, refused.text)
    revoked = await api.post(f"/api/v1/keys/{record['key_id']}:revoke", json={})
    assert revoked.status_code == 200

    async def refused_now() -> bool:
        return (await anon_api.get("/api/v1/caller", headers=bearer(key))).status_code == 401

    await wait_until(refused_now, timeout=10)


async def test_jwt_scopes_are_enforced_at_the_edge(api, anon_api, stack):
    key, _ = await create_key(api, _tenant(), ["search"])
    token = (await _token(anon_api, key))["access_token"]
    reply = await anon_api.get(MODELS, headers=bearer(token))
    assert reason_of(error_body(reply, 403)) == "SCOPE_DENIED"
    # A token cannot mint tokens.
    reply = await anon_api.post("/api/v1/tokens", json={}, headers=bearer(token))
    error_body(reply, 403)
    async with grpc.aio.insecure_channel(
        f"127.0.0.1:{stack.cfg.api_port}", interceptors=bearer_interceptors(token)
    ) as channel:
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await emb_grpc.EmbedderServiceStub(channel).ListEmbeddingModels(
                emb_pb.ListEmbeddingModelsRequest(), timeout=10
            )
        assert caught.value.code() == grpc.StatusCode.PERMISSION_DENIED


async def test_expired_jwt_is_401_saying_expired(api, anon_api):
    key, _ = await create_key(api, _tenant(), ["embeddings"])
    token = (await _token(anon_api, key, ttl_seconds=1))["access_token"]
    await asyncio.sleep(3.2)  # 1 s lifetime + 1 s clock skew allowed at the edge
    body = error_body(await anon_api.get(MODELS, headers=bearer(token)), 401)
    assert reason_of(body) == "TOKEN_EXPIRED" and "expired" in body["message"]


async def test_forged_jwts_are_rejected(api, anon_api):
    key, _ = await create_key(api, _tenant(), ["embeddings"])
    real = (await _token(anon_api, key))["access_token"]
    header = jwt.get_unverified_header(real)
    claims = jwt.decode(real, options={"verify_signature": False})
    claims["tenant"] = "victim"
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    forged = [
        # Signed by another key under the real key id.
        jwt.encode(claims, other, algorithm="RS256", headers={"kid": header["kid"]}),
        # Unsigned.
        jwt.encode(claims, None, algorithm="none"),
        # Symmetric, "signed" with the public key's text.
        jwt.encode(claims, "secret", algorithm="HS256", headers={"kid": header["kid"]}),
        # The real token with a changed payload.
        real.split(".")[0]
        + "."
        + jwt.encode(claims, "x", algorithm="HS256").split(".")[1]
        + "."
        + real.split(".")[2],
    ]
    for token in forged:
        body = error_body(await anon_api.get(MODELS, headers=bearer(token)), 401)
        assert reason_of(body) == "INVALID_TOKEN", token


async def test_a_jwt_in_the_query_string_is_not_accepted(api, anon_api):
    key, _ = await create_key(api, _tenant(), ["embeddings"])
    token = (await _token(anon_api, key))["access_token"]
    assert (await anon_api.get(MODELS, headers=bearer(token))).status_code == 200
    # URLs end up in access logs and browser histories: a token there is refused.
    reply = await anon_api.get(MODELS, params={"access_token": token})
    assert reason_of(error_body(reply, 401)) == "MISSING_CREDENTIALS"


async def test_token_for_revoked_key_cannot_be_created(api, anon_api):
    key, record = await create_key(api, _tenant(), ["embeddings"])
    # Used (so the gateway's key cache holds it), then revoked: minting a token is never
    # answered from that cache, so it is refused at once, not a second later.
    assert (await anon_api.get(MODELS, headers=bearer(key))).status_code == 200
    await api.post(f"/api/v1/keys/{record['key_id']}:revoke", json={})
    reply = await anon_api.post("/api/v1/tokens", json={}, headers=bearer(key))
    assert reason_of(error_body(reply, 401)) == "KEY_REVOKED"


async def test_a_token_never_outlives_its_key(api, anon_api):
    key, _ = await create_key(api, _tenant(), ["embeddings"], ttl_seconds=60)
    token = await _token(anon_api, key)
    assert 50 <= token["expires_in"] <= 60
    claims = jwt.decode(token["access_token"], options={"verify_signature": False})
    assert claims["exp"] - claims["iat"] == token["expires_in"]


# -- rate limits -------------------------------------------------------------------------------
async def test_global_limit_429_with_headers_and_other_tenant_unaffected(api, anon_api, stack):
    limited, _ = await create_key(api, _tenant(), ["embeddings"], tier="free")
    other, _ = await create_key(api, _tenant(), ["embeddings"], tier="free")
    # Free tier: 10 tokens a minute per key. A minute boundary may reset the window once.
    statuses = []
    reply = None
    for _ in range(25):
        reply = await anon_api.post("/api/v1/tokens", json={}, headers=bearer(limited))
        statuses.append(reply.status_code)
        if reply.status_code == 429:
            break
    assert reply is not None and statuses[-1] == 429, statuses
    assert statuses.index(429) >= 10, statuses
    body = error_body(reply, 429)
    assert body["code"] == 8 and reason_of(body) == "RATE_LIMITED"
    assert int(reply.headers["retry-after"]) >= 0
    assert reply.headers["x-ratelimit-limit"].startswith("10")
    assert reply.headers["x-ratelimit-remaining"] == "0"
    assert int(reply.headers["x-ratelimit-reset"]) <= 60
    # Another tenant's key, same tier and endpoint: unaffected.
    assert (
        await anon_api.post("/api/v1/tokens", json={}, headers=bearer(other))
    ).status_code == 200
    # Other endpoint groups of the limited key are unaffected too.
    assert (await anon_api.get(MODELS, headers=bearer(limited))).status_code == 200
    # Native gRPC: RESOURCE_EXHAUSTED.
    async with grpc.aio.insecure_channel(
        f"127.0.0.1:{stack.cfg.api_port}", interceptors=bearer_interceptors(limited)
    ) as channel:
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await auth_grpc.AuthServiceStub(channel).CreateToken(
                auth_pb.CreateTokenRequest(), timeout=10
            )
        assert caught.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED


async def test_successful_responses_carry_rate_limit_headers(api):
    reply = await api.get(MODELS)
    assert reply.status_code == 200
    assert int(reply.headers["x-ratelimit-remaining"]) >= 0
    assert reply.headers["x-ratelimit-limit"]


# -- usage -------------------------------------------------------------------------------------
async def _usage(anon_api, key, **params):
    reply = await anon_api.get("/api/v1/analytics/usage", params=params, headers=bearer(key))
    assert reply.status_code == 200, reply.text
    return reply.json()


async def test_usage_counts_every_request_exactly(api, anon_api, stack):
    tenant = _tenant()
    key, _ = await create_key(api, tenant, ["embeddings", "analytics"])
    ok, bad, texts = 6, 3, ["usage exact one", "usage exact two"]
    for i in range(ok):
        reply = await anon_api.post(
            "/api/v1/embeddings", json={"texts": texts[: 1 + i % 2]}, headers=bearer(key)
        )
        assert reply.status_code == 200
    for _ in range(bad):
        reply = await anon_api.post("/api/v1/embeddings", json={"text": ""}, headers=bearer(key))
        assert reply.status_code == 400
    async with grpc.aio.insecure_channel(
        f"127.0.0.1:{stack.cfg.api_port}", interceptors=bearer_interceptors(key)
    ) as channel:
        await emb_grpc.EmbedderServiceStub(channel).ListEmbeddingModels(
            emb_pb.ListEmbeddingModelsRequest(), timeout=10
        )
    expected = ok + bad + 1

    async def counted() -> bool:
        total = (await _usage(anon_api, key))["total"]
        # The usage calls themselves are counted too (analytics endpoint).
        by = {e["endpoint"]: e for e in (await _usage(anon_api, key))["endpoints"]}
        emb = by.get("POST /api/v1/embeddings", {}).get("stats", {})
        return int(total["requests"]) >= expected and int(emb.get("requests", 0)) == ok + bad

    await wait_until(counted, timeout=10, interval=0.3)
    # Nothing more arrives later (Envoy batches for 1 s, the sink writes every 1 s): exactly N.
    await asyncio.sleep(2.5)
    report = await _usage(anon_api, key, granularity="GRANULARITY_DAY")
    by = {e["endpoint"]: e["stats"] for e in report["endpoints"]}
    emb = by["POST /api/v1/embeddings"]
    assert int(emb["requests"]) == ok + bad and int(emb["errors"]) == bad
    assert int(emb["tokens_in"]) > 0
    # 9 texts were embedded over 6 calls from 2 distinct texts: all but the first two hit.
    assert int(emb["cache_lookups"]) == 9 and int(emb["cache_hits"]) == 7
    assert abs(emb["cache_hit_rate"] - 7 / 9) < 1e-6
    grpc_calls = by["/ragline.embedder.v1.EmbedderService/ListEmbeddingModels"]
    assert int(grpc_calls["requests"]) == 1 and int(grpc_calls["errors"]) == 0
    assert len(report["series"]) >= 1
    assert report["tenant"] == tenant


async def test_usage_counts_concurrent_requests_exactly(api, anon_api):
    # Many requests at once, over several connections and Envoy worker threads; counted
    # under the method the client used (the transcoder makes every REST call a POST).
    key, _ = await create_key(api, _tenant(), ["embeddings", "analytics"], tier="enterprise")
    n = 300

    async def call(_: int) -> int:
        return (await anon_api.get(MODELS, headers=bearer(key))).status_code

    statuses = await asyncio.gather(*(call(i) for i in range(n)))
    assert statuses == [200] * n

    async def models_calls() -> int:
        report = await _usage(anon_api, key)
        by = {e["endpoint"]: e["stats"] for e in report["endpoints"]}
        return int(by.get(f"GET {MODELS}", {}).get("requests", 0))

    await wait_until(lambda: _at_least(models_calls, n), timeout=15, interval=0.5)
    await asyncio.sleep(2.5)
    assert await models_calls() == n


async def _at_least(count, n: int) -> bool:
    return await count() >= n


async def test_usage_of_another_tenant_is_404_unless_admin(api, anon_api):
    key_a, _ = await create_key(api, _tenant(), ["analytics"])
    other = _tenant()
    reply = await anon_api.get(
        "/api/v1/analytics/usage", params={"tenant": other}, headers=bearer(key_a)
    )
    assert reason_of(error_body(reply, 404)) == "TENANT_NOT_FOUND"
    admin = await api.get("/api/v1/analytics/usage", params={"tenant": other})
    assert admin.status_code == 200 and admin.json()["tenant"] == other


@pytest.mark.parametrize(
    "params",
    [
        {"start_time": "2026-01-02T00:00:00Z", "end_time": "2026-01-01T00:00:00Z"},
        {"start_time": "2020-01-01T00:00:00Z", "end_time": "2026-01-01T00:00:00Z"},
        {"start_time": "yesterday"},
        {"granularity": "GRANULARITY_WEEK"},
        {"tenant": "bad tenant!"},
    ],
)
async def test_usage_bad_input_is_400(api, params):
    error_body(await api.get("/api/v1/analytics/usage", params=params), 400)


# -- tenant isolation ------------------------------------------------------------------------------
async def test_embedding_cache_is_per_tenant(api, anon_api):
    key_a, _ = await create_key(api, _tenant(), ["embeddings"])
    key_b, _ = await create_key(api, _tenant(), ["embeddings"])
    text = f"tenant cache isolation {secrets.token_hex(4)}"
    first = await anon_api.post("/api/v1/embeddings", json={"text": text}, headers=bearer(key_a))
    again = await anon_api.post("/api/v1/embeddings", json={"text": text}, headers=bearer(key_a))
    other = await anon_api.post("/api/v1/embeddings", json={"text": text}, headers=bearer(key_b))
    assert first.json()["cached_count"] == 0 and again.json()["cached_count"] == 1
    assert other.json()["cached_count"] == 0


async def test_documents_of_another_tenant_are_404(api, anon_api):
    """Tenant B cannot read, search, chat over or delete tenant A's documents."""
    key_a, _ = await create_key(api, _tenant(), ["ingest", "search", "chat"])
    key_b, _ = await create_key(api, _tenant(), ["ingest", "search", "chat"])
    collection = f"iso{secrets.token_hex(3)}"
    secret_text = f"The launch code of tenant A is {secrets.token_hex(6)}."
    # A security test never skips: a transient 503 is retried a few times, anything else
    # (or a 503 that persists) fails it.
    for _ in range(INGEST_ATTEMPTS):
        ingest = await anon_api.post(
            "/api/v1/ingest",
            json={
                "collection": collection,
                "documents": [{"title": "secret", "content": secret_text}],
            },
            headers=bearer(key_a),
        )
        if ingest.status_code != 503:
            break
        await asyncio.sleep(1.0)
    assert ingest.status_code == 200, ingest.text
    doc_id = ingest.json()["document_ids"][0]
    path = f"/api/v1/collections/{collection}/documents/{doc_id}"

    async def readable() -> bool:
        return (await anon_api.get(path, headers=bearer(key_a))).status_code == 200

    await wait_until(readable, timeout=30, interval=0.5)
    assert (await anon_api.get(path, headers=bearer(key_b))).status_code == 404
    assert (await anon_api.delete(path, headers=bearer(key_b))).status_code == 404
    search = await anon_api.post(
        "/api/v1/search",
        json={"query": "launch code", "collection": collection},
        headers=bearer(key_b),
    )
    assert search.status_code in (200, 404)
    assert secret_text not in search.text
    chat = await anon_api.post(
        "/api/v1/chat",
        json={"message": "What is the launch code?", "collection": collection},
        headers=bearer(key_b),
    )
    assert secret_text.split()[-1] not in chat.text
    assert (await anon_api.get(path, headers=bearer(key_a))).status_code == 200


# -- nothing stored in the clear -------------------------------------------------------------
async def test_no_raw_key_in_database_redis_or_logs(api, anon_api, stack):
    key, record = await create_key(api, _tenant(), ["embeddings"])
    for _ in range(3):
        assert (await anon_api.get(MODELS, headers=bearer(key))).status_code == 200
    await api.post(f"/api/v1/keys/{record['key_id']}:revoke", json={})
    await asyncio.sleep(0.5)
    needles = [key.encode(), b"dev-key-1", b"dev-key-2"]
    run_dir = stack.cfg.run_dir
    checked = 0
    for folder in ("ferretdb", "redis", "logs"):
        for path in (run_dir / folder).rglob("*"):
            if path.is_file():
                data = path.read_bytes()
                checked += 1
                for needle in needles:
                    assert needle not in data, f"{needle!r} in {path}"
    assert checked >= 3
    client = redis.Redis(port=stack.cfg.redis_port)
    try:
        for name in client.scan_iter(count=1000):
            assert not any(n in name for n in needles)
            if client.type(name) == b"string":
                value = client.get(name) or b""
                assert not any(n in value for n in needles), name
    finally:
        client.close()
