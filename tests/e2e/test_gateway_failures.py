"""What the gateway does when the auth service or the rate limiter is down."""

from __future__ import annotations

import secrets
import time

import grpc
import pytest

from ragline.embedder.v1 import embedder_service_pb2 as emb_pb
from ragline.embedder.v1 import embedder_service_pb2_grpc as emb_grpc
from tests.support.assertions import error_body, reason_of
from tests.support.gateway import bearer, create_key, wait_until

pytestmark = pytest.mark.e2e

MODELS = "/api/v1/embedding-models"
KEY_CACHE_TTL_S = 1.0  # GATEWAY_KEY_CACHE_TTL's default, which the test stack keeps


async def _serving(api) -> bool:
    return (await api.get(MODELS)).status_code == 200


async def test_auth_service_down_is_503_never_a_pass(api, anon_api, gateway_channel, stack):
    stack.stop("auth")
    stopped = time.monotonic()
    try:
        # Nothing the auth service has not allowed gets through: no key, or a key the
        # gateway has not seen, is 503 at once.
        unseen = {"authorization": f"Bearer rl_live_{secrets.token_hex(32)}"}
        for headers in ({}, unseen):
            reply = await anon_api.get(MODELS, headers=headers)
            assert reason_of(error_body(reply, 503)) == "AUTH_UNAVAILABLE"

        # A key allowed within the last GATEWAY_KEY_CACHE_TTL (1 s) may still be served
        # from the gateway's key cache until then; never longer.
        async def refused() -> bool:
            return (await api.get(MODELS)).status_code == 503

        await wait_until(refused, timeout=KEY_CACHE_TTL_S + 2, interval=0.1)
        assert time.monotonic() - stopped < KEY_CACHE_TTL_S + 2
        reply = await api.get(MODELS)
        assert reason_of(error_body(reply, 503)) == "AUTH_UNAVAILABLE"
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await emb_grpc.EmbedderServiceStub(gateway_channel).ListEmbeddingModels(
                emb_pb.ListEmbeddingModelsRequest(), timeout=10
            )
        assert caught.value.code() == grpc.StatusCode.UNAVAILABLE
        # Public routes that need no auth call still answer... except those the auth
        # service itself serves; /health reports it down.
        health = await anon_api.get("/health")
        assert health.status_code == 503
    finally:
        stack.start_service("auth")
        stack.wait_port("auth", stack.cfg.service_ports["auth"], 120)
    await wait_until(lambda: _serving(api), timeout=30, interval=0.3)


async def test_rate_limiter_down_fails_open(api, stack):
    stack.stop("ratelimit")
    try:
        reply = await api.get(MODELS)
        assert reply.status_code == 200
    finally:
        stack.start_ratelimit()
        stack.wait_port("ratelimit", stack.cfg.ratelimit_port, 30)
    await wait_until(lambda: _has_limit_headers(api), timeout=15, interval=0.3)


async def _has_limit_headers(api) -> bool:
    reply = await api.get(MODELS)
    return reply.status_code == 200 and "x-ratelimit-remaining" in reply.headers


async def test_usage_of_the_last_second_survives_a_gateway_stop(api, anon_api, stack):
    """Envoy sends usage in batches once a second: stopping it must not drop the batch
    it still holds (N requests in, N counted)."""
    key, _ = await create_key(api, f"t-{secrets.token_hex(4)}", ["embeddings", "analytics"])
    sent = 25
    for _ in range(sent):
        assert (await anon_api.get(MODELS, headers=bearer(key))).status_code == 200
    stack.stop("envoy")
    stack.start_envoy()
    stack.wait_port("envoy", stack.cfg.api_port, 60)
    await wait_until(lambda: _serving(api), timeout=30, interval=0.3)

    async def models_requests() -> int:
        reply = await anon_api.get("/api/v1/analytics/usage", headers=bearer(key))
        by = {e["endpoint"]: e["stats"] for e in reply.json()["endpoints"]}
        return int(by.get(f"GET {MODELS}", {}).get("requests", 0))

    async def all_counted() -> bool:
        return await models_requests() >= sent

    await wait_until(all_counted, timeout=10, interval=0.3)
    assert await models_requests() == sent
