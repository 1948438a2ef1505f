"""Finished ingest jobs are deleted INGEST_JOB_RETENTION_HOURS after they finished (on the
real FerretDB); running and recent jobs stay."""

from __future__ import annotations

import uuid
from datetime import timedelta

from ragline_ingest.jobs import FAILED, RUNNING, SUCCEEDED, Item, JobRunner, JobStore
from ragline_ingest.store import JOBS, now


async def _job(store: JobStore, state: str, age: timedelta) -> str:
    job_id = uuid.uuid4().hex
    item = Item(job_id, 0, "doc", "title", "text", {}, "hash")
    await store.create("acme", "docs", "all-MiniLM-L6-v2", [item])
    await store.db[JOBS].update_one(
        {"_id": job_id}, {"$set": {"state": state, "updated_at": now() - age}}
    )
    return job_id


async def test_only_jobs_finished_before_the_retention_are_deleted(scratch_db):
    store = JobStore(scratch_db)
    old_ok = await _job(store, SUCCEEDED, timedelta(days=8))
    old_failed = await _job(store, FAILED, timedelta(days=8))
    recent = await _job(store, SUCCEEDED, timedelta(days=6))
    long_running = await _job(store, RUNNING, timedelta(days=30))
    runner = JobRunner(
        store,
        process=None,  # type: ignore[arg-type]  # no job runs here
        batch_documents=1,
        job_concurrency=1,
        batch_concurrency=1,
        stale_after_s=30,
        retention_s=7 * 86_400,
    )
    await runner._purge_if_due()
    for gone in (old_ok, old_failed):
        assert await store.get("acme", gone) is None
    for kept in (recent, long_running):
        assert (await store.get("acme", kept)) is not None

    # Once an hour, not on every sweep.
    again = await _job(store, SUCCEEDED, timedelta(days=9))
    await runner._purge_if_due()
    assert await store.get("acme", again) is not None


async def test_a_retention_of_zero_keeps_every_job(scratch_db):
    store = JobStore(scratch_db)
    ancient = await _job(store, SUCCEEDED, timedelta(days=3650))
    runner = JobRunner(
        store,
        process=None,  # type: ignore[arg-type]
        batch_documents=1,
        job_concurrency=1,
        batch_concurrency=1,
        stale_after_s=30,
    )
    await runner._purge_if_due()
    assert await store.get("acme", ancient) is not None
