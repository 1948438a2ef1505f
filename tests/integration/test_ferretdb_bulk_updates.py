"""FerretDB as built by scripts/install_ferretdb.sh serves an update command of any number
of statements (its ferretdb-update-statement-close patch). Stock FerretDB v1 keeps each
statement's query open until the whole command ends; every open query holds one of the
SQLite pool's 100 connections, so a bulk write of more than 100 UpdateOne that match
documents waited forever for a connection and wedged the database for every client. Auth
writes one such bulk at start-up (a digest entry per stored key), usage one per flush.

The client gets a socket timeout, so a wedged server fails this test instead of hanging
the suite."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from pymongo import AsyncMongoClient, UpdateOne

# Well past the pool's 100 connections, in one update command (pymongo sends up to
# maxWriteBatchSize = 100,000 statements per command).
STATEMENTS = 250


@pytest.fixture
async def coll(stack, scratch_db) -> AsyncIterator[Any]:
    """A collection of STATEMENTS documents, through a client that gives up after 30 s."""
    client: AsyncMongoClient[Any] = AsyncMongoClient(
        f"mongodb://127.0.0.1:{stack.cfg.mongo_port}", socketTimeoutMS=30_000
    )
    try:
        collection = client[scratch_db.name]["bulk"]
        await collection.insert_many([{"_id": f"d{i:04d}", "n": 0} for i in range(STATEMENTS)])
        yield collection
    finally:
        await client.close()


@pytest.mark.parametrize("ordered", [True, False])
async def test_a_bulk_of_matching_updates_larger_than_the_pool_completes(
    coll: Any, ordered: bool
) -> None:
    result = await coll.bulk_write(
        [UpdateOne({"_id": f"d{i:04d}"}, {"$inc": {"n": 1}}) for i in range(STATEMENTS)],
        ordered=ordered,
    )
    assert (result.matched_count, result.modified_count) == (STATEMENTS, STATEMENTS)
    assert await coll.count_documents({"n": 1}) == STATEMENTS


async def test_upserts_that_match_and_upserts_that_insert_mix_in_one_bulk(coll: Any) -> None:
    """The shape of auth's digest index and of a usage flush: $setOnInsert/$inc upserts,
    most of whose documents exist already."""
    ids = [f"d{i:04d}" for i in range(STATEMENTS)] + [f"new{i:03d}" for i in range(50)]
    result = await coll.bulk_write(
        [UpdateOne({"_id": i}, {"$inc": {"n": 1}}, upsert=True) for i in ids], ordered=True
    )
    assert (result.matched_count, result.upserted_count) == (STATEMENTS, 50)
    assert await coll.count_documents({"n": 1}) == len(ids)
    # The database still serves other commands afterwards.
    assert await coll.database.command("ping") == {"ok": 1.0}
