"""The index stays correct: replicas agree, killed jobs resume, failed embeddings leave
nothing half-ingested, and hybrid ranking is at least as good as either signal alone."""

from __future__ import annotations

import asyncio
import signal
import uuid

import grpc
import pytest

from ragline.ingest.v1 import ingest_service_pb2 as ingest_pb
from ragline.ingest.v1 import ingest_service_pb2_grpc as ingest_grpc
from ragline.retriever.v1 import retriever_service_pb2 as pb
from ragline.retriever.v1 import retriever_service_pb2_grpc as pb_grpc
from tests.conftest import free_port
from tests.support.assertions import error_body
from tests.support.auth import DEV_TENANT
from tests.support.identity import as_tenant
from tests.support.processes import extra_service

pytestmark = pytest.mark.e2e

# Straight to a service, as the gateway would call it for the `api` fixture's key.
AS_DEV_TENANT = as_tenant(DEV_TENANT)


def name() -> str:
    return f"k{uuid.uuid4().hex[:10]}"


async def grpc_search(addr: str, collection: str, query: str) -> list[tuple[str, str]]:
    async with grpc.aio.insecure_channel(addr) as channel:
        reply = await pb_grpc.RetrieverServiceStub(channel).Search(
            pb.SearchRequest(
                query=query, collection=collection, limit=20, mode=pb.SEARCH_MODE_HYBRID
            ),
            timeout=30,
            metadata=AS_DEV_TENANT,
        )
    return [(h.chunk_id, f"{h.score:.6f}") for h in reply.hits]


async def test_two_retriever_replicas_answer_the_same(api, stack, tmp_path):
    collection = name()
    docs = [
        {
            "id": f"d{i}",
            "title": f"note {i}",
            "content": f"Fact {i}: the lighthouse keeper "
            f"counted {i} ships passing the harbour at dawn.",
        }
        for i in range(8)
    ]
    port = free_port()
    with extra_service(stack, "retriever", port, free_port(), tmp_path / "replica.log"):
        reply = await api.post("/api/v1/ingest", json={"documents": docs, "collection": collection})
        assert reply.status_code == 200, reply.text
        main = stack.cfg.service_addr("retriever")
        replica = f"127.0.0.1:{port}"
        first = await grpc_search(main, collection, "ships at the harbour")
        assert len(first) == 8
        assert await grpc_search(replica, collection, "ships at the harbour") == first
        deleted = await api.delete(f"/api/v1/collections/{collection}/documents/d3")
        assert deleted.status_code == 200
        after_main = await grpc_search(main, collection, "ships at the harbour")
        after_replica = await grpc_search(replica, collection, "ships at the harbour")
        assert after_main == after_replica
        assert len(after_main) == 7 and all("/d3/" not in c for c, _ in after_main)


async def test_a_killed_ingest_job_is_resumed_by_another_process(api, stack, tmp_path):
    collection = name()
    text = " ".join(f"Sentence {j} of a long report about river ecology." for j in range(300))
    docs = [
        ingest_pb.DocumentInput(id=f"r{i}", title=f"report {i}", content=f"{i} {text}")
        for i in range(40)
    ]
    env = {"JOB_STALE_AFTER_S": "2", "SYNC_INGEST_MAX_DOCUMENTS": "0"}
    port_a, port_b = free_port(), free_port()
    with extra_service(stack, "ingest", port_b, free_port(), tmp_path / "b.log", **env):
        with extra_service(
            stack, "ingest", port_a, free_port(), tmp_path / "a.log", **env
        ) as proc_a:
            async with grpc.aio.insecure_channel(f"127.0.0.1:{port_a}") as channel:
                reply = await ingest_grpc.IngestServiceStub(channel).IngestDocuments(
                    ingest_pb.IngestDocumentsRequest(documents=docs, collection=collection),
                    timeout=30,
                    metadata=AS_DEV_TENANT,
                )
            # Kill it mid-job: wait until the job has left PENDING (a condition, not a clock:
            # on a loaded machine it may still be pending after 2 s); it must be RUNNING then.
            before: dict = {}
            for _ in range(1200):  # polls 50 ms apart: ~60 s at most
                before = (await api.get(f"/api/v1/jobs/{reply.job_id}")).json()
                if before["state"] != "JOB_STATE_PENDING":
                    break
                await asyncio.sleep(0.05)
            assert before["state"] == "JOB_STATE_RUNNING", before
            proc_a.send_signal(signal.SIGKILL)  # no drain: the job is left "running"
            proc_a.wait(10)
        job = {}
        for _ in range(600):
            job = (await api.get(f"/api/v1/jobs/{reply.job_id}")).json()
            if job["state"] in ("JOB_STATE_SUCCEEDED", "JOB_STATE_FAILED"):
                break
            await asyncio.sleep(0.25)
    assert job["state"] == "JOB_STATE_SUCCEEDED", job
    assert job["documents_done"] == 40 and job["documents_failed"] == 0
    listed = (
        await api.get(f"/api/v1/collections/{collection}/documents", params={"page_size": 100})
    ).json()["documents"]
    assert sorted(d["document_id"] for d in listed) == sorted(f"r{i}" for i in range(40))
    assert (tmp_path / "b.log").read_text().count("resuming job") >= 1


async def test_failed_embedding_leaves_no_half_ingested_document(api, fake_voyage):
    collection = name()
    fake_voyage.reset(failures=[500] * 50)
    try:
        reply = await api.post(
            "/api/v1/ingest",
            json={
                "documents": [{"id": "v1", "title": "t", "content": "never stored"}],
                "collection": collection,
                "embedding_model": "voyage-3.5",
            },
        )
        assert reply.status_code == 200, reply.text
        job = reply.json()["job"]
        assert job["state"] == "JOB_STATE_FAILED" and job["documents_failed"] == 1
        assert "embedding failed" in job["errors"][0]["message"]
        error_body(await api.get(f"/api/v1/collections/{collection}/documents/v1"), 404)
        fake_voyage.reset()
        search = await api.post(
            "/api/v1/search", json={"query": "never stored", "collection": collection}
        )
        assert search.status_code == 200, search.text
        assert search.json()["hits"] == []
        # An update that fails leaves the previous version whole and searchable.
        ok = await api.post(
            "/api/v1/ingest",
            json={
                "documents": [{"id": "v1", "title": "t", "content": "first version"}],
                "collection": collection,
                "embedding_model": "voyage-3.5",
            },
        )
        assert ok.json()["job"]["state"] == "JOB_STATE_SUCCEEDED"
        fake_voyage.reset(failures=[500] * 50)
        failed = await api.post(
            "/api/v1/ingest",
            json={
                "documents": [{"id": "v1", "title": "t", "content": "second version"}],
                "collection": collection,
                "embedding_model": "voyage-3.5",
            },
        )
        assert failed.json()["job"]["state"] == "JOB_STATE_FAILED"
        doc = (await api.get(f"/api/v1/collections/{collection}/documents/v1")).json()
        assert doc["content"] == "first version"
        fake_voyage.reset()
        hits = (
            await api.post(
                "/api/v1/search",
                json={"query": "version", "mode": "SEARCH_MODE_KEYWORD", "collection": collection},
            )
        ).json()["hits"]
        assert [h["text"] for h in hits] == ["first version"]
    finally:
        fake_voyage.reset()


# A small labelled set: some queries need exact terms, some need meaning.
LABELLED_DOCS = {
    "k1": "Error code E4021 means the printer's fuser unit overheated.",
    "k2": "The XJ-9 valve must be torqued to 45 newton metres.",
    "k3": "Model RX-100 batteries last about six hours per charge.",
    "s1": "To stop your dog from pulling on the leash, reward it for walking beside you.",
    "s2": "Feeling tired all the time can come from poor sleep or low iron.",
    "s3": "Plants wilt when their roots cannot take up enough water.",
    "n1": "Printers use toner or ink cartridges to put text on paper.",
    "n2": "Valves control the flow of liquids and gases in pipes.",
    "n3": "Batteries store chemical energy and release it as electricity.",
    "n4": "Dogs were domesticated from wolves thousands of years ago.",
    "n5": "Iron is a metal used to make steel.",
    "n6": "Water boils at 100 degrees Celsius at sea level.",
}
LABELLED_QUERIES = {
    "what does E4021 mean": "k1",
    "XJ-9 torque": "k2",
    "RX-100 runtime": "k3",
    "my puppy drags me during walks": "s1",
    "why am I always exhausted": "s2",
    "my houseplant is drooping": "s3",
}


async def test_hybrid_is_at_least_as_good_as_the_better_signal(api):
    collection = name()
    docs = [{"id": k, "title": "", "content": v} for k, v in LABELLED_DOCS.items()]
    assert (
        await api.post("/api/v1/ingest", json={"documents": docs, "collection": collection})
    ).status_code == 200
    mrr = {}
    for mode in ("dense", "keyword", "hybrid"):
        total = 0.0
        for query, relevant in LABELLED_QUERIES.items():
            hits = (
                await api.post(
                    "/api/v1/search",
                    json={
                        "query": query,
                        "collection": collection,
                        "mode": f"SEARCH_MODE_{mode.upper()}",
                        "limit": 12,
                    },
                )
            ).json()["hits"]
            ranked = [h["document_id"] for h in hits]
            total += 1 / (ranked.index(relevant) + 1) if relevant in ranked else 0.0
        mrr[mode] = total / len(LABELLED_QUERIES)
    assert mrr["hybrid"] >= max(mrr["dense"], mrr["keyword"]), mrr


async def test_replaced_and_deleted_documents_leave_no_chunks_behind(api, stack):
    """The database keeps only visible chunks: an update removes the old generation, and a
    delete removes the document's chunks, also those of a write that never became visible
    (a writer that died between inserting its chunks and flipping the document)."""
    from pymongo import AsyncMongoClient

    collection = name()
    chunks_query = {"tenant": DEV_TENANT, "collection": collection, "document_id": "d1"}
    client: AsyncMongoClient = AsyncMongoClient(f"mongodb://127.0.0.1:{stack.cfg.mongo_port}")
    chunks = client[stack.cfg.database]["chunks"]
    try:
        for content in ("Otters hold hands while they sleep.", "Otters use stones as tools."):
            reply = await api.post(
                "/api/v1/ingest",
                json={"collection": collection, "documents": [{"id": "d1", "content": content}]},
            )
            assert reply.status_code == 200, reply.text
            stored = [c async for c in chunks.find(chunks_query)]
            assert [c["text"] for c in stored] == [content]
        await chunks.insert_one(
            {
                **chunks_query,
                "_id": f"{DEV_TENANT}/{collection}/d1/1/0",
                "generation": 1,
                "chunk_index": 0,
                "text": "a chunk whose document never pointed at it",
            }
        )
        reply = await api.delete(f"/api/v1/collections/{collection}/documents/d1")
        assert reply.status_code == 200, reply.text
        assert reply.json()["chunks_deleted"] == 1
        for _ in range(100):
            left = await chunks.count_documents(chunks_query)
            if left == 0:
                break
            await asyncio.sleep(0.1)
        assert left == 0
    finally:
        await client.close()
