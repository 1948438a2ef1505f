"""The replica invariant (docs/retrieval.md, "Replica consistency"): once writes stop, every
retriever replica's index holds exactly the chunks the database shows as visible.

Checked on the real stack with overlapping ingest jobs from two ingest processes into one
collection (some replacing each other's documents), searches on two extra replicas while
they run (so loads and catch-ups overlap the writes), then each replica's chunk count and
chunk-id checksum (`/metrics`) against the database's. The replicas run with the
reconciliation off and a long gap grace, so only the replication protocol can keep them
right; a second test breaks a replica on purpose and watches the reconciliation repair it.
"""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from collections.abc import AsyncIterator

import grpc
import httpx
import pytest
import redis.asyncio as aioredis
from prometheus_client.parser import text_string_to_metric_families
from pymongo import AsyncMongoClient

from ragline.ingest.v1 import ingest_service_pb2 as ingest_pb
from ragline.ingest.v1 import ingest_service_pb2_grpc as ingest_grpc
from ragline.retriever.v1 import retriever_service_pb2 as pb
from ragline.retriever.v1 import retriever_service_pb2_grpc as pb_grpc
from ragline_core.changefeed import Change, ChangeFeed
from ragline_core.corpus import (
    CHUNKS,
    DOCUMENTS,
    bump_version,
    chunk_id_hash,
    chunk_keys,
    document_key,
)
from tests.conftest import free_port
from tests.support.assertions import error_body, reason_of
from tests.support.auth import DEV_TENANT
from tests.support.gateway import bearer, wait_until
from tests.support.identity import as_tenant
from tests.support.processes import extra_service

pytestmark = pytest.mark.e2e

AS_DEV_TENANT = as_tenant(DEV_TENANT)
# Once writes stop, replicas must agree with the database within this many seconds.
CONVERGE_S = 10.0
WORDS = ["harbour", "lantern", "orchard", "glacier", "meadow", "canyon", "quarry", "summit"]


def paragraph(rng: random.Random, n: int) -> str:
    return " ".join(rng.choice(WORDS) + str(rng.randrange(1000)) for _ in range(n))


async def db_truth(stack, collection: str) -> tuple[int, int]:
    """(visible chunks, checksum of their ids) of the collection, read from the database."""
    client: AsyncMongoClient = AsyncMongoClient(f"mongodb://127.0.0.1:{stack.cfg.mongo_port}")
    try:
        db = client[stack.cfg.database]
        checksum, count = 0, 0
        async for d in db[DOCUMENTS].find({"tenant": DEV_TENANT, "collection": collection}):
            for key in chunk_keys(
                DEV_TENANT, collection, d["document_id"], d["generation"], d["chunk_count"]
            ):
                assert await db[CHUNKS].find_one({"_id": key}, {"_id": 1}), key
                checksum ^= chunk_id_hash(key)
                count += 1
        return count, checksum
    finally:
        await client.close()


async def replica_view(metrics_port: int, collection: str) -> dict[str, float]:
    """This replica's index samples for the collection, and its repairs."""
    async with httpx.AsyncClient() as client:
        text = (await client.get(f"http://127.0.0.1:{metrics_port}/metrics")).text
    out: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.labels.get("collection") == collection:
                out[sample.name] = sample.value
            elif sample.name == "ragline_index_repairs_total":
                out[f"repairs_{sample.labels['reason']}"] = sample.value
    return out


async def converged(ports: list[int], collection: str, truth: tuple[int, int]) -> list[dict]:
    """Waits until every replica shows the database's count and checksum; the last views."""
    deadline = time.monotonic() + CONVERGE_S
    while True:
        views = [await replica_view(p, collection) for p in ports]
        if all(
            (v.get("ragline_index_chunks"), v.get("ragline_index_chunk_ids_checksum"))
            == (float(truth[0]), float(truth[1]))
            for v in views
        ):
            return views
        if time.monotonic() > deadline:
            pytest.fail(f"replicas did not converge on {truth}: {views}")
        await asyncio.sleep(0.2)


async def search_forever(addr: str, collection: str, stop: asyncio.Event) -> int:
    searches = 0
    async with grpc.aio.insecure_channel(addr) as channel:
        stub = pb_grpc.RetrieverServiceStub(channel)
        while not stop.is_set():
            try:
                await stub.Search(
                    pb.SearchRequest(query="harbour lantern", collection=collection, limit=5),
                    timeout=20,
                    metadata=AS_DEV_TENANT,
                )
                searches += 1
            except grpc.aio.AioRpcError as exc:
                # NOT_FOUND before the first job creates the collection; DEADLINE_EXCEEDED
                # when the busy embedder is slow with the query. Neither is what this tests.
                if exc.code() not in (grpc.StatusCode.NOT_FOUND, grpc.StatusCode.DEADLINE_EXCEEDED):
                    raise
            await asyncio.sleep(0.05)
    return searches


async def wait_jobs(addr: str, job_ids: list[str]) -> None:
    async with grpc.aio.insecure_channel(addr) as channel:
        stub = ingest_grpc.IngestServiceStub(channel)
        for job_id in job_ids:
            deadline = time.monotonic() + 300
            while True:
                job = await stub.GetJob(
                    ingest_pb.GetJobRequest(job_id=job_id), timeout=20, metadata=AS_DEV_TENANT
                )
                if job.state == ingest_pb.JOB_STATE_SUCCEEDED:
                    break
                assert job.state != ingest_pb.JOB_STATE_FAILED, (job.failure_reason, job.errors[:3])
                assert time.monotonic() < deadline, job
                await asyncio.sleep(0.2)


@pytest.fixture
async def replicas(stack, tmp_path) -> AsyncIterator[list[tuple[str, int]]]:
    """Two extra retriever replicas (address, metrics port) that rely on the feed alone."""
    env = {"INDEX_RECONCILE_INTERVAL_S": "0", "INDEX_GAP_GRACE_S": "60"}
    ports = [(free_port(), free_port()) for _ in range(2)]
    with (
        extra_service(stack, "retriever", *ports[0], tmp_path / "r0.log", **env),
        extra_service(stack, "retriever", *ports[1], tmp_path / "r1.log", **env),
    ):
        yield [(f"127.0.0.1:{port}", metrics) for port, metrics in ports]


async def test_overlapping_ingest_jobs_leave_every_replica_exactly_the_database(
    stack, tmp_path, replicas
):
    collection = f"rc{uuid.uuid4().hex[:10]}"
    rng = random.Random(7)
    ingest_b = free_port()
    env = {"SYNC_INGEST_MAX_DOCUMENTS": "0", "INGEST_JOB_CONCURRENCY": "2"}
    with extra_service(stack, "ingest", ingest_b, free_port(), tmp_path / "ingest.log", **env):
        addrs = [stack.cfg.service_addr("ingest"), f"127.0.0.1:{ingest_b}"]
        stop = asyncio.Event()
        searchers = [
            asyncio.create_task(search_forever(addr, collection, stop)) for addr, _ in replicas
        ]
        jobs: list[tuple[str, str]] = []
        async with (
            grpc.aio.insecure_channel(addrs[0]) as ch_a,
            grpc.aio.insecure_channel(addrs[1]) as ch_b,
        ):
            stubs = [ingest_grpc.IngestServiceStub(ch_a), ingest_grpc.IngestServiceStub(ch_b)]

            async def send(i: int) -> None:
                # 20 new documents each (one of several chunks), and 5 shared ids that other
                # requests replace. Small: the embedder must not be what limits the test.
                docs = [
                    ingest_pb.DocumentInput(
                        id=f"j{i}d{k}",
                        title=f"doc {i}.{k}",
                        content=paragraph(rng, 500 if k == 0 else 20 + k),
                    )
                    for k in range(20)
                ] + [
                    ingest_pb.DocumentInput(
                        id=f"shared{k}", title=f"shared {k}", content=paragraph(rng, 30)
                    )
                    for k in range(5)
                ]
                reply = await stubs[i % 2].IngestDocuments(
                    ingest_pb.IngestDocumentsRequest(documents=docs, collection=collection),
                    timeout=60,
                    metadata=AS_DEV_TENANT,
                )
                jobs.append((addrs[i % 2], reply.job_id))

            await send(0)  # creates the collection, so both processes agree on its model
            await asyncio.gather(*(send(i) for i in range(1, 8)))
            for addr, job_id in jobs:
                await wait_jobs(addr, [job_id])
        stop.set()
        searched = await asyncio.gather(*searchers)
    assert min(searched) > 0  # the replicas really searched while the jobs ran
    truth = await db_truth(stack, collection)
    assert truth[0] > 8 * 20  # every request's own documents are there, at least
    views = await converged([m for _, m in replicas], collection, truth)
    for view in views:
        # Right by the protocol alone: no replica had to reload after a gap.
        assert view.get("repairs_lost_entries", 0) == 0, view


async def corrupt_behind_the_feed(stack, collection: str, *, announce: bool = True) -> None:
    """Adds document "c" straight to the database and bumps the version, announced with an
    entry about the unchanged document "a" (the feed misleads every replica) or not at all
    (as when a writer dies between its version bump and its publish)."""
    client: AsyncMongoClient = AsyncMongoClient(f"mongodb://127.0.0.1:{stack.cfg.mongo_port}")
    redis = aioredis.from_url(f"redis://127.0.0.1:{stack.cfg.redis_port}/0")
    try:
        db = client[stack.cfg.database]
        existing = await db[CHUNKS].find_one(
            {"tenant": DEV_TENANT, "collection": collection, "document_id": "a"}
        )
        assert existing is not None
        generation = int(existing["generation"]) + 1
        key = document_key(DEV_TENANT, collection, "c")
        text = "The glacier feeds the quarry lake."
        await db[CHUNKS].insert_one(
            {
                **existing,
                "_id": f"{key}/{generation}/0",
                "document_id": "c",
                "generation": generation,
                "text": text,
                "title": "c",
            }
        )
        await db[DOCUMENTS].insert_one(
            {
                "_id": key,
                "tenant": DEV_TENANT,
                "collection": collection,
                "document_id": "c",
                "title": "c",
                "content": text,
                "metadata": {},
                "content_hash": "written behind the feed",
                "generation": generation,
                "chunk_count": 1,
            }
        )
        version = await bump_version(db, DEV_TENANT, collection)
        if announce:
            await ChangeFeed(redis).publish(
                Change("upsert", DEV_TENANT, collection, "a", 0, version, chunks=0, batch=1)
            )
    finally:
        await redis.aclose()
        await client.close()


async def test_reconciliation_finds_and_repairs_a_replica_the_feed_misled(stack, tmp_path, api):
    """The version watermark is satisfied, so only the reconciliation can see that the
    replica lacks a document: it reports the gap, repairs the index, and the search result
    cached from the broken index is not served again."""
    collection = f"rr{uuid.uuid4().hex[:10]}"
    reply = await api.post(
        "/api/v1/ingest",
        json={
            "collection": collection,
            "documents": [
                {"id": "a", "title": "a", "content": "The harbour lantern burns all night."},
                {"id": "b", "title": "b", "content": "The orchard blooms in the meadow."},
            ],
        },
    )
    assert reply.status_code == 200, reply.text
    port, metrics = free_port(), free_port()
    # The first reconciliation runs RECONCILE seconds after start: time to cache a wrong
    # result first.
    env = {"INDEX_RECONCILE_INTERVAL_S": "6", "INDEX_GAP_GRACE_S": "0.5"}
    with extra_service(stack, "retriever", port, metrics, tmp_path / "r.log", **env):
        query = pb.SearchRequest(query="glacier quarry", collection=collection, limit=5)
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            stub = pb_grpc.RetrieverServiceStub(channel)

            async def hits() -> list[str]:
                got = await stub.Search(query, timeout=20, metadata=AS_DEV_TENANT)
                return [h.document_id for h in got.hits]

            assert "c" not in await hits()
            await corrupt_behind_the_feed(stack, collection)
            # The replica applies the misleading entry and answers (and caches) without "c".
            assert "c" not in await hits()
            truth = await db_truth(stack, collection)
            deadline = time.monotonic() + 30
            view = await replica_view(metrics, collection)
            while view.get("repairs_reconcile", 0) < 1:
                assert time.monotonic() < deadline, view
                await asyncio.sleep(0.2)
                view = await replica_view(metrics, collection)
            # The replica's index status says what the reconciliation found (the next one
            # is 6 s away).
            request = pb.GetIndexStatusRequest(collection=collection)
            status = await stub.GetIndexStatus(request, timeout=10, metadata=AS_DEV_TENANT)
            assert status.gap_chunks == 1 and status.HasField("reconcile_time"), status
            first_check = status.reconcile_time.seconds
            await converged([metrics], collection, truth)
            # After the repair the next reconciliation finds nothing amiss.
            while (await replica_view(metrics, collection)).get("ragline_index_gap_chunks") != 0:
                assert time.monotonic() < deadline
                await asyncio.sleep(0.2)
            status = await stub.GetIndexStatus(request, timeout=10, metadata=AS_DEV_TENANT)
            assert status.gap_chunks == 0 and status.reconcile_time.seconds >= first_check
            assert status.loaded and status.indexed_chunks == truth[0]
            assert status.index_version == status.database_version
            # The cached answer from the broken index is retired: "c" is found now.
            assert "c" in await hits()


async def test_a_version_whose_entries_were_lost_is_reloaded(stack, tmp_path, api):
    """A version bumped with no feed entry (its writer died before publishing): once the
    replica has read the whole feed, it reloads the collection within the grace."""
    collection = f"rl{uuid.uuid4().hex[:10]}"
    reply = await api.post(
        "/api/v1/ingest",
        json={
            "collection": collection,
            "documents": [{"id": "a", "title": "a", "content": "The harbour lantern burns."}],
        },
    )
    assert reply.status_code == 200, reply.text
    port, metrics = free_port(), free_port()
    env = {"INDEX_RECONCILE_INTERVAL_S": "0", "INDEX_GAP_GRACE_S": "1"}
    with extra_service(stack, "retriever", port, metrics, tmp_path / "r.log", **env):
        await converged([metrics], collection, await db_truth(stack, collection))
        await corrupt_behind_the_feed(stack, collection, announce=False)
        await converged([metrics], collection, await db_truth(stack, collection))
        view = await replica_view(metrics, collection)
        assert view.get("repairs_lost_entries", 0) >= 1, view


async def test_index_status_through_the_gateway(api, anon_api):
    """GET /api/v1/collections/{c}/indexStatus: the answering replica's index against the
    database, for the caller's own collections only."""
    collection = f"is{uuid.uuid4().hex[:10]}"
    docs = [{"id": f"d{i}", "title": "t", "content": f"Lantern {i} burns."} for i in range(3)]
    reply = await api.post("/api/v1/ingest", json={"collection": collection, "documents": docs})
    assert reply.status_code == 200, reply.text
    await api.post("/api/v1/search", json={"query": "lantern", "collection": collection})
    stored = (await api.get(f"/api/v1/collections/{collection}")).json()

    async def in_step() -> bool:
        got = await api.get(f"/api/v1/collections/{collection}/indexStatus")
        assert got.status_code == 200, got.text
        body = got.json()
        return bool(body["loaded"]) and body["index_version"] == body["database_version"]

    await wait_until(in_step, timeout=20)
    body = (await api.get(f"/api/v1/collections/{collection}/indexStatus")).json()
    assert body["collection"] == collection and ":" in body["replica"]
    assert body["indexed_chunks"] == stored["chunk_count"] > 0
    assert int(body["database_version"]) >= 1  # int64: a JSON string
    missing = await api.get("/api/v1/collections/nope-nope/indexStatus")
    assert reason_of(error_body(missing, 404)) == "COLLECTION_NOT_FOUND"
    bad = await api.get("/api/v1/collections/bad%20name!/indexStatus")
    assert bad.status_code == 400, bad.text
    # Another tenant's key does not see this collection.
    other = await anon_api.get(
        f"/api/v1/collections/{collection}/indexStatus", headers=bearer("dev-key-2")
    )
    assert reason_of(error_body(other, 404)) == "COLLECTION_NOT_FOUND"
