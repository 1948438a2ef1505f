"""GET /health aggregates the database, Redis and every service; 503 when one is down."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from tests.support.assertions import error_body, reason_of

pytestmark = pytest.mark.e2e


async def test_health_is_green_with_every_component(api):
    response = await api.get("/health")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["status"] == "SERVING"
    for name in (
        "mongodb",
        "redis",
        "embedder",
        "retriever",
        "chat",
        "ingest",
        "embedder.provider.local",
        "embedder.provider.openai",
    ):
        assert body["components"][name] == "SERVING", body


async def wait_for_health(api, status: int, timeout: float = 60) -> dict:
    """Polls /health until it answers `status`; returns the body (checked error shape on 503)."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        response = await api.get("/health")
        if response.status_code == status:
            return error_body(response, status) if status >= 400 else response.json()
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"/health stayed {response.status_code}: {response.text}")
        await asyncio.sleep(0.3)


async def test_a_service_down_makes_health_503_naming_it(api, stack):
    stack.stop("retriever")
    try:
        body = await wait_for_health(api, 503)
        assert "retriever" in body["message"]
        assert reason_of(body) == "UNHEALTHY"
        [info] = [d for d in body["details"] if d["@type"].endswith("ErrorInfo")]
        assert info["metadata"]["retriever"] == "NOT_SERVING"
        assert info["metadata"]["embedder"] == "SERVING"
    finally:
        stack.start_service("retriever")
        stack.wait_port("retriever", stack.cfg.service_ports["retriever"], 60)
    await wait_for_health(api, 200)


async def test_redis_down_embeddings_still_work_uncached(api, stack):
    stack.stop("redis")
    try:
        body = await wait_for_health(api, 503)
        assert "redis" in body["message"]
        text = f"no cache today {uuid.uuid4().hex}"
        for _ in range(2):
            response = await api.post("/api/v1/embeddings", json={"text": text})
            assert response.status_code == 200, response.text
            assert response.json()["cached_count"] == 0
    finally:
        stack.start("redis")
        stack.wait_port("redis", stack.cfg.redis_port, 30)
    await wait_for_health(api, 200)
