"""IngestService gRPC servicer: validate, convert, call the domain, convert back."""

from __future__ import annotations

import asyncio
import logging
import math
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

from google.protobuf import json_format, struct_pb2
from pymongo.errors import PyMongoError

from ragline.ingest.v1 import ingest_service_pb2 as pb
from ragline.ingest.v1 import ingest_service_pb2_grpc as pb_grpc
from ragline_core import deadlines
from ragline_core.corpus import check_collection_name, check_document_id
from ragline_core.errors import InvalidArgumentError, NotFoundError
from ragline_core.identity import tenant_of
from ragline_core.rpc_types import Context
from ragline_ingest import extract
from ragline_ingest.catalog import Catalog, CollectionStats
from ragline_ingest.idempotency import IdempotencyStore, key_in_use, key_of
from ragline_ingest.jobs import TERMINAL, JobStore
from ragline_ingest.service import Accepted, DocumentInput, IngestService, derived_id

log = logging.getLogger("ragline.ingest")

Doc = dict[str, Any]
WATCH_POLL_S = 0.5
# A small request waits for its job at most this share of the time left before its
# deadline: the reply (the job, maybe still running) must get back before the deadline.
DEADLINE_SHARE = 0.5
# How often a repeated keyed request reads the job it replays while waiting for it.
REPLAY_POLL_S = 0.2


def struct_to_dict(value: struct_pb2.Struct) -> dict[str, Any]:
    return json_format.MessageToDict(value) if value.fields else {}


def dict_to_struct(value: dict[str, Any]) -> struct_pb2.Struct:
    out = struct_pb2.Struct()
    if value:
        out.update(value)
    return out


def job_message(job: Doc) -> pb.Job:
    out = pb.Job(
        job_id=job["_id"],
        collection=job["collection"],
        state=pb.JobState.Value(f"JOB_STATE_{job['state']}"),  # type: ignore[arg-type]
        documents_total=job["documents_total"],
        documents_done=job["documents_done"],
        documents_failed=job["documents_failed"],
        chunks_done=job["chunks_done"],
        documents_unchanged=job.get("documents_unchanged", 0),
        errors=[
            pb.DocumentError(index=e["index"], document_id=e["document_id"], message=e["message"])
            for e in job.get("errors", [])
        ],
        failure_reason=job.get("failure_reason", ""),
    )
    out.create_time.FromDatetime(job["created_at"])
    out.update_time.FromDatetime(job["updated_at"])
    return out


def collection_message(stats: CollectionStats) -> pb.Collection:
    return pb.Collection(
        name=stats.info.name,
        embedding_model=stats.info.embedding_model,
        dimensions=stats.info.dimensions,
        document_count=stats.documents,
        chunk_count=stats.chunks,
    )


def document_message(doc: Doc, with_content: bool) -> pb.Document:
    return pb.Document(
        document_id=doc["document_id"],
        collection=doc["collection"],
        title=doc.get("title", ""),
        content=doc.get("content", "") if with_content else "",
        metadata=dict_to_struct(doc.get("metadata") or {}),
        chunk_count=int(doc.get("chunk_count", 0)),
    )


class IngestServicer(pb_grpc.IngestServiceServicer):
    def __init__(
        self,
        service: IngestService,
        jobs: JobStore,
        catalog: Catalog,
        idempotency: IdempotencyStore,
        sync_wait_s: float = 10.0,
    ) -> None:
        self.service = service
        self.jobs = jobs
        self.catalog = catalog
        self.idempotency = idempotency
        self.sync_wait_s = sync_wait_s
        self._accepting: set[asyncio.Task[Any]] = set()

    def _accepted(self, task: asyncio.Task[Any]) -> None:
        self._accepting.discard(task)
        # Its error reaches the caller, or nobody once the caller has gone: no asyncio warning.
        if not task.cancelled():
            task.exception()

    async def _job(self, tenant: str, job_id: str) -> Doc:
        job = await self.jobs.get(tenant, job_id) if job_id else None
        if job is None:
            raise NotFoundError(f"job {job_id!r} not found", reason="JOB_NOT_FOUND")
        return job

    def _wait_budget(self) -> float:
        """How long a small request may wait for its job before replying with it."""
        left = deadlines.remaining(math.inf)
        return max(0.0, min(self.sync_wait_s, left * DEADLINE_SHARE))

    async def _start(
        self,
        tenant: str,
        collection: str,
        documents: list[DocumentInput],
        model: str,
        key: str | None,
        job_id: str,
    ) -> tuple[Accepted, asyncio.Task[None] | None]:
        """Creates the job and starts it in the runner; returns the job's task when the
        request is small enough to wait for it."""
        assert self.service.runner is not None
        try:
            accepted, inline = await self.service.ingest(
                tenant, collection, documents, model, job_id
            )
        except Exception:
            if key is not None:
                # No job exists: free the key so that a retry is not told to wait for one.
                try:
                    await self.idempotency.release(tenant, key, job_id)
                except PyMongoError:
                    log.warning("could not release an Idempotency-Key", exc_info=True)
            raise
        task = self.service.runner.start_background(accepted.job_id)
        return accepted, task if inline else None

    async def _run(
        self,
        tenant: str,
        collection: str,
        documents: list[DocumentInput],
        model: str,
        key: str | None = None,
        job_id: str = "",
    ) -> pb.IngestDocumentsResponse:
        # Shielded: a caller that goes away while its request is being accepted still gets
        # its job created and started (and bound to its key), so a retry finds it.
        start = asyncio.create_task(self._start(tenant, collection, documents, model, key, job_id))
        self._accepting.add(start)  # held here once the caller has gone (the loop holds weakly)
        start.add_done_callback(self._accepted)
        accepted, task = await asyncio.shield(start)
        budget = self._wait_budget()
        if task is not None and budget > 0:
            # Bounded, and asyncio.wait never cancels the job: past the budget, or when this
            # call is cancelled, the job goes on in the runner and the reply is the job.
            await asyncio.wait({task}, timeout=budget)
        return self._reply(await self._job(tenant, accepted.job_id), accepted.document_ids)

    @staticmethod
    def _reply(job: Doc, document_ids: list[str]) -> pb.IngestDocumentsResponse:
        message = job_message(job)
        return pb.IngestDocumentsResponse(document_ids=document_ids, job_id=job["_id"], job=message)

    async def _replay(
        self, tenant: str, job_id: str, document_ids: list[str], wait_for_end: bool
    ) -> pb.IngestDocumentsResponse | None:
        """The reply for a repeat of a keyed request: its job's current state, after
        waiting (bounded) for the job to appear, and for a small request to end, as the
        first attempt would have. None if the job does not exist."""
        until = time.monotonic() + self._wait_budget()
        while True:
            job = await self.jobs.get(tenant, job_id)
            done = job is not None and (not wait_for_end or job["state"] in TERMINAL)
            if done or time.monotonic() + REPLAY_POLL_S > until:
                return None if job is None else self._reply(job, document_ids)
            await asyncio.sleep(REPLAY_POLL_S)

    async def _ingest_keyed(
        self, tenant: str, key: str, request: pb.IngestDocumentsRequest
    ) -> pb.IngestDocumentsResponse:
        """The key is bound to a job id before the job is created, so every repeat (after a
        timeout, a disconnect or a crash of the first attempt) replays that one job."""
        assert self.service.runner is not None
        raw = request.SerializeToString(deterministic=True)
        for _ in range(2):
            claim = await self.idempotency.claim(tenant, key, raw, uuid.uuid4().hex)
            if claim.won:
                return await self._run(
                    tenant,
                    request.collection,
                    _documents(request),
                    request.embedding_model,
                    key,
                    claim.job_id,
                )
            if claim.response is not None:
                return pb.IngestDocumentsResponse.FromString(claim.response)
            ids = [d.id or derived_id(request.collection, d.content) for d in request.documents]
            small = len(request.documents) <= self.service.limits.sync_max_documents
            reply = await self._replay(tenant, claim.job_id, ids, small)
            if reply is not None:
                return reply
            if claim.age_s() < self.service.runner.stale_after.total_seconds():
                raise key_in_use()  # most likely its first attempt is creating the job now
            # The request that bound the key died before creating its job: start afresh.
            await self.idempotency.release(tenant, key, claim.job_id)
        raise key_in_use()

    async def IngestDocuments(
        self, request: pb.IngestDocumentsRequest, context: Context
    ) -> pb.IngestDocumentsResponse:
        tenant = tenant_of(context)
        key = key_of(context.invocation_metadata())
        if key is not None:
            return await self._ingest_keyed(tenant, key, request)
        return await self._run(
            tenant, request.collection, _documents(request), request.embedding_model
        )

    async def UploadDocument(
        self, request: pb.UploadDocumentRequest, context: Context
    ) -> pb.UploadDocumentResponse:
        check_collection_name(request.collection)
        if not request.file.data:
            raise InvalidArgumentError("the request body (the file) is empty", field="file")
        kind = extract.kind_of(request.filename, request.file.content_type)
        text = await extract.extract_file(request.file.data, kind)
        if not text.strip():
            raise InvalidArgumentError(
                "no text could be extracted from the file", reason="EMPTY_CONTENT", field="file"
            )
        title = request.title or request.filename
        doc = DocumentInput(
            title,
            text,
            {"filename": request.filename} if request.filename else {},
            request.document_id,
        )
        reply = await self._run(
            tenant_of(context), request.collection, [doc], request.embedding_model
        )
        return pb.UploadDocumentResponse(
            document_id=reply.document_ids[0],
            job_id=reply.job_id,
            job=reply.job,
            extracted_chars=len(text),
        )

    async def GetJob(self, request: pb.GetJobRequest, context: Context) -> pb.Job:
        return job_message(await self._job(tenant_of(context), request.job_id))

    async def WatchJob(
        self, request: pb.WatchJobRequest, context: Context
    ) -> AsyncIterator[pb.WatchJobResponse]:
        tenant = tenant_of(context)
        last: pb.Job | None = None
        while True:
            job = await self._job(tenant, request.job_id)
            message = job_message(job)
            if message != last:
                yield pb.WatchJobResponse(job=message)
                last = message
            if job["state"] in TERMINAL:
                return
            await asyncio.sleep(WATCH_POLL_S)

    async def ListDocuments(
        self, request: pb.ListDocumentsRequest, context: Context
    ) -> pb.ListDocumentsResponse:
        docs, token = await self.catalog.list_documents(
            tenant_of(context), request.collection, request.page_size, request.page_token
        )
        return pb.ListDocumentsResponse(
            documents=[document_message(d, False) for d in docs], next_page_token=token
        )

    async def GetDocument(self, request: pb.GetDocumentRequest, context: Context) -> pb.Document:
        check_collection_name(request.collection)
        check_document_id(request.document_id)
        doc = await self.catalog.get_document(
            tenant_of(context), request.collection, request.document_id
        )
        return document_message(doc, True)

    async def DeleteDocument(
        self, request: pb.DeleteDocumentRequest, context: Context
    ) -> pb.DeleteDocumentResponse:
        check_collection_name(request.collection)
        check_document_id(request.document_id)
        chunks = await self.catalog.delete_document(
            tenant_of(context), request.collection, request.document_id
        )
        return pb.DeleteDocumentResponse(chunks_deleted=chunks)

    async def ListCollections(
        self, request: pb.ListCollectionsRequest, context: Context
    ) -> pb.ListCollectionsResponse:
        stats, token = await self.catalog.list_collections(
            tenant_of(context), request.page_size, request.page_token
        )
        return pb.ListCollectionsResponse(
            collections=[collection_message(s) for s in stats], next_page_token=token
        )

    async def GetCollection(
        self, request: pb.GetCollectionRequest, context: Context
    ) -> pb.Collection:
        stats = await self.catalog.get_collection(tenant_of(context), request.collection)
        return collection_message(stats)

    async def DeleteCollection(
        self, request: pb.DeleteCollectionRequest, context: Context
    ) -> pb.DeleteCollectionResponse:
        count = await self.catalog.delete_collection(tenant_of(context), request.collection)
        return pb.DeleteCollectionResponse(documents_deleted=count)


def _documents(request: pb.IngestDocumentsRequest) -> list[DocumentInput]:
    return [
        DocumentInput(d.title, d.content, struct_to_dict(d.metadata), d.id)
        for d in request.documents
    ]
