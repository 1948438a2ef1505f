"""Ingest settings: chunking, limits and job execution."""

from __future__ import annotations

from pydantic import Field

from ragline_core.settings import CoreSettings


class IngestSettings(CoreSettings):
    EMBEDDING_DEFAULT_MODEL: str = "all-MiniLM-L6-v2"
    # Chunk size and overlap in tokens of the local model's tokenizer (256 max per input;
    # the title is embedded with each chunk).
    CHUNK_SIZE_TOKENS: int = Field(default=200, ge=16, le=8000)
    CHUNK_OVERLAP_TOKENS: int = Field(default=32, ge=0, le=4000)
    MAX_DOCUMENTS_PER_REQUEST: int = Field(default=1000, ge=1, le=100_000)
    MAX_DOCUMENT_CHARS: int = Field(default=1_000_000, ge=1)
    MAX_TITLE_CHARS: int = Field(default=1000, ge=1)
    MAX_METADATA_BYTES: int = Field(default=16_384, ge=1)
    # Requests with at most this many documents wait for their job before the reply...
    SYNC_INGEST_MAX_DOCUMENTS: int = Field(default=16, ge=0)
    # ...for at most this long, and at most half the request's deadline: past that the reply
    # is the job (PENDING or RUNNING), which goes on in the background. A busy queue must
    # never turn accepted work into a 504.
    SYNC_INGEST_WAIT_S: float = Field(default=10.0, ge=0.0, le=300.0)
    # Documents of one job processed at once, and jobs running at once per process.
    INGEST_DOCUMENT_CONCURRENCY: int = Field(default=4, ge=1, le=64)
    INGEST_JOB_CONCURRENCY: int = Field(default=2, ge=1, le=64)
    # Attempts of a job's embedder call that timed out or found the embedder unavailable
    # (busy or restarting), with jittered backoff capped at EMBED_RETRY_MAX_DELAY_S, before
    # its documents fail.
    EMBED_RETRY_ATTEMPTS: int = Field(default=6, ge=1, le=20)
    EMBED_RETRY_MAX_DELAY_S: float = Field(default=15.0, gt=0.0, le=300.0)
    # A running job whose heartbeat is older than this is taken over (or failed) by another
    # process: the owner died.
    JOB_STALE_AFTER_S: float = Field(default=30.0, gt=1)
    # How long an Idempotency-Key replays its first result.
    IDEMPOTENCY_TTL_S: int = Field(default=86_400, ge=60)
    # Hours a finished job stays readable (GET /api/v1/jobs/{id}); then it is
    # deleted (checked hourly). 0 keeps every job forever.
    INGEST_JOB_RETENTION_HOURS: float = Field(default=168.0, ge=0.0)
    # Uploads (PDF, .docx, HTML) are read in a child process, at most this many at once,
    # killed after this many seconds (400 EXTRACTION_TIMEOUT) and limited to this much
    # memory (400 DOCUMENT_TOO_COMPLEX), so one file cannot slow the service for others.
    UPLOAD_EXTRACT_CONCURRENCY: int = Field(default=2, ge=1, le=64)
    UPLOAD_EXTRACT_TIMEOUT_S: float = Field(default=10.0, gt=0.0, le=300.0)
    UPLOAD_EXTRACT_MEMORY_MB: int = Field(default=1024, ge=128, le=65_536)
