"""Accepted ingest work is answered with its job, never with a 504: a small request waits for
its job a bounded time (at most half its deadline), the job goes on in the process that
accepted it when the caller stops waiting or goes away, and a retry with the same
Idempotency-Key gets that one job back.

The backlog is real: a second ingest process running one job at a time, one document per
embedder call, against the wire-level fake Voyage answering each call after a delay.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.rpc import error_details_pb2, status_pb2
from pymongo import AsyncMongoClient

from ragline.ingest.v1 import ingest_service_pb2 as pb
from ragline.ingest.v1 import ingest_service_pb2_grpc as pb_grpc
from ragline_stack.stack import Stack
from tests.conftest import free_port
from tests.support.assertions import error_body, reason_of
from tests.support.auth import DEV_TENANT
from tests.support.fake_providers import FakeProvider
from tests.support.identity import as_tenant
from tests.support.processes import extra_service

pytestmark = pytest.mark.e2e

# Straight to the ingest process, as the gateway would call it for the `api` fixture's key.
AS_DEV_TENANT = as_tenant(DEV_TENANT)
SYNC_MAX = 10
SLOW_INGEST_ENV = {
    "INGEST_JOB_CONCURRENCY": "1",
    "INGEST_DOCUMENT_CONCURRENCY": "1",
    "MAX_BATCH_SIZE": "2",  # one document per embedder call
    "SYNC_INGEST_MAX_DOCUMENTS": str(SYNC_MAX),
}
# Each fake Voyage call answers after this long: a Voyage job of n documents takes n of them.
EMBED_DELAY_S = 1.0
# The deadline a caller gives a small request (the gateway's is REQUEST_TIMEOUT).
DEADLINE_S = 6.0
VOYAGE = "voyage-3.5"
TERMINAL = (pb.JOB_STATE_SUCCEEDED, pb.JOB_STATE_FAILED)


@dataclass(frozen=True)
class SlowIngest:
    addr: str
    pid: int
    log: Path


@pytest.fixture(scope="module")
def slow_ingest(stack: Stack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[SlowIngest]:
    log = tmp_path_factory.mktemp("slow-ingest") / "ingest.log"
    port = free_port()
    with extra_service(stack, "ingest", port, free_port(), log, **SLOW_INGEST_ENV) as proc:
        yield SlowIngest(f"127.0.0.1:{port}", proc.pid, log)


@pytest.fixture
def slow_voyage(fake_voyage: FakeProvider) -> Iterator[None]:
    fake_voyage.reset(delay_s=EMBED_DELAY_S)
    try:
        yield
    finally:
        fake_voyage.reset()


@pytest.fixture
async def jobs_table(stack: Stack) -> AsyncIterator[Any]:
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(
        f"mongodb://127.0.0.1:{stack.cfg.mongo_port}", tz_aware=True
    )
    try:
        yield client[stack.cfg.database]["ingest_jobs"]
    finally:
        await client.close()


def name() -> str:
    return f"q{uuid.uuid4().hex[:10]}"


def documents(n: int, tag: str) -> list[pb.DocumentInput]:
    # The tag keeps the texts new to the embedder's cache: every one costs a call.
    return [
        pb.DocumentInput(id=f"d{i}", title=f"tide {i}", content=f"{tag}: high tide at {i} o'clock.")
        for i in range(n)
    ]


async def ingest(
    addr: str, request: pb.IngestDocumentsRequest, *, timeout: float | None, key: str = ""
) -> pb.IngestDocumentsResponse:
    metadata = AS_DEV_TENANT + ((("idempotency-key", key),) if key else ())
    async with grpc.aio.insecure_channel(addr) as channel:
        reply: pb.IngestDocumentsResponse = await pb_grpc.IngestServiceStub(
            channel
        ).IngestDocuments(request, timeout=timeout, metadata=metadata)
    return reply


async def get_job(addr: str, job_id: str) -> pb.Job:
    async with grpc.aio.insecure_channel(addr) as channel:
        reply = await pb_grpc.IngestServiceStub(channel).GetJob(
            pb.GetJobRequest(job_id=job_id), timeout=10, metadata=AS_DEV_TENANT
        )
    return reply


async def poll_job(addr: str, job_id: str, states: tuple[int, ...], within_s: float) -> pb.Job:
    """The job once it is in one of `states`, or as it is when `within_s` ran out."""
    deadline = time.monotonic() + within_s
    while True:
        job = await get_job(addr, job_id)
        if job.state in states or time.monotonic() > deadline:
            return job
        await asyncio.sleep(0.2)


async def jobs_of(jobs_table: Any, collection: str) -> list[dict[str, Any]]:
    return [d async for d in jobs_table.find({"tenant": DEV_TENANT, "collection": collection})]


async def only_job_of(jobs_table: Any, collection: str, within_s: float) -> dict[str, Any]:
    deadline = time.monotonic() + within_s
    while True:
        found = await jobs_of(jobs_table, collection)
        if found or time.monotonic() > deadline:
            assert len(found) == 1, found
            return found[0]
        await asyncio.sleep(0.2)


def error_info(exc: grpc.aio.AioRpcError) -> error_details_pb2.ErrorInfo:
    for key, value in exc.trailing_metadata() or ():
        if key == "grpc-status-details-bin":
            for detail in status_pb2.Status.FromString(value).details:
                info = error_details_pb2.ErrorInfo()
                if detail.Unpack(info):
                    return info
    raise AssertionError("no ErrorInfo in the status details")


def assert_ran_here(stored: dict[str, Any], slow: SlowIngest) -> None:
    """Run by the process that accepted it, straight on: not adopted later as stale."""
    assert f":{slow.pid}:" in stored["owner"], stored["owner"]
    assert "resuming job" not in slow.log.read_text()


async def test_a_small_ingest_queued_behind_a_backlog_gets_its_job_not_a_504(
    slow_ingest: SlowIngest, slow_voyage: None, jobs_table: Any
) -> None:
    tag = uuid.uuid4().hex
    backlog = await ingest(
        slow_ingest.addr,
        pb.IngestDocumentsRequest(
            documents=documents(12, tag), collection=name(), embedding_model=VOYAGE
        ),
        timeout=30,
    )
    running = await poll_job(slow_ingest.addr, backlog.job_id, (pb.JOB_STATE_RUNNING,), 20)
    assert running.state == pb.JOB_STATE_RUNNING, running

    small = pb.IngestDocumentsRequest(documents=documents(SYNC_MAX, tag), collection=name())
    started = time.monotonic()
    reply = await ingest(slow_ingest.addr, small, timeout=DEADLINE_S)
    elapsed = time.monotonic() - started
    # Answered within half its deadline (plus the time to accept it), with the job.
    assert elapsed < DEADLINE_S / 2 + 1.5, elapsed
    assert reply.job.state in (pb.JOB_STATE_PENDING, pb.JOB_STATE_RUNNING), reply
    assert reply.job.job_id == reply.job_id and reply.job.documents_total == SYNC_MAX
    assert list(reply.document_ids) == [f"d{i}" for i in range(SYNC_MAX)]
    # It really waited behind the backlog.
    assert (await get_job(slow_ingest.addr, backlog.job_id)).state == pb.JOB_STATE_RUNNING

    job = await poll_job(slow_ingest.addr, reply.job_id, TERMINAL, 40)
    assert job.state == pb.JOB_STATE_SUCCEEDED, job
    assert job.documents_done == SYNC_MAX and job.documents_failed == 0
    done = await get_job(slow_ingest.addr, backlog.job_id)
    assert done.state == pb.JOB_STATE_SUCCEEDED, done
    assert_ran_here(await jobs_table.find_one({"_id": reply.job_id}), slow_ingest)


async def test_a_small_ingest_whose_caller_goes_away_finishes_at_once(
    slow_ingest: SlowIngest, slow_voyage: None, jobs_table: Any
) -> None:
    collection = name()
    request = pb.IngestDocumentsRequest(
        documents=documents(3, uuid.uuid4().hex), collection=collection, embedding_model=VOYAGE
    )
    # The caller's own timer (as an HTTP client's) gives up mid-run: the call is cancelled.
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(ingest(slow_ingest.addr, request, timeout=None), 1.0)
    stored = await only_job_of(jobs_table, collection, 10)
    # Well before a stale job would be adopted (JOB_STALE_AFTER_S, 30 s).
    job = await poll_job(slow_ingest.addr, stored["_id"], TERMINAL, 20)
    assert job.state == pb.JOB_STATE_SUCCEEDED, job
    assert job.documents_done == 3
    assert_ran_here(await jobs_table.find_one({"_id": stored["_id"]}), slow_ingest)


async def test_a_retried_idempotency_key_returns_the_job_of_the_attempt_that_timed_out(
    api: Any, slow_ingest: SlowIngest, slow_voyage: None, jobs_table: Any
) -> None:
    collection, key, tag = name(), uuid.uuid4().hex, uuid.uuid4().hex
    request = pb.IngestDocumentsRequest(
        documents=documents(3, tag), collection=collection, embedding_model=VOYAGE
    )
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(ingest(slow_ingest.addr, request, timeout=None, key=key), 1.0)

    retry = await ingest(slow_ingest.addr, request, timeout=20, key=key)
    first = await only_job_of(jobs_table, collection, 10)
    assert retry.job_id == first["_id"]
    assert retry.job.state in (pb.JOB_STATE_RUNNING, pb.JOB_STATE_SUCCEEDED), retry
    assert list(retry.document_ids) == ["d0", "d1", "d2"]
    job = await poll_job(slow_ingest.addr, retry.job_id, TERMINAL, 20)
    assert job.state == pb.JOB_STATE_SUCCEEDED and job.documents_done == 3, job
    again = await ingest(slow_ingest.addr, request, timeout=20, key=key)
    assert again.job_id == retry.job_id and again.job.state == pb.JOB_STATE_SUCCEEDED

    # Through the gateway, to the other ingest process (same database): the same job.
    body = {
        "documents": [
            {"id": d.id, "title": d.title, "content": d.content} for d in documents(3, tag)
        ],
        "collection": collection,
        "embedding_model": VOYAGE,
    }
    rest = await api.post("/api/v1/ingest", json=body, headers={"Idempotency-Key": key})
    assert rest.status_code == 200, rest.text
    assert rest.json()["job_id"] == retry.job_id
    assert rest.json()["job"]["state"] == "JOB_STATE_SUCCEEDED"

    # The key with another body is still a 409, over gRPC and REST.
    other = pb.IngestDocumentsRequest(
        documents=documents(2, tag), collection=collection, embedding_model=VOYAGE
    )
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await ingest(slow_ingest.addr, other, timeout=20, key=key)
    assert caught.value.code() == grpc.StatusCode.ABORTED
    assert error_info(caught.value).reason == "IDEMPOTENCY_KEY_REUSED"
    conflict = await api.post(
        "/api/v1/ingest",
        json={**body, "collection": collection + "x"},
        headers={"Idempotency-Key": key},
    )
    assert reason_of(error_body(conflict, 409)) == "IDEMPOTENCY_KEY_REUSED"
    assert [j["_id"] for j in await jobs_of(jobs_table, collection)] == [retry.job_id]
    assert await jobs_of(jobs_table, collection + "x") == []
