"""IngestService gRPC servicer: validate, convert, call the domain, convert back."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

from google.protobuf import json_format, struct_pb2

from ragline.ingest.v1 import ingest_service_pb2 as pb
from ragline.ingest.v1 import ingest_service_pb2_grpc as pb_grpc
from ragline_core.corpus import check_collection_name, check_document_id
from ragline_core.errors import InvalidArgumentError, NotFoundError
from ragline_core.identity import tenant_of
from ragline_core.rpc_types import Context
from ragline_ingest import extract
from ragline_ingest.catalog import Catalog, CollectionStats
from ragline_ingest.idempotency import IdempotencyStore, key_of
from ragline_ingest.jobs import TERMINAL, JobStore
from ragline_ingest.service import DocumentInput, IngestService

Doc = dict[str, Any]
WATCH_POLL_S = 0.5


def struct_to_dict(value: struct_pb2.Struct) -> dict[str, Any]:
    return json_format.MessageToDict(value) if value.fields else {}


def dict_to_struct(value: dict[str, Any]) -> struct_pb2.Struct:
    out = struct_pb2.Struct()
    if value:
        out.update(value)
    return out


def job_message(job: Doc) -> pb.Job:
    return pb.Job(
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
        create_time=job["created_at"].isoformat(),
        update_time=job["updated_at"].isoformat(),
    )


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
    ) -> None:
        self.service = service
        self.jobs = jobs
        self.catalog = catalog
        self.idempotency = idempotency

    async def _job(self, tenant: str, job_id: str) -> Doc:
        job = await self.jobs.get(tenant, job_id) if job_id else None
        if job is None:
            raise NotFoundError(f"job {job_id!r} not found", reason="JOB_NOT_FOUND")
        return job

    async def _run(
        self, tenant: str, collection: str, documents: list[DocumentInput], model: str
    ) -> pb.IngestDocumentsResponse:
        accepted, inline = await self.service.ingest(tenant, collection, documents, model)
        assert self.service.runner is not None
        if inline:
            await self.service.runner.run_inline(accepted.job_id)
        else:
            self.service.runner.start_background(accepted.job_id)
        job = job_message(await self._job(tenant, accepted.job_id))
        return pb.IngestDocumentsResponse(
            document_ids=accepted.document_ids, job_id=accepted.job_id, state=job.state, job=job
        )

    async def IngestDocuments(
        self, request: pb.IngestDocumentsRequest, context: Context
    ) -> pb.IngestDocumentsResponse:
        tenant = tenant_of(context)
        key = key_of(context.invocation_metadata())
        raw = request.SerializeToString(deterministic=True)
        if key is not None:
            stored = await self.idempotency.replay(tenant, key, raw)
            if stored is not None:
                return pb.IngestDocumentsResponse.FromString(stored)
        documents = [
            DocumentInput(d.title, d.content, struct_to_dict(d.metadata), d.id)
            for d in request.documents
        ]
        response = await self._run(tenant, request.collection, documents, request.embedding_model)
        if key is not None:
            await self.idempotency.remember(tenant, key, raw, response.SerializeToString())
        return response

    async def UploadDocument(
        self, request: pb.UploadDocumentRequest, context: Context
    ) -> pb.UploadDocumentResponse:
        check_collection_name(request.collection)
        if not request.file.data:
            raise InvalidArgumentError("the request body (the file) is empty", field="file")
        kind = extract.kind_of(request.filename, request.file.content_type)
        text = await asyncio.to_thread(extract.extract_text, request.file.data, kind)
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
            state=reply.state,
            extracted_chars=len(text),
        )

    async def GetJob(self, request: pb.GetJobRequest, context: Context) -> pb.GetJobResponse:
        return pb.GetJobResponse(
            job=job_message(await self._job(tenant_of(context), request.job_id))
        )

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

    async def GetDocument(
        self, request: pb.GetDocumentRequest, context: Context
    ) -> pb.GetDocumentResponse:
        check_collection_name(request.collection)
        check_document_id(request.document_id)
        doc = await self.catalog.get_document(
            tenant_of(context), request.collection, request.document_id
        )
        return pb.GetDocumentResponse(document=document_message(doc, True))

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
    ) -> pb.GetCollectionResponse:
        stats = await self.catalog.get_collection(tenant_of(context), request.collection)
        return pb.GetCollectionResponse(collection=collection_message(stats))

    async def DeleteCollection(
        self, request: pb.DeleteCollectionRequest, context: Context
    ) -> pb.DeleteCollectionResponse:
        count = await self.catalog.delete_collection(tenant_of(context), request.collection)
        return pb.DeleteCollectionResponse(documents_deleted=count)
