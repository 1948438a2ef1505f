"""Ingest jobs: stored in the database, run in the background with bounded concurrency,
and taken over by another process when their owner stops heart-beating (so a job never
stays "running" forever).

FAST_PATH: on FerretDB's SQLite backend only a filter with an `_id` equality is served by
an index (with the fixes in scripts/install_ferretdb.sh); any other filter reads the whole
table. Every frequent read and write here therefore names the job's or item's `_id` (the
owner checks of claim and finish add fields beside it); the job sweep reads the table.

A job's documents are stored as items; each item ends done, unchanged or failed. A job
that restarts skips finished items, and a document written just before a crash shows up
as unchanged (same content hash), so nothing is ingested twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from pymongo import ReturnDocument, UpdateOne
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import PyMongoError

from ragline_core import deadlines
from ragline_core.metrics import (
    INGEST_CHUNKS,
    INGEST_DOCUMENTS,
    INGEST_JOB_DURATION,
    INGEST_JOBS,
)
from ragline_ingest.store import JOB_ITEMS, JOBS, now

log = logging.getLogger("ragline.ingest.jobs")

PENDING, RUNNING, SUCCEEDED, FAILED = "PENDING", "RUNNING", "SUCCEEDED", "FAILED"
TERMINAL = (SUCCEEDED, FAILED)
# Seconds between deletions of old finished jobs (each reads the whole jobs table).
_PURGE_EVERY_S = 3600.0
MAX_STORED_ERRORS = 100

Doc = dict[str, Any]


@dataclass(frozen=True)
class Item:
    job_id: str
    index: int
    document_id: str
    title: str
    content: str
    metadata: dict[str, Any]
    content_hash: str


@dataclass(frozen=True)
class Outcome:
    state: str  # "done", "unchanged" or "failed"
    chunks: int = 0
    error: str = ""


class Tally:
    """A running job's counters, kept by its single owner and saved after each batch (the
    job document is written by one task at a time, so no $inc races on FerretDB)."""

    def __init__(self, progress: Doc) -> None:
        self.progress = progress
        self.lock = asyncio.Lock()

    def add(self, results: list[tuple[Item, Outcome]]) -> Doc:
        p = self.progress
        for item, outcome in results:
            if outcome.state == "failed":
                p["documents_failed"] += 1
                if len(p["errors"]) < MAX_STORED_ERRORS:
                    p["errors"].append(
                        {
                            "index": item.index,
                            "document_id": item.document_id,
                            "message": outcome.error,
                        }
                    )
            else:
                p["documents_done"] += 1
                p["documents_unchanged"] += outcome.state == "unchanged"
            p["chunks_done"] += outcome.chunks
        p["errors"].sort(key=lambda e: e["index"])
        return {**p, "errors": list(p["errors"])}


# Processes a batch of items of one job; returns an outcome per item (same order).
ProcessBatch = Callable[[Doc, list[Item]], Awaitable[list[Outcome]]]


class JobStore:
    def __init__(self, db: AsyncDatabase[Doc]) -> None:
        self.db = db

    async def create(self, tenant: str, collection: str, model: str, items: list[Item]) -> Doc:
        job_id = items[0].job_id
        stamp = now()
        job: Doc = {
            "_id": job_id,
            "tenant": tenant,
            "collection": collection,
            "embedding_model": model,
            "state": PENDING,
            "documents_total": len(items),
            **zero_progress(),
            "failure_reason": "",
            "owner": "",
            "heartbeat_at": stamp,
            "created_at": stamp,
            "updated_at": stamp,
        }
        # Items first: a job document never exists without all its items.
        await self.db[JOB_ITEMS].insert_many(
            [
                {
                    "_id": f"{job_id}/{i.index:07d}",
                    "job_id": job_id,
                    "index": i.index,
                    "document_id": i.document_id,
                    "title": i.title,
                    "content": i.content,
                    "metadata": i.metadata,
                    "content_hash": i.content_hash,
                    "state": "pending",
                }
                for i in items
            ],
            ordered=False,
        )
        await self.db[JOBS].insert_one(job)
        return job

    async def get(self, tenant: str, job_id: str) -> Doc | None:
        """The job with its counters (kept current by its owner after every batch); None
        for another tenant's job. (Looked up by _id: see FAST_PATH.)"""
        job = await self.db[JOBS].find_one({"_id": job_id})
        return job if job is not None and job["tenant"] == tenant else None

    async def save_progress(self, job_id: str, progress: Doc) -> None:
        await self.db[JOBS].update_one({"_id": job_id}, {"$set": {**progress, "updated_at": now()}})

    async def claim(self, job_id: str, owner: str, stale_before: Any | None) -> Doc | None:
        """Takes the job if it is pending, or running with a stale heartbeat."""
        query: Doc = {"_id": job_id, "state": {"$in": [PENDING, RUNNING]}}
        if stale_before is not None:
            query["$or"] = [
                {"state": PENDING, "owner": ""},
                {"heartbeat_at": {"$lt": stale_before}},
            ]
        else:
            query["owner"] = ""
        return await self.db[JOBS].find_one_and_update(
            query,
            {
                "$set": {
                    "owner": owner,
                    "state": RUNNING,
                    "heartbeat_at": now(),
                    "updated_at": now(),
                }
            },
            return_document=ReturnDocument.AFTER,
        )

    async def stale_jobs(self, stale_before: Any) -> list[str]:
        cursor = self.db[JOBS].find(
            {"state": {"$in": [PENDING, RUNNING]}, "heartbeat_at": {"$lt": stale_before}},
            {"_id": 1},
        )
        return [d["_id"] async for d in cursor]

    async def pending_items(self, job_id: str) -> list[Item]:
        cursor = self.db[JOB_ITEMS].find({"job_id": job_id, "state": "pending"}).sort("index", 1)
        return [
            Item(
                job_id,
                d["index"],
                d["document_id"],
                d["title"],
                d["content"],
                d.get("metadata") or {},
                d["content_hash"],
            )
            async for d in cursor
        ]

    async def record(self, job_id: str, results: list[tuple[Item, Outcome]]) -> None:
        """Items' outcomes, written to the items (what an adopting process resumes from)."""
        for _, outcome in results:
            INGEST_DOCUMENTS.labels(outcome.state).inc()
            INGEST_CHUNKS.inc(outcome.chunks)
        if not results:
            return
        await self.db[JOB_ITEMS].bulk_write(
            [
                UpdateOne(
                    {"_id": f"{job_id}/{item.index:07d}"},
                    {
                        "$set": {
                            "state": outcome.state,
                            "error": outcome.error,
                            "chunks": outcome.chunks,
                            "content": "",
                        }
                    },
                )
                for item, outcome in results
            ],
            ordered=False,
        )

    async def progress(self, job_id: str) -> Doc:
        """Counters and the first errors, recounted from the items (a scan: only when a job
        starts, is adopted or ends abnormally)."""
        counts = {"done": 0, "unchanged": 0, "failed": 0, "pending": 0}
        chunks = 0
        # Summed here rather than with $group/$sum, which FerretDB answers with 0.
        async for row in self.db[JOB_ITEMS].find({"job_id": job_id}, {"state": 1, "chunks": 1}):
            counts[row["state"]] = counts.get(row["state"], 0) + 1
            chunks += int(row.get("chunks") or 0)
        errors = [
            {"index": d["index"], "document_id": d["document_id"], "message": d["error"]}
            async for d in self.db[JOB_ITEMS]
            .find({"job_id": job_id, "state": "failed"})
            .sort("index", 1)
            .limit(MAX_STORED_ERRORS)
        ]
        return {
            "documents_done": counts["done"] + counts["unchanged"],
            "documents_unchanged": counts["unchanged"],
            "documents_failed": counts["failed"],
            "chunks_done": chunks,
            "errors": errors,
        }

    async def purge_finished(self, before: Any) -> int:
        """Deletes jobs that finished before `before` (their items went at finish). One
        full read of the jobs table on FerretDB, so the runner does it rarely."""
        result = await self.db[JOBS].delete_many(
            {"state": {"$in": list(TERMINAL)}, "updated_at": {"$lt": before}}
        )
        return int(result.deleted_count)

    async def heartbeat(self, job_id: str) -> None:
        await self.db[JOBS].update_one({"_id": job_id}, {"$set": {"heartbeat_at": now()}})

    async def finish(
        self, job_id: str, owner: str, reason: str = "", progress: Doc | None = None
    ) -> Doc | None:
        job = await self.db[JOBS].find_one({"_id": job_id})
        if job is None:
            return None
        if progress is None:
            progress = await self.progress(job_id)
        failed = progress["documents_failed"]
        state = FAILED if failed or reason else SUCCEEDED
        if not reason and failed:
            reason = f"{failed} of {job['documents_total']} documents failed"
        INGEST_JOBS.labels(state).inc()
        INGEST_JOB_DURATION.observe((now() - job["created_at"]).total_seconds())
        finished = await self.db[JOBS].find_one_and_update(
            {"_id": job_id, "owner": owner},
            {"$set": {"state": state, "failure_reason": reason, "updated_at": now(), **progress}},
            return_document=ReturnDocument.AFTER,
        )
        if finished is not None:
            # The job document now holds the final counters and errors: the items (with the
            # documents' text) are no longer needed, and every job start reads this table.
            try:
                await self.db[JOB_ITEMS].delete_many({"job_id": job_id})
            except PyMongoError:
                log.warning("could not remove a finished job's items", extra={"job_id": job_id})
        return finished


class JobRunner:
    """Runs jobs in this process and adopts stale ones from dead processes."""

    def __init__(
        self,
        store: JobStore,
        process: ProcessBatch,
        *,
        batch_documents: int,
        job_concurrency: int,
        batch_concurrency: int,
        stale_after_s: float,
        retention_s: float = 0.0,
    ) -> None:
        self.store = store
        self.process = process
        self.batch_documents = batch_documents
        self.jobs = asyncio.Semaphore(job_concurrency)
        self.batch_concurrency = batch_concurrency
        self.stale_after = timedelta(seconds=stale_after_s)
        # Finished jobs older than this are deleted (0: kept forever).
        self.retention = timedelta(seconds=retention_s)
        self._next_purge = 0.0
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        self._tasks: set[asyncio.Task[None]] = set()
        self._sweeper: asyncio.Task[None] | None = None

    def start_background(self, job_id: str) -> asyncio.Task[None]:
        """Runs the job in a task of the runner's, not of the request that started it: a
        caller that stops waiting, times out or disconnects leaves the job running here
        (rather than stranded until the sweep adopts it as stale). Named after the job so
        the sweep does not start it twice."""
        task = asyncio.create_task(self._background(job_id, stale=False), name=job_id)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    def start_sweeper(self) -> None:
        self._sweeper = asyncio.create_task(self._sweep_forever())

    async def stop(self) -> None:
        tasks = [*self._tasks, *([self._sweeper] if self._sweeper else [])]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    async def _sweep_forever(self) -> None:
        interval = max(0.5, self.stale_after.total_seconds() / 3)
        while True:
            try:
                for job_id in await self.store.stale_jobs(now() - self.stale_after):
                    if job_id not in {t.get_name() for t in self._tasks}:
                        task = asyncio.create_task(
                            self._background(job_id, stale=True), name=job_id
                        )
                        self._tasks.add(task)
                        task.add_done_callback(self._tasks.discard)
            except Exception:
                log.warning("job sweep failed", exc_info=True)
            await self._purge_if_due()
            await asyncio.sleep(interval)

    async def _purge_if_due(self) -> None:
        if not self.retention or time.monotonic() < self._next_purge:
            return
        self._next_purge = time.monotonic() + _PURGE_EVERY_S
        try:
            purged = await self.store.purge_finished(now() - self.retention)
        except PyMongoError:
            log.warning("could not delete old finished jobs", exc_info=True)
            return
        if purged:
            log.info("deleted old finished jobs", extra={"jobs": purged})

    async def _background(self, job_id: str, *, stale: bool) -> None:
        # A background job outlives the request that started it: drop that request's
        # deadline (each embedder call still gets REQUEST_TIMEOUT).
        deadlines.set_deadline(None)
        await self._run_claimed(job_id, stale=stale)

    async def _run_claimed(self, job_id: str, *, stale: bool) -> None:
        async with self.jobs:
            job = await self.store.claim(
                job_id, self.owner, now() - self.stale_after if stale else None
            )
            if job is None:
                return
            if stale:
                log.warning("resuming job of a stopped process", extra={"job_id": job_id})
            beat = asyncio.create_task(self._beat(job_id))
            try:
                await self._run(job, stale=stale)
            except asyncio.CancelledError:
                raise  # shutting down: the job stays running and will be adopted
            except Exception:
                log.exception("job failed", extra={"job_id": job_id})
                await self.store.finish(job_id, self.owner, reason="internal error")
            finally:
                beat.cancel()

    async def _beat(self, job_id: str) -> None:
        while True:
            await asyncio.sleep(max(0.5, self.stale_after.total_seconds() / 4))
            with contextlib.suppress(Exception):
                await self.store.heartbeat(job_id)

    async def _run(self, job: Doc, *, stale: bool) -> None:
        job_id = job["_id"]
        # An adopted job recounts what its previous owner finished.
        tally = Tally(await self.store.progress(job_id) if stale else zero_progress())
        items = await self.store.pending_items(job_id)
        batches = [
            items[i : i + self.batch_documents] for i in range(0, len(items), self.batch_documents)
        ]
        slots = asyncio.Semaphore(self.batch_concurrency)

        async def one(batch: list[Item]) -> None:
            async with slots:
                outcomes = await self.process(job, batch)
            results = list(zip(batch, outcomes, strict=True))
            await self.store.record(job_id, results)
            async with tally.lock:
                progress = tally.add(results)
                try:
                    await self.store.save_progress(job_id, progress)
                except Exception:
                    # The items hold the truth; the next batch or the finish saves again.
                    log.warning("saving job progress failed", extra={"job_id": job_id})

        async with asyncio.TaskGroup() as group:
            for batch in batches:
                group.create_task(one(batch))
        await self.store.finish(job_id, self.owner, progress=tally.progress)


def zero_progress() -> Doc:
    return {
        "documents_done": 0,
        "documents_unchanged": 0,
        "documents_failed": 0,
        "chunks_done": 0,
        "errors": [],
    }
