"""FerretDB as built by scripts/install_ferretdb.sh keeps MongoDB's single-document
atomicity (its ferretdb-atomic-writes patch): concurrent $inc, findAndModify, filtered
update/delete and upserts of one document behave as if they ran one after another. Stock
FerretDB v1 reads, filters and writes back without a transaction: it loses increments and
lets several compare-and-sets win. Ingest, jobs and chat rely on these shapes.

Every race runs OPS operations at once, spread over CLIENTS connection pools that were
opened beforehand, so the operations really overlap on the server."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from pymongo import AsyncMongoClient, ReturnDocument
from pymongo.asynchronous.collection import AsyncCollection

CLIENTS = 8
OPS = 48
# A race with one winner is lost only if two operations read before the first one writes:
# the single-winner tests race ROUNDS times so that a broken server cannot pass by luck.
ROUNDS = 5

Coll = AsyncCollection[Any]


@pytest.fixture
async def clients(stack) -> AsyncIterator[list[AsyncMongoClient[Any]]]:
    """CLIENTS clients of the stack's FerretDB, each with OPS / CLIENTS open connections."""
    opened: list[AsyncMongoClient[Any]] = [
        AsyncMongoClient(f"mongodb://127.0.0.1:{stack.cfg.mongo_port}") for _ in range(CLIENTS)
    ]
    try:
        await asyncio.gather(
            *(c.admin.command("ping") for c in opened for _ in range(OPS // CLIENTS))
        )
        yield opened
    finally:
        await asyncio.gather(*(c.close() for c in opened))


async def race(
    clients: list[AsyncMongoClient[Any]],
    scratch_db: Any,
    name: str,
    op: Callable[[int, Coll], Awaitable[Any]],
) -> list[Any]:
    """Runs op(i, collection) for i in 0..OPS-1 at once, round-robin over the clients;
    an exception is returned in place of its result."""
    colls = [c[scratch_db.name][name] for c in clients]
    return await asyncio.gather(
        *(op(i, colls[i % len(colls)]) for i in range(OPS)), return_exceptions=True
    )


def no_errors(results: list[Any]) -> list[Any]:
    errors = [r for r in results if isinstance(r, BaseException)]
    assert not errors, f"{len(errors)} of {len(results)} failed, first: {errors[0]!r}"
    return results


async def test_concurrent_inc_loses_no_update(clients, scratch_db):
    docs = scratch_db["counter"]
    await docs.insert_one({"_id": "c", "version": 0})

    async def inc(i: int, c: Coll) -> Any:
        return await c.update_one({"_id": "c"}, {"$inc": {"version": 1}})

    results = no_errors(await race(clients, scratch_db, "counter", inc))
    assert [r.modified_count for r in results] == [1] * OPS
    final = (await docs.find_one({"_id": "c"}))["version"]
    assert final == OPS, f"final {final} after {OPS} increments"


async def test_concurrent_find_and_modify_inc_returns_distinct_values(clients, scratch_db):
    docs = scratch_db["sequence"]
    await docs.insert_one({"_id": "s", "version": 0})

    async def inc(i: int, c: Coll) -> Any:
        doc = await c.find_one_and_update(
            {"_id": "s"}, {"$inc": {"version": 1}}, return_document=ReturnDocument.AFTER
        )
        return doc["version"]

    values = no_errors(await race(clients, scratch_db, "sequence", inc))
    final = (await docs.find_one({"_id": "s"}))["version"]
    duplicates = len(values) - len(set(values))
    assert (final, duplicates) == (OPS, 0), f"final {final}, {duplicates} duplicate values"
    assert sorted(values) == list(range(1, OPS + 1))


async def test_concurrent_compare_and_set_update_has_one_winner(clients, scratch_db):
    docs = scratch_db["cas"]
    winners: list[int] = []
    for n in range(ROUNDS):
        await docs.insert_one({"_id": n, "g": 0})

        async def claim(i: int, c: Coll, n: int = n) -> Any:
            return await c.update_one({"_id": n, "g": 0}, {"$set": {"g": i + 1}})

        results = no_errors(await race(clients, scratch_db, "cas", claim))
        won = [i + 1 for i, r in enumerate(results) if r.modified_count == 1]
        assert [r.matched_count for r in results].count(1) == len(won)
        winners.append(len(won))
        if len(won) == 1:
            assert (await docs.find_one({"_id": n}))["g"] == won[0]
    assert winners == [1] * ROUNDS, f"winners per round: {winners}"


async def test_concurrent_find_and_modify_claim_has_one_owner(clients, scratch_db):
    docs = scratch_db["jobs"]
    owners: list[int] = []
    for n in range(ROUNDS):
        await docs.insert_one({"_id": n, "state": "open", "owner": ""})

        async def claim(i: int, c: Coll, n: int = n) -> Any:
            return await c.find_one_and_update(
                {"_id": n, "owner": ""},
                {"$set": {"owner": f"worker-{i}", "state": "running"}},
                return_document=ReturnDocument.AFTER,
            )

        results = no_errors(await race(clients, scratch_db, "jobs", claim))
        won = [r["owner"] for r in results if r is not None]
        owners.append(len(won))
        if len(won) == 1:
            assert (await docs.find_one({"_id": n}))["owner"] == won[0]
    assert owners == [1] * ROUNDS, f"owners per round: {owners}"


async def test_concurrent_find_and_delete_has_one_taker(clients, scratch_db):
    docs = scratch_db["queue"]
    takers: list[int] = []
    for n in range(ROUNDS):
        await docs.insert_one({"_id": n, "payload": "x"})

        async def take(i: int, c: Coll, n: int = n) -> Any:
            return await c.find_one_and_delete({"_id": n})

        results = no_errors(await race(clients, scratch_db, "queue", take))
        takers.append(sum(1 for r in results if r is not None))
    assert takers == [1] * ROUNDS, f"takers per round: {takers}"
    assert await docs.count_documents({}) == 0


async def test_a_filtered_delete_and_a_compare_and_set_never_both_win(clients, scratch_db):
    """Per document, delete_one({_id, g: 0}) races update_one({_id, g: 0} -> g: 1): in any
    serial order exactly one of them matches."""
    docs = scratch_db["pairs"]
    await docs.insert_many([{"_id": f"d{k}", "g": 0} for k in range(OPS // 2)])

    async def delete_or_set(i: int, c: Coll) -> int:
        f = {"_id": f"d{i // 2}", "g": 0}
        if i % 2:
            return (await c.delete_one(f)).deleted_count
        return (await c.update_one(f, {"$set": {"g": 1}})).modified_count

    wins = no_errors(await race(clients, scratch_db, "pairs", delete_or_set))
    both = sum(1 for k in range(OPS // 2) if wins[2 * k] and wins[2 * k + 1])
    neither = sum(1 for k in range(OPS // 2) if not wins[2 * k] and not wins[2 * k + 1])
    assert (both, neither) == (0, 0), f"{both} with two winners, {neither} with none"
    left = await docs.count_documents({})
    assert left == sum(wins[0::2])  # the documents whose update won survive, with g == 1
    assert await docs.count_documents({"g": 1}) == left


@pytest.mark.parametrize("key", [{"_id": "u"}, {"name": "u"}], ids=["by-id", "by-field"])
async def test_concurrent_upserts_make_one_document(clients, scratch_db, key):
    docs = scratch_db["upserts"]

    async def upsert(i: int, c: Coll) -> Any:
        if i % 2:
            return await c.find_one_and_update(
                key, {"$inc": {"n": 1}}, upsert=True, return_document=ReturnDocument.AFTER
            )
        return await c.update_one(key, {"$inc": {"n": 1}}, upsert=True)

    results = await race(clients, scratch_db, "upserts", upsert)
    errors = [r for r in results if isinstance(r, BaseException)]
    stored = [d async for d in docs.find(key)]
    assert (len(errors), len(stored)) == (0, 1), (
        f"{len(errors)} failed ({errors[:1]!r}), {len(stored)} documents"
    )
    assert stored[0]["n"] == OPS
    inserted = [r.upserted_id for r in results[0::2] if r.upserted_id is not None]
    assert len(inserted) <= 1
