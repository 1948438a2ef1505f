"""Redis down: searches still answer from the database (the change feed is unreadable, so
the retriever reloads the collection), and a write made meanwhile is found. Found by the
fault battery (chaos/, scenario 4): such a search was a 500."""

from __future__ import annotations

import uuid

import pytest

from tests.support.gateway import wait_until

pytestmark = pytest.mark.e2e


async def _search(api, collection: str) -> list[str]:
    reply = await api.post(
        "/api/v1/search",
        json={"query": "lighthouse harbour", "collection": collection},
    )
    assert reply.status_code == 200, reply.text
    return sorted(h["document_id"] for h in reply.json()["hits"])


async def test_search_answers_and_sees_new_writes_while_redis_is_down(api, stack):
    collection = f"rd{uuid.uuid4().hex[:10]}"
    first = {"id": "a", "title": "a", "content": "The lighthouse keeper watched the harbour."}
    reply = await api.post("/api/v1/ingest", json={"collection": collection, "documents": [first]})
    assert reply.status_code == 200, reply.text
    assert await _search(api, collection) == ["a"]
    stack.stop("redis")
    try:
        second = {"id": "b", "title": "b", "content": "A lighthouse lit the harbour at night."}
        reply = await api.post(
            "/api/v1/ingest", json={"collection": collection, "documents": [second]}
        )
        assert reply.status_code == 200, reply.text
        assert reply.json()["job"]["state"] == "JOB_STATE_SUCCEEDED", reply.text
        # The feed entry for "b" could not be published: the database is the truth.
        assert await _search(api, collection) == ["a", "b"]
    finally:
        stack.start("redis")
        stack.wait_port("redis", stack.cfg.redis_port, 30)

    async def searchable() -> bool:
        return await _search(api, collection) == ["a", "b"]

    await wait_until(searchable, timeout=30, interval=0.3)
