"""Assembles the ingest service: corpus writer, jobs, embedder client, change feed."""

from __future__ import annotations

import grpc

from ragline.ingest.v1 import ingest_service_pb2 as pb
from ragline.ingest.v1 import ingest_service_pb2_grpc as pb_grpc
from ragline_core.changefeed import ChangeFeed
from ragline_core.corpus import database, ensure_indexes
from ragline_core.embedder_client import EmbedderClient
from ragline_core.retry import RetryPolicy
from ragline_core.server import Runtime, ServiceSpec
from ragline_ingest import extract
from ragline_ingest.catalog import Catalog
from ragline_ingest.chunking import ChunkingConfig
from ragline_ingest.idempotency import IdempotencyStore
from ragline_ingest.jobs import JobRunner, JobStore
from ragline_ingest.parsing import Caps
from ragline_ingest.service import IngestService, Limits
from ragline_ingest.servicer import IngestServicer
from ragline_ingest.settings import IngestSettings
from ragline_ingest.store import CorpusWriter


async def register(server: grpc.aio.Server, runtime: Runtime) -> None:
    settings = runtime.settings
    assert isinstance(settings, IngestSettings)
    db = database(runtime.mongo, settings.MONGODB_DATABASE)
    await ensure_indexes(db)
    extract.configure(
        extract.ExtractLimits(
            timeout_s=settings.UPLOAD_EXTRACT_TIMEOUT_S,
            memory_bytes=settings.UPLOAD_EXTRACT_MEMORY_MB * 2**20,
            concurrency=settings.UPLOAD_EXTRACT_CONCURRENCY,
            caps=Caps(max_chars=settings.MAX_DOCUMENT_CHARS),
        )
    )
    writer = CorpusWriter(db, bson_vectors=settings.VECTOR_BACKEND == "atlas")
    jobs = JobStore(db)
    service = IngestService(
        db,
        writer,
        jobs,
        EmbedderClient(runtime.channels["embedder"], settings.MAX_BATCH_SIZE),
        ChangeFeed(runtime.redis),
        ChunkingConfig(settings.CHUNK_SIZE_TOKENS, settings.CHUNK_OVERLAP_TOKENS),
        Limits(
            settings.MAX_DOCUMENTS_PER_REQUEST,
            settings.MAX_DOCUMENT_CHARS,
            settings.MAX_TITLE_CHARS,
            settings.MAX_METADATA_BYTES,
            settings.SYNC_INGEST_MAX_DOCUMENTS,
        ),
        settings.EMBEDDING_DEFAULT_MODEL,
        RetryPolicy(
            settings.EMBED_RETRY_ATTEMPTS,
            base_delay=0.5,
            max_delay=settings.EMBED_RETRY_MAX_DELAY_S,
        ),
    )
    # Enough documents per batch that the embedder sees full MAX_BATCH_SIZE batches.
    runner = JobRunner(
        jobs,
        service.process_batch,
        batch_documents=max(1, settings.MAX_BATCH_SIZE // 2),
        job_concurrency=settings.INGEST_JOB_CONCURRENCY,
        batch_concurrency=settings.INGEST_DOCUMENT_CONCURRENCY,
        stale_after_s=settings.JOB_STALE_AFTER_S,
        retention_s=settings.INGEST_JOB_RETENTION_HOURS * 3600,
    )
    service.runner = runner
    runner.start_sweeper()
    runtime.cleanups.append(runner.stop)
    pb_grpc.add_IngestServiceServicer_to_server(
        IngestServicer(
            service,
            jobs,
            Catalog(db, writer, service),
            IdempotencyStore(db, settings.IDEMPOTENCY_TTL_S),
            sync_wait_s=settings.SYNC_INGEST_WAIT_S,
        ),
        server,
    )


SPEC = ServiceSpec(
    name="ingest",
    service_names=(pb.DESCRIPTOR.services_by_name["IngestService"].full_name,),
    register=register,
)
