"""An Idempotency-Key is bound to one job by one insert (on the real FerretDB): of many
concurrent requests with the key exactly one creates the job, the others get its id."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest
from pymongo import AsyncMongoClient

from ragline_core.errors import ConflictError
from ragline_ingest.idempotency import IdempotencyStore
from ragline_ingest.store import IDEMPOTENCY, now


@pytest.fixture
async def store(stack: Any) -> AsyncIterator[IdempotencyStore]:
    # tz_aware as the services' client (ragline_core.stores): stamps compare with now().
    client: AsyncMongoClient[Any] = AsyncMongoClient(
        f"mongodb://127.0.0.1:{stack.cfg.mongo_port}", tz_aware=True
    )
    name = f"scratch_{uuid.uuid4().hex[:8]}"
    try:
        yield IdempotencyStore(client[name], ttl_s=3600)
    finally:
        await client.drop_database(name)
        await client.close()


async def test_concurrent_requests_with_one_key_get_one_job(store: IdempotencyStore) -> None:
    offered = [uuid.uuid4().hex for _ in range(12)]
    claims = await asyncio.gather(*(store.claim("acme", "k1", b"body", j) for j in offered))
    winners = [c for c in claims if c.won]
    assert len(winners) == 1
    assert {c.job_id for c in claims} == {winners[0].job_id}
    with pytest.raises(ConflictError) as caught:
        await store.claim("acme", "k1", b"another body", uuid.uuid4().hex)
    assert caught.value.reason == "IDEMPOTENCY_KEY_REUSED"
    # Keys are per tenant.
    assert (await store.claim("other", "k1", b"another body", "j2")).won


async def test_a_released_or_expired_key_binds_a_new_job(store: IdempotencyStore) -> None:
    first = await store.claim("acme", "k2", b"body", "job-a")
    await store.release("acme", "k2", "job-b")  # not its job: stays bound
    assert (await store.claim("acme", "k2", b"body", "job-c")).job_id == first.job_id
    await store.release("acme", "k2", "job-a")
    second = await store.claim("acme", "k2", b"body", "job-d")
    assert second.won and second.job_id == "job-d"
    await store.db[IDEMPOTENCY].update_many(
        {}, {"$set": {"created_at": now() - timedelta(hours=2)}}
    )
    third = await store.claim("acme", "k2", b"a new body after expiry", "job-e")
    assert third.won and third.job_id == "job-e"
