"""API-key lookups on the real FerretDB: by `_id` only (FerretDB indexes nothing else), keys
stored before the digest entries existed still found, unknown keys remembered briefly."""

from __future__ import annotations

import secrets
import statistics
import time
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pytest
import redis.asyncio as aioredis
from pymongo import AsyncMongoClient, monitoring

from ragline_auth.keys import KeyHasher, KeyService

PEPPER = b"test-pepper-for-lookups"
STORED_KEYS = 2000


class _Finds(monitoring.CommandListener):
    """The filter of every find (and the collection it read)."""

    def __init__(self) -> None:
        self.finds: list[tuple[str, dict[str, Any]]] = []

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        if event.command_name == "find":
            self.finds.append((event.command["find"], dict(event.command.get("filter", {}))))

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        return None

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        return None


@pytest.fixture
async def store(stack) -> AsyncIterator[tuple[Any, _Finds]]:
    finds = _Finds()
    client: AsyncMongoClient[Any] = AsyncMongoClient(
        f"mongodb://127.0.0.1:{stack.cfg.mongo_port}", event_listeners=[finds]
    )
    name = f"scratch_{uuid.uuid4().hex[:8]}"
    try:
        yield client[name], finds
    finally:
        await client.drop_database(name)
        await client.close()


def _legacy_doc(hasher: KeyHasher, plaintext: str, i: int) -> dict[str, Any]:
    """A key as stored before the digest entries: found only by its `digest` field."""
    return {
        "_id": f"key_legacy{i:05d}",
        "digest": hasher.digest(plaintext),
        "prefix": plaintext[:12],
        "tenant": f"t{i % 7}",
        "scopes": ["search"],
        "tier": "standard",
        "environment": "live",
        "name": "",
        "created_at": datetime.now(UTC),
        "expires_at": None,
        "revoked_at": None,
        "last_used_at": None,
        "replaced_by": "",
    }


async def _mean_ms(lookups: int, lookup: Any) -> float:
    times = []
    for _ in range(lookups):
        started = time.perf_counter()
        assert await lookup(f"rl_live_{secrets.token_urlsafe(32)}") is None
        times.append((time.perf_counter() - started) * 1000)
    return statistics.mean(times)


async def test_lookups_read_by_id_and_find_old_and_new_keys(stack, store):
    db, finds = store
    hasher = KeyHasher(PEPPER)
    legacy = f"rl_live_{secrets.token_urlsafe(32)}"
    await db["api_keys"].insert_many(
        [_legacy_doc(hasher, legacy if i == 0 else f"other-{i}", i) for i in range(STORED_KEYS)]
    )
    redis = aioredis.from_url(f"redis://127.0.0.1:{stack.cfg.redis_port}/0")
    try:
        keys = KeyService(db["api_keys"], redis, hasher, cache_ttl=60.0, rotation_grace_s=60)
        await keys.setup()
        created = await keys.create("acme", ["search"])
        finds.finds.clear()
        found = await keys.lookup(legacy)
        assert found is not None and found.key_id == "key_legacy00000"
        new = await keys.lookup(created.plaintext)
        assert new is not None and new.key_id == created.record.key_id
        unknown = f"rl_live_{secrets.token_urlsafe(32)}"
        assert await keys.lookup(unknown) is None
        # Every read selects by _id alone: the index FerretDB has (a `digest` filter read
        # all 2000 keys for each unknown one).
        assert finds.finds and all(set(f) == {"_id"} for _, f in finds.finds), finds.finds
        reads = len(finds.finds)
        assert await keys.lookup(unknown) is None  # remembered: no read at all
        assert len(finds.finds) == reads

        scan = await _mean_ms(20, lambda k: db["api_keys"].find_one({"digest": hasher.digest(k)}))
        indexed = await _mean_ms(20, keys.lookup)
        print(
            f"\nunknown key lookup with {STORED_KEYS} keys stored: by digest field "
            f"{scan:.1f} ms, by _id {indexed:.1f} ms"
        )
    finally:
        await redis.aclose()
